//! A workflow runs a few steps with a checkpoint after each, its process dies midway, and
//! a fresh process finds it and resumes from the last checkpoint without repeating the
//! finished steps.
//!
//! ```text
//! cargo run -p llm-orchestrator-state --example crash_recovery
//! ```
//!
//! The database is a SQLite file in the system's temp folder (pass another path as the
//! first argument).

use std::process::Command;
use std::time::Duration;

use llm_orchestrator_state::{
    SaveCondition, SqliteStateStore, StateStore, StepState, StepStatus, WorkflowState,
};
use serde_json::{Value, json};

/// The pipeline, in order: a retrieval, a model prompt, a tool call, a summary.
const STEPS: [&str; 4] = ["retrieve", "prompt", "tool_call", "summarise"];
/// The first process "crashes" after finishing this many steps.
const CRASH_AFTER: usize = 2;

/// Stands in for the real work of a step (a vector search, an LLM call, a tool).
fn run_step(step: &str, context: &Value) -> Value {
    let question = context["question"].as_str().unwrap_or_default();
    match step {
        "retrieve" => json!({"documents": ["refund-policy.md", "shipping.md"]}),
        "prompt" => {
            json!({"model": "sim-1", "completion": format!("Answer to {question:?}: call lookup_order")})
        }
        "tool_call" => {
            json!({"tool": "lookup_order", "result": {"order": 1042, "status": "delayed"}})
        }
        _ => json!({"summary": "Order 1042 is delayed; a refund is available after 14 days."}),
    }
}

/// Runs the steps that are not completed yet. Each finished step is recorded with
/// `record_step`: the step, the workflow state and a checkpoint commit together, so a
/// crash never leaves a step done without its checkpoint. A process that recovered the
/// workflow holds its lease (`held`) and writes under it (`*_if`): while a lease is live,
/// the store refuses plain writes, so a replica that stalled past its lease cannot
/// overwrite the new holder's steps. Simulates a crash after `stop_after` steps when
/// given.
async fn run(
    store: &SqliteStateStore,
    state: &mut WorkflowState,
    held: Option<&SaveCondition>,
    stop_after: Option<usize>,
) -> Result<(), Box<dyn std::error::Error>> {
    state.mark_running();
    save(store, state, held).await?;
    let mut done_now = 0;
    for step_id in STEPS {
        if state
            .step(step_id)
            .is_some_and(|step| step.status == StepStatus::Completed)
        {
            println!("  {step_id:<10} already done, skipped");
            continue;
        }
        if stop_after == Some(done_now) {
            println!("  -- process killed before {step_id} --");
            std::process::abort();
        }
        let mut step = StepState::new(step_id);
        step.mark_running();
        step.mark_completed(run_step(step_id, &state.context));
        match held {
            Some(held) => drop(store.record_step_if(state, step, held).await?),
            None => drop(store.record_step(state, step).await?),
        }
        println!("  {step_id:<10} done, checkpointed");
        done_now += 1;
    }
    state.mark_completed();
    save(store, state, held).await?;
    Ok(())
}

/// Saves `state`, under the lease when the process holds one.
async fn save(
    store: &SqliteStateStore,
    state: &WorkflowState,
    held: Option<&SaveCondition>,
) -> Result<(), Box<dyn std::error::Error>> {
    match held {
        Some(held) => drop(store.save_workflow_state_if(state, held).await?),
        None => store.save_workflow_state(state).await?,
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--worker") {
        let path = args.next().ok_or("missing database path")?;
        let store = SqliteStateStore::new(&path).await?;
        let mut state = WorkflowState::new(
            "support-ticket-1042",
            "Answer a support ticket",
            Some("agent-7".into()),
            json!({"question": "Where is my order 1042?"}),
        );
        println!("[worker pid {}] starting {}", std::process::id(), state.id);
        run(&store, &mut state, None, Some(CRASH_AFTER)).await?;
        return Ok(());
    }

    let path = match first {
        // A database of the caller's: never deleted, so it must not exist yet.
        Some(path) if std::path::Path::new(&path).exists() => {
            return Err(format!("{path} exists; give the path of a new database").into());
        }
        Some(path) => path,
        None => {
            let path = std::env::temp_dir()
                .join("llm-orchestrator-state-demo.db")
                .display()
                .to_string();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            path
        }
    };
    println!("database: {path}");

    // First process: runs the workflow and dies midway.
    let status = Command::new(std::env::current_exe()?)
        .args(["--worker", &path])
        .status()?;
    println!("[worker] exited with {status}");

    // A fresh process (this one) starts up and recovers: one call claims the workflows
    // that were running and gives each with its newest checkpoint's state.
    let store = SqliteStateStore::new(&path).await?;
    let recovered = store
        .recover_workflows("demo-replica", Duration::from_secs(60), 100)
        .await?;
    println!(
        "[recovery pid {}] {} workflow(s) to recover",
        std::process::id(),
        recovered.len()
    );
    for recovery in recovered {
        let mut state = recovery.state;
        if let Some(checkpoint) = &recovery.checkpoint {
            println!(
                "  resuming {} from its checkpoint after {:?}",
                state.workflow_id, checkpoint.step_id
            );
        }
        let held = SaveCondition::Lease(recovery.lease.clone());
        run(&store, &mut state, Some(&held), None).await?;
        store.release_lease(&recovery.lease).await?;
        let done = store.load_workflow_state(&state.id).await?;
        println!(
            "  {} is {} with {} steps; summary: {}",
            done.workflow_id,
            done.status,
            done.steps.len(),
            done.steps["summarise"].outputs["summary"]
        );
    }
    Ok(())
}
