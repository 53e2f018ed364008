//! The API types: workflow states, their steps, checkpoints and statuses.
//!
//! These are plain serde types; the database rows live in the `entity` crate and are
//! converted in one place (`seaorm::convert`).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StateStoreError;

/// The current time, truncated to microseconds: the precision both databases keep, so a
/// timestamp made here loads back equal.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    #[cfg(test)]
    let now = now + test_clock::skew();
    now.trunc_subsecs(6)
}

/// A skewed clock for this crate's own tests: what [`now`] returns on this thread is off
/// by the skew set here, as on a machine whose clock is wrong.
#[cfg(test)]
pub(crate) mod test_clock {
    use std::cell::Cell;

    thread_local! {
        static SKEW: Cell<chrono::Duration> = const { Cell::new(chrono::Duration::zero()) };
    }

    /// How far this thread's clock is off.
    pub(crate) fn skew() -> chrono::Duration {
        SKEW.with(Cell::get)
    }

    /// Sets how far this thread's clock is off (ahead when positive).
    pub(crate) fn set(skew: chrono::Duration) {
        SKEW.with(|cell| cell.set(skew));
    }
}

/// Lifecycle of a whole workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    /// Created, not started yet.
    Pending,
    /// Executing steps.
    Running,
    /// Suspended, waiting for something (a human, a rate limit) before it goes on.
    Paused,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
}

impl WorkflowStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [WorkflowStatus; 5] = [
        Self::Pending,
        Self::Running,
        Self::Paused,
        Self::Completed,
        Self::Failed,
    ];
    /// The statuses of a workflow that still has work to do (and may need recovery).
    pub const ACTIVE: [WorkflowStatus; 3] = [Self::Pending, Self::Running, Self::Paused];

    /// The lowercase name stored in the database (`"running"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// Pending, running or paused.
    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }
}

/// Lifecycle of one step of a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Not started yet.
    Pending,
    /// Executing.
    Running,
    /// Finished, with outputs.
    Completed,
    /// Finished with an error (it may be retried).
    Failed,
    /// Deliberately not executed.
    Skipped,
}

impl StepStatus {
    /// Completed, failed or skipped: the step will not run again unless retried.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Skipped)
    }

    /// Every status, in lifecycle order.
    pub const ALL: [StepStatus; 5] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Skipped,
    ];

    /// The lowercase name stored in the database (`"completed"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

macro_rules! status_text {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = StateStoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // In any case: a row written by hand or another tool (`RUNNING`) still
                // reads as the status it names.
                Self::ALL
                    .into_iter()
                    .find(|status| status.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| {
                        StateStoreError::invalid_state(format!(
                            concat!("unknown ", $what, " {:?}"),
                            crate::error::echo(s)
                        ))
                    })
            }
        }
    };
}

status_text!(WorkflowStatus, "workflow status");
status_text!(StepStatus, "step status");

/// The state of one step of a workflow: what it produced, or why it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// The step's id, unique within its workflow (at most 255 characters).
    pub step_id: String,
    /// Where the step is in its lifecycle.
    pub status: StepStatus,
    /// When the step last started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When the step finished (completed or failed).
    pub completed_at: Option<DateTime<Utc>>,
    /// What the step produced (`Value::Null` when nothing yet).
    pub outputs: Value,
    /// The error of the last failed attempt.
    pub error: Option<String>,
    /// How many times the step was retried.
    pub retry_count: i32,
}

impl StepState {
    /// A pending step with no outputs.
    pub fn new(step_id: impl Into<String>) -> Self {
        Self {
            step_id: step_id.into(),
            status: StepStatus::Pending,
            started_at: None,
            completed_at: None,
            outputs: Value::Null,
            error: None,
            retry_count: 0,
        }
    }

    /// Starts (or restarts) the step: running, started now, no end time or error.
    pub fn mark_running(&mut self) {
        self.status = StepStatus::Running;
        self.started_at = Some(now());
        self.completed_at = None;
        self.error = None;
    }

