//! The `StateStore` trait: everything an orchestrator asks of its state store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;
use std::time::Duration;

use crate::history::{
    CheckpointInfo, CheckpointUsage, Lineage, PruneReport, RetentionPolicy, WorkflowBundle,
};
use crate::model::{
    ActiveWorkflows, Checkpoint, Claim, ClaimReport, Lease, Recovery, RecoveryReport,
    SaveCondition, StateCursor, StatePage, StepState, StepWrite, Versioned, WorkflowState,
};

/// Persistence for workflow state and checkpoints.
///
/// Implementations are `Send + Sync` and object safe, so an orchestrator can hold an
/// `Arc<dyn StateStore>` and share it across tasks.
///
/// ```
/// use std::sync::Arc;
/// use llm_orchestrator_state::{SqliteStateStore, StateStore, WorkflowState};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<dyn StateStore> = Arc::new(SqliteStateStore::new(":memory:").await?);
/// let state = WorkflowState::new("wf-1", "Demo", None, serde_json::json!({}));
/// store.save_workflow_state(&state).await?;
/// assert_eq!(store.load_workflow_state(&state.id).await?, state);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Inserts or replaces a workflow state and all its steps, atomically. Steps that are
    /// no longer in `state.steps` are deleted. With
    /// [`AutoCheckpoint`](crate::AutoCheckpoint) on, a checkpoint is taken in the same
    /// transaction. While a replica holds a live lease on the workflow
    /// ([`claim_workflows`](Self::claim_workflows)), this and every other write without
    /// that lease (`record_step`, `create_checkpoint`, `rollback_to_checkpoint`, a save
    /// by version) is refused with `Conflict` naming the holder; write under the lease
    /// with the `*_if` calls. Without leases nothing changes.
    async fn save_workflow_state(&self, state: &WorkflowState) -> Result<()>;

    /// Records a finished (or failed) step: writes `step`, the workflow's fields from
    /// `state` and a checkpoint of the workflow after that step, in one transaction (one
    /// round trip on Postgres when `state` is the stored workflow), applying checkpoint
    /// retention. Returns the checkpoint, and replaces `state` with the workflow as
    /// stored after the step. On error nothing is stored and `state` is unchanged.
    ///
    /// Steps recorded in parallel all land: a call writes its own step and never
    /// overwrites or deletes the others, even from a copy of the state read before they
    /// were recorded. Its checkpoint holds every step committed before it plus its own,
    /// so a workflow's checkpoints follow one another in commit order. The workflow's
    /// fields (status, error, context...) come from `state` where it changed them since
    /// it was read; of two parallel calls that both changed one, the later wins. To
    /// change parts of the context in parallel, use
    /// [`record_step_with`](Self::record_step_with) and a merge patch.
    ///
    /// The same call sent again (the same step from the same copy of the state, after a
    /// reply lost to a dropped connection) stores nothing new and returns the first
    /// call's checkpoint. Refused (`Conflict`) while a live lease holds the workflow, as
    /// every plain write (see [`save_workflow_state`](Self::save_workflow_state)).
    async fn record_step(&self, state: &mut WorkflowState, step: StepState) -> Result<Checkpoint>;

    /// The workflow state with this id, with its steps; `NotFound` if there is none.
    async fn load_workflow_state(&self, id: &Uuid) -> Result<WorkflowState>;

    /// The most recently updated run of the workflow with this orchestrator id.
    async fn load_workflow_state_by_workflow_id(&self, workflow_id: &str) -> Result<WorkflowState>;

    /// Every pending, running or paused workflow with its steps, most recently updated
    /// first. Runs a fixed number of queries whatever the count. A workflow whose stored
    /// row cannot be read is left out (and logged as a warning);
    /// [`list_active_workflows_report`](Self::list_active_workflows_report) says which.
    async fn list_active_workflows(&self) -> Result<Vec<WorkflowState>>;

    /// [`list_active_workflows`](Self::list_active_workflows), and apart the active
    /// workflows whose stored rows cannot be read, each with its error: a caller that
    /// resumes from this list learns that they exist. (This default, for other
    /// implementations, reports none.)
    async fn list_active_workflows_report(&self) -> Result<ActiveWorkflows> {
        Ok(ActiveWorkflows {
            workflows: self.list_active_workflows().await?,
            skipped: Vec::new(),
        })
    }

    /// One page of the active workflows with their steps, most recently updated first:
    /// at most `limit`, after `after` (the previous page's `next`). For recovering or
    /// inspecting 100,000 workflows without holding them all. Workflows of the page whose
    /// stored rows cannot be read are in its `skipped`, with their errors.
    async fn list_active_workflows_page(
        &self,
        after: Option<&StateCursor>,
        limit: u64,
    ) -> Result<StatePage>;

    /// Stores a checkpoint of an existing workflow (`NotFound` if the workflow does not
    /// exist), then applies the store's checkpoint retention in the same transaction.
    /// Storing the very same checkpoint again succeeds and writes nothing, so a call that
    /// failed with `Connection` after its commit went through can be retried; another
    /// checkpoint with the same id is a `Conflict`, as is any repeat inside a transaction.
    /// The snapshot may be any JSON within the store's limits (size, nesting, no NUL),
    /// and every read gives it back exactly as written: a workflow state
    /// ([`Checkpoint::of`](crate::Checkpoint::of)), which restore, rollback, fork and
    /// recovery resume from, or the orchestrator's own JSON (`{"checkpoint": 3}`), which
    /// they refuse (see [`restore_from_checkpoint`](Self::restore_from_checkpoint)).
    /// Refused (`Conflict`) while a live lease holds the workflow: recovery would resume
    /// from it.
    async fn create_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()>;

    /// The checkpoint with this id; `NotFound` if there is none.
    async fn get_checkpoint(&self, checkpoint_id: &Uuid) -> Result<Checkpoint>;

    /// The newest checkpoint of a workflow, if it has any.
    async fn get_latest_checkpoint(&self, workflow_state_id: &Uuid) -> Result<Option<Checkpoint>>;

    /// A page of a workflow's checkpoints, newest first: at most `limit`, after skipping
    /// `offset`.
    async fn list_checkpoints(
        &self,
        workflow_state_id: &Uuid,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Checkpoint>>;

    /// The workflow state held by a checkpoint, without changing anything stored. Its
    /// snapshot must be a state of the checkpoint's own workflow, with its id, workflow
    /// id, name and user as stored (its status, steps and context may differ): a snapshot
    /// that is other JSON, or a state of another workflow, is `InvalidInput` saying that
    /// the checkpoint holds no state of this workflow, and why
    /// ([`Checkpoint::state_of`](crate::Checkpoint::state_of)). `NotFound` for an unknown
    /// checkpoint.
    async fn restore_from_checkpoint(&self, checkpoint_id: &Uuid) -> Result<WorkflowState>;

    /// Makes the stored workflow (row and steps) the checkpoint's state again, with
    /// `updated_at` set to now, and takes a checkpoint of that state (after the same
    /// step) that is the workflow's newest, so a later recovery resumes from it rather
    /// than from a checkpoint taken before the rollback. One transaction; the earlier
    /// checkpoints are kept (retention applies). Returns the state as stored. A checkpoint
    /// that holds no state of the workflow (see
    /// [`restore_from_checkpoint`](Self::restore_from_checkpoint)) is `InvalidInput`, with
    /// nothing changed. Refused
    /// (`Conflict` naming the holder) while a replica holds a live lease on the workflow;
    /// an operator overrides that with
    /// [`rollback_to_checkpoint_overriding_lease`](crate::SeaOrmStateStore::rollback_to_checkpoint_overriding_lease).
    async fn rollback_to_checkpoint(&self, checkpoint_id: &Uuid) -> Result<WorkflowState>;

    /// Deletes completed and failed workflows last updated before `older_than`, with their
    /// steps and checkpoints. Returns how many workflows went.
    async fn delete_old_states(&self, older_than: DateTime<Utc>) -> Result<u64>;

    /// Deletes all but the newest `keep` checkpoints of a workflow. Returns how many went.
    /// Pinned checkpoints are neither counted nor deleted, and the newest checkpoint of a
    /// pending, running or paused workflow stays even with `keep` 0: it is what
    /// [`recover_workflows`](Self::recover_workflows) would resume the workflow from.
    async fn cleanup_old_checkpoints(&self, workflow_state_id: &Uuid, keep: usize) -> Result<u64>;

    /// Checks that the database answers; `Connection` if it does not. For a Postgres
    /// server that is down, the message says whether its address refuses connections or
    /// accepts them without the server answering.
    async fn health_check(&self) -> Result<()>;

    // --- several replicas on one database ---

    /// The workflow state with this id and the version it is stored at (1 after the first
    /// save, one more with every save of any kind).
    async fn load_workflow_state_versioned(&self, id: &Uuid) -> Result<Versioned<WorkflowState>>;

    /// [`record_step`](Self::record_step) only if `condition` holds: the workflow is still
    /// at that version, or this process still holds its lease (a replica that stalled
    /// past its lease must not record a step the new owner is also running). `Conflict`
    /// if it does not hold, with nothing stored and `state` unchanged. Returns the
    /// checkpoint and the workflow's new version. Steps recorded in parallel under one
    /// lease all land, as with `record_step`; one statement on Postgres when `state` is
    /// the workflow as stored.
    async fn record_step_if(
        &self,
        state: &mut WorkflowState,
        step: StepState,
        condition: &SaveCondition,
    ) -> Result<(Checkpoint, i64)>;

    /// [`record_step`](Self::record_step) with more to write: merge patches applied to
    /// the *stored* context (the context of `state` is not written; it becomes the
    /// patched one), and a condition that must hold (see
    /// [`record_step_if`](Self::record_step_if)). Parallel steps that patch different
    /// keys of the context all keep their change. Returns the checkpoint and the
    /// workflow's new version. With a patch, a few statements in one transaction that
    /// holds the workflow's row; without, as `record_step`.
    ///
    /// ```
    /// use llm_orchestrator_state::{SqliteStateStore, StateStore, StepState, StepWrite, WorkflowState};
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = SqliteStateStore::new(":memory:").await?;
    /// let mut state = WorkflowState::new("wf-1", "Research", None, json!({"topic": "tides"}));
    /// store.save_workflow_state(&state).await?;
    ///
    /// let mut step = StepState::new("search");
    /// step.mark_completed(json!({"hits": 3}));
    /// let write = StepWrite::new().merge_context(json!({"sources": ["noaa.gov"]}));
    /// let (_checkpoint, version) = store.record_step_with(&mut state, step, &write).await?;
    /// assert_eq!(state.context, json!({"topic": "tides", "sources": ["noaa.gov"]}));
    /// assert_eq!(version, 2);
    /// # Ok(())
    /// # }
    /// ```
    async fn record_step_with(
        &self,
        state: &mut WorkflowState,
        step: StepState,
        write: &StepWrite,
    ) -> Result<(Checkpoint, i64)>;

    /// Saves `state` only if `condition` holds (optimistic concurrency, or fencing by a
    /// lease), atomically, and returns the new version. `Conflict` if it does not hold
    /// (another writer saved first, or another owner claimed the workflow), with nothing
    /// changed: reload and decide again. A version is not a lease: while a replica holds
    /// a live lease on the workflow, only a save under that lease goes through.
    async fn save_workflow_state_if(
        &self,
        state: &WorkflowState,
        condition: &SaveCondition,
    ) -> Result<i64>;

    /// Claims up to `limit` active workflows that no live lease holds (never claimed,
    /// released, or expired), for `owner`, for `lease_duration`. Each claim bumps the
    /// workflow's fencing token, so writes under an older lease are refused. Concurrent
    /// claimers never get the same workflow. All or nothing: an error takes no lease. A
    /// workflow whose stored row cannot be read is not claimed (it keeps the lease it had,
    /// and is logged as a warning) and takes no place among the `limit`;
    /// [`claim_workflows_report`](Self::claim_workflows_report) says which.
    async fn claim_workflows(
        &self,
        owner: &str,
        lease_duration: Duration,
        limit: u64,
    ) -> Result<Vec<Claim>>;

    /// [`claim_workflows`](Self::claim_workflows), and apart the claimable workflows whose
    /// stored rows cannot be read, each with its error, left unclaimed for an operator to
    /// repair (saving the workflow again, or rolling it back to a checkpoint). (This
    /// default, for other implementations, reports none.)
    async fn claim_workflows_report(
        &self,
        owner: &str,
        lease_duration: Duration,
        limit: u64,
    ) -> Result<ClaimReport> {
        Ok(ClaimReport {
            claimed: self.claim_workflows(owner, lease_duration, limit).await?,
            skipped: Vec::new(),
        })
    }

    /// Extends a lease the caller still holds; `Conflict` if another owner has claimed
    /// the workflow since.
    async fn renew_lease(&self, lease: &Lease, lease_duration: Duration) -> Result<Lease>;

    /// Gives a lease up so another owner can claim the workflow at once; `false` if the
    /// caller no longer held it.
    async fn release_lease(&self, lease: &Lease) -> Result<bool>;

    /// Recovery in one call, for an orchestrator starting up: claims up to `limit`
    /// active workflows for `owner` and returns each with its newest checkpoint and the
    /// state to resume from: the checkpoint's state, or the stored state when there is
    /// none, when the newest one cannot be read, or when it holds no state of the
    /// workflow (other JSON, or another workflow's state: see
    /// [`restore_from_checkpoint`](Self::restore_from_checkpoint)). Such a checkpoint is
    /// still handed back, as written, for the orchestrator to read; it fails neither the
    /// workflow's recovery nor the others'. Save under the returned leases.
    /// All or nothing, and workflows whose stored rows cannot be read are left unclaimed,
    /// as in [`claim_workflows`](Self::claim_workflows);
    /// [`recover_workflows_report`](Self::recover_workflows_report) says which.
    async fn recover_workflows(
        &self,
        owner: &str,
        lease_duration: Duration,
        limit: u64,
    ) -> Result<Vec<Recovery>>;

    /// [`recover_workflows`](Self::recover_workflows), and apart the claimable workflows
    /// whose stored rows cannot be read, each with its error, left unclaimed. (This
    /// default, for other implementations, reports none.)
    async fn recover_workflows_report(
        &self,
        owner: &str,
        lease_duration: Duration,
        limit: u64,
    ) -> Result<RecoveryReport> {
        Ok(RecoveryReport {
            recovered: self.recover_workflows(owner, lease_duration, limit).await?,
            skipped: Vec::new(),
        })
    }

    // --- history ---

    /// A page of a workflow's checkpoints without their snapshots (id, step, time, size,
    /// pin), newest first.
    async fn list_checkpoint_infos(
        &self,
        workflow_state_id: &Uuid,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<CheckpointInfo>>;

    /// One checkpoint without its snapshot (step, time, size, pin, the workflow's status
    /// in it): one row read, however large the snapshot. `NotFound` if there is none.
    async fn checkpoint_info(&self, checkpoint_id: &Uuid) -> Result<CheckpointInfo>;

    /// How many checkpoints a workflow has, their total size and how many are pinned.
    async fn checkpoint_usage(&self, workflow_state_id: &Uuid) -> Result<CheckpointUsage>;

    /// Pins a checkpoint with a label ("before tool call", "approved by human"): retention
    /// and pruning keep it as long as its workflow stays (a pruned finished workflow takes
    /// its checkpoints with it). `NotFound` for an unknown checkpoint.
    async fn pin_checkpoint(&self, checkpoint_id: &Uuid, label: &str) -> Result<()>;

    /// Removes a checkpoint's pin.
    async fn unpin_checkpoint(&self, checkpoint_id: &Uuid) -> Result<()>;

    /// Applies a retention policy to the whole store, or with `dry_run` only reports what
    /// it would delete. Never deleted: pinned checkpoints of workflows that stay, and the
    /// newest checkpoint of an active workflow (see [`RetentionPolicy`]).
    async fn prune(&self, policy: &RetentionPolicy, dry_run: bool) -> Result<PruneReport>;

    /// A new pending workflow (new id, `new_workflow_id`) from a checkpoint's state, with
    /// its steps, recording the source workflow and checkpoint (see [`lineage`](Self::lineage)).
    /// A checkpoint that holds no state of its workflow (see
    /// [`restore_from_checkpoint`](Self::restore_from_checkpoint)) is `InvalidInput`.
    async fn fork_from_checkpoint(
        &self,
        checkpoint_id: &Uuid,
        new_workflow_id: &str,
    ) -> Result<WorkflowState>;

    /// What a workflow was forked from and what was forked from it.
    async fn lineage(&self, workflow_state_id: &Uuid) -> Result<Lineage>;

    /// A workflow with its steps and all its checkpoints, as a portable bundle.
    async fn export_workflow(&self, workflow_state_id: &Uuid) -> Result<WorkflowBundle>;

    /// Loads a bundle (from any backend), keeping its ids or with new ones; `Conflict` if
    /// the ids exist already. Atomic. Snapshots are imported as they are; with new ids,
    /// those that are states of the workflow are re-pointed at its new id.
    async fn import_workflow(
        &self,
        bundle: &WorkflowBundle,
        new_ids: bool,
    ) -> Result<WorkflowState>;
}
