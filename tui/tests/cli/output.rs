//! Output: no terminal, closed pipes, escape sequences, singular counts.

use super::*;

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
        db.run(&["rollback", &oldest]),
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
