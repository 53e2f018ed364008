//! The non-interactive subcommands, run as a user would: the real binary on a temp
//! SQLite file. JSON output is parsed back; bad input must give a clear message, a
//! non-zero exit, and change nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Db {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflows.db");
        Self { _dir: dir, path }
    }

    fn demo() -> Self {
        let db = Self::new();
        let out = db.run(&["demo", "--count", "12"]);
        assert!(out.status.success(), "{}", stderr(&out));
        db
    }

    fn run(&self, args: &[&str]) -> Output {
        wfadmin(&self.path, args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn wfadmin(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .arg("--database-url")
        .arg(db)
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed_workflow(db: &Db) -> Value {
    let list = db.json(&["list", "--status", "failed", "--json"]);
    list.as_array().unwrap()[0].clone()
}

#[test]
fn list_orders_active_first_and_filters() {
    let db = Db::demo();
    let all = db.json(&["list", "--json"]);
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 12);
    let active: Vec<bool> = rows
        .iter()
        .map(|r| matches!(r["status"].as_str(), Some("pending" | "running" | "paused")))
        .collect();
    assert!(active.windows(2).all(|w| w[0] || !w[1]), "active first");
    for status in ["pending", "running", "paused", "completed", "failed"] {
        assert!(rows.iter().any(|r| r["status"] == status), "{status}");
    }
    let only = db.json(&["list", "--active", "--limit", "3", "--json"]);
    assert_eq!(only.as_array().unwrap().len(), 3);
    let table = stdout(&db.run(&["list"]));
    assert!(table.starts_with("STATUS"));
    let bad = db.run(&["list", "--status", "exploded"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unknown status"));
}

#[test]
fn show_by_uuid_or_workflow_id() {
    let db = Db::demo();
    let row = failed_workflow(&db);
    let by_id = db.json(&["show", row["id"].as_str().unwrap(), "--json"]);
    let by_name = db.json(&["show", row["workflow_id"].as_str().unwrap(), "--json"]);
    assert_eq!(by_id, by_name);
    assert_eq!(by_id["status"], "failed");
    assert!(by_id["error"].as_str().unwrap().contains("failed"));
    let text = stdout(&db.run(&["show", row["workflow_id"].as_str().unwrap()]));
    assert!(text.contains("steps:"));

    let missing = db.run(&["show", "no-such-workflow"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("no workflow"));
}

#[test]
fn checkpoints_diff_and_restore() {
    let db = Db::demo();
    let row = failed_workflow(&db);
    let id = row["id"].as_str().unwrap();
    let checkpoints = db.json(&["checkpoints", id, "--json"]);
    let list = checkpoints.as_array().unwrap();
    assert_eq!(list.len() as u64, row["checkpoints"].as_u64().unwrap());
    let oldest = list.last().unwrap()["id"].as_str().unwrap().to_owned();
    assert!(list[0]["size_bytes"].as_u64().unwrap() > 0);

    let diff = db.json(&["diff", &oldest, "current", "--json"]);
    let changes = diff["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["path"] == "status" && c["new"] == "failed")
    );

    // Without --yes and without a terminal: refused, nothing changed.
    let refused = db.run(&["restore", &oldest]);
    assert!(!refused.status.success());
    assert!(stdout(&refused).contains("status: failed -> running"));
    assert_eq!(db.json(&["show", id, "--json"])["status"], "failed");

    let read_only = db.run(&["--read-only", "restore", &oldest, "--yes"]);
    assert!(!read_only.status.success());
    assert!(stderr(&read_only).contains("read-only"));
    assert_eq!(db.json(&["show", id, "--json"])["status"], "failed");

    let done = db.run(&["restore", &oldest, "--yes"]);
    assert!(done.status.success(), "{}", stderr(&done));
    let after = db.json(&["show", id, "--json"]);
    assert_eq!(after["status"], "running");
    assert_eq!(after["error"], Value::Null);
    let diff = db.json(&["diff", &oldest, "current", "--json"]);
    let paths: Vec<&str> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["updated_at"]);

    let bad = db.run(&["restore", "not-a-uuid", "--yes"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("is not a uuid"));
    let unknown = db.run(&["restore", "00000000-0000-0000-0000-000000000000", "--yes"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("not found"));
}

#[test]
fn prune_dry_run_changes_nothing_and_prune_deletes() {
    let db = Db::demo();
    let before = db.json(&["list", "--json"]);
    let dry = db.run(&[
        "prune",
        "--older-than",
        "1s",
        "--keep-checkpoints",
        "1",
        "--dry-run",
    ]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("would delete 6 completed or failed"));
    assert_eq!(db.json(&["list", "--json"]), before);

    let real = db.run(&["prune", "--older-than", "1s", "--keep-checkpoints", "1"]);
    assert!(real.status.success(), "{}", stderr(&real));
    let after = db.json(&["list", "--json"]);
    let rows = after.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["checkpoints"].as_u64().unwrap() <= 1));

    let bad = db.run(&["prune", "--older-than", "soon"]);
    assert!(!bad.status.success());
}

#[test]
fn migrate_status_and_up() {
    let db = Db::new();
    let status = db.run(&["migrate", "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(stdout(&status).contains("pending  m2"));
    let up = db.run(&["migrate", "up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(stdout(&db.run(&["migrate", "status"])).contains("applied  m2"));
    assert!(stdout(&db.run(&["migrate"])).contains("nothing to apply"));
}

#[test]
fn read_only_refuses_writes_and_never_creates_a_database() {
    let db = Db::new();
    for args in [
        vec!["--read-only", "demo"],
        vec!["--read-only", "migrate"],
        vec!["--read-only", "prune", "--older-than", "1d"],
    ] {
        let out = db.run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    }
    let out = db.run(&["--read-only", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no database"));
    assert!(!db.path.exists());
}

#[test]
fn bad_urls_fail_clearly_without_showing_the_password() {
    for url in [
        "postgres://app:hunter2@localhost:notaport/db",
        "mysql://app:hunter2@localhost/db",
        "postgres://app:hunter2@127.0.0.1:1/db",
        "/no/such/folder/w.db",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
            .args(["--database-url", url, "list"])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{url}: {err}");
        assert!(err.starts_with("error: "), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{url}: {err}");
        assert!(!err.contains("panicked"), "{url}: {err}");
    }
}

#[test]
fn database_url_comes_from_the_environment() {
    let db = Db::demo();
    let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .args(["list", "--json"])
        .env("DATABASE_URL", format!("sqlite://{}", db.path.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 12);
}

#[test]
fn closed_pipes_end_the_process_quietly() {
    // `wfadmin list | head -1` with logging on: nothing may panic or hang when the
    // reader of stdout and stderr goes away.
    let db = Db::demo();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .arg("--database-url")
        .arg(&db.path)
        .args(["list", "--limit", "1000"])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("wfadmin hung after its pipes closed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
