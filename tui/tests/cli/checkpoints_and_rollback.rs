//! `checkpoints`, `diff` and `rollback`: plans, questions, leases, damaged rows, checkpoints that hold no state.

use super::*;

#[test]
fn checkpoints_diff_and_rollback() {
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
    let refused = db.run(&["rollback", &oldest]);
    assert!(!refused.status.success());
    assert!(stdout(&refused).contains("status: failed -> running"));
    assert_eq!(db.json(&["show", id, "--json"])["status"], "failed");

    let read_only = db.run(&["--read-only", "rollback", &oldest, "--yes"]);
    assert!(!read_only.status.success());
    assert!(stderr(&read_only).contains("read-only"));
    assert_eq!(db.json(&["show", id, "--json"])["status"], "failed");

    let done = db.run(&["rollback", &oldest, "--yes"]);
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

    let bad = db.run(&["rollback", "not-a-uuid", "--yes"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("is not a uuid"));
    let unknown = db.run(&["rollback", "00000000-0000-0000-0000-000000000000", "--yes"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_and_rollback_repair_a_workflow_whose_own_row_is_unreadable() {
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

    // The rollback plan says what is wrong and what the rollback does about it.
    let refused = db.run(&["rollback", &oldest]);
    assert!(!refused.status.success());
    let plan = stdout(&refused);
    assert!(plan.contains("stored state cannot be read"), "{plan}");
    assert!(plan.contains("which repairs it"), "{plan}");
    let done = db.run(&["rollback", &oldest, "--yes"]);
    assert!(done.status.success(), "{}", stderr(&done));
    let after = db.json(&["show", &id, "--json"]);
    assert_eq!(after["status"], "running");
}

/// A checkpoint whose snapshot is the orchestrator's own JSON: listed, diffed, exported
/// and imported as written; `rollback` and `fork` say why they cannot use it, exit 1 and
/// change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_of_the_orchestrators_own_json_is_shown_but_not_rolled_back() {
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
        vec!["rollback", &own_id, "--yes"],
        vec!["rollback", &own_id, "--yes", "--override-lease"],
    ] {
        let refused = db.run(&args);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        let plan = stdout(&refused);
        assert!(plan.starts_with("Cannot roll back workflow "), "{plan}");
        assert!(plan.contains("holds no state of workflow state"), "{plan}");
        assert!(plan.contains("not a workflow state"), "{plan}");
        assert_eq!(
            stderr(&refused),
            "error: not rolling back: the checkpoint holds no state of this workflow; nothing \
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
fn rollback_warns_first_when_a_live_replica_holds_the_lease() {
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
    let refused = db.run(&["rollback", checkpoint]);
    assert!(!refused.status.success());
    let text = stdout(&refused);
    assert!(
        text.starts_with("WARNING: worker-1 holds this workflow's lease until 20"),
        "{text}"
    );
    assert!(
        text.lines().next().unwrap().ends_with(
            " UTC: it is running it; rolling back ends its lease and refuses its next write"
        ),
        "{text}"
    );

    // Nobody holds the failed one's: the plan starts with what changes.
    let failed = failed_workflow(&db);
    let checkpoints = db.json(&["checkpoints", failed["id"].as_str().unwrap(), "--json"]);
    let checkpoint = checkpoints["checkpoints"][0]["id"].as_str().unwrap();
    let text = stdout(&db.run(&["rollback", checkpoint]));
    assert!(text.starts_with("Roll back workflow "), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
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
        vec!["rollback", workflow, "--yes"],
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
        stderr(&db.run(&["rollback", nothing, "--yes"])),
        format!("error: not found: checkpoint {nothing}\n")
    );
    assert_eq!(
        stderr(&db.run(&["show", nothing])),
        format!("error: no workflow with id or workflow_id \"{nothing}\"\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_of_a_workflow_a_replica_holds_in_a_transaction_says_so_instead_of_hanging() {
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
        .args(["rollback", &first.id.to_string(), "--yes"])
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
            panic!("wfadmin rollback waited on the held workflow for a minute without a word");
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
