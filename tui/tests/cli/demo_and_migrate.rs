//! `demo` and `migrate`, and what a SQLite file holds once `wfadmin` exits.

use super::*;

#[test]
fn demo_fills_only_an_empty_database_unless_forced() {
    let db = Db::demo();
    let before = db.json(&["list", "--limit", "100", "--json"]);
    // A second run: refused, nothing added (it added a second set with the same
    // workflow_ids).
    let again = db.run(&["demo", "--count", "5"]);
    assert_eq!(again.status.code(), Some(1));
    // The command it suggests runs from where the user stands: `wfadmin` is not on PATH
    // here, so it names this executable (outside the working directory: by full path).
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_wfadmin"))
        .canonicalize()
        .unwrap();
    assert_eq!(
        stderr(&again),
        format!(
            "error: {0} already holds 12 workflows; demo only fills an empty database \
             (nothing was added): browse it with `{1} --database-url {0}`, or pass \
             --force to add 5 sample workflows anyway\n",
            db.path.display(),
            exe.display()
        )
    );
    assert_eq!(stdout(&again), "");
    assert_eq!(db.json(&["list", "--limit", "100", "--json"]), before);
    // --force adds them.
    let forced = db.run(&["demo", "--count", "5", "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let after = db.json(&["list", "--limit", "100", "--json"]);
    assert_eq!(after.as_array().unwrap().len(), 17);
}

/// A URL that names no file (`sqlite://`) would have SQLite write into a temporary
/// database deleted when wfadmin exits, while saying it created the samples: it is
/// refused and nothing is created. `:memory:` works, and says that its samples are gone
/// when the command ends instead of how to browse them later.
#[test]
fn demo_refuses_a_temporary_database_and_says_when_memory_forgets() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "sqlite://",
        "sqlite:",
        "sqlite://?mode=rwc",
        "file::memory:",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
            .current_dir(dir.path())
            .args(["--database-url", url, "demo", "--count", "3"])
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{url}: {}", stdout(&out));
        assert!(stderr(&out).contains(":memory:"), "{url}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{url}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    for url in ["sqlite::memory:", ":memory:"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
            .args(["--database-url", url, "demo", "--count", "3"])
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        let printed = stdout(&out);
        assert!(
            printed.contains(
                "the database is in memory: the sample workflows are gone when this command ends"
            ),
            "{url}: {printed}"
        );
        assert!(!printed.contains("browse them with"), "{url}: {printed}");
    }
}

/// What wfadmin wrote is in the database file itself once it exits: it closes the
/// database, which folds SQLite's write-ahead log into the file. Before, `demo` left its
/// rows in a `-wal` file beside it, and a copy of the file alone (what an operator
/// copies or mails) lacked them.
#[test]
fn the_database_file_alone_holds_what_wfadmin_wrote_once_it_exits() {
    // Whether the pool's connections closed before the process ended was a race: a few
    // runs to catch it.
    for _ in 0..8 {
        let db = Db::demo();
        let wal = db.path.with_extension("db-wal");
        assert!(!wal.exists(), "{} left behind", wal.display());
    }
    // Also when its output cannot be written (stdout a full disk): it fails, and still
    // closes the database first.
    for _ in 0..8 {
        let db = Db::new();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
            .arg("--database-url")
            .arg(&db.path)
            .args(["demo", "--count", "12"])
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let wal = db.path.with_extension("db-wal");
        assert!(!wal.exists(), "{} left behind", wal.display());
    }
    let db = Db::demo();
    let copied = tempfile::tempdir().unwrap();
    let copy = copied.path().join("copy.db");
    std::fs::copy(&db.path, &copy).unwrap();
    let listed = wfadmin(&copy, &["--read-only", "list", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 12);
}

#[test]
fn migrate_status_and_up() {
    let db = Db::new();
    // `status` only reports: a database that is not there is said so, and not created
    // (nor its -wal and -shm files).
    let status = db.run(&["migrate", "status"]);
    assert_eq!(status.status.code(), Some(1));
    assert_eq!(
        stderr(&status),
        format!(
            "error: SQLite database {} does not exist (a typo? `wfadmin migrate` creates it)\n",
            db.path.display()
        )
    );
    let dir = db.path.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // A database without the tables: every migration is pending, and still none applied.
    std::fs::write(&db.path, b"").unwrap();
    let status = db.run(&["migrate", "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(stdout(&status).contains("pending  m2"));
    assert!(stdout(&db.run(&["migrate", "status"])).contains("pending  m2"));
    let up = db.run(&["migrate", "up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(stdout(&db.run(&["migrate", "status"])).contains("applied  m2"));
    assert!(stdout(&db.run(&["migrate"])).contains("nothing to apply"));
}
