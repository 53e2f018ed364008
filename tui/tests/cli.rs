//! The non-interactive subcommands, run as a user would: the real binary on a temp
//! SQLite file (and once on a Postgres schema). JSON output is parsed back; bad input
//! must give a clear message, a non-zero exit, and change nothing.

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
fn checkpoints_diff_and_restore() {
    let db = Db::demo();
    let row = failed_workflow(&db);
    let id = row["id"].as_str().unwrap();
    let checkpoints = db.json(&["checkpoints", id, "--json"]);
    let list = checkpoints["checkpoints"].as_array().unwrap();
    assert_eq!(list.len() as u64, row["checkpoints"].as_u64().unwrap());
    let oldest = list.last().unwrap()["id"].as_str().unwrap().to_owned();
    assert!(list[0]["size_bytes"].as_u64().unwrap() > 0);
    let bytes: u64 = list.iter().map(|c| c["size_bytes"].as_u64().unwrap()).sum();
    assert_eq!(checkpoints["usage"]["bytes"].as_u64().unwrap(), bytes);
    assert_eq!(
        checkpoints["usage"]["count"].as_u64().unwrap(),
        list.len() as u64
    );

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_and_restore_repair_a_workflow_whose_own_row_is_unreadable() {
    let db = Db::demo();
    let row = failed_workflow(&db);
    let id = row["id"].as_str().unwrap().to_owned();
    let workflow_id = row["workflow_id"].as_str().unwrap().to_owned();
    let before = db.json(&["checkpoints", &id, "--json"]);
    let list = before["checkpoints"].as_array().unwrap();
    let oldest = list.last().unwrap()["id"].as_str().unwrap().to_owned();
    // Its context made unreadable, as a hand edit of the file would.
    let store = llm_orchestrator_state::StateStoreBuilder::new(db.path.display().to_string())
        .connect()
        .await
        .unwrap();
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(backend_suite::corrupt::context(&store, uuid).await, 1);
    store.close().await.unwrap();
    let shown = db.run(&["show", &id]);
    assert!(!shown.status.success());
    assert!(
        stderr(&shown).contains("serialization error"),
        "{}",
        stderr(&shown)
    );

    // Its checkpoints still list, by uuid and by workflow_id, as before.
    for key in [&id, &workflow_id] {
        let listed = db.json(&["checkpoints", key, "--json"]);
        assert_eq!(listed["checkpoints"], before["checkpoints"], "{key}");
        assert_eq!(listed["workflow_id"], workflow_id.as_str());
    }
    let table = db.run(&["checkpoints", &id]);
    assert!(table.status.success(), "{}", stderr(&table));

    // The restore plan says what is wrong and what the rollback does about it.
    let refused = db.run(&["restore", &oldest]);
    assert!(!refused.status.success());
    let plan = stdout(&refused);
    assert!(plan.contains("stored state cannot be read"), "{plan}");
    assert!(plan.contains("which repairs it"), "{plan}");
    let done = db.run(&["restore", &oldest, "--yes"]);
    assert!(done.status.success(), "{}", stderr(&done));
    let after = db.json(&["show", &id, "--json"]);
    assert_eq!(after["status"], "running");
}

/// A checkpoint whose snapshot is the orchestrator's own JSON: listed, diffed, exported
/// and imported as written; `restore` and `fork` say why they cannot use it, exit 1 and
/// change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_of_the_orchestrators_own_json_is_shown_but_not_restored() {
    use llm_orchestrator_state::{Checkpoint, StateStore};
    let db = Db::demo();
    let row = failed_workflow(&db);
    let id = row["id"].as_str().unwrap().to_owned();
    let own_json = serde_json::json!({"checkpoint": 3, "cursor": {"page": 7}});
    let store = llm_orchestrator_state::StateStoreBuilder::new(db.path.display().to_string())
        .connect()
        .await
        .unwrap();
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let own = Checkpoint::new(uuid, "tool_call", own_json.clone());
    store.create_checkpoint(&own).await.unwrap();
    store.close().await.unwrap();
    let own_id = own.id.to_string();
    let before = db.json(&["show", &id, "--json"]);

    let listed = db.json(&["checkpoints", &id, "--json"]);
    assert_eq!(listed["checkpoints"][0]["id"], own_id.as_str());
    assert_eq!(listed["checkpoints"][0]["workflow_status"], Value::Null);
    let diff = db.json(&["diff", &own_id, "current", "--json"]);
    assert!(!diff["changes"].as_array().unwrap().is_empty(), "{diff}");
    // Its uuid where a workflow's belongs: the workflow it is of, without a name its JSON
    // does not hold.
    let shown = db.run(&["show", &own_id]);
    assert_eq!(shown.status.code(), Some(1));
    assert!(
        stderr(&shown).starts_with(&format!(
            "error: {own_id} is a checkpoint of workflow {id}, not a workflow; "
        )),
        "{}",
        stderr(&shown)
    );

    for args in [
        vec!["restore", &own_id, "--yes"],
        vec!["restore", &own_id, "--yes", "--override-lease"],
    ] {
        let refused = db.run(&args);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        let plan = stdout(&refused);
        assert!(plan.starts_with("Cannot roll back workflow "), "{plan}");
        assert!(plan.contains("holds no state of workflow state"), "{plan}");
        assert!(plan.contains("not a workflow state"), "{plan}");
        assert_eq!(
            stderr(&refused),
            "error: not restoring: the checkpoint holds no state of this workflow; nothing \
             changed\n"
        );
    }
    let fork = db.run(&["fork", &own_id, "from-own-json"]);
    assert_eq!(fork.status.code(), Some(1));
    assert!(
        stderr(&fork).contains("holds no state of workflow state"),
        "{}",
        stderr(&fork)
    );
    assert_eq!(db.json(&["show", &id, "--json"]), before);

    // Exported and imported elsewhere, as written.
    let bundle = db.json(&["export", &id]);
    let exported = bundle["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checkpoint"]["id"] == own_id.as_str())
        .expect("exported");
    assert_eq!(exported["checkpoint"]["snapshot"], own_json);
    let file = db._dir.path().join("bundle.json");
    std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let elsewhere = Db::new();
    let imported = elsewhere.run(&["import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert_eq!(elsewhere.json(&["export", &id]), bundle);
}

#[test]
fn restore_warns_first_when_a_live_replica_holds_the_lease() {
    // The demo's worker-1 holds live leases: it is running those workflows.
    let db = Db::demo();
    let list = db.json(&["list", "--json"]);
    let held = list
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["lease_owner"] == "worker-1" && row["checkpoints"].as_u64() > Some(0))
        .expect("a workflow worker-1 runs")
        .clone();
    let checkpoints = db.json(&["checkpoints", held["id"].as_str().unwrap(), "--json"]);
    let checkpoint = checkpoints["checkpoints"][0]["id"].as_str().unwrap();
    let refused = db.run(&["restore", checkpoint]);
    assert!(!refused.status.success());
    let text = stdout(&refused);
    assert!(
        text.starts_with("WARNING: worker-1 holds this workflow's lease until 20"),
        "{text}"
    );
    assert!(
        text.lines().next().unwrap().ends_with(
            " UTC: it is running it; restoring ends its lease and refuses its next write"
        ),
        "{text}"
    );

    // Nobody holds the failed one's: the plan starts with what changes.
    let failed = failed_workflow(&db);
    let checkpoints = db.json(&["checkpoints", failed["id"].as_str().unwrap(), "--json"]);
    let checkpoint = checkpoints["checkpoints"][0]["id"].as_str().unwrap();
    let text = stdout(&db.run(&["restore", checkpoint]));
    assert!(text.starts_with("Roll back workflow "), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
}

/// An active workflow with at least two checkpoints, and its checkpoints (newest first).
fn active_with_checkpoints(db: &Db) -> (Value, Vec<Value>) {
    let list = db.json(&["list", "--active", "--json"]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["checkpoints"].as_u64().unwrap() >= 2)
        .unwrap()
        .clone();
    let checkpoints = db.json(&["checkpoints", row["id"].as_str().unwrap(), "--json"]);
    (row, checkpoints["checkpoints"].as_array().unwrap().clone())
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn prune_dry_run_changes_nothing_and_prune_deletes_but_keeps_pins() {
    let db = Db::demo();
    let (row, checkpoints) = active_with_checkpoints(&db);
    let id = row["id"].as_str().unwrap();
    let oldest = checkpoints.last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pin = db.run(&["pin", &oldest, "approved by human"]);
    assert!(pin.status.success(), "{}", stderr(&pin));

    let before = db.json(&["list", "--json"]);
    let flags = ["prune", "--older-than", "1s", "--keep-checkpoints", "1"];
    let dry = db.json(&[&flags[..], &["--dry-run", "--json"]].concat());
    assert_eq!(dry["report"]["dry_run"], true);
    assert_eq!(dry["report"]["workflows"], 6);
    assert!(dry["report"]["checkpoints"].as_u64().unwrap() > 6);
    assert!(dry["report"]["bytes"].as_u64().unwrap() > 0);
    // Ages in whole seconds, under keys that say so (not serde's {"secs", "nanos"}).
    assert_eq!(
        dry["policy"],
        serde_json::json!({
            "keep_last": 1,
            "keep_younger_than_secs": null,
            "delete_finished_older_than_secs": 1,
        })
    );
    assert_eq!(db.json(&["list", "--json"]), before);
    let table = stdout(&db.run(&[&flags[..], &["--dry-run"]].concat()));
    assert!(table.contains("would delete (dry run)"), "{table}");
    assert!(table.contains("WORKFLOWS  CHECKPOINTS  BYTES"), "{table}");

    // Without --yes and without a terminal: what would go, then refused; nothing goes.
    let refused = db.run(&flags);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).starts_with("would delete: completed or failed workflows"),
        "{}",
        stdout(&refused)
    );
    assert!(
        stderr(&refused).contains("not pruning: stdin is not a terminal; pass --yes"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(db.json(&["list", "--json"]), before);

    let real = db.json(&[&flags[..], &["--yes", "--json"]].concat());
    assert_eq!(real["report"]["dry_run"], false);
    for key in ["workflows", "checkpoints", "bytes"] {
        assert_eq!(real["report"][key], dry["report"][key], "{key}");
    }
    let after = db.json(&["list", "--json"]);
    let rows = after.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for r in rows {
        let expected = if r["id"] == id { 2 } else { 1 };
        assert!(r["checkpoints"].as_u64().unwrap() <= expected, "{r}");
    }
    // The pinned checkpoint and the newest one stay.
    let (_, kept) = {
        let c = db.json(&["checkpoints", id, "--json"]);
        (c.clone(), c["checkpoints"].as_array().unwrap().clone())
    };
    assert_eq!(
        ids(&kept),
        vec![ids(&checkpoints)[0].clone(), oldest.clone()]
    );
    assert_eq!(kept[1]["pinned"], "approved by human");

    // Everything is younger than a day: nothing goes.
    let young = db.json(&[
        "prune",
        "--keep-checkpoints",
        "0",
        "--keep-younger-than",
        "1d",
        "--yes",
        "--json",
    ]);
    assert_eq!(young["report"]["checkpoints"], 0);
    assert_eq!(young["policy"]["keep_younger_than_secs"], 86_400);
    assert_eq!(
        young["policy"]["delete_finished_older_than_secs"],
        Value::Null
    );

    // Keeping no checkpoint, with no age to keep the recent ones, would delete every
    // unpinned checkpoint, running workflows' included: a bad argument, nothing goes.
    let counts = db.json(&["list", "--json"]);
    for args in [
        vec!["prune", "--keep-checkpoints", "0", "--yes"],
        vec!["prune", "--keep-checkpoints", "0", "--dry-run"],
    ] {
        let out = db.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with("error: --keep-checkpoints 0 would delete every unpinned"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(db.json(&["list", "--json"]), counts);

    // Ages clap cannot read and a prune without any rule are bad arguments too.
    // (tui/README.md promises exit code 2 for every bad argument).
    for args in [
        vec!["prune", "--older-than", "soon", "--yes"],
        vec!["prune", "--keep-younger-than", "3y", "--dry-run"],
        vec!["prune", "--dry-run"],
        vec!["demo", "--count", "0"],
    ] {
        let out = db.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error: "), "{args:?}");
    }
    assert_eq!(db.json(&["list", "--json"]), counts);
}

#[test]
fn prune_says_a_deleted_workflow_takes_its_pinned_checkpoints() {
    // A pin keeps a checkpoint from the checkpoint rules, not from --older-than: the
    // preview must not promise that the pinned checkpoint of a finished workflow stays.
    let db = Db::demo();
    let list = db.json(&["list", "--status", "completed", "--json"]);
    let finished = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["checkpoints"].as_u64().unwrap() >= 1)
        .unwrap()
        .clone();
    let id = finished["id"].as_str().unwrap();
    let checkpoints = db.json(&["checkpoints", id, "--json"]);
    let pinned = checkpoints["checkpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pin = db.run(&["pin", &pinned, "approved by human"]);
    assert!(pin.status.success(), "{}", stderr(&pin));

    let preview = stdout(&db.run(&["prune", "--older-than", "1s", "--dry-run"]));
    assert!(!preview.contains("pinned checkpoints stay"), "{preview}");
    assert!(
        preview.contains(
            "pinned checkpoints of the workflows that stay are kept; a deleted workflow \
             takes all its checkpoints, pinned ones too"
        ),
        "{preview}"
    );
    let pruned = db.run(&["prune", "--older-than", "1s", "--yes"]);
    assert!(pruned.status.success(), "{}", stderr(&pruned));
    assert!(
        stdout(&pruned).contains("a deleted workflow takes all its checkpoints, pinned ones too"),
        "{}",
        stdout(&pruned)
    );
    // And so it did: the workflow and its pinned checkpoint are gone.
    let after = db.json(&["list", "--json"]);
    assert!(after.as_array().unwrap().iter().all(|r| r["id"] != id));
    assert!(!db.run(&["checkpoints", id]).status.success());

    // Without --older-than nothing deletes a pin, and the preview says so plainly.
    let rules = stdout(&db.run(&["prune", "--keep-checkpoints", "1", "--dry-run"]));
    assert!(rules.contains("; pinned checkpoints are kept"), "{rules}");
    assert!(!rules.contains("deleted workflow"), "{rules}");
}

#[test]
fn pin_unpin_and_totals() {
    let db = Db::demo();
    let (row, checkpoints) = active_with_checkpoints(&db);
    let id = row["id"].as_str().unwrap();
    let newest = checkpoints[0]["id"].as_str().unwrap();
    assert_eq!(checkpoints[0]["pinned"], Value::Null);

    // Unpinning a checkpoint that has no pin changes nothing, and says so.
    let unpin = db.run(&["unpin", newest]);
    assert!(unpin.status.success(), "{}", stderr(&unpin));
    assert_eq!(
        stdout(&unpin),
        format!("checkpoint {newest} was not pinned; nothing changed\n")
    );

    let pin = db.run(&["pin", newest, "before tool call"]);
    assert!(pin.status.success(), "{}", stderr(&pin));
    assert_eq!(
        stdout(&pin),
        format!("pinned checkpoint {newest}: before tool call\n")
    );
    // The same pin again: nothing to do; another label replaces it, and says which.
    let again = db.run(&["pin", newest, "before tool call"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stdout(&again),
        format!("checkpoint {newest} is already pinned: before tool call; nothing changed\n")
    );
    let relabel = db.run(&["pin", newest, "approved"]);
    assert_eq!(
        stdout(&relabel),
        format!("pinned checkpoint {newest}: approved (was: before tool call)\n")
    );
    let pin = db.run(&["pin", newest, "before tool call"]);
    assert!(pin.status.success(), "{}", stderr(&pin));
    let after = db.json(&["checkpoints", id, "--json"]);
    assert_eq!(after["checkpoints"][0]["pinned"], "before tool call");
    assert_eq!(after["usage"]["pinned"], 1);
    let table = stdout(&db.run(&["checkpoints", id]));
    assert!(table.contains("before tool call"), "{table}");
    assert!(table.contains("1 pinned"), "{table}");

    let read_only = db.run(&["--read-only", "unpin", newest]);
    assert!(stderr(&read_only).contains("read-only"));
    assert_eq!(
        db.json(&["checkpoints", id, "--json"])["usage"]["pinned"],
        1
    );

    let unpin = db.run(&["unpin", newest]);
    assert!(unpin.status.success(), "{}", stderr(&unpin));
    assert_eq!(
        stdout(&unpin),
        format!("unpinned checkpoint {newest} (was pinned: before tool call)\n")
    );
    let after = db.json(&["checkpoints", id, "--json"]);
    assert_eq!(after["checkpoints"][0]["pinned"], Value::Null);
    assert_eq!(after["usage"]["pinned"], 0);

    let nil = "00000000-0000-0000-0000-000000000000";
    for args in [vec!["pin", nil, "x"], vec!["unpin", nil]] {
        let unknown = db.run(&args);
        assert_eq!(unknown.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&unknown).contains("not found"),
            "{}",
            stderr(&unknown)
        );
    }
    let bad = db.run(&["unpin", "nope"]);
    assert!(stderr(&bad).contains("is not a uuid"));
}

#[test]
fn fork_shows_lineage_both_ways() {
    let db = Db::demo();
    let row = failed_workflow(&db);
    let id = row["id"].as_str().unwrap();
    let checkpoints = db.json(&["checkpoints", id, "--json"]);
    let oldest = checkpoints["checkpoints"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let read_only = db.run(&["--read-only", "fork", &oldest, "retry-1"]);
    assert!(stderr(&read_only).contains("read-only"));
    assert!(!db.run(&["show", "retry-1"]).status.success());

    let fork = db.run(&["fork", &oldest, "retry-1"]);
    assert!(fork.status.success(), "{}", stderr(&fork));
    let forked = db.json(&["show", "retry-1", "--json"]);
    assert_eq!(forked["status"], "pending");
    assert_eq!(forked["lineage"]["forked_from"]["workflow_state_id"], id);
    assert_eq!(
        forked["lineage"]["forked_from"]["checkpoint_id"],
        oldest.as_str()
    );
    let source = db.json(&["show", id, "--json"]);
    let forks = source["lineage"]["forks"].as_array().unwrap();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0][0], forked["id"]);
    assert_eq!(forks[0][1], oldest.as_str());

    let text = stdout(&db.run(&["show", "retry-1"]));
    let source_name = row["workflow_id"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "lineage:      forked from {source_name} ({id}) at checkpoint {oldest}"
        )),
        "{text}"
    );
    let text = stdout(&db.run(&["show", id]));
    assert!(text.contains("lineage:      fork retry-1 ("), "{text}");
    assert!(text.contains("checkpoints:  "), "{text}");
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
fn export_from_one_database_and_import_into_another() {
    let source = Db::demo();
    let row = failed_workflow(&source);
    let id = row["id"].as_str().unwrap();
    let checkpoints = source.json(&["checkpoints", id, "--json"]);
    let newest = checkpoints["checkpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(source.run(&["pin", &newest, "keep me"]).status.success());

    // To stdout, or to a file: the same bundle.
    let bundle = source.json(&["export", row["workflow_id"].as_str().unwrap()]);
    let file = source._dir.path().join("bundle.json");
    let out = source.run(&[
        "--read-only",
        "export",
        id,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("exported workflow"));
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written, bundle);
    assert_eq!(bundle["workflow"]["id"], id);

    // An existing file is refused, left as it is, unless --force replaces it; the folder
    // holds no temporary file afterwards.
    let to_file = |extra: &[&str]| {
        let mut args = vec!["export", id, "--output", file.to_str().unwrap()];
        args.extend(extra);
        source.run(&args)
    };
    std::fs::write(&file, "notes I did not mean to lose\n").unwrap();
    let refused = to_file(&[]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        format!(
            "error: {} already exists; pass --force to overwrite it (nothing was written)\n",
            file.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "notes I did not mean to lose\n"
    );
    let forced = to_file(&["--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written, bundle);
    // A failed export (no such workflow) writes nothing, forced or not.
    let nothing = source._dir.path().join("nothing.json");
    let failed = source.run(&[
        "export",
        "no-such-workflow",
        "--output",
        nothing.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(!nothing.exists());
    let mut left: Vec<_> = std::fs::read_dir(source._dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with("workflows.db"))
        .collect();
    left.sort();
    assert_eq!(left, ["bundle.json"]);
    // --force means nothing without --output: a bad argument.
    let alone = source.run(&["export", id, "--force"]);
    assert_eq!(alone.status.code(), Some(2), "{}", stderr(&alone));

    let target = Db::new();
    let read_only = target.run(&["--read-only", "import", file.to_str().unwrap()]);
    assert!(stderr(&read_only).contains("read-only"));
    let import = target.run(&["import", file.to_str().unwrap()]);
    assert!(import.status.success(), "{}", stderr(&import));
    assert_eq!(
        target.json(&["show", id, "--json"]),
        source.json(&["show", id, "--json"])
    );
    assert_eq!(
        target.json(&["checkpoints", id, "--json"]),
        source.json(&["checkpoints", id, "--json"])
    );
    assert_eq!(target.json(&["export", id]), bundle);

    // The same ids twice: refused. With new ids (from stdin): a second copy.
    let again = target.run(&["import", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let copy = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .arg("--database-url")
        .arg(&target.path)
        .args(["import", "-", "--new-ids"])
        .env_remove("DATABASE_URL")
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(copy.status.success(), "{}", stderr(&copy));
    let rows = target.json(&["list", "--json"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let copy_row = rows.iter().find(|r| r["id"] != id).unwrap();
    assert_eq!(copy_row["workflow_id"], row["workflow_id"]);
    let copied = target.json(&["checkpoints", copy_row["id"].as_str().unwrap(), "--json"]);
    assert_eq!(copied["usage"]["count"], checkpoints["usage"]["count"]);
    assert_eq!(copied["usage"]["bytes"], checkpoints["usage"]["bytes"]);
    assert_eq!(copied["usage"]["pinned"], 1);

    let not_a_bundle = target.run(&["import", target.path.to_str().unwrap()]);
    assert!(!not_a_bundle.status.success());
    let garbage = source._dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"format\": 1}").unwrap();
    let out = target.run(&["import", garbage.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("is not a workflow bundle"),
        "{}",
        stderr(&out)
    );
    let missing = target.run(&["import", "/no/such/bundle.json"]);
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );
    // `-` is stdin, and said so ("- is not a workflow bundle" named nothing).
    let stdin = target.run(&["import", "-"]);
    assert_eq!(stdin.status.code(), Some(1));
    assert!(
        stderr(&stdin).starts_with("error: stdin is not a workflow bundle: "),
        "{}",
        stderr(&stdin)
    );
}

/// Sets one of the fields that say who a workflow is (`workflow_id`, `workflow_name`,
/// `user_id`) in an exported bundle: in the workflow and in every checkpoint's snapshot,
/// which import checks are of that same workflow.
fn rename(bundle: &mut Value, field: &str, value: &str) {
    bundle["workflow"][field] = value.into();
    for checkpoint in bundle["checkpoints"].as_array_mut().unwrap() {
        checkpoint["checkpoint"]["snapshot"][field] = value.into();
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
fn a_diff_of_checkpoints_of_two_workflows_says_so_naming_both() {
    let db = Db::demo();
    let failed = failed_workflow(&db);
    let completed = db.json(&["list", "--status", "completed", "--json"])[0].clone();
    let first_checkpoint = |row: &Value| {
        db.json(&["checkpoints", row["id"].as_str().unwrap(), "--json"])["checkpoints"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, b) = (first_checkpoint(&failed), first_checkpoint(&completed));
    let out = db.run(&["diff", &a, &b]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let second = text.lines().nth(1).unwrap();
    assert_eq!(
        second,
        format!(
            "warning: checkpoints of different workflows: {} ({}) -> {} ({})",
            failed["workflow_id"].as_str().unwrap(),
            failed["id"].as_str().unwrap(),
            completed["workflow_id"].as_str().unwrap(),
            completed["id"].as_str().unwrap(),
        ),
        "{text}"
    );
    let json = db.json(&["diff", &a, &b, "--json"]);
    assert_eq!(json["from_workflow"]["id"], failed["id"]);
    assert_eq!(json["to_workflow"]["workflow_id"], completed["workflow_id"]);
    // Two checkpoints of one workflow, or one and its workflow's current state: no warning.
    let same = stdout(&db.run(&["diff", &a, "current"]));
    assert!(!same.contains("different workflows"), "{same}");
}

#[test]
fn a_checkpoint_uuid_for_a_workflow_or_the_other_way_round_is_said_so() {
    let db = Db::demo();
    let row = failed_workflow(&db);
    let (workflow, workflow_id) = (
        row["id"].as_str().unwrap(),
        row["workflow_id"].as_str().unwrap(),
    );
    let checkpoint = db.json(&["checkpoints", workflow, "--json"])["checkpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for command in ["show", "checkpoints", "export"] {
        let out = db.run(&[command, &checkpoint]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert_eq!(
            stderr(&out),
            format!(
                "error: {checkpoint} is a checkpoint of workflow {workflow_id} ({workflow}), \
                 not a workflow; did you mean `wfadmin {command} {workflow}`, or `wfadmin \
                 diff {checkpoint} current` (the checkpoint against its workflow now)?\n"
            )
        );
    }
    let said = format!(
        "error: {workflow} is a workflow ({workflow_id}), not a checkpoint; did you mean \
         `wfadmin checkpoints {workflow}`, which lists its checkpoints?\n"
    );
    for args in [
        vec!["restore", workflow, "--yes"],
        vec!["pin", workflow, "label"],
        vec!["unpin", workflow],
        vec!["fork", workflow, "new-id"],
        vec!["diff", workflow, "current"],
        vec!["diff", &checkpoint, workflow],
    ] {
        let out = db.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&out), said, "{args:?}");
    }
    // A uuid of neither: not found, as before.
    let nothing = "00000000-0000-0000-0000-000000000000";
    assert_eq!(
        stderr(&db.run(&["restore", nothing, "--yes"])),
        format!("error: not found: checkpoint {nothing}\n")
    );
    assert_eq!(
        stderr(&db.run(&["show", nothing])),
        format!("error: no workflow with id or workflow_id \"{nothing}\"\n")
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

#[test]
fn demo_fills_only_an_empty_database_unless_forced() {
    let db = Db::demo();
    let before = db.json(&["list", "--limit", "100", "--json"]);
    // A second run: refused, nothing added (it added a second set with the same
    // workflow_ids).
    let again = db.run(&["demo", "--count", "5"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again),
        format!(
            "error: {0} already holds 12 workflows; demo only fills an empty database \
             (nothing was added): browse it with `wfadmin --database-url {0}`, or pass \
             --force to add 5 sample workflows anyway\n",
            db.path.display()
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

#[test]
fn read_only_refuses_writes_and_never_creates_a_database() {
    let db = Db::new();
    for args in [
        vec!["--read-only", "demo"],
        vec!["--read-only", "migrate"],
        vec!["--read-only", "prune", "--older-than", "1d"],
        vec!["--read-only", "pin", "x", "label"],
        vec!["--read-only", "unpin", "x"],
        vec!["--read-only", "fork", "x", "wf"],
        vec!["--read-only", "import", "-"],
    ] {
        let out = db.run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    }
    let out = db.run(&["--read-only", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!db.path.exists());
}

#[test]
fn reads_of_a_database_that_is_not_there_fail_and_create_nothing() {
    // A mistyped path: not an empty database that says "(no workflows)".
    let db = Db::new();
    let shown = db.path.display().to_string();
    for args in [
        vec!["list"],
        vec!["show", "wf-1"],
        vec!["checkpoints", "wf-1"],
        vec!["prune", "--older-than", "1d", "--dry-run"],
        vec!["export", "wf-1"],
        // The UI, too, before it takes the terminal.
        vec![],
    ] {
        let out = db.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "error: SQLite database {shown} does not exist (a typo? `wfadmin migrate` \
                 creates it)\n"
            ),
            "{args:?}"
        );
        assert!(!db.path.exists(), "{args:?} created it");
    }
    // No DATABASE_URL: ./workflows.db of the folder it runs in is not created either.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .arg("list")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("./workflows.db does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("workflows.db").exists());

    // A file without the tables (an empty one): said so, and left without them.
    std::fs::write(&db.path, b"").unwrap();
    let out = db.run(&["list"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        format!("error: no workflow tables in {shown}; run `wfadmin migrate` to create them\n")
    );
    assert!(!db.run(&["list"]).status.success(), "still none");
    // What creates them: demo, import, migrate.
    assert!(db.run(&["migrate"]).status.success());
    assert_eq!(
        stdout(&db.run(&["list"])),
        "STATUS  WORKFLOW_ID  NAME  USER  STARTED (UTC)  UPDATED (UTC)  STEPS  CKPTS  LEASE  ID\n\
         (no workflows)\n"
    );
}

#[test]
fn bad_urls_fail_clearly_without_showing_the_password() {
    for url in [
        "postgres://app:hunter2@localhost:notaport/db",
        "mysql://app:hunter2@localhost/db",
        "postgres://app:hunter2@127.0.0.1:1/db",
        "/no/such/folder/w.db",
        // A Postgres URL missing its `//`: not a SQLite file to report (or create, for
        // `demo`) under its own name, password and all.
        "postgres:/app:hunter2@db.internal/prod",
        "postgresql:app:hunter2@127.0.0.1",
        "app:hunter2@127.0.0.1/db",
    ] {
        let dir = tempfile::tempdir().unwrap();
        for command in ["list", "demo"] {
            let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
                .args(["--database-url", url, command])
                .env_remove("DATABASE_URL")
                .current_dir(dir.path())
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{url}: {err}");
            assert!(err.starts_with("error: "), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
            assert!(!err.contains("panicked"), "{url}: {err}");
        }
        let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(created.is_empty(), "{url}: created {created:?}");
    }
}

#[test]
fn a_password_in_the_query_is_hidden_and_the_message_still_reads() {
    // The store masks it (`?password=***`) and says why after ": "; wfadmin must not
    // redact that again, which took the ": " for part of the password.
    let server = backend_suite::configured();
    let user = server
        .user_info
        .as_ref()
        .map(|info| format!("{info}@"))
        .unwrap_or_default();
    let url = format!(
        "{}://{user}{}/wfadmin_no_such_database?password=hunter2",
        server.scheme, server.server
    );
    let shown = llm_orchestrator_state::redact_url(&url);
    assert!(shown.ends_with("?password=***"), "{shown}");
    for command in ["list", "migrate"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
            .args(["--database-url", &url, command])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with(&format!(
                "error: configuration error: cannot connect to {shown}: "
            )),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}

#[test]
fn the_ui_without_a_terminal_says_to_use_a_subcommand() {
    // `wfadmin > out.txt`, `wfadmin | wc -c`, cron: stdin is nothing and stdout a pipe.
    // No escape codes into the pipe, no blank wait, no "No such device or address".
    let db = Db::demo();
    for args in [vec![], vec!["tui"]] {
        let out = db.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(
            stderr(&out),
            "error: the interactive UI needs a terminal (stdin and stdout are not one); in \
             scripts use a subcommand such as `wfadmin list` (`wfadmin --help` lists them)\n",
            "{args:?}"
        );
    }
    // `demo --open` refuses before it writes anything.
    let fresh = Db::new();
    let out = fresh.run(&["demo", "--open"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs a terminal"),
        "{}",
        stderr(&out)
    );
    assert!(!fresh.path.exists(), "nothing created");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_opens_the_tables_an_application_keeps_in_its_own_schema() {
    use backend_suite::Backend;
    use llm_orchestrator_state::{StateStore, WorkflowState};

    // The application's store: StateStoreBuilder::postgres_schema.
    let store = backend_suite::open(Backend::Postgres).await;
    let (url, schema) = store.postgres_location().unwrap();
    let state = WorkflowState::new("in-its-schema", "Answer", None, serde_json::json!({}));
    store.save_workflow_state(&state).await.unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wfadmin"))
            .args(["--database-url", url])
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("WFADMIN_POSTGRES_SCHEMA")
            .output()
            .unwrap()
    };

    let out = run(&["--postgres-schema", schema, "--read-only", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["workflow_id"], "in-its-schema", "{rows}");
    let out = run(&["--postgres-schema", schema, "show", "in-its-schema"]);
    assert!(
        stdout(&out).contains(&state.id.to_string()),
        "{}",
        stderr(&out)
    );
    // The environment names it as well.
    let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .args(["--database-url", url, "--read-only", "list", "--json"])
        .env("WFADMIN_POSTGRES_SCHEMA", schema)
        .output()
        .unwrap();
    assert!(stdout(&out).contains("in-its-schema"), "{}", stderr(&out));

    // A schema that is not there (a typo): said so in wfadmin's words (not the builder's
    // "create_postgres_schema is off"), with how to create it, read-only or not, and
    // nothing created. `import` does not create it either.
    let missing = format!("{schema}_typo");
    let shown = llm_orchestrator_state::redact_url(url);
    let bundle = tempfile::NamedTempFile::new().unwrap();
    let bundle_path = bundle.path().to_str().unwrap();
    for (args, after) in [
        (vec!["list"], ""),
        (vec!["--read-only", "list"], " without --read-only"),
        (vec!["import", bundle_path], ""),
    ] {
        let mut all = vec!["--postgres-schema", &missing];
        all.extend(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "error: the Postgres schema \"{missing}\" does not exist in {shown}; check the \
                 name, or create it with `wfadmin --postgres-schema {missing} migrate`{after}\n"
            ),
            "{all:?}"
        );
    }
    let schema_exists = async |name: &str| {
        use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
        !store
            .connection()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT nspname FROM pg_namespace WHERE nspname = $1",
                [name.into()],
            ))
            .await
            .unwrap()
            .is_empty()
    };
    assert!(!schema_exists(&missing).await, "the schema was not created");
    // `migrate status` only reports: it says the schema is missing and creates none.
    let out = run(&["--postgres-schema", &missing, "migrate", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: the Postgres schema \"{missing}\" does not exist in {shown}; check the \
             name, or create it with `wfadmin --postgres-schema {missing} migrate`\n"
        )
    );
    assert!(
        !schema_exists(&missing).await,
        "migrate status created the schema"
    );
    // `migrate` creates it, and then it opens.
    let out = run(&["--postgres-schema", &missing, "migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[
        "--postgres-schema",
        &missing,
        "--read-only",
        "list",
        "--json",
    ]);
    assert_eq!(stdout(&out).trim(), "[]", "{}", stderr(&out));
    let dropped = {
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        store
            .connection()
            .execute_unprepared(&format!("DROP SCHEMA \"{missing}\" CASCADE"))
            .await
    };
    dropped.unwrap();

    // `demo` is there to make a database to try things on: like `migrate`, it creates the
    // schema it is given, then its tables and the sample workflows.
    let sample = format!("{schema}_demo");
    let out = run(&["--postgres-schema", &sample, "demo", "--count", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.starts_with("created 3 sample workflows with "),
        "{said}"
    );
    assert!(
        said.contains(&format!(" in {shown} schema {sample}\n")),
        "{said}"
    );
    let out = run(&["--postgres-schema", &sample, "list", "--json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{}", stderr(&out));
    let dropped = {
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        store
            .connection()
            .execute_unprepared(&format!("DROP SCHEMA \"{sample}\" CASCADE"))
            .await
    };
    dropped.unwrap();

    // A schema without the store's tables (another application's): reads, and the UI,
    // say so and create none there.
    let empty = format!("{schema}_empty");
    let sql = |sql: String| {
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        let connection = store.connection().clone();
        async move { connection.execute_unprepared(&sql).await.unwrap() }
    };
    sql(format!("CREATE SCHEMA \"{empty}\"")).await;
    for args in [vec!["list"], vec!["show", "in-its-schema"], vec![]] {
        let mut all = vec!["--postgres-schema", &empty];
        all.extend(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: no workflow tables in postgres://"),
            "{err}"
        );
        assert!(
            err.ends_with(&format!(
                " schema {empty}; run `wfadmin migrate` to create them\n"
            )),
            "{err}"
        );
    }
    let tables = {
        use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
        store
            .connection()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT tablename FROM pg_tables WHERE schemaname = $1",
                [empty.clone().into()],
            ))
            .await
            .unwrap()
    };
    assert!(tables.is_empty(), "no tables were created");
    sql(format!("DROP SCHEMA \"{empty}\" CASCADE")).await;

    // A SQLite database has no schemas; an empty variable names none.
    let db = Db::new();
    let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .args(["--database-url"])
        .arg(&db.path)
        .args(["migrate"])
        .env("WFADMIN_POSTGRES_SCHEMA", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = Db::new();
    let out = wfadmin(&db.path, &["--postgres-schema", "app", "list"]);
    let invalid = run(&["--postgres-schema", "tenant-a", "list"]);
    assert!(
        stderr(&invalid).contains("invalid Postgres schema name \"tenant-a\""),
        "{}",
        stderr(&invalid)
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--postgres-schema (or WFADMIN_POSTGRES_SCHEMA) is for a Postgres"),
        "{}",
        stderr(&out)
    );
    assert!(!db.path.exists(), "nothing was created");
}

/// Control characters a terminal obeys: ESC, BEL, CR, backspace, DEL, the C1 controls.
fn obeyed_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect()
}

#[test]
fn stored_escape_sequences_reach_the_terminal_only_escaped() {
    // A failed workflow whose strings came from an LLM or a tool: they retitle the
    // terminal, colour it, clear the screen, and one is a C1 CSI (0x9b).
    let db = Db::demo();
    let row = failed_workflow(&db);
    let mut bundle = db.json(&["export", row["id"].as_str().unwrap()]);
    rename(&mut bundle, "workflow_id", "wf\u{1b}[2Jid");
    rename(
        &mut bundle,
        "user_id",
        "evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED",
    );
    let workflow = &mut bundle["workflow"];
    workflow["error"] = "boom\r\u{1b}[2J\nsecond line\u{9b}1m".into();
    workflow["context"]["key\u{1b}[5m"] = "value\u{7f}".into();
    let step = workflow["steps"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    step["error"] = "step\u{1b}[5m error\nline two\r".into();
    let file = db._dir.path().join("hostile.json");
    std::fs::write(&file, bundle.to_string()).unwrap();
    let out = db.run(&["import", file.to_str().unwrap(), "--new-ids"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let shown = db.json(&["show", "wf\u{1b}[2Jid", "--json"]);
    let id = shown["id"].as_str().unwrap().to_owned();
    let checkpoints = db.json(&["checkpoints", &id, "--json"]);
    let oldest = checkpoints["checkpoints"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let runs = [
        db.run(&["list"]),
        db.run(&["show", &id]),
        db.run(&["checkpoints", &id]),
        db.run(&["diff", &oldest, "current"]),
        // Prints the plan, then refuses: no terminal to ask on.
        db.run(&["restore", &oldest]),
        db.run(&["show", "no\u{1b}]0;such\u{7}"]),
    ];
    let all: String = runs.iter().map(|out| stdout(out) + &stderr(out)).collect();
    assert_eq!(obeyed_controls(&all), Vec::<char>::new(), "{all}");
    for escaped in [
        r"evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED",
        r"wf\u{1b}[2Jid",
        r"boom\r\u{1b}[2J",
        r"second line\u{9b}1m",
        r"step\u{1b}[5m error",
        r"line two\r",
        // Context keys are quoted as JSON (`context["key\u001b[5m"]`).
        r"key\u001b[5m",
    ] {
        assert!(all.contains(escaped), "{escaped} not in {all}");
    }
    let plan = stdout(&runs[4]);
    assert!(plan.contains(r"status: failed -> "), "{plan}");
    assert!(
        plan.contains(r"boom\r\u{1b}[2J\nsecond line\u{9b}1m -> "),
        "{plan}"
    );

    // JSON stays JSON, escaped its own way, and reads back as stored.
    let json = db.run(&["show", &id, "--json"]);
    assert_eq!(obeyed_controls(&stdout(&json)), Vec::<char>::new());
    let value: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["user_id"], "evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED");
    assert_eq!(value["context"]["key\u{1b}[5m"], "value\u{7f}");
}

#[test]
fn counts_of_one_are_singular() {
    let db = Db::new();
    let out = db.run(&["demo", "--count", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("created 1 sample workflow with "),
        "{text}"
    );
}

#[test]
fn read_only_on_an_empty_database_says_to_migrate() {
    let db = Db::new();
    std::fs::File::create(&db.path).unwrap();
    let out = db.run(&["--read-only", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let shown = db.path.display();
    assert_eq!(
        stderr(&out),
        format!(
            "error: no workflow tables in {shown}; run `wfadmin migrate` without --read-only \
             to create them\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_of_a_workflow_a_replica_holds_in_a_transaction_says_so_instead_of_hanging() {
    use backend_suite::{Backend, step, workflow};
    use llm_orchestrator_state::{StateStore, StepStatus};

    let store = backend_suite::open(Backend::Postgres).await;
    let (url, schema) = store.postgres_location().unwrap();
    let mut state = workflow("held-by-a-replica");
    state.mark_running();
    let first = store
        .record_step(
            &mut state,
            step("retrieve", StepStatus::Completed, 1.into()),
        )
        .await
        .unwrap();
    store
        .record_step(&mut state, step("prompt", StepStatus::Completed, 2.into()))
        .await
        .unwrap();
    // A replica is inside a transaction that wrote the workflow (a step under way, or
    // a session stuck in `BEGIN`).
    let replica = store.reopen().await.unwrap();
    let held = replica.begin().await.unwrap();
    held.save_workflow_state(&state).await.unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .args(["--database-url", url, "--postgres-schema", schema])
        .args(["restore", &first.id.to_string(), "--yes"])
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("wfadmin restore waited on the held workflow for a minute without a word");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("conflict: gave up waiting for a lock another transaction holds"),
        "{err}"
    );

    held.rollback().await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
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
