//! Types for keeping history useful: checkpoint metadata and pins, retention policies and
//! their reports, forks with lineage, and export bundles.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{Checkpoint, WorkflowState, WorkflowStatus};

/// A checkpoint without its snapshot: what lists and the admin UI show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The checkpoint's id.
    pub id: Uuid,
    /// The workflow it belongs to.
    pub workflow_state_id: Uuid,
    /// The step after which it was taken.
    pub step_id: String,
    /// When it was taken.
    pub timestamp: DateTime<Utc>,
    /// The snapshot's size, in bytes of JSON text.
    pub size_bytes: u64,
    /// The pin's label ("before tool call", "approved by human"); retention and pruning
    /// keep a pinned checkpoint as long as its workflow stays.
    pub pinned: Option<String>,
    /// The workflow's status in the snapshot (running, failed, ...), or `None` when the
    /// snapshot holds no status the store knows.
    pub workflow_status: Option<WorkflowStatus>,
}

/// A workflow's checkpoint totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointUsage {
    /// How many checkpoints it has.
    pub count: u64,
    /// Their snapshots' total size, in bytes of JSON text.
    pub bytes: u64,
    /// How many of them are pinned.
    pub pinned: u64,
}

/// What to delete when pruning history. A checkpoint goes only if every rule that is set
/// lets it go. Never deleted: pinned checkpoints (unless their whole finished workflow
/// goes, by `delete_finished_older_than`), and the newest checkpoint of a pending,
/// running or paused workflow, which recovery would resume it from.
///
/// ```
/// use std::time::Duration;
/// use llm_orchestrator_state::RetentionPolicy;
///
/// let policy = RetentionPolicy {
///     keep_last: Some(5),
///     keep_younger_than: Some(Duration::from_secs(24 * 3600)),
///     delete_finished_older_than: Some(Duration::from_secs(30 * 24 * 3600)),
/// };
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Keep at least the newest N unpinned checkpoints of each workflow.
    pub keep_last: Option<usize>,
    /// Keep every checkpoint younger than this.
    pub keep_younger_than: Option<Duration>,
    /// Delete completed and failed workflows last updated longer ago than this, with
    /// their steps and checkpoints (pinned ones included: the workflow is gone).
    pub delete_finished_older_than: Option<Duration>,
}

/// What a prune deleted, or would delete in a dry run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// True when nothing was deleted (a preview).
    pub dry_run: bool,
    /// Finished workflows deleted.
    pub workflows: u64,
    /// Checkpoints deleted, including those of the deleted workflows.
    pub checkpoints: u64,
    /// Bytes of snapshots deleted.
    pub bytes: u64,
}

/// Where a forked workflow came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkOrigin {
    /// The workflow state the checkpoint belonged to.
    pub workflow_state_id: Uuid,
    /// The checkpoint it was forked from.
    pub checkpoint_id: Uuid,
}

/// A workflow's lineage, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// What this workflow was forked from, if it is a fork.
    pub forked_from: Option<ForkOrigin>,
    /// The workflows forked from this one: (fork's id, the checkpoint it came from).
    pub forks: Vec<(Uuid, Uuid)>,
}

/// A workflow with its checkpoints, as a portable JSON document: export it from one
/// database and import it into another (a production Postgres workflow into a
/// developer's SQLite file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowBundle {
    /// Format version of the bundle, for future changes.
    pub format: u32,
    /// The workflow state with its steps.
    pub workflow: WorkflowState,
    /// Its checkpoints, newest first, with their pins.
    pub checkpoints: Vec<BundledCheckpoint>,
    /// Where it was forked from, if anywhere.
    pub forked_from: Option<ForkOrigin>,
}

/// A checkpoint inside a [`WorkflowBundle`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundledCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Its pin label, if pinned.
    pub pinned: Option<String>,
}

impl WorkflowBundle {
    /// The bundle format this version writes.
    pub const FORMAT: u32 = 1;
}