    /// Finishes the step successfully with its outputs.
    pub fn mark_completed(&mut self, outputs: Value) {
        self.status = StepStatus::Completed;
        self.completed_at = Some(now());
        self.outputs = outputs;
        self.error = None;
    }

    /// Finishes the step with an error.
    pub fn mark_failed(&mut self, error: impl Into<String>) {
        self.status = StepStatus::Failed;
        self.completed_at = Some(now());
        self.error = Some(error.into());
    }

    /// Marks the step as deliberately not executed.
    pub fn mark_skipped(&mut self) {
        self.status = StepStatus::Skipped;
        self.completed_at = Some(now());
    }

    /// Counts one more retry of the step.
    pub fn increment_retry(&mut self) {
        self.retry_count = self.retry_count.saturating_add(1);
    }
}

/// The persisted state of one workflow run and all its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowState {
    /// The store's id for this run.
    pub id: Uuid,
    /// The orchestrator's id for the workflow (several runs may share it).
    pub workflow_id: String,
    /// A human-readable name.
    pub workflow_name: String,
    /// Where the workflow is in its lifecycle.
    pub status: WorkflowStatus,
    /// Who started it, if known.
    pub user_id: Option<String>,
    /// When the run was created.
    pub started_at: DateTime<Utc>,
    /// When the state last changed.
    pub updated_at: DateTime<Utc>,
    /// When the run finished (completed or failed).
    pub completed_at: Option<DateTime<Utc>>,
    /// The workflow's inputs and working data.
    pub context: Value,
    /// The error that failed the workflow.
    pub error: Option<String>,
    /// The steps, keyed by their `step_id`.
    #[serde(default)]
    pub steps: HashMap<String, StepState>,
}

impl WorkflowState {
    /// A new pending workflow run with a fresh time-ordered id and no steps.
    pub fn new(
        workflow_id: impl Into<String>,
        workflow_name: impl Into<String>,
        user_id: Option<String>,
        context: Value,
    ) -> Self {
        let created = now();
        Self {
            id: Uuid::now_v7(),
            workflow_id: workflow_id.into(),
            workflow_name: workflow_name.into(),
            status: WorkflowStatus::Pending,
            user_id,
            started_at: created,
            updated_at: created,
            completed_at: None,
            context,
            error: None,
            steps: HashMap::new(),
        }
    }

    fn set_status(&mut self, status: WorkflowStatus) {
        self.status = status;
        self.touch();
    }

    /// `updated_at` moves to now, and never back: at least a microsecond past where it
    /// was, even when a replica whose clock runs ahead saved it last. So a checkpoint this
    /// replica takes next sorts after that replica's, whatever the two clocks say.
    fn touch(&mut self) {
        self.updated_at = Ord::max(now(), self.updated_at + chrono::TimeDelta::microseconds(1));
    }

    /// Running; clears the end time and error of an earlier attempt.
    pub fn mark_running(&mut self) {
        self.set_status(WorkflowStatus::Running);
        self.completed_at = None;
        self.error = None;
    }

    /// Paused, waiting to be resumed.
    pub fn mark_paused(&mut self) {
        self.set_status(WorkflowStatus::Paused);
    }

    /// Completed successfully, now.
    pub fn mark_completed(&mut self) {
        self.set_status(WorkflowStatus::Completed);
        self.completed_at = Some(self.updated_at);
        self.error = None;
    }

    /// Failed with `error`, now.
    pub fn mark_failed(&mut self, error: impl Into<String>) {
        self.set_status(WorkflowStatus::Failed);
        self.completed_at = Some(self.updated_at);
        self.error = Some(error.into());
    }

    /// Pending, running or paused: the workflow still has work to do.
    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }

    /// The step with this id, if the workflow has it.
    pub fn step(&self, step_id: &str) -> Option<&StepState> {
        self.steps.get(step_id)
    }

    /// Adds or replaces a step (keyed by its `step_id`) and touches `updated_at`.
    pub fn upsert_step(&mut self, step: StepState) {
        self.steps.insert(step.step_id.clone(), step);
        self.touch();
    }
}

