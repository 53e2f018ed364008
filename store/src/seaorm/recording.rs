//! What recording a step writes: the state with the step put in and its checkpoint, from
//! the caller's copy or from the stored workflow, and the policy of automatic checkpoints.

use uuid::Uuid;

use crate::backend::{self};
use crate::config::{AutoCheckpoint, StoreOptions};
use crate::error::{Result, StateStoreError};
use crate::model::{Checkpoint, SaveCondition, StepState, StepWrite, WorkflowState};
use crate::validate;

use super::*;

/// The step a save checkpoints after under `policy`, if it checkpoints at all: the most
/// recently finished step (or started, or the status when there are no steps).
pub(super) fn auto_checkpoint_step(
    state: &WorkflowState,
    policy: AutoCheckpoint,
) -> Option<String> {
    let finished = || {
        state
            .steps
            .values()
            .filter(|step| step.status.is_finished())
    };
    match policy {
        AutoCheckpoint::Off => return None,
        AutoCheckpoint::EverySave => {}
        AutoCheckpoint::EveryNSteps(every) => {
            let count = finished().count();
            if every == 0 || count == 0 || count % every as usize != 0 {
                return None;
            }
        }
    }
    let latest = state
        .steps
        .values()
        .max_by_key(|step| (step.completed_at.or(step.started_at), step.step_id.clone()));
    Some(latest.map_or_else(|| state.status.to_string(), |step| step.step_id.clone()))
}

/// The state with `step` put in, checked, and its checkpoint after that step with the
/// checkpoint's size: what `record_step` and `record_step_if` write (the caller's `state`
/// is left as it is).
pub(super) fn after_step(
    state: &WorkflowState,
    step: StepState,
    options: &StoreOptions,
) -> Result<(WorkflowState, Checkpoint, u64)> {
    let mut next = state.clone();
    let step_id = step.step_id.clone();
    next.upsert_step(step);
    validate::workflow_state(&next, options.max_json_bytes)?;
    let mut checkpoint = Checkpoint::of(&next, step_id)?;
    // At the state's own time: a replica that loads this state next moves `updated_at`
    // past it (see `WorkflowState::touch`), so its checkpoints sort after this one.
    checkpoint.timestamp = next.updated_at;
    let size = validate::checkpoint(&checkpoint, options.max_json_bytes)?;
    Ok((next, checkpoint, size))
}

/// Records `step` from the caller's copy `state`: in one batch when the copy is still the
/// stored workflow (see [`steps::from_copy`]), else into the stored workflow (see
/// [`steps::from_stored`]), which context patches and a workflow that must not exist yet
/// always take. The caller replaces its copy with the result's state once it has it.
pub(super) async fn record<S: sealed::Scoped>(
    scope: &S,
    state: &WorkflowState,
    step: StepState,
    write: &StepWrite,
) -> Result<steps::Recorded> {
    let options = scope.options();
    let id = steps::checkpoint_id(state, &step, write)?;
    let in_one_batch = write.context_patches.is_empty()
        && !matches!(write.condition, Some(SaveCondition::Version(0)));
    if !in_one_batch {
        let recorded = record_from_stored(scope, state, step, write, id).await?;
        lose_reply()?;
        return Ok(recorded);
    }
    let (mut next, mut checkpoint, size) = after_step(state, step, options)?;
    checkpoint.id = id;
    let condition = write.condition.as_ref();
    let since = queries::CopyOf::new(state, &checkpoint.step_id);
    let written = contained!(scope, |conn, atomic| {
        steps::from_copy(
            conn,
            atomic,
            Shared::of(scope),
            condition,
            since,
            &next,
            &checkpoint,
            size,
        )
        .await
    });
    match written {
        Ok(written) => {
            record_rows(written.rows);
            lose_reply()?;
            return Ok(steps::Recorded {
                state: next,
                checkpoint,
                version: written.version,
            });
        }
        // The copy is not the stored workflow any more; or the condition did not hold,
        // which the stored path finds out again and says precisely.
        Err(err)
            if err.is_stale_copy()
                || err.is_lost_race()
                || (condition.is_some() && err.is_guard_refusal()) => {}
        Err(err) => return explained(scope, Err(err), next.id).await,
    }
    let step = next.steps.remove(&checkpoint.step_id).ok_or_else(|| {
        StateStoreError::invalid_state("the recorded step went missing".to_owned())
    })?;
    let recorded = record_from_stored(scope, state, step, write, id).await?;
    lose_reply()?;
    Ok(recorded)
}

/// Records `step` into the stored workflow (see [`steps::from_stored`]), explaining a
/// refusal by the workflow's guard.
pub(super) async fn record_from_stored<S: sealed::Scoped>(
    scope: &S,
    copy: &WorkflowState,
    step: StepState,
    write: &StepWrite,
    id: Uuid,
) -> Result<steps::Recorded> {
    let recorded = contained!(scope, |conn, atomic| {
        steps::from_stored(conn, atomic, Shared::of(scope), copy, step, write, id).await
    });
    explained(scope, recorded, copy.id).await
}

/// The fail point `step-reply-lost` (tests only, with the `failpoints` feature): a step
/// write that committed answers `Connection`, as when the connection drops between the
/// commit and its reply.
pub(super) fn lose_reply() -> Result<()> {
    fail::fail_point!("step-reply-lost", |_| Err(StateStoreError::new(
        ErrorKind::ConnectionFailed,
        "the connection dropped before the reply (fail point step-reply-lost)".to_owned()
    )));
    Ok(())
}
