//! Writing a checkpoint: with what goes in the same batch (a save, a step), its
//! retention and size budgets, and how its snapshot is stored (see [`bases`]).

use crate::error::{Field, InputProblem};
use sea_orm::ConnectionTrait;
use tracing::warn;
use uuid::Uuid;

use super::{bases, history, queries, sealed};
use crate::backend;
use crate::config::StoreOptions;
use crate::error::{Result, StateStoreError};
use crate::model::{Checkpoint, SaveCondition, WorkflowState};

/// Whether this very checkpoint is stored already: a retry of a `create_checkpoint` whose
/// commit went through but whose answer was lost (a `Connection` error) then succeeds
/// instead of reporting its own first attempt as a conflict. The database compares, so
/// each value goes through the same conversion as when it was inserted (timestamps to
/// the microsecond, `jsonb` numbers); a snapshot stored as a patch is compared as read
/// back, its numbers by value. Not asked inside a transaction: an answer lost there is
/// the commit's, and on Postgres the failed insert has already ended it.
pub(crate) async fn already_stored<C: ConnectionTrait>(conn: &C, checkpoint: &Checkpoint) -> bool {
    use entity::checkpoints::{Column as K, Entity as Checkpoints};
    use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};
    let same: Result<Option<Option<Uuid>>, _> = Checkpoints::find()
        .select_only()
        .column(K::BaseId)
        .filter(K::Id.eq(checkpoint.id))
        .filter(K::WorkflowStateId.eq(checkpoint.workflow_state_id))
        .filter(K::StepId.eq(checkpoint.step_id.as_str()))
        .filter(K::Timestamp.eq(checkpoint.timestamp.fixed_offset()))
        .filter(
            Condition::any()
                .add(K::BaseId.is_not_null())
                .add(K::Snapshot.eq(checkpoint.snapshot.clone())),
        )
        .into_tuple()
        .one(conn)
        .await;
    match same {
        Ok(Some(None)) => true,
        Ok(Some(Some(_))) => queries::checkpoint(conn, checkpoint.id)
            .await
            .is_ok_and(|stored| bases::same_json(&stored.snapshot, &checkpoint.snapshot)),
        _ => false,
    }
}

/// What [`write_checkpoint`] writes with the checkpoint, in the same statement batch.
#[derive(Clone, Copy)]
pub(crate) enum Alongside<'a> {
    /// The checkpoint alone (`create_checkpoint`), whatever its snapshot holds.
    Nothing,
    /// A whole save of this state (an automatic checkpoint).
    Save(&'a WorkflowState),
    /// A step recorded from a copy of the workflow that must still be the stored one: the
    /// workflow row and that step of this state, under the lease guard, or the guard of
    /// this condition (`record_step`, a conditional step write).
    Step(
        Option<&'a SaveCondition>,
        queries::CopyOf<'a>,
        &'a WorkflowState,
    ),
    /// One step of this state, its workflow row written already (a conditional write).
    OneStep(&'a WorkflowState, &'a str),
}

/// Writes a checkpoint (with the state it was taken of, when given) with retention, and
/// enforces the size budgets: a warning past a threshold, `InvalidInput` and nothing
/// written past a limit. `size` is what [`crate::validate::checkpoint`] said of it: callers
/// check their input before a savepoint or a statement is spent on it. The checkpoint is
/// stored whole, in a new base, or as a patch from its workflow's base (see [`bases`]).
pub(crate) async fn write_checkpoint<C: backend::Db>(
    conn: &C,
    atomic: bool,
    scope: Shared<'_>,
    alongside: Alongside<'_>,
    checkpoint: &Checkpoint,
    size: u64,
) -> Result<backend::Written> {
    if scope
        .options
        .warn_json_bytes
        .is_some_and(|warn| size > warn as u64)
    {
        warn!(checkpoint_id = %checkpoint.id, workflow_state_id = %checkpoint.workflow_state_id,
            size_bytes = size, "checkpoint snapshot is over the size warning threshold");
    }
    let mut form = scope.bases.form(checkpoint, size);
    // Inside a transaction a patch refused for its base would end the transaction (on
    // Postgres), so the base is made sure of first, and kept until the commit.
    if backend::Db::in_transaction(conn)
        && let bases::Form::Patch { base, .. } = &form
        && !bases::still_stored(conn, *base).await?
    {
        scope.bases.forget(checkpoint.workflow_state_id);
        form = bases::Form::new_base();
    }
    let mut retried = false;
    let written = loop {
        let written = write_checkpoint_as(
            conn,
            atomic,
            scope.options,
            alongside,
            checkpoint,
            size,
            &form,
        )
        .await;
        match written {
            // Its base was deleted under it (another store cleaned up): a base of its own.
            Err(err) if err.is_base_gone() && !retried => {
                scope.bases.forget(checkpoint.workflow_state_id);
                form = bases::Form::new_base();
                retried = true;
            }
            written => break written,
        }
    };
    if written.is_ok() {
        scope.bases.filed(checkpoint, &form, size);
        if matches!(form, bases::Form::NewBase(_)) {
            bases::collect(conn, Some(checkpoint.workflow_state_id)).await;
        }
    }
    written
}

