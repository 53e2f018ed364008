//! `list` and `show`: filters, order, notes on stderr, leases, columns, times.

use super::*;

#[test]
fn list_lease_expired_names_the_workflow_whose_replica_crashed() {
    // The demo's replica worker-2 claimed one workflow and stopped renewing its lease.
    let db = Db::demo();
    let stuck = db.json(&["list", "--lease-expired", "--json"]);
    let stuck = stuck.as_array().unwrap();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(stuck[0]["lease_owner"], "worker-2");
    let all = db.json(&["list", "--json"]);
    let held: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["lease_owner"] == "worker-1")
        .collect();
    assert_eq!(held.len(), 2, "{all}");
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
    // A word that is no status is a bad argument (exit 2), and clap lists the statuses.
    for word in ["exploded", "FAILEDX", ""] {
        let bad = db.run(&["list", "--status", word]);
        assert_eq!(bad.status.code(), Some(2), "{word:?}");
        assert!(
            stderr(&bad).contains("[possible values: pending, running, paused, completed, failed]"),
            "{}",
            stderr(&bad)
        );
        assert_eq!(stdout(&bad), "");
    }
    // Any case: FAILED is failed.
    assert_eq!(
        db.json(&["list", "--status", "FAILED", "--json"]),
        db.json(&["list", "--status", "failed", "--json"])
    );
    // A finished status with a filter of active workflows: an error, not an empty table
    // that reads as "nothing is stuck".
    let none = db.run(&["list", "--status", "completed", "--lease-expired"]);
    assert!(!none.status.success());
    assert_eq!(
        stderr(&none).trim(),
        "error: --status completed lists none: --lease-expired lists active workflows \
         only, and a completed workflow has finished"
    );
    let none = db.run(&["list", "--status", "failed", "--active"]);
    assert!(!none.status.success());
    assert!(stderr(&none).contains("--active lists active workflows only"));
    let stuck_running = db.json(&["list", "--status", "running", "--lease-expired", "--json"]);
    assert!(stuck_running.is_array());
}

