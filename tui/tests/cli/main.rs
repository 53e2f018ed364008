//! The non-interactive subcommands, run as a user would: the real binary on a temp
//! SQLite file (and once on a Postgres schema). JSON output is parsed back; bad input
//! must give a clear message, a non-zero exit, and change nothing.
//!
//! One file per subcommand or concern; the helpers here run the binary on a database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod checkpoints_and_rollback;
mod databases;
mod demo_and_migrate;
mod export_and_import;
mod list_and_show;
mod output;
mod pins_and_forks;
mod prune;

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

/// Sets one of the fields that say who a workflow is (`workflow_id`, `workflow_name`,
/// `user_id`) in an exported bundle: in the workflow and in every checkpoint's snapshot,
/// which import checks are of that same workflow.
fn rename(bundle: &mut Value, field: &str, value: &str) {
    bundle["workflow"][field] = value.into();
    for checkpoint in bundle["checkpoints"].as_array_mut().unwrap() {
        checkpoint["checkpoint"]["snapshot"][field] = value.into();
    }
}
