//! `prune`: the preview, the question, what goes and what pins keep.

use super::*;

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