/// A snapshot of a workflow taken after a step, to resume or roll back to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint's id (time-ordered).
    pub id: Uuid,
    /// The workflow run it belongs to.
    pub workflow_state_id: Uuid,
    /// The step after which it was taken.
    pub step_id: String,
    /// When it was taken.
    pub timestamp: DateTime<Utc>,
    /// Any JSON, stored and given back exactly as written: usually the serialized
    /// [`WorkflowState`] ([`Checkpoint::of`]), which restore, rollback, fork and recovery
    /// resume from; or whatever the orchestrator keeps (`{"checkpoint": 3}`), which those
    /// refuse (see [`Checkpoint::state`]).
    pub snapshot: Value,
}

impl Checkpoint {
    /// A checkpoint taken now, with a fresh time-ordered id.
    pub fn new(workflow_state_id: Uuid, step_id: impl Into<String>, snapshot: Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            workflow_state_id,
            step_id: step_id.into(),
            timestamp: now(),
            snapshot,
        }
    }

    /// A checkpoint of `state` after `step_id`, snapshotting the whole state. Taken now,
    /// or at the state's `updated_at` if that is later (saved by a replica whose clock
    /// runs ahead): a checkpoint is never older than the state it holds.
    pub fn of(state: &WorkflowState, step_id: impl Into<String>) -> Result<Self, StateStoreError> {
        let mut checkpoint = Self::new(
            state.id,
            step_id,
            serde_json::to_value(state).map_err(StateStoreError::from)?,
        );
        checkpoint.timestamp = Ord::max(checkpoint.timestamp, state.updated_at);
        Ok(checkpoint)
    }

    /// The workflow state this checkpoint holds: its snapshot as a [`WorkflowState`] of
    /// the workflow it is filed under (`workflow_state_id`). `InvalidInput` saying why
    /// when it holds none: the snapshot is other JSON, or the state of another workflow.
    pub fn state(&self) -> Result<WorkflowState, StateStoreError> {
        crate::validate::snapshot_state(self)
    }

    /// [`state`](Self::state), checked to be a state of `workflow` (the workflow the
    /// checkpoint is filed under, as stored now): the same id, workflow id, name and user;
    /// its status, steps and context may differ. What a rollback to it would make the
    /// workflow; `InvalidInput` saying why when the checkpoint holds no state of it.
    pub fn state_of(&self, workflow: &WorkflowState) -> Result<WorkflowState, StateStoreError> {
        crate::validate::checkpoint_state(self, crate::validate::Identity::of(workflow))
    }
}

/// Where a page of workflow states ended, by `(updated_at, id)`: pass it back for the
/// next page (keyset pagination, so pages stay fast however deep).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateCursor {
    /// `updated_at` of the page's last workflow.
    pub updated_at: DateTime<Utc>,
    /// `id` of the page's last workflow.
    pub id: Uuid,
}

/// One page of workflow states, newest update first.
#[derive(Debug, Clone, PartialEq)]
pub struct StatePage {
    /// The workflows, with their steps.
    pub workflows: Vec<WorkflowState>,
    /// Where to continue, or `None` after the last page.
    pub next: Option<StateCursor>,
    /// The workflows of this page whose stored rows cannot be read, with why: they are
    /// not in `workflows`, and the next page does not repeat them.
    pub skipped: Vec<SkippedWorkflow>,
}

/// A workflow whose stored row (or one of its steps) cannot be read back: invalid JSON
/// written into a SQLite file by hand, JSON nested deeper than the store reads, a value
/// the database accepts but the store cannot represent. Reads that return many workflows
/// report it here instead of failing as a whole or leaving it out unsaid; saving the
/// workflow again, or rolling it back to a checkpoint, repairs it.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedWorkflow {
    /// The workflow's id (`WorkflowState::id`).
    pub id: Uuid,
    /// Why it cannot be read (`Serialization` or `InvalidState`).
    pub error: StateStoreError,
}

