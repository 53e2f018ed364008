//! Child process of the SQLite-after-errors test: records steps of one workflow on a
//! SQLite file, run under a file-size limit (`ulimit -f`) that makes SQLite's writes fail
//! with an I/O error part-way. Prints `ack <checkpoint id>` for each call that returned
//! Ok and `err <error>` for each that failed, then `done`, and waits for a line on stdin
//! before it closes the store and exits (so another process can try the file while it
//! is still open).
//!
//! `limited_writer <sqlite path> <steps>`

use std::io::{BufRead as _, Write as _};

use llm_orchestrator_state::{StateStore, StateStoreBuilder, StepState, WorkflowState};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("sqlite path");
    let steps: usize = args
        .next()
        .expect("steps")
        .parse()
        .expect("a number of steps");
    let store = StateStoreBuilder::new(path)
        .checkpoint_retention(None)
        .connect()
        .await
        .expect("open store");
    let mut state = WorkflowState::new("limited", "limited writer", None, json!({}));
    let mut out = std::io::stdout();
    for n in 0..steps {
        let mut step = StepState::new(format!("step-{n}"));
        step.mark_completed(json!({ "n": n, "text": "x".repeat(2048) }));
        match store.record_step(&mut state, step).await {
            Ok(checkpoint) => writeln!(out, "ack {}", checkpoint.id).unwrap(),
            Err(err) => writeln!(out, "err {err}").unwrap(),
        }
        out.flush().unwrap();
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let _ = store.close().await;
}