/// What a write of a checkpoint needs from its store besides the connection.
#[derive(Clone, Copy)]
pub(crate) struct Shared<'a> {
    /// The store's options.
    pub(crate) options: &'a StoreOptions,
    /// The bases its checkpoints are stored against.
    pub(crate) bases: &'a bases::Bases,
}

impl<'a> Shared<'a> {
    /// What `scope` shares.
    pub(crate) fn of<S: sealed::Scoped>(scope: &'a S) -> Self {
        Self {
            options: scope.options(),
            bases: scope.bases(),
        }
    }
}

/// [`write_checkpoint`] with the checkpoint stored in `form`.
async fn write_checkpoint_as<C: backend::Db>(
    conn: &C,
    atomic: bool,
    options: &StoreOptions,
    alongside: Alongside<'_>,
    checkpoint: &Checkpoint,
    size: u64,
    form: &bases::Form,
) -> Result<backend::Written> {
    async fn write<D: backend::Db>(
        conn: &D,
        alongside: Alongside<'_>,
        filing: queries::Filing<'_>,
        retention: Option<usize>,
    ) -> Result<backend::Written> {
        match alongside {
            Alongside::Nothing => queries::insert_checkpoint(conn, filing, retention).await,
            Alongside::Save(state) => {
                queries::save_state_and_checkpoint(conn, state, filing, retention).await
            }
            Alongside::Step(guard, copy, next) => {
                let guard = match guard {
                    Some(condition) => {
                        queries::condition_guard(conn.get_database_backend(), next.id, condition)
                            .ok_or_else(|| {
                                StateStoreError::invalid_state(
                                    "a step that creates its workflow is written under no guard"
                                        .to_owned(),
                                )
                            })?
                    }
                    None => queries::guard_write(conn.get_database_backend(), next.id),
                };
                queries::step_and_checkpoint(conn, guard, copy, next, filing, retention).await
            }
            Alongside::OneStep(state, step_id) => {
                queries::one_step_and_checkpoint(conn, state, step_id, filing, retention).await
            }
        }
    }
    let filing = queries::Filing {
        checkpoint,
        size_bytes: size,
        form,
    };
    let retention = options.checkpoint_retention;
    let budgeted = options.max_workflow_checkpoint_bytes.is_some()
        || options.warn_workflow_checkpoint_bytes.is_some();
    if !budgeted {
        return write(conn, alongside, filing, retention).await;
    }
    // Check the workflow's total after the write (retention included), in the same
    // transaction, so a refused checkpoint leaves nothing behind.
    backend::all_or_nothing!(conn, atomic, backend::begin_write, |txn| {
        let rows = write(txn, alongside, filing, retention).await?;
        let total = history::usage(txn, checkpoint.workflow_state_id)
            .await?
            .bytes;
        match options.max_workflow_checkpoint_bytes {
            Some(limit) if total > limit => Err(StateStoreError::invalid_input(
                Field::Checkpoint,
                InputProblem::TooLarge,
                format!(
                    "the checkpoints of workflow state {} would total {total} bytes; the limit \
                 is {limit} (StoreOptions::max_workflow_checkpoint_bytes)",
                    checkpoint.workflow_state_id
                ),
            )),
            _ => {
                if options
                    .warn_workflow_checkpoint_bytes
                    .is_some_and(|warn| total > warn)
                {
                    warn!(workflow_state_id = %checkpoint.workflow_state_id, total_bytes = total,
                        "workflow checkpoints are over the size warning threshold");
                }
                Ok(rows)
            }
        }
    })
}
