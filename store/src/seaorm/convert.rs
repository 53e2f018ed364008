//! Entity rows <-> API models, in one place.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, SubsecRound as _, Utc};
use entity::{checkpoints, step_states, workflow_states};
use sea_orm::ActiveValue::Set;
use sea_orm::FromQueryResult;
use serde_json::Value;

use serde::Deserialize;

use crate::error::{Result, StateStoreError};
use crate::model::{Checkpoint, StepState, WorkflowState};

/// An instant as the store writes it: in UTC, cut to microseconds, the precision both
/// databases keep (Postgres keeps microseconds; SQLite would keep the nanoseconds of
/// its text), so what is saved loads back equal on either.
pub(crate) fn to_db(time: DateTime<Utc>) -> DateTime<FixedOffset> {
    time.trunc_subsecs(6).fixed_offset()
}

fn from_db(time: DateTime<FixedOffset>) -> DateTime<Utc> {
    time.with_timezone(&Utc)
}

/// An instant read as text through `backend::time_as_text`: RFC 3339 (what the store
/// writes), or SQLite's own `YYYY-MM-DD HH:MM:SS[.fff]` (UTC). Anything else (a year
/// beyond 9999 or `infinity` from Postgres, garbage in a SQLite file) is a
/// `Serialization` error naming `column`, for the one row that holds it.
pub(crate) fn stored_time(column: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(from_db)
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .map(|naive| naive.and_utc())
        })
        .ok()
        .filter(|time| crate::validate::time_in_range(*time))
        .ok_or_else(|| {
            StateStoreError::corrupt(format!(
                "{column} holds {text:?}, not a time the store reads (years 1 to 9999, UTC)"
            ))
        })
}

/// [`stored_time`] of a column that may be NULL.
fn stored_time_opt(column: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    text.map(|text| stored_time(column, text)).transpose()
}

/// A `workflow_states` row as the store reads it: its timestamps as text (see
/// `backend::time_as_text`), parsed by [`WorkflowRow::parse`], so that one row holding a
/// time the store cannot read fails alone instead of failing (or panicking) the whole
/// statement.
#[derive(Debug, FromQueryResult)]
pub(crate) struct WorkflowRow {
    pub(crate) id: uuid::Uuid,
    workflow_id: String,
    workflow_name: String,
    status: String,
    user_id: Option<String>,
    started_at: String,
    pub(crate) updated_at: String,
    completed_at: Option<String>,
    context: String,
    error: Option<String>,
    pub(crate) version: i64,
    lease_owner: Option<String>,
    lease_expires_at: Option<String>,
    lease_token: i64,
    forked_from_workflow_state_id: Option<uuid::Uuid>,
    forked_from_checkpoint_id: Option<uuid::Uuid>,
    context_base_id: Option<uuid::Uuid>,
    /// The snapshot of the base `context_base_id`, as text, when the row's `context` is
    /// a patch from that snapshot's context (see `queries::readable_workflows`).
    context_base: Option<String>,
}

impl WorkflowRow {
    /// The row with its timestamps parsed; `Serialization` for one the store cannot read.
    pub(crate) fn parse(self) -> Result<workflow_states::Model> {
        let id = self.id;
        let named = move |err: StateStoreError| match err {
            StateStoreError::Serialization(why) => StateStoreError::Serialization(
                why.reworded(|why| format!("workflow state {id}: {why}")),
            ),
            other => other,
        };
        let time = |column: &str, text: &str| {
            stored_time(column, text)
                .map(|time| time.fixed_offset())
                .map_err(named)
        };
        let time_opt = |column: &str, text: Option<&str>| {
            stored_time_opt(column, text)
                .map(|time| time.map(|time| time.fixed_offset()))
                .map_err(named)
        };
        Ok(workflow_states::Model {
            started_at: time("started_at", &self.started_at)?,
            updated_at: time("updated_at", &self.updated_at)?,
            completed_at: time_opt("completed_at", self.completed_at.as_deref())?,
            lease_expires_at: time_opt("lease_expires_at", self.lease_expires_at.as_deref())?,
            id: self.id,
            workflow_id: self.workflow_id,
            workflow_name: self.workflow_name,
            status: self.status,
            user_id: self.user_id,
            context: stored_context(
                &self.context,
                self.context_base_id,
                self.context_base.as_deref(),
            )
            .map_err(named)?,
            context_base_id: self.context_base_id,
            error: self.error,
            version: self.version,
            lease_owner: self.lease_owner,
            lease_token: self.lease_token,
            forked_from_workflow_state_id: self.forked_from_workflow_state_id,
            forked_from_checkpoint_id: self.forked_from_checkpoint_id,
        })
    }
}