/// Every active workflow that reads back, and the ones that do not
/// ([`StateStore::list_active_workflows_report`](crate::StateStore::list_active_workflows_report)).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActiveWorkflows {
    /// The pending, running and paused workflows with their steps, most recently
    /// updated first.
    pub workflows: Vec<WorkflowState>,
    /// Active workflows whose rows cannot be read, with why.
    pub skipped: Vec<SkippedWorkflow>,
}

/// What a claim took, and what it could not
/// ([`StateStore::claim_workflows_report`](crate::StateStore::claim_workflows_report)).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClaimReport {
    /// The workflows now leased to the caller.
    pub claimed: Vec<Claim>,
    /// Claimable workflows whose rows cannot be read: left unclaimed, as they were, for
    /// an operator (or another replica's report) to deal with.
    pub skipped: Vec<SkippedWorkflow>,
}

/// What a recovery resumes, and what it could not
/// ([`StateStore::recover_workflows_report`](crate::StateStore::recover_workflows_report)).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecoveryReport {
    /// The workflows now leased to the caller, each with the state to resume from.
    pub recovered: Vec<Recovery>,
    /// Claimable workflows whose rows cannot be read: left unclaimed, as they were.
    pub skipped: Vec<SkippedWorkflow>,
}

/// A value together with the version it is stored at (see
/// [`StateStore::save_workflow_state_if`](crate::StateStore::save_workflow_state_if)).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version: 1 when first saved, one more with every save.
    pub version: i64,
}

/// A recovery lease on one workflow: while it lasts, no other owner can claim the
/// workflow, and writes made under it are refused once another owner has taken it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The workflow the lease is on.
    pub workflow_state_id: Uuid,
    /// Who holds it (a replica or process name).
    pub owner: String,
    /// The fencing token: one more with every claim of this workflow, so a write carrying
    /// an older token comes from an owner that lost the workflow.
    pub token: i64,
    /// When the lease runs out unless renewed, on the database's clock: the Postgres
    /// server's (so replicas whose clocks disagree agree on it), this machine's on SQLite.
    pub expires_at: DateTime<Utc>,
}

/// A workflow claimed for recovery, with the lease that guards it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The workflow as stored.
    pub state: WorkflowState,
    /// The lease this process now holds on it.
    pub lease: Lease,
}

/// A workflow to resume after a restart: claimed for this process, with its newest
/// checkpoint and the state to resume from.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// The state to resume from: the newest checkpoint's state, or the stored state when
    /// the workflow has no checkpoint yet, or when its newest holds no state of it (see
    /// [`Checkpoint::state_of`]: an orchestrator's own JSON, say).
    pub state: WorkflowState,
    /// The newest checkpoint, if any, whatever its snapshot holds.
    pub checkpoint: Option<Checkpoint>,
    /// The lease this process holds on the workflow; save under it.
    pub lease: Lease,
}

/// What a conditional save requires of the stored workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveCondition {
    /// The stored version is exactly this; 0 means the workflow must not exist yet.
    Version(i64),
    /// The caller still holds this lease (no other owner has claimed the workflow since).
    Lease(Lease),
}

/// How [`record_step_with`](crate::StateStore::record_step_with) writes a step beyond the
/// step itself: changes to the workflow's context, applied to the *stored* context inside
/// the step's own transaction, and a condition the write needs.
///
/// Steps that run in parallel change the context through merge patches, each naming
/// only the keys it sets: all of them land, whatever order they commit in. A plain
/// [`record_step`](crate::StateStore::record_step) writes the caller's whole context
/// instead, and of two parallel steps that both changed it the later wins.
///
/// ```
/// use llm_orchestrator_state::{SaveCondition, StepWrite};
/// use serde_json::json;
///
/// // Set `summary`, delete `draft`, keep every other key as stored.
/// let write = StepWrite::new().merge_context(json!({"summary": "done", "draft": null}));
/// let fenced = write.clone().only_if(SaveCondition::Version(3));
/// assert_ne!(write, fenced);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepWrite {
    pub(crate) context_patches: Vec<Value>,
    pub(crate) condition: Option<SaveCondition>,
}

