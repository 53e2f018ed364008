//! Entity rows <-> API models, in one place.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, Utc};
use entity::{checkpoints, step_states, workflow_states};
use sea_orm::ActiveValue::Set;
use serde_json::Value;

use serde::Deserialize;

use crate::error::{Result, StateStoreError};
use crate::model::{Checkpoint, StepState, WorkflowState};

fn to_db(time: DateTime<Utc>) -> DateTime<FixedOffset> {
    time.fixed_offset()
}

fn from_db(time: DateTime<FixedOffset>) -> DateTime<Utc> {
    time.with_timezone(&Utc)
}

/// The workflow row of a state (its steps are written separately).
pub(crate) fn workflow_row(state: &WorkflowState) -> workflow_states::ActiveModel {
    workflow_states::ActiveModel {
        id: Set(state.id),
        workflow_id: Set(state.workflow_id.clone()),
        workflow_name: Set(state.workflow_name.clone()),
        status: Set(state.status.as_str().to_owned()),
        user_id: Set(state.user_id.clone()),
        started_at: Set(to_db(state.started_at)),
        updated_at: Set(to_db(state.updated_at)),
        completed_at: Set(state.completed_at.map(to_db)),
        context: Set(state.context.clone()),
        error: Set(state.error.clone()),
        // The database keeps the version and the lease; saves never write them directly.
        ..Default::default()
    }
}

/// The step rows of a state.
pub(crate) fn step_rows(state: &WorkflowState) -> Vec<step_states::ActiveModel> {
    state
        .steps
        .values()
        .map(|step| step_states::ActiveModel {
            workflow_state_id: Set(state.id),
            step_id: Set(step.step_id.clone()),
            status: Set(step.status.as_str().to_owned()),
            started_at: Set(step.started_at.map(to_db)),
            completed_at: Set(step.completed_at.map(to_db)),
            outputs: Set(match &step.outputs {
                Value::Null => None,
                outputs => Some(outputs.clone()),
            }),
            error: Set(step.error.clone()),
            retry_count: Set(step.retry_count),
        })
        .collect()
}

/// The checkpoint row of a checkpoint.
pub(crate) fn checkpoint_row(checkpoint: &Checkpoint, size_bytes: u64) -> checkpoints::ActiveModel {
    checkpoints::ActiveModel {
        id: Set(checkpoint.id),
        workflow_state_id: Set(checkpoint.workflow_state_id),
        step_id: Set(checkpoint.step_id.clone()),
        timestamp: Set(to_db(checkpoint.timestamp)),
        snapshot: Set(checkpoint.snapshot.clone()),
        size_bytes: Set(i64::try_from(size_bytes).unwrap_or(i64::MAX)),
        pinned_label: Set(None),
        workflow_status: Set(snapshot_status(&checkpoint.snapshot).map(str::to_owned)),
    }
}

/// The workflow status a snapshot holds, for the `workflow_status` column: its
/// `"status"` when that is a string of at most 50 characters (the column's width; a
/// snapshot need not be a workflow state at all).
pub(crate) fn snapshot_status(snapshot: &Value) -> Option<&str> {
    snapshot
        .get("status")
        .and_then(Value::as_str)
        .filter(|status| status.chars().count() <= 50)
}

/// One element of the steps JSON array that reads select next to a workflow row.
#[derive(Deserialize)]
struct StepJson {
    step_id: String,
    status: String,
    started_at: Option<String>,
    completed_at: Option<String>,
    outputs: Option<Value>,
    error: Option<String>,
    retry_count: i32,
}

fn parse_time(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(&text)
            .map(from_db)
            .map_err(|err| StateStoreError::Serialization(format!("bad timestamp {text:?}: {err}")))
    })
    .transpose()
}

fn step_from_json(step: StepJson) -> Result<StepState> {
    Ok(StepState {
        status: step.status.parse()?,
        step_id: step.step_id,
        started_at: parse_time(step.started_at)?,
        completed_at: parse_time(step.completed_at)?,
        outputs: step.outputs.unwrap_or(Value::Null),
        error: step.error,
        retry_count: step.retry_count,
    })
}

/// A workflow state from its row and the JSON array of its steps.
pub(crate) fn workflow_from_row_and_json(
    row: workflow_states::Model,
    steps: Option<Value>,
) -> Result<WorkflowState> {
    let steps: Vec<StepJson> = match steps {
        None | Some(Value::Null) => Vec::new(),
        Some(steps) => serde_json::from_value(steps).map_err(|err| {
            StateStoreError::Serialization(format!("steps of workflow state {}: {err}", row.id))
        })?,
    };
    let steps = steps
        .into_iter()
        .map(|step| step_from_json(step).map(|step| (step.step_id.clone(), step)))
        .collect::<Result<HashMap<_, _>>>()?;
    workflow_from_parts(row, steps)
}

fn workflow_from_parts(
    row: workflow_states::Model,
    steps: HashMap<String, StepState>,
) -> Result<WorkflowState> {
    Ok(WorkflowState {
        status: row.status.parse()?,
        id: row.id,
        workflow_id: row.workflow_id,
        workflow_name: row.workflow_name,
        user_id: row.user_id,
        started_at: from_db(row.started_at),
        updated_at: from_db(row.updated_at),
        completed_at: row.completed_at.map(from_db),
        context: row.context,
        error: row.error,
        steps,
    })
}

fn step_from_row(row: step_states::Model) -> Result<StepState> {
    Ok(StepState {
        status: row.status.parse()?,
        step_id: row.step_id,
        started_at: row.started_at.map(from_db),
        completed_at: row.completed_at.map(from_db),
        outputs: row.outputs.unwrap_or(Value::Null),
        error: row.error,
        retry_count: row.retry_count,
    })
}

/// Workflow states from their rows and the step rows of all of them (any order), grouped
/// in memory. Rows that do not convert come back apart with their error, so one corrupt
/// workflow hides no other.
pub(crate) fn workflows_from_rows(
    rows: Vec<workflow_states::Model>,
    steps: Vec<step_states::Model>,
) -> (Vec<WorkflowState>, Vec<(uuid::Uuid, StateStoreError)>) {
    let mut steps_by_workflow: HashMap<uuid::Uuid, Vec<step_states::Model>> = HashMap::new();
    for step in steps {
        steps_by_workflow
            .entry(step.workflow_state_id)
            .or_default()
            .push(step);
    }
    let mut states = Vec::with_capacity(rows.len());
    let mut skipped = Vec::new();
    for row in rows {
        let id = row.id;
        let steps = steps_by_workflow.remove(&id).unwrap_or_default();
        let converted = steps
            .into_iter()
            .map(|step| step_from_row(step).map(|step| (step.step_id.clone(), step)))
            .collect::<Result<HashMap<_, _>>>()
            .and_then(|steps| workflow_from_parts(row, steps));
        match converted {
            Ok(state) => states.push(state),
            Err(err) => skipped.push((id, err)),
        }
    }
    (states, skipped)
}

/// A checkpoint from its row.
pub(crate) fn checkpoint_from_row(row: checkpoints::Model) -> Checkpoint {
    Checkpoint {
        id: row.id,
        workflow_state_id: row.workflow_state_id,
        step_id: row.step_id,
        timestamp: from_db(row.timestamp),
        snapshot: row.snapshot,
    }
}
