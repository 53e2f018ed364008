//! The Rust examples of the first sections of docs/usage.md and of docs/errors.md, each
//! pasted verbatim (unindented, and left alone by rustfmt) into its own module, compiled
//! and run unchanged.
//!
//! The PostgreSQL examples connect to `postgresql://user:password@localhost/workflows` and
//! `postgresql://localhost/workflows` exactly as written: the database `workflows` and the
//! roles `user` (password `password`) and the OS user must exist (see .ci/setup-databases.sh).
//! They run at the same time on that one database, which the store's migration lock allows.
//! The SQLite example writes `./workflows.db` in the working directory (gitignored).

/// docs/usage.md: "PostgreSQL (Production)".
#[rustfmt::skip]
#[allow(unused_variables, dead_code, clippy::all)]
mod postgres_usage {
use llm_orchestrator_state::{PostgresStateStore, StateStore, WorkflowState};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Create state store with connection pooling
    let store = PostgresStateStore::new(
        "postgresql://user:password@localhost/workflows",
        Some(5),   // min connections
        Some(20),  // max connections
    ).await?;

    // Create workflow state
    let mut state = WorkflowState::new(
        "my-workflow-123",
        "Data Processing Workflow",
        Some("user-456".to_string()),
        json!({"inputs": {"file": "data.csv"}}),
    );

    // Mark as running
    state.mark_running();

    // Save state
    store.save_workflow_state(&state).await?;

    // Load state
    let loaded = store.load_workflow_state(&state.id).await?;
    println!("Loaded workflow: {}", loaded.workflow_name);

    // Create checkpoint
    use llm_orchestrator_state::Checkpoint;
    let snapshot = serde_json::to_value(&state)?;
    let checkpoint = Checkpoint::new(state.id, "step-5", snapshot);
    store.create_checkpoint(&checkpoint).await?;

    Ok(())
}

#[test]
fn runs() {
    main().unwrap()
}
}

/// docs/usage.md: "SQLite (Development/Testing)".
#[rustfmt::skip]
#[allow(unused_variables, dead_code, clippy::all)]
mod sqlite_usage {
use llm_orchestrator_state::{SqliteStateStore, StateStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Create SQLite store
    let store = SqliteStateStore::new("./workflows.db").await?;

    // Or in-memory for testing
    let mem_store = SqliteStateStore::new(":memory:").await?;

    // Same API as PostgreSQL
    store.health_check().await?;

    Ok(())
}

#[test]
fn runs() {
    main().unwrap()
}
}

/// docs/usage.md: "Recovery After Crash".
#[rustfmt::skip]
#[allow(unused_variables, dead_code, clippy::all)]
mod recovery_after_crash {
use llm_orchestrator_state::{PostgresStateStore, StateStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = PostgresStateStore::new(
        "postgresql://localhost/workflows",
        Some(5),
        Some(20),
    ).await?;

    // On startup: list all active workflows
    let active_workflows = store.list_active_workflows().await?;
    println!("Found {} active workflows to recover", active_workflows.len());

    for workflow_state in active_workflows {
        // Get latest checkpoint
        if let Some(checkpoint) = store.get_latest_checkpoint(&workflow_state.id).await? {
            println!("Resuming workflow {} from step {}",
                workflow_state.workflow_id,
                checkpoint.step_id
            );

            // Restore state and resume execution
            let restored_state = store.restore_from_checkpoint(&checkpoint.id).await?;
            // ... resume workflow execution from restored state
        }
    }

    Ok(())
}

#[test]
fn runs() {
    main().unwrap()
}
}

/// docs/usage.md: "Cleanup Old Data".
#[rustfmt::skip]
#[allow(unused_variables, dead_code, clippy::all)]
mod cleanup_old_data {
use llm_orchestrator_state::{PostgresStateStore, StateStore};
use chrono::{Utc, Duration};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = PostgresStateStore::new(
        "postgresql://localhost/workflows",
        Some(5),
        Some(20),
    ).await?;

    // Delete states older than 30 days
    let cutoff = Utc::now() - Duration::days(30);
    let deleted = store.delete_old_states(cutoff).await?;
    println!("Deleted {} old workflow states", deleted);

    Ok(())
}

#[test]
fn runs() {
    main().unwrap()
}
}

/// docs/errors.md: "Error handling". The block uses `store` and `id` without defining them; this
/// function defines them (a missing id, then a stored one) and runs the block unchanged.
#[rustfmt::skip]
#[allow(unused_variables, dead_code, clippy::all)]
mod error_handling {
async fn load_and_report(
    store: &llm_orchestrator_state::SqliteStateStore,
    id: uuid::Uuid,
) {
use llm_orchestrator_state::{StateStore, StateStoreError};

match store.load_workflow_state(&id).await {
    Ok(state) => println!("Loaded: {}", state.workflow_name),
    Err(StateStoreError::NotFound(msg)) => println!("Not found: {}", msg),
    Err(StateStoreError::Database(err)) => println!("DB error: {}", err),
    Err(StateStoreError::Connection(err)) => println!("Connection failed: {}", err),
    Err(e) => println!("Other error: {}", e),
}
}

#[tokio::test]
async fn runs() {
    let store = llm_orchestrator_state::SqliteStateStore::new(":memory:").await.unwrap();
    let state = llm_orchestrator_state::WorkflowState::new(
        "wf-errors", "Errors", None, serde_json::json!({}),
    );
    llm_orchestrator_state::StateStore::save_workflow_state(&store, &state).await.unwrap();
    load_and_report(&store, uuid::Uuid::new_v4()).await;
    load_and_report(&store, state.id).await;
}
}
