//! Recording a step: its own row, the workflow's changed fields and a checkpoint, safe
//! when steps of one workflow run in parallel and when a call is sent again.
//!
//! A step recorded from a copy of the workflow that is still the stored one (nothing
//! committed since the copy was read) is one batch of writes: one statement on Postgres.
//! When the stored workflow moved on (a step that ran in parallel committed first), the
//! database refuses that batch (see `queries::stale_copy_guard`) and the step is recorded
//! again from the stored workflow, in a transaction holding the workflow's row: the steps
//! committed before stay, and the checkpoint holds them. The same path serves conditional
//! writes and context patches, which need the stored workflow anyway.

use serde_json::json;
use uuid::Uuid;

use super::queries::{self, CopyOf};
use super::{Alongside, Shared, after_step, replicas, write_checkpoint};
use crate::backend::{self, Db, Written};
use crate::error::{Result, StateStoreError};
use crate::model::{Checkpoint, SaveCondition, StepState, StepWrite, WorkflowState};

/// A step recorded: the workflow as stored after it, its checkpoint, and the workflow's
/// version when the write read it.
pub(super) struct Recorded {
    pub(super) state: WorkflowState,
    pub(super) checkpoint: Checkpoint,
    pub(super) version: Option<i64>,
}

/// The namespace of the ids of step checkpoints (see [`checkpoint_id`]).
const STEP_CHECKPOINTS: Uuid = Uuid::from_u128(0x6c6c_6d2d_7374_6174_652d_7374_6570_7331);

