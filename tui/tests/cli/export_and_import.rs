//! `export` and `import`.

use super::*;

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
