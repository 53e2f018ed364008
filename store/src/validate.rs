//! Input checks that run before anything is written, so bad input gets a typed error and
//! behaves the same on every database (Postgres refuses NUL and over-long strings; SQLite
//! would store them silently).

use chrono::{DateTime, Datelike as _, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ConfigProblem, Field, InputProblem, Result, StateStoreError};
use crate::model::{Checkpoint, WorkflowState};

/// Longest id or name, in characters (the columns are `VARCHAR(255)`).
pub const MAX_ID_CHARS: usize = 255;
/// Most steps one workflow state may have: the delete of steps that are gone lists the
/// others, and SQLite takes at most 32,766 values in one statement.
pub const MAX_STEPS: usize = 30_000;
/// Deepest JSON nesting accepted in a context, outputs or snapshot. Deeper documents could
/// not be read back (serde_json stops at 128 levels) once wrapped in a snapshot.
pub const MAX_JSON_DEPTH: usize = 100;

/// A Postgres schema name for `StateStoreBuilder::postgres_schema`: a letter or `_`,
/// then letters, digits and `_`, at most 63 bytes (Postgres' limit), used as written
/// (capitals included). Anything else is a `Configuration` error, before any statement
/// quotes it.
///
/// ```
/// use llm_orchestrator_state::validate::postgres_schema_name;
/// assert!(postgres_schema_name("Tenant_42").is_ok());
/// assert!(postgres_schema_name("tenant-42").is_err());
/// ```
pub fn postgres_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && schema.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(StateStoreError::configuration(
            ConfigProblem::InvalidOption,
            format!(
                "invalid Postgres schema name {:?}: use letters, digits and _ (at most 63)",
                crate::error::echo(schema)
            ),
        ))
    }
}

/// Whether the store writes and reads `time`: the years 1 to 9999 in UTC, which both
/// databases store faithfully (SQLite keeps RFC 3339 text, whose years have four digits;
/// Postgres would go further, but no reader could then decode it).
pub fn time_in_range(time: DateTime<Utc>) -> bool {
    (1..=9999).contains(&time.year())
}

/// A time the caller gives the store: within [`time_in_range`], else `InvalidInput`.
pub(crate) fn time(field: Field, what: &str, time: DateTime<Utc>) -> Result<()> {
    if time_in_range(time) {
        Ok(())
    } else {
        Err(invalid(
            field,
            InputProblem::OutOfRange,
            format!("{what} {time} is outside the years 1 to 9999 (UTC) that the store keeps"),
        ))
    }
}

fn invalid(field: Field, problem: InputProblem, message: String) -> StateStoreError {
    StateStoreError::invalid_input(field, problem, message)
}

/// A required id or name: non-empty, at most 255 characters, no NUL.
pub(crate) fn id(field: Field, what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(
            field,
            InputProblem::Empty,
            format!("{what} is empty"),
        ));
    }
    let chars = value.chars().count();
    if chars > MAX_ID_CHARS {
        return Err(invalid(
            field,
            InputProblem::TooLong,
            format!("{what} has {chars} characters; at most {MAX_ID_CHARS} are allowed"),
        ));
    }
    text(field, what, value)
}

/// Free text: anything but NUL, which Postgres cannot store in text columns.
pub(crate) fn text(field: Field, what: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(invalid(
            field,
            InputProblem::ContainsNul,
            format!("{what} contains a NUL character"),
        ));
    }
    Ok(())
}

/// JSON that both databases store and give back unchanged: no NUL in any string or key,
/// nesting at most [`MAX_JSON_DEPTH`]. Walks without recursion, so a hostile document
/// cannot overflow the stack here.
pub(crate) fn json(field: Field, what: &str, value: &Value) -> Result<()> {
    json_within(field, what, value, MAX_JSON_DEPTH)
}

/// Levels a snapshot adds around a state's JSON (state, steps map, step, outputs), so a
/// checkpoint of any state a save accepts is accepted too.
const SNAPSHOT_WRAPPING: usize = 4;