/// A `step_states` row with its timestamps as text (see [`WorkflowRow`]).
#[derive(Debug, FromQueryResult)]
pub(crate) struct StepRow {
    pub(crate) workflow_state_id: uuid::Uuid,
    step_id: String,
    status: String,
    started_at: Option<String>,
    completed_at: Option<String>,
    outputs: Option<String>,
    error: Option<String>,
    retry_count: i32,
}

/// A `checkpoints` row with its timestamp as text (see [`WorkflowRow`]), and its base's
/// snapshot when it is stored as a patch (see `queries::readable_checkpoints`).
#[derive(Debug, FromQueryResult)]
pub(crate) struct CheckpointRow {
    pub(crate) id: uuid::Uuid,
    pub(crate) workflow_state_id: uuid::Uuid,
    step_id: String,
    timestamp: String,
    snapshot: String,
    base_id: Option<uuid::Uuid>,
    base: Option<String>,
}

/// A `checkpoints` row (see [`CheckpointRow`]) with who its workflow is, read beside it.
#[derive(Debug, FromQueryResult)]
pub(crate) struct CheckpointOfWorkflowRow {
    id: uuid::Uuid,
    workflow_state_id: uuid::Uuid,
    step_id: String,
    timestamp: String,
    snapshot: String,
    base_id: Option<uuid::Uuid>,
    base: Option<String>,
    workflow_id: String,
    workflow_name: String,
    user_id: Option<String>,
}

impl CheckpointOfWorkflowRow {
    /// The checkpoint's row, and its workflow's id, workflow id, name and user.
    pub(crate) fn split(self) -> (CheckpointRow, (uuid::Uuid, String, String, Option<String>)) {
        let checkpoint = CheckpointRow {
            id: self.id,
            workflow_state_id: self.workflow_state_id,
            step_id: self.step_id,
            timestamp: self.timestamp,
            snapshot: self.snapshot,
            base_id: self.base_id,
            base: self.base,
        };
        let workflow = (
            self.workflow_state_id,
            self.workflow_id,
            self.workflow_name,
            self.user_id,
        );
        (checkpoint, workflow)
    }
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
        context_base_id: Set(None),
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
        .map(|step| step_row(state.id, step))
        .collect()
}

/// The row of one step of the workflow state `workflow_state_id`.
pub(crate) fn step_row(
    workflow_state_id: uuid::Uuid,
    step: &StepState,
) -> step_states::ActiveModel {
    step_states::ActiveModel {
        workflow_state_id: Set(workflow_state_id),
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
    }
}

/// The checkpoint row of a checkpoint, its snapshot whole (see `bases::Form`).
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
        base_id: Set(None),
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

fn step_from_json(step: StepJson) -> Result<StepState> {
    let time = |column: &str, text: Option<&str>| {
        stored_time_opt(column, text).map_err(|err| in_step(&step.step_id, err))
    };
    Ok(StepState {
        started_at: time("started_at", step.started_at.as_deref())?,
        completed_at: time("completed_at", step.completed_at.as_deref())?,
        status: step.status.parse()?,
        step_id: step.step_id,
        outputs: step.outputs.unwrap_or(Value::Null),
        error: step.error,
        retry_count: step.retry_count,
    })
}

/// `err` about step `step_id`.
fn in_step(step_id: &str, err: StateStoreError) -> StateStoreError {
    match err {
        StateStoreError::Serialization(why) => {
            StateStoreError::Serialization(why.reworded(|why| format!("step {step_id:?}: {why}")))
        }
        other => other,
    }
}