/// The id of the checkpoint that recording `step` (with `write`) from `copy` takes: the
/// same for the same call sent again, so a retry after a lost reply finds its first
/// attempt's checkpoint instead of storing a second one. A version 7 id (time-ordered by
/// the copy's time) whose other bits hash the call.
pub(super) fn checkpoint_id(
    copy: &WorkflowState,
    step: &StepState,
    write: &StepWrite,
) -> Result<Uuid> {
    // Through `serde_json::Value`, whose objects sort their keys: the steps' map hashes
    // the same whatever order it iterates in.
    let call = serde_json::to_vec(&json!([copy, step, write.context_patches]))?;
    let hash = Uuid::new_v5(&STEP_CHECKPOINTS, &call);
    let mut random = [0u8; 10];
    random.copy_from_slice(&hash.as_bytes()[..10]);
    let millis = u64::try_from(copy.updated_at.timestamp_millis()).unwrap_or(0);
    Ok(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
}

/// Writes `next` (the workflow row and its step `checkpoint.step_id`) and its checkpoint,
/// provided the stored workflow is still what `since` says the caller's copy was: one
/// batch, under the lease guard or, given one, the guard of `condition`. `Conflict` that
/// [`StateStoreError::is_stale_copy`] or [`StateStoreError::is_lost_race`] tells apart
/// when the copy is not the stored workflow (then record it with [`from_stored`]), and
/// that [`StateStoreError::is_guard_refusal`] tells apart when a guard refused.
#[allow(clippy::too_many_arguments)]
pub(super) async fn from_copy<C: Db>(
    conn: &C,
    atomic: bool,
    shared: Shared<'_>,
    condition: Option<&SaveCondition>,
    since: CopyOf<'_>,
    next: &WorkflowState,
    checkpoint: &Checkpoint,
    size: u64,
) -> Result<Written> {
    let alongside = Alongside::Step(condition, since, next);
    write_checkpoint(conn, atomic, shared, alongside, checkpoint, size).await
}

/// Records `step` from the stored workflow, in a transaction that holds its row: the
/// steps stored stay, the caller's copy gives the workflow's fields it changed (all of
/// them when what it was read from is not known), `write`'s patches apply to the stored
/// context and its condition must hold. A call sent before, whose checkpoint `id` is
/// stored, writes nothing and gets that checkpoint back.
pub(super) async fn from_stored<C: Db>(
    conn: &C,
    atomic: bool,
    shared: Shared<'_>,
    copy: &WorkflowState,
    step: StepState,
    write: &StepWrite,
    id: Uuid,
) -> Result<Recorded> {
    backend::all_or_nothing!(conn, atomic, backend::begin_conditional, |txn| {
        from_stored_in(txn, shared, copy, step, write, id).await
    })
}

async fn from_stored_in<C: Db>(
    txn: &C,
    shared: Shared<'_>,
    copy: &WorkflowState,
    step: StepState,
    write: &StepWrite,
    id: Uuid,
) -> Result<Recorded> {
    queries::lock_workflow(txn, copy.id).await?;
    let stored = match queries::load_versioned(txn, copy.id).await {
        Ok(stored) => Some(stored),
        Err(StateStoreError::NotFound(_)) => None,
        Err(err) => return Err(err),
    };
    let version = stored.as_ref().map(|stored| stored.version);
    if let Some(first) = sent_before(txn, id, copy.id).await? {
        return Ok(Recorded {
            state: queries::snapshot_state(&first)?,
            checkpoint: first,
            version,
        });
    }
    let stored = stored.map(|stored| stored.value);
    let base = match &stored {
        Some(stored) if stored.updated_at != copy.updated_at => {
            queries::state_at(txn, copy.id, copy.updated_at).await?
        }
        _ => None,
    };
    let merged = merge(copy, stored.as_ref(), base.as_ref(), write);
    let (next, mut checkpoint, size) = after_step(&merged, step, shared.options)?;
    checkpoint.id = id;
    let version = match &write.condition {
        Some(condition) => {
            let version = replicas::update_if(txn, &next, condition).await?;
            let alongside = Alongside::OneStep(&next, &checkpoint.step_id);
            write_checkpoint(txn, true, shared, alongside, &checkpoint, size).await?;
            version
        }
        None => {
            // The row is locked: the stored workflow is still what was read above.
            let read = stored.as_ref().unwrap_or(copy);
            let since = CopyOf::new(read, &checkpoint.step_id);
            from_copy(txn, true, shared, None, since, &next, &checkpoint, size).await?;
            version.map_or(1, |version| version + 1)
        }
    };
    Ok(Recorded {
        state: next,
        checkpoint,
        version: Some(version),
    })
}

/// The checkpoint `id` of this workflow, when a call sent before stored it.
async fn sent_before<C: Db>(
    txn: &C,
    id: Uuid,
    workflow_state_id: Uuid,
) -> Result<Option<Checkpoint>> {
    match queries::checkpoint(txn, id).await {
        Ok(found) if found.workflow_state_id == workflow_state_id => Ok(Some(found)),
        Ok(_) | Err(StateStoreError::NotFound(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The workflow a step is recorded into: the stored one (or the copy, when none is
/// stored), with the workflow fields the copy changed since `base`, what it was read
/// from (every field of the copy when that is not known: last writer wins), and the
/// context patched by `write`. Its `updated_at` is at least the stored one's, so the
/// step's checkpoint sorts after every checkpoint committed before it.
fn merge(
    copy: &WorkflowState,
    stored: Option<&WorkflowState>,
    base: Option<&WorkflowState>,
    write: &StepWrite,
) -> WorkflowState {
    let Some(stored) = stored else {
        let mut next = copy.clone();
        if !write.context_patches.is_empty() {
            next.context = write.patched(&copy.context);
        }
        return next;
    };
    let mut next = stored.clone();
    // All the copy's fields when it is the stored workflow (a conditional write, a
    // patch) or what it was read from is not known; else those it changed since.
    take_fields(&mut next, copy, |field| {
        base.is_none_or(|base| field.differs(copy, base))
    });
    if !write.context_patches.is_empty() {
        next.context = write.patched(&stored.context);
    }
    next.updated_at = Ord::max(stored.updated_at, copy.updated_at);
    next
}

/// A workflow field the caller's copy may have changed.
#[derive(Clone, Copy)]
enum Field {
    Name,
    Status,
    User,
    Started,
    Completed,
    Context,
    Error,
}

impl Field {
    const ALL: [Self; 7] = [
        Self::Name,
        Self::Status,
        Self::User,
        Self::Started,
        Self::Completed,
        Self::Context,
        Self::Error,
    ];

    /// Whether `a` and `b` hold different values of this field.
    fn differs(self, a: &WorkflowState, b: &WorkflowState) -> bool {
        match self {
            Self::Name => a.workflow_name != b.workflow_name,
            Self::Status => a.status != b.status,
            Self::User => a.user_id != b.user_id,
            Self::Started => a.started_at != b.started_at,
            Self::Completed => a.completed_at != b.completed_at,
            Self::Context => a.context != b.context,
            Self::Error => a.error != b.error,
        }
    }

    /// Sets this field of `to` to `from`'s.
    fn take(self, to: &mut WorkflowState, from: &WorkflowState) {
        match self {
            Self::Name => to.workflow_name.clone_from(&from.workflow_name),
            Self::Status => to.status = from.status,
            Self::User => to.user_id.clone_from(&from.user_id),
            Self::Started => to.started_at = from.started_at,
            Self::Completed => to.completed_at = from.completed_at,
            Self::Context => to.context.clone_from(&from.context),
            Self::Error => to.error.clone_from(&from.error),
        }
    }
}

/// Takes into `to` the fields of `from` that `wanted` picks.
fn take_fields(to: &mut WorkflowState, from: &WorkflowState, wanted: impl Fn(Field) -> bool) {
    for field in Field::ALL {
        if wanted(field) {
            field.take(to, from);
        }
    }
}