#[test]
fn list_says_on_stderr_when_it_shows_fewer_than_match() {
    let db = Db::new();
    let out = db.run(&["demo", "--count", "60"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let note = "showing 50 of 60 workflows; --limit 60 shows them all\n";
    let table = db.run(&["list"]);
    assert!(table.status.success());
    assert_eq!(stdout(&table).lines().count(), 51, "a header and 50 rows");
    assert_eq!(stderr(&table), note);
    // The JSON stays valid: the note is on stderr.
    let json = db.run(&["list", "--json"]);
    let rows: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 50);
    assert_eq!(stderr(&json), note);
    let all = db.run(&["list", "--limit", "60"]);
    assert_eq!(stdout(&all).lines().count(), 61);
    assert_eq!(stderr(&all), "");
    // 0 would list nothing and read as "no workflows": a bad argument.
    let zero = db.run(&["list", "--limit", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        stderr(&zero).contains("must be at least 1"),
        "{}",
        stderr(&zero)
    );
    assert_eq!(stdout(&zero), "");
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
fn a_workflow_id_of_several_runs_says_which_run_it_shows_on_stderr() {
    let db = Db::demo();
    let (_, checkpoints) = active_with_checkpoints(&db);
    let oldest = checkpoints.last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // One run: nothing said.
    let fork = db.run(&["fork", &oldest, "retry-1"]);
    assert!(fork.status.success(), "{}", stderr(&fork));
    assert_eq!(stderr(&db.run(&["show", "retry-1"])), "");
    // Two runs: show, checkpoints and export say which one they took, on stderr only.
    let fork = db.run(&["fork", &oldest, "retry-1"]);
    assert!(fork.status.success(), "{}", stderr(&fork));
    let newest = db.json(&["show", "retry-1", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let note = format!(
        "2 runs have workflow_id retry-1; showing the most recently updated (uuid {newest}); \
         pass a uuid for another\n"
    );
    for args in [
        vec!["show"],
        vec!["show", "--json"],
        vec!["checkpoints"],
        vec!["checkpoints", "--json"],
        vec!["export"],
    ] {
        let mut by_id = args.clone();
        by_id.insert(1, "retry-1");
        let mut by_uuid = args.clone();
        by_uuid.insert(1, &newest);
        let named = db.run(&by_id);
        assert!(named.status.success(), "{by_id:?}: {}", stderr(&named));
        assert_eq!(stderr(&named), note, "{by_id:?}");
        // stdout is what the uuid gives, which needs no note.
        let exact = db.run(&by_uuid);
        assert_eq!(stdout(&named), stdout(&exact), "{by_id:?}");
        assert_eq!(stderr(&exact), "", "{by_uuid:?}");
    }
}

#[test]
fn list_lines_up_columns_of_wide_character_ids_and_names() {
    // CJK characters and emoji take two terminal cells: padded by characters, every
    // column after them was shifted.
    let db = Db::demo();
    let row = failed_workflow(&db);
    let mut bundle = db.json(&["export", row["id"].as_str().unwrap()]);
    rename(
        &mut bundle,
        "workflow_id",
        "請求書-処理-パイプライン-長い名前-🚀-0021",
    );
    rename(&mut bundle, "workflow_name", "請求書の処理 🧾");
    let file = db._dir.path().join("wide.json");
    std::fs::write(&file, bundle.to_string()).unwrap();
    let out = db.run(&["import", file.to_str().unwrap(), "--new-ids"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let table = stdout(&db.run(&["list"]));
    assert!(
        table.contains("請求書-処理-パイプライン-長い名前-🚀-0021"),
        "{table}"
    );
    let width = unicode_width::UnicodeWidthStr::width;
    // Where the last column (ID, a uuid) starts, in terminal cells, on every line.
    let starts: Vec<usize> = table
        .lines()
        .map(|line| match line.strip_suffix("ID") {
            Some(header) => width(header),
            None => width(line) - 36,
        })
        .collect();
    assert!(
        starts.windows(2).all(|pair| pair[0] == pair[1]),
        "{starts:?}\n{table}"
    );
}

#[test]
fn list_show_and_checkpoints_say_their_times_are_utc() {
    let db = Db::demo();
    let row = failed_workflow(&db);
    let id = row["id"].as_str().unwrap();
    let list = stdout(&db.run(&["list"]));
    let header = list.lines().next().unwrap();
    assert!(
        header.contains("STARTED (UTC)  ") && header.contains("UPDATED (UTC)  "),
        "{list}"
    );
    // The zone costs the table no width: the header is narrower than the times.
    let second = list.lines().nth(1).unwrap();
    assert_eq!(
        header.find("UPDATED"),
        second.find(" 20").map(|at| at + 22),
        "{list}"
    );
    let show = stdout(&db.run(&["show", id]));
    for field in ["started:", "updated:", "completed:"] {
        let line = show.lines().find(|line| line.starts_with(field)).unwrap();
        assert!(line.ends_with(" UTC"), "{show}");
    }
    assert!(show.contains("  RETRIES  STARTED (UTC)  "), "{show}");
    let checkpoints = stdout(&db.run(&["checkpoints", id]));
    assert!(checkpoints.contains("  TAKEN (UTC)  "), "{checkpoints}");
}

/// A workflow whose stored time no reader can use (Postgres takes years up to 294276;
/// a SQLite file may hold any text) makes `list` fail with a message naming it, exit 1,
/// never a panic (exit 101); `show` of another workflow still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_says_which_workflow_holds_a_time_it_cannot_read() {
    use backend_suite::{Backend, execute_sql};
    use llm_orchestrator_state::{StateStore, WorkflowState};

    for backend in [Backend::Postgres, Backend::SqliteFile] {
        let store = backend_suite::open(backend).await;
        let healthy = WorkflowState::new("healthy", "Answer", None, serde_json::json!({}));
        let damaged = WorkflowState::new("damaged", "Answer", None, serde_json::json!({}));
        for state in [&healthy, &damaged] {
            store.save_workflow_state(state).await.unwrap();
        }
        let far = match backend {
            Backend::Postgres => "'290000-01-01 00:00:00+00'",
            _ => "'290000-01-01T00:00:00+00:00'",
        };
        let sql = format!("UPDATE workflow_states SET started_at = {far} WHERE id = {{}}");
        assert_eq!(execute_sql(&store, &sql, damaged.id).await, 1);
        let run = |args: &[&str]| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_wfadmin"));
            match (store.postgres_location(), store.sqlite_path()) {
                (Some((url, schema)), _) => {
                    command.args(["--database-url", url, "--postgres-schema", schema]);
                }
                (None, Some(path)) => {
                    command.arg("--database-url").arg(path);
                }
                (None, None) => unreachable!("a file or a Postgres schema"),
            }
            command
                .args(args)
                .env_remove("DATABASE_URL")
                .env_remove("WFADMIN_POSTGRES_SCHEMA")
                .output()
                .unwrap()
        };
        let out = run(&["list"]);
        assert_eq!(out.status.code(), Some(1), "{backend:?}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.contains(&damaged.id.to_string()),
            "{backend:?}: {said}"
        );
        assert!(said.contains("started_at"), "{backend:?}: {said}");
        let out = run(&["show", "healthy"]);
        assert!(out.status.success(), "{backend:?}: {}", stderr(&out));
    }
}
