//! Rows the store never writes but a database holds anyway: edited by hand, written by
//! another tool or an older release. Each function damages one thing of one workflow or
//! checkpoint with plain SQL, in the way each database allows: on SQLite, text that is not
//! JSON at all; on Postgres (whose `jsonb` only holds valid JSON), JSON nested deeper than
//! the store reads back (serde_json stops at 128 levels).
//!
//! Another kind of damage is one more function here, and one more [`Damage`] variant so
//! the suites that go through every kind pick it up.

use llm_orchestrator_state::SeaOrmStateStore;
use uuid::Uuid;

use crate::execute_sql;

/// Levels of nesting in the JSON [`unreadable_json`] stores on Postgres: past serde_json's
/// limit of 128, well within what Postgres accepts.
pub const TOO_DEEP: usize = 200;

/// SQL for a JSON column value the store cannot read back, on `store`'s database.
pub fn unreadable_json(store: &SeaOrmStateStore) -> String {
    match store.connection().get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            format!("'{}1{}'::jsonb", "[".repeat(TOO_DEEP), "]".repeat(TOO_DEEP))
        }
        _ => "'{\"truncated\": [1, 2'".to_owned(),
    }
}

/// Makes the context of workflow state `id` unreadable. Returns the rows changed (1).
pub async fn context(store: &SeaOrmStateStore, id: Uuid) -> u64 {
    let sql = format!(
        "UPDATE workflow_states SET context = {} WHERE id = {{}}",
        unreadable_json(store)
    );
    execute_sql(store, &sql, id).await
}

/// Makes the outputs of every step of workflow state `id` unreadable. Returns the rows
/// changed (its step count: give it at least one step).
pub async fn step_outputs(store: &SeaOrmStateStore, id: Uuid) -> u64 {
    let sql = format!(
        "UPDATE step_states SET outputs = {} WHERE workflow_state_id = {{}}",
        unreadable_json(store)
    );
    execute_sql(store, &sql, id).await
}

/// Stores the status of workflow state `id` in upper case (`RUNNING`), as a hand edit or
/// another tool might: not damage, the store must still read it as the status it names.
pub async fn status_upper_case(store: &SeaOrmStateStore, id: Uuid) -> u64 {
    execute_sql(
        store,
        "UPDATE workflow_states SET status = upper(status) WHERE id = {}",
        id,
    )
    .await
}

/// Makes the snapshot of checkpoint `id` unreadable. Returns the rows changed (1).
pub async fn snapshot(store: &SeaOrmStateStore, id: Uuid) -> u64 {
    let sql = format!(
        "UPDATE checkpoints SET snapshot = {} WHERE id = {{}}",
        unreadable_json(store)
    );
    execute_sql(store, &sql, id).await
}

/// A kind of damage to a workflow's own rows that makes it unreadable, for suites that
/// check every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// [`context`].
    Context,
    /// [`step_outputs`].
    StepOutputs,
}

impl Damage {
    /// Every kind.
    pub const ALL: [Damage; 2] = [Self::Context, Self::StepOutputs];

    /// Damages workflow state `id` this way (it needs a step for `StepOutputs`). Panics if
    /// no row changed, so a test never checks a workflow that was not damaged.
    pub async fn apply(self, store: &SeaOrmStateStore, id: Uuid) {
        let changed = match self {
            Self::Context => context(store, id).await,
            Self::StepOutputs => step_outputs(store, id).await,
        };
        assert!(
            changed > 0,
            "{self:?} changed no row of workflow state {id}"
        );
    }
}