/// A workflow state from its row and the JSON array of its steps, as text (parsed
/// straight into steps, not through a `Value` first).
pub(crate) fn workflow_from_row_and_json(
    row: WorkflowRow,
    steps: Option<&str>,
) -> Result<WorkflowState> {
    let row = row.parse()?;
    let steps: Vec<StepJson> = match steps {
        None => Vec::new(),
        Some(steps) => serde_json::from_str::<Option<Vec<StepJson>>>(steps)
            .map_err(|err| {
                StateStoreError::corrupt(format!("steps of workflow state {}: {err}", row.id))
            })?
            .unwrap_or_default(),
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

fn step_from_row(row: StepRow) -> Result<StepState> {
    let time = |column: &str, text: Option<&str>| {
        stored_time_opt(column, text).map_err(|err| in_step(&row.step_id, err))
    };
    let started_at = time("started_at", row.started_at.as_deref())?;
    let completed_at = time("completed_at", row.completed_at.as_deref())?;
    let outputs = match row.outputs.as_deref() {
        Some(text) => stored_json("outputs", text).map_err(|err| in_step(&row.step_id, err))?,
        None => Value::Null,
    };
    Ok(StepState {
        started_at,
        completed_at,
        status: row.status.parse()?,
        step_id: row.step_id,
        outputs,
        error: row.error,
        retry_count: row.retry_count,
    })
}

/// Workflow states from their rows and the step rows of all of them (any order), grouped
/// in memory. Rows that do not convert come back apart with their error, so one corrupt
/// workflow hides no other.
pub(crate) fn workflows_from_rows(
    rows: Vec<WorkflowRow>,
    steps: Vec<StepRow>,
) -> (Vec<WorkflowState>, Vec<(uuid::Uuid, StateStoreError)>) {
    let mut steps_by_workflow: HashMap<uuid::Uuid, Vec<StepRow>> = HashMap::new();
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
            .and_then(|steps| workflow_from_parts(row.parse()?, steps));
        match converted {
            Ok(state) => states.push(state),
            Err(err) => skipped.push((id, err)),
        }
    }
    (states, skipped)
}

/// A checkpoint from its row; `Serialization` when its timestamp is not one the store
/// reads, or its snapshot cannot be read or rebuilt from its base.
pub(crate) fn checkpoint_from_row(row: CheckpointRow) -> Result<Checkpoint> {
    checkpoint_from_row_with(row, &mut None)
}

/// [`checkpoint_from_row`], parsing a base only when it is not `last` already (the base
/// parsed for the row before, which a page of checkpoints mostly shares).
pub(crate) fn checkpoint_from_row_with(
    row: CheckpointRow,
    last: &mut Option<(uuid::Uuid, Value)>,
) -> Result<Checkpoint> {
    let id = row.id;
    let snapshot = (|| {
        let stored = stored_json("snapshot", &row.snapshot)?;
        let Some(base_id) = row.base_id else {
            return Ok(stored);
        };
        if last.as_ref().is_none_or(|(known, _)| *known != base_id) {
            *last = match &row.base {
                Some(text) => Some((base_id, stored_json("base snapshot", text)?)),
                None => None,
            };
        }
        super::bases::snapshot_of(stored, last.as_ref().map(|(_, base)| base))
    })()
    .map_err(|err| in_checkpoint(id, err))?;
    Ok(Checkpoint {
        timestamp: stored_time("timestamp", &row.timestamp)
            .map_err(|err| in_checkpoint(id, err))?,
        id,
        workflow_state_id: row.workflow_state_id,
        snapshot,
        step_id: row.step_id,
    })
}

/// A workflow's context from its row: `context` itself, or, with a base, `context` as a
/// patch applied to the context in the base's snapshot.
fn stored_context(
    context: &str,
    base_id: Option<uuid::Uuid>,
    base_snapshot: Option<&str>,
) -> Result<Value> {
    let stored = stored_json("context", context)?;
    if base_id.is_none() {
        return Ok(stored);
    }
    let base = match base_snapshot {
        Some(text) => match stored_json("base snapshot", text)? {
            Value::Object(mut snapshot) => Some(snapshot.remove("context").ok_or_else(|| {
                StateStoreError::corrupt("its base snapshot holds no context".to_owned())
            })?),
            _ => {
                return Err(StateStoreError::corrupt(
                    "its base snapshot is not a workflow state".to_owned(),
                ));
            }
        },
        None => None,
    };
    super::bases::snapshot_of(stored, base.as_ref())
}

/// A JSON column read as text (see `queries::find_readable`), parsed for its own row:
/// `Serialization` naming the column for text that is not JSON, or JSON nested deeper
/// than the store reads (Postgres keeps jsonb nested far deeper).
fn stored_json(column: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|err| StateStoreError::corrupt(format!("{column} is not readable JSON: {err}")))
}

/// `err` about checkpoint `id`.
pub(crate) fn in_checkpoint(id: uuid::Uuid, err: StateStoreError) -> StateStoreError {
    match err {
        StateStoreError::Serialization(why) => {
            StateStoreError::Serialization(why.reworded(|why| format!("checkpoint {id}: {why}")))
        }
        other => other,
    }
}