impl StepWrite {
    /// A write of the step alone: the stored context as it is.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `patch`, a JSON merge patch (RFC 7386), to the stored context: each key of
    /// an object patch sets that key (recursively for objects), `null` deletes it, and
    /// anything else than an object replaces the whole context. Patches given several
    /// times apply in order.
    pub fn merge_context(mut self, patch: Value) -> Self {
        self.context_patches.push(patch);
        self
    }

    /// Writes only if `condition` holds (see
    /// [`record_step_if`](crate::StateStore::record_step_if)); `Conflict` otherwise.
    pub fn only_if(mut self, condition: SaveCondition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// The context `stored` becomes under this write's patches.
    pub(crate) fn patched(&self, stored: &Value) -> Value {
        let mut context = stored.clone();
        for patch in &self.context_patches {
            json_patch::merge(&mut context, patch);
        }
        context
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_are_lowercase_everywhere() {
        for status in WorkflowStatus::ALL {
            let text = status.to_string();
            assert_eq!(text, text.to_lowercase());
            assert_eq!(serde_json::to_value(status).unwrap(), json!(text));
            assert_eq!(text.parse::<WorkflowStatus>().unwrap(), status);
        }
        for status in StepStatus::ALL {
            assert_eq!(status.to_string().parse::<StepStatus>().unwrap(), status);
        }
        assert_eq!(
            "RUNNING".parse::<WorkflowStatus>().unwrap(),
            WorkflowStatus::Running
        );
        assert_eq!(
            "Skipped".parse::<StepStatus>().unwrap(),
            StepStatus::Skipped
        );
        assert!(matches!(
            "runnin".parse::<WorkflowStatus>(),
            Err(StateStoreError::InvalidState(_))
        ));
    }

    #[test]
    fn lifecycle_sets_times_and_errors() {
        let mut state = WorkflowState::new("wf", "name", None, json!({}));
        assert!(state.is_active());
        state.mark_failed("boom");
        assert!(!state.is_active());
        assert_eq!(state.error.as_deref(), Some("boom"));
        assert_eq!(state.completed_at, Some(state.updated_at));
        state.mark_running();
        assert_eq!(state.error, None);
        assert_eq!(state.completed_at, None);
        state.mark_paused();
        assert!(state.is_active());
        state.mark_completed();
        assert_eq!(state.status, WorkflowStatus::Completed);
    }

    #[test]
    fn snapshot_restores_an_equal_state() {
        let mut state = WorkflowState::new("wf", "name", Some("u".into()), json!({"a": [1, 2.5]}));
        let mut step = StepState::new("s1");
        step.mark_running();
        step.increment_retry();
        step.mark_completed(json!({"text": "héllo"}));
        state.upsert_step(step);
        let checkpoint = Checkpoint::of(&state, "s1").unwrap();
        assert_eq!(checkpoint.state().unwrap(), state);
        assert_eq!(checkpoint.state_of(&state).unwrap(), state);
    }

    #[test]
    fn a_snapshot_that_is_no_state_of_the_workflow_says_why() {
        let state = WorkflowState::new("wf", "name", None, json!({}));
        let other = WorkflowState::new("wf-2", "name", None, json!({}));
        let mut renamed = state.clone();
        renamed.workflow_name = "another name".into();
        let cases = [
            (json!({"checkpoint": 3}), "not a workflow state"),
            (json!("text"), "not a workflow state"),
            (json!(null), "not a workflow state"),
            (
                serde_json::to_value(&other).unwrap(),
                "the state of workflow state",
            ),
            (serde_json::to_value(&renamed).unwrap(), "workflow_name"),
        ];
        for (snapshot, why) in cases {
            let checkpoint = Checkpoint::new(state.id, "s", snapshot);
            let err = checkpoint.state_of(&state).unwrap_err();
            assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
            let message = err.to_string();
            assert!(
                message.contains("holds no state of workflow state"),
                "{message}"
            );
            assert!(message.contains(why), "{message}");
        }
    }
}