fn json_within(field: Field, what: &str, value: &Value, max_depth: usize) -> Result<()> {
    let mut pending: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((node, depth)) = pending.pop() {
        match node {
            Value::String(s) if s.contains('\0') => {
                return Err(invalid(
                    field,
                    InputProblem::ContainsNul,
                    format!("{what} contains a NUL character in a string"),
                ));
            }
            Value::Array(items) => {
                check_depth(field, what, depth, max_depth)?;
                pending.extend(items.iter().map(|item| (item, depth + 1)));
            }
            Value::Object(map) => {
                check_depth(field, what, depth, max_depth)?;
                for (key, item) in map {
                    if key.contains('\0') {
                        return Err(invalid(
                            field,
                            InputProblem::ContainsNul,
                            format!("{what} contains a NUL character in a key"),
                        ));
                    }
                    pending.push((item, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_depth(field: Field, what: &str, depth: usize, max_depth: usize) -> Result<()> {
    if depth > max_depth {
        return Err(invalid(
            field,
            InputProblem::TooDeep,
            format!("{what} is nested deeper than {max_depth} levels"),
        ));
    }
    Ok(())
}

/// Fails when `value` serializes to more than `max_bytes` bytes of JSON text. Counts
/// without building the text.
fn size(field: Field, what: &str, value: &Value, max_bytes: usize) -> Result<u64> {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value)
        .map_err(|err| invalid(field, InputProblem::BadJson, format!("{what}: {err}")))?;
    if counter.0 > max_bytes {
        return Err(invalid(
            field,
            InputProblem::TooLarge,
            format!(
                "{what} is {} bytes of JSON; the store's limit is {max_bytes} (StoreOptions::max_json_bytes)",
                counter.0
            ),
        ));
    }
    Ok(counter.0 as u64)
}

/// Everything a save writes; `max_json_bytes` bounds the context and each step's outputs.
pub(crate) fn workflow_state(state: &WorkflowState, max_json_bytes: usize) -> Result<()> {
    id(Field::WorkflowId, "workflow_id", &state.workflow_id)?;
    id(Field::WorkflowName, "workflow_name", &state.workflow_name)?;
    time(Field::Time, "started_at", state.started_at)?;
    time(Field::Time, "updated_at", state.updated_at)?;
    if let Some(completed_at) = state.completed_at {
        time(Field::Time, "completed_at", completed_at)?;
    }
    if let Some(user_id) = &state.user_id {
        if user_id.chars().count() > MAX_ID_CHARS {
            return Err(invalid(
                Field::UserId,
                InputProblem::TooLong,
                format!("user_id is longer than {MAX_ID_CHARS} characters"),
            ));
        }
        text(Field::UserId, "user_id", user_id)?;
    }
    if let Some(error) = &state.error {
        text(Field::Error, "error", error)?;
    }
    json(Field::Context, "context", &state.context)?;
    size(Field::Context, "context", &state.context, max_json_bytes)?;
    if state.steps.len() > MAX_STEPS {
        return Err(invalid(
            Field::Steps,
            InputProblem::TooLarge,
            format!(
                "{} steps; a workflow state may have at most {MAX_STEPS}",
                state.steps.len()
            ),
        ));
    }
    for (key, step) in &state.steps {
        if key != &step.step_id {
            return Err(invalid(
                Field::Steps,
                InputProblem::Mismatch,
                format!(
                    "step stored under key {:?} has step_id {:?}",
                    crate::error::echo(key),
                    crate::error::echo(&step.step_id)
                ),
            ));
        }
        id(Field::StepId, "step_id", &step.step_id)?;
        for (what, at) in [
            ("step started_at", step.started_at),
            ("step completed_at", step.completed_at),
        ] {
            if let Some(at) = at {
                time(Field::StepTime, what, at)?;
            }
        }
        if let Some(error) = &step.error {
            text(Field::StepError, "step error", error)?;
        }
        json(Field::StepOutputs, "step outputs", &step.outputs)?;
        size(
            Field::StepOutputs,
            "step outputs",
            &step.outputs,
            max_json_bytes,
        )?;
    }
    Ok(())
}

/// Everything a checkpoint writes; `max_json_bytes` bounds the snapshot. Returns the
/// snapshot's size in bytes of JSON text.
pub(crate) fn checkpoint(checkpoint: &Checkpoint, max_json_bytes: usize) -> Result<u64> {
    id(Field::StepId, "step_id", &checkpoint.step_id)?;
    time(
        Field::CheckpointTime,
        "checkpoint timestamp",
        checkpoint.timestamp,
    )?;
    json_within(
        Field::Snapshot,
        "snapshot",
        &checkpoint.snapshot,
        MAX_JSON_DEPTH + SNAPSHOT_WRAPPING,
    )?;
    size(
        Field::Snapshot,
        "snapshot",
        &checkpoint.snapshot,
        max_json_bytes,
    )
}

/// `InvalidInput`: `checkpoint` holds no state of workflow state `workflow`, and why.
fn holds_no_state(
    checkpoint: &Checkpoint,
    workflow: Uuid,
    problem: InputProblem,
    why: impl std::fmt::Display,
) -> StateStoreError {
    invalid(
        Field::Snapshot,
        problem,
        format!(
            "checkpoint {} holds no state of workflow state {workflow}: {why}",
            checkpoint.id
        ),
    )
}

/// The workflow state `checkpoint`'s snapshot holds, when it is a state of the workflow
/// the checkpoint is filed under (its id); else `InvalidInput` saying why. A snapshot may
/// be any JSON (the orchestrator's own `{"checkpoint": 3}`): it is stored as given, and
/// only turning it into a workflow state needs it to be one.
pub(crate) fn snapshot_state(checkpoint: &Checkpoint) -> Result<WorkflowState> {
    let workflow = checkpoint.workflow_state_id;
    let state = WorkflowState::deserialize(&checkpoint.snapshot).map_err(|err| {
        holds_no_state(
            checkpoint,
            workflow,
            InputProblem::NotAWorkflowState,
            format_args!("its snapshot is not a workflow state ({err})"),
        )
    })?;
    if state.id != workflow {
        return Err(holds_no_state(
            checkpoint,
            workflow,
            InputProblem::OtherWorkflow,
            format_args!("its snapshot is the state of workflow state {}", state.id),
        ));
    }
    Ok(state)
}

/// The workflow state `checkpoint` holds, when it is a state of `workflow`, the workflow
/// it is filed under: [`snapshot_state`], with the workflow's id, name and user too (its
/// status, steps and context may differ: they move on between steps). Else
/// `InvalidInput` saying why: restoring, rolling back to, forking or resuming from it
/// would turn the workflow into another.
pub(crate) fn checkpoint_state(
    checkpoint: &Checkpoint,
    workflow: Identity<'_>,
) -> Result<WorkflowState> {
    if checkpoint.workflow_state_id != workflow.id {
        return Err(invalid(
            Field::Checkpoint,
            InputProblem::OtherWorkflow,
            format!(
                "checkpoint {} is of workflow state {}, not of {}",
                checkpoint.id, checkpoint.workflow_state_id, workflow.id
            ),
        ));
    }
    let state = snapshot_state(checkpoint)?;
    match differences(&Identity::of(&state), &workflow) {
        Some(differences) => Err(holds_no_state(
            checkpoint,
            workflow.id,
            InputProblem::OtherWorkflow,
            format_args!("its snapshot is of another workflow: {differences}"),
        )),
        None => Ok(state),
    }
}

/// Who a workflow is: what a checkpoint's snapshot must share with the workflow it is
/// filed under.
pub(crate) struct Identity<'a> {
    /// The store's id of the run.
    pub(crate) id: uuid::Uuid,
    /// The orchestrator's id.
    pub(crate) workflow_id: &'a str,
    /// Its name.
    pub(crate) workflow_name: &'a str,
    /// Who started it.
    pub(crate) user_id: Option<&'a str>,
}

impl<'a> Identity<'a> {
    /// The identity of `state`.
    pub(crate) fn of(state: &'a WorkflowState) -> Self {
        Self {
            id: state.id,
            workflow_id: &state.workflow_id,
            workflow_name: &state.workflow_name,
            user_id: state.user_id.as_deref(),
        }
    }
}

/// How `snapshot`'s workflow id, name and user differ from `workflow`'s, for people
/// (`workflow_name "A" (the workflow's: "B")`), or `None` when they are the same.
fn differences(snapshot: &Identity<'_>, workflow: &Identity<'_>) -> Option<String> {
    let show = |value: Option<&str>| {
        value.map_or_else(
            || "none".to_owned(),
            |value| format!("{:?}", crate::error::echo(value)),
        )
    };
    let differences: Vec<String> = [
        ("workflow_id", snapshot.workflow_id, workflow.workflow_id),
        (
            "workflow_name",
            snapshot.workflow_name,
            workflow.workflow_name,
        ),
    ]
    .map(|(field, theirs, ours)| (field, Some(theirs), Some(ours)))
    .into_iter()
    .chain([("user_id", snapshot.user_id, workflow.user_id)])
    .filter(|(_, theirs, ours)| theirs != ours)
    .map(|(field, theirs, ours)| {
        format!("{field} {} (the workflow's: {})", show(theirs), show(ours))
    })
    .collect();
    (!differences.is_empty()).then(|| differences.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_what_a_database_would_mangle() {
        assert!(id(Field::Other, "x", "ok").is_ok());
        assert!(id(Field::Other, "x", "").is_err());
        assert!(id(Field::Other, "x", &"é".repeat(255)).is_ok());
        assert!(id(Field::Other, "x", &"é".repeat(256)).is_err());
        assert!(id(Field::Other, "x", "a\0b").is_err());
        assert!(json(Field::Other, "j", &json!({"a": ["b\u{0}"]})).is_err());
        assert!(json(Field::Other, "j", &json!({"a\u{0}": 1})).is_err());
        let mut deep = json!(1);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(json(Field::Other, "j", &deep).is_err());
        // Dropping a 10,000-deep value recurses; leak it rather than risk the test stack.
        std::mem::forget(deep);
    }
}
