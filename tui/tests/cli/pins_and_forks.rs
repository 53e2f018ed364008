//! `pin`, `unpin` and `fork`.

use super::*;

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
