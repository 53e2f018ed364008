//! Child process of the crash test: writes workflows and checkpoints from several tasks
//! as fast as it can and prints `ack <workflow state id> <iteration>` after each save or
//! step that returned Ok, until it is killed.
//!
//! `crash_writer <sqlite path | postgres url> [postgres schema] `

use std::io::Write as _;

use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use llm_orchestrator_state::{StateStore, StateStoreBuilder, StepState, WorkflowState};
use serde_json::json;

/// Writer tasks; each owns one workflow.
const TASKS: usize = 4;

/// An application table: iteration `i % 3 == 1` writes its invoice and its state in one
/// transaction.
pub const INVOICES_TABLE: &str = "CREATE TABLE IF NOT EXISTS crash_invoices \
    (workflow VARCHAR(64) NOT NULL, iteration BIGINT NOT NULL, PRIMARY KEY (workflow, iteration))";

/// The context a writer stores at `iteration`.
fn context_at(iteration: u64) -> serde_json::Value {
    json!({ "iteration": iteration, "padding": "p".repeat(2048) })
}

/// The state a writer saves at `iteration` (every iteration but those that record a
/// step, `iteration % 3 == 2`, which rewrite the context and `step-0` only): every
/// step's outputs and the context carry the iteration, and the set of steps depends on
/// it, so a save torn in two shows.
pub fn state_at(mut state: WorkflowState, iteration: u64) -> WorkflowState {
    state.context = context_at(iteration);
    state.steps.clear();
    for step in 0..=(iteration % 7) {
        let mut s = StepState::new(format!("step-{step}"));
        s.mark_completed(json!({ "iteration": iteration }));
        state.upsert_step(s);
    }
    state
}

/// Writes the application's invoice row and the state in one transaction.
async fn save_with_invoice(
    store: &llm_orchestrator_state::SeaOrmStateStore,
    state: &WorkflowState,
    iteration: u64,
) {
    let txn = store.connection().begin().await.expect("begin");
    let backend = txn.get_database_backend();
    let values = if backend == DbBackend::Postgres {
        "($1, $2)"
    } else {
        "(?, ?)"
    };
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!("INSERT INTO crash_invoices (workflow, iteration) VALUES {values}"),
        [
            state.id.to_string().into(),
            i64::try_from(iteration).unwrap().into(),
        ],
    ))
    .await
    .expect("insert invoice");
    store
        .within(&txn)
        .save_workflow_state(state)
        .await
        .expect("save in the transaction");
    txn.commit().await.expect("commit");
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("target");
    let mut builder = StateStoreBuilder::new(target).checkpoint_retention(Some(3));
    if let Some(schema) = args.next() {
        builder = builder.postgres_schema(schema);
    }
    let store = builder.connect().await.expect("open store");
    // The application's own table, written in the same transaction as some saves.
    store
        .connection()
        .execute_unprepared(INVOICES_TABLE)
        .await
        .expect("create the invoices table");
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            let stdout = stdout.clone();
            tokio::spawn(async move {
                let mut state =
                    WorkflowState::new(format!("crash-{task}"), "crash test", None, json!({}));
                state.mark_running();
                for iteration in 0.. {
                    if iteration % 3 == 2 {
                        // A step writes itself and the context: the other steps stay as
                        // the save before left them.
                        state.context = context_at(iteration);
                        let mut step = StepState::new("step-0");
                        step.mark_completed(json!({ "iteration": iteration }));
                        store
                            .record_step(&mut state, step)
                            .await
                            .expect("record_step");
                        let mut out = stdout.lock().unwrap();
                        writeln!(out, "ack {} {iteration}", state.id).unwrap();
                        out.flush().unwrap();
                        continue;
                    }
                    state = state_at(state, iteration);
                    if iteration % 3 == 1 {
                        save_with_invoice(&store, &state, iteration).await;
                    } else {
                        store.save_workflow_state(&state).await.expect("save");
                    }
                    let mut out = stdout.lock().unwrap();
                    writeln!(out, "ack {} {iteration}", state.id).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}
