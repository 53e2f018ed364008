//! State persistence and crash recovery for LLM workflow orchestrators, on PostgreSQL
//! (production) and SQLite (laptops, tests, single nodes), through one SeaORM code path.
//!
//! An orchestrator saves a [`WorkflowState`] as it goes, takes a [`Checkpoint`] after each
//! step, and after a crash lists the active workflows and resumes each from its latest
//! checkpoint:
//!
//! ```
//! use llm_orchestrator_state::{Checkpoint, SqliteStateStore, StateStore, StepState, WorkflowState};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStateStore::new(":memory:").await?;
//!
//! let mut state = WorkflowState::new("wf-1", "Summarise", None, json!({"doc": "a.txt"}));
//! state.mark_running();
//! let mut step = StepState::new("retrieve");
//! step.mark_completed(json!({"chunks": 3}));
//! state.upsert_step(step);
//! store.save_workflow_state(&state).await?;
//! store.create_checkpoint(&Checkpoint::of(&state, "retrieve")?).await?;
//!
//! // After a crash: what was running, and where was it?
//! for active in store.list_active_workflows().await? {
//!     let latest = store.get_latest_checkpoint(&active.id).await?.expect("checkpointed");
//!     let resumed = store.restore_from_checkpoint(&latest.id).await?;
//!     assert_eq!(resumed.step("retrieve").unwrap().outputs, json!({"chunks": 3}));
//! }
//! # Ok(())
//! # }
//! ```

pub mod admin;
mod backend;
mod config;
mod error;
mod history;
mod model;
mod nodelay;
mod seaorm;
mod store;
pub mod validate;

pub use backend::{AnyBackend, Postgres, Sqlite, sqlite_file};
pub use config::{
    AutoCheckpoint, DEFAULT_CALL_TIMEOUT, DEFAULT_FULL_SNAPSHOT_EVERY, SqliteSync,
    StateStoreBuilder, StoreOptions,
};
pub use error::{
    ConfigProblem, ECHO_CHARS, Entity, ErrorDetail, ErrorKind, Field, InputProblem, Result,
    StateStoreError, echo, redact, redact_url,
};
pub use history::{
    BundledCheckpoint, CheckpointInfo, CheckpointUsage, ForkOrigin, Lineage, PruneReport,
    RetentionPolicy, WorkflowBundle,
};
pub use model::{
    ActiveWorkflows, Checkpoint, Claim, ClaimReport, Lease, Recovery, RecoveryReport,
    SaveCondition, SkippedWorkflow, StateCursor, StatePage, StepState, StepStatus, StepWrite,
    Versioned, WorkflowState, WorkflowStatus, now,
};
pub use nodelay::disable_nagle;
pub use seaorm::{
    CLOCK_OFFSET_WARNING, PostgresStateStore, Pruner, SeaOrmStateStore, SqliteStateStore,
    StoreTransaction, TransactionScope,
};
pub use store::StateStore;

/// The SeaORM version the store is built on, re-exported so applications use the same one.
pub use sea_orm;

// The README's and the docs pages' examples, compiled as doctests so they cannot go
// stale. `store/README.md` and `store/docs` are links to the workspace's `README.md` and
// `docs/`, so these paths hold in the repository and in the packaged crate alike (cargo
// packages what the links point to).

/// The README's examples.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The examples of `docs/usage.md`.
#[doc = include_str!("../docs/usage.md")]
#[cfg(doctest)]
pub struct UsageDoctests;

/// The examples of `docs/errors.md`.
#[doc = include_str!("../docs/errors.md")]
#[cfg(doctest)]
pub struct ErrorsDoctests;
