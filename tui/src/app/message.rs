//! Everything that can happen to the UI: keys, ticks, and the answers to effects.

use chrono::{DateTime, Utc};
use llm_orchestrator_state::admin::{StatusCounts, WorkflowPage};
use llm_orchestrator_state::{
    CheckpointInfo, CheckpointUsage, PruneReport, RetentionPolicy, WorkflowState,
};
use ratatui::crossterm::event::KeyEvent;
use uuid::Uuid;

use super::{LoadedDetail, WorkflowHistory};
use crate::diff::Change;
use crate::error::WriteError;
use crate::rollback_plan::RollbackPlan;

/// Everything that can happen to the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal's size: at start, and when it is resized (then redrawn).
    Resize {
        /// Rows of the terminal.
        rows: u16,
        /// Columns of the terminal.
        cols: u16,
    },
    /// Time passes (drives the automatic refresh).
    Tick,
    /// A page of workflows arrived.
    WorkflowsLoaded {
        /// The request it answers.
        request: u64,
        /// Added below the loaded rows.
        append: bool,
        /// The page, or the error.
        result: Result<WorkflowPage, String>,
        /// When it was read.
        at: DateTime<Utc>,
    },
    /// Counts per status arrived.
    CountsLoaded(Result<StatusCounts, String>),
    /// A full read of a workflow finished.
    DetailLoaded {
        /// The workflow asked for.
        workflow_state_id: Uuid,
        /// The workflow, already printed, or the error.
        result: Result<LoadedDetail, String>,
    },
    /// The version a workflow is stored at arrived (an automatic refresh's first
    /// question); an error if it is gone.
    DetailVersion {
        /// The workflow asked about.
        workflow_state_id: Uuid,
        /// Its stored version, or the error (not found when it was deleted).
        result: Result<i64, String>,
    },
    /// A workflow's checkpoints (without snapshots) and totals arrived.
    CheckpointInfosLoaded {
        /// Whose checkpoints.
        workflow_state_id: Uuid,
        /// The infos (newest first) and totals, or the error.
        result: Result<(Vec<CheckpointInfo>, CheckpointUsage), String>,
    },
    /// The snapshot of a checkpoint opened with Enter arrived, printed by the task that
    /// read it (a snapshot can be megabytes).
    SnapshotLoaded {
        /// The checkpoint asked for.
        checkpoint: Uuid,
        /// The snapshot's lines, or the error (not found if it was pruned meanwhile).
        result: Result<Vec<String>, String>,
    },
    /// A workflow's checkpoint totals and lineage arrived.
    HistoryLoaded {
        /// Whose.
        workflow_state_id: Uuid,
        /// The history, or the error.
        result: Result<WorkflowHistory, String>,
    },
    /// A pin was set or removed.
    PinSet {
        /// The checkpoint.
        checkpoint: Uuid,
        /// The label, or `None` for an unpin.
        label: Option<String>,
        /// Whether it worked.
        result: Result<(), WriteError>,
    },
    /// A fork was created from `checkpoint`.
    Forked {
        /// The checkpoint.
        checkpoint: Uuid,
        /// The new workflow, or the error.
        result: Result<WorkflowState, WriteError>,
    },
    /// A prune (or its dry run) finished.
    Pruned {
        /// The policy it applied.
        policy: RetentionPolicy,
        /// It was a preview, which writes nothing.
        dry_run: bool,
        /// What it deleted or would delete, or the error.
        result: Result<PruneReport, WriteError>,
    },
    /// A diff was computed.
    DiffLoaded {
        /// The older side asked for.
        from: Uuid,
        /// The newer side asked for (`None`: the current state).
        to: Option<Uuid>,
        /// The title and the changes, or the error.
        result: Result<(String, Vec<Change>), String>,
    },
    /// A rollback plan is ready for confirmation.
    RollbackPlanned {
        /// The checkpoint asked for.
        checkpoint: Uuid,
        /// The plan, or the error.
        result: Result<Box<RollbackPlan>, String>,
    },
    /// A rollback finished: the workflow as rolled back, already printed.
    RolledBack(Result<LoadedDetail, WriteError>),
    /// A task died (a bug): leave, reporting it.
    Fatal(String),
}
