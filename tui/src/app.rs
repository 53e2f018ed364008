//! The interactive UI's model, messages and `update` (The Elm Architecture).
//!
//! `update` never touches the database or the terminal: it changes the model and queues
//! [`Command`]s, which the runtime runs in spawned tasks; their answers come back as
//! [`Message`]s.

use chrono::{DateTime, Utc};
use llm_orchestrator_state::admin::{
    PageCursor, StatusCounts, WorkflowPage, WorkflowQuery, WorkflowSort, WorkflowSummary,
};
use std::time::Duration;

use llm_orchestrator_state::{
    CheckpointInfo, CheckpointUsage, PruneReport, RetentionPolicy, WorkflowState, WorkflowStatus,
};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use uuid::Uuid;

use crate::commands::ordered_steps;
use crate::diff::Change;
use crate::error::WriteError;
use crate::format;
use crate::restore_plan::RestorePlan;

/// Rows fetched per page of the workflows table.
pub const PAGE_SIZE: u64 = 200;
/// Most rows an automatic refresh reloads (the rest load again as the user scrolls).
pub const REFRESH_LIMIT: u64 = 2000;
/// Ticks between automatic refreshes (the runtime ticks every 250 ms: 5 s).
pub const REFRESH_TICKS: u32 = 20;

/// The policy the prune popup (`P`) previews first, until `e` edits it: keep the newest
/// 10 checkpoints of every workflow, delete finished workflows untouched for 30 days; pins
/// stay.
pub fn default_prune_policy() -> RetentionPolicy {
    RetentionPolicy {
        keep_last: Some(10),
        keep_younger_than: None,
        delete_finished_older_than: Some(Duration::from_secs(30 * 24 * 3600)),
    }
}

/// The screens, stacked: Esc or `q` goes back to the one below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The table of workflows.
    Workflows,
    /// One workflow: fields, context, steps.
    Detail,
    /// The checkpoints of one workflow.
    Checkpoints,
    /// The state held by one checkpoint.
    Snapshot,
    /// A deep diff of two states.
    Diff,
}

/// A window over the current screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    /// Every key, scrolled down by `scroll` lines (j/k; any other key closes it): a
    /// terminal of fewer than 32 rows cannot show them all.
    Help {
        /// The first line shown.
        scroll: usize,
    },
    /// Typing a text filter for the workflows table.
    Filter {
        /// The text typed so far.
        input: String,
    },
    /// What a restore changes, scrolled down by `scroll` rows (j/k, PgUp/PgDn, g/G: a
    /// plan can be longer than the popup); `y` confirms.
    ConfirmRestore {
        /// The plan.
        plan: Box<RestorePlan>,
        /// The first row of the plan shown.
        scroll: usize,
    },
    /// A line of text: a checkpoint's pin label or fork's workflow_id, or the prune
    /// popup's policy.
    Input {
        /// What the text is for.
        purpose: InputPurpose,
        /// The text typed so far.
        input: String,
        /// Why the last Enter changed nothing (a policy that does not parse), in words.
        error: Option<String>,
    },
    /// Unpinning a checkpoint, which loses its label; `y` confirms.
    ConfirmUnpin {
        /// The pinned checkpoint.
        checkpoint: Uuid,
        /// Its pin's label ("approved by human").
        label: String,
    },
    /// A prune's preview (`done` false: `y` applies it) or its report (`done` true).
    Prune {
        /// The policy.
        policy: RetentionPolicy,
        /// What it deletes, or deleted.
        report: PruneReport,
        /// The prune ran.
        done: bool,
        /// The first row shown (j/k on a terminal too small for all of it).
        scroll: usize,
    },
}

/// What the text of [`Popup::Input`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    /// The label to pin this checkpoint with.
    PinLabel(Uuid),
    /// The workflow_id of a new workflow forked from this checkpoint.
    ForkWorkflowId(Uuid),
    /// The retention policy to preview instead of `previewed`, whose preview (`report`)
    /// comes back, unchanged, on Esc.
    PrunePolicy {
        /// The policy of the preview being edited.
        previewed: RetentionPolicy,
        /// What it would delete.
        report: PruneReport,
    },
}

/// A workflow's checkpoint totals and lineage, as the detail screen shows them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowHistory {
    /// Count, bytes and pins of its checkpoints.
    pub usage: CheckpointUsage,
    /// Where it was forked from and its forks, one line each, in words.
    pub lineage: Vec<String>,
    /// Its row as the workflows list shows it, for its recovery lease: read here, not
    /// taken from the list, which a filter may hide it from. `None` once it is deleted.
    pub summary: Option<WorkflowSummary>,
    /// When it was read: a lease shown expired had expired by then.
    pub read_at: Option<DateTime<Utc>>,
}

/// A read whose failure the status bar shows until the same read succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// Loading the workflows table.
    List,
    /// Reading this workflow (in full, or its version).
    Workflow(Uuid),
    /// The counts per status of the status bar.
    Counts,
    /// This workflow's checkpoint totals, lineage and lease (the detail's history).
    History(Uuid),
    /// The checkpoints screen's list of this workflow's checkpoints.
    CheckpointInfos(Uuid),
}

/// Answers the user is waiting for that open a screen or a popup when they arrive. Going
/// back abandons them: an answer not awaited (any more) is dropped, so that a slow answer
/// never shows one workflow or checkpoint over another, nor after the user left.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Awaited {
    /// The workflow the detail screen is opening: its first full read is under way and
    /// nothing of it is shown yet.
    pub detail: Option<Opening>,
    /// The diff asked for with `d`: the older side and the newer one (`None`: the current
    /// state).
    pub diff: Option<(Uuid, Option<Uuid>)>,
    /// The checkpoint whose restore plan was asked for with `R`.
    pub restore_plan: Option<Uuid>,
}

impl Awaited {
    /// The workflow being opened, if it is `id`.
    fn opening(&mut self, id: Uuid) -> Option<&mut Opening> {
        self.detail.as_mut().filter(|opening| opening.id == id)
    }
}

/// A workflow the detail screen is opening, and what arrived of it before its full read.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// The workflow's store id.
    pub id: Uuid,
    /// Its checkpoint totals and lineage, if they arrived first (two small queries, often
    /// quicker than reading a large workflow): shown with it when it opens.
    pub history: Option<WorkflowHistory>,
    /// A full read of it is under way; false after one failed, when the automatic
    /// refresh reads it again.
    pub loading: bool,
}

/// Reads under way that the automatic refresh starts no second of until they answer or
/// fail: on a database slower than the refresh they would pile up. (The list and the
/// open workflow's full read keep their own flags: [`WorkflowsView::loading`],
/// [`DetailView::loading`].)
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InFlight {
    /// The counts per status.
    pub counts: bool,
    /// The checkpoint totals and lineage of this workflow.
    pub history: Option<Uuid>,
    /// The checkpoint list of this workflow.
    pub checkpoint_infos: Option<Uuid>,
}

/// The workflows table and how it is filtered and sorted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowsView {
    /// The loaded rows, in display order.
    pub rows: Vec<WorkflowSummary>,
    /// Index of the selected row.
    pub selected: usize,
    /// Only pending, running and paused workflows.
    pub active_only: bool,
    /// Only this status.
    pub status_filter: Option<WorkflowStatus>,
    /// Only active workflows whose recovery lease expired (`x`): stuck, their replica
    /// gone.
    pub lease_expired: bool,
    /// Substring of workflow id, name or user.
    pub text_filter: String,
    /// The sort column.
    pub sort: WorkflowSort,
    /// Sort ascending instead of descending.
    pub ascending: bool,
    /// Where the next page starts, if there is one.
    pub next: Option<PageCursor>,
    /// The latest load asked for; older answers are dropped.
    pub request: u64,
    /// A load is under way.
    pub loading: bool,
}

impl WorkflowsView {
    /// The selected row.
    pub fn selected_row(&self) -> Option<&WorkflowSummary> {
        self.rows.get(self.selected)
    }

    /// Whether the rows show active workflows before finished ones. The query always asks
    /// for that order, but it only shows when both kinds can be listed: not with `a`
    /// (active only) nor with a status filter.
    pub fn active_first(&self) -> bool {
        let query = self.query(0);
        let listed = |status: &&WorkflowStatus| {
            (query.statuses.is_empty() || query.statuses.contains(status))
                && (!query.only_active() || status.is_active())
        };
        let mut listed = WorkflowStatus::ALL.iter().filter(listed);
        query.active_first
            && listed.clone().any(|status| status.is_active())
            && listed.any(|status| !status.is_active())
    }

    /// The query for these filters, from the first row.
    pub fn query(&self, limit: u64) -> WorkflowQuery {
        WorkflowQuery {
            statuses: self.status_filter.into_iter().collect(),
            active_only: self.active_only,
            lease_expired: self.lease_expired,
            text: Some(self.text_filter.clone()).filter(|t| !t.is_empty()),
            sort: self.sort,
            descending: !self.ascending,
            active_first: true,
            after: None,
            limit,
        }
    }
}

/// Which part of the detail screen the arrow keys move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailFocus {
    /// The steps table.
    #[default]
    Steps,
    /// The selected step's outputs.
    Outputs,
    /// The context JSON.
    Context,
}

/// One workflow in full.
#[derive(Debug, Clone, PartialEq)]
pub struct DetailView {
    /// The workflow.
    pub state: WorkflowState,
    /// The version `state` is stored at: an automatic refresh reads the workflow again
    /// only when the stored version differs. `None` when unknown (the state a restore
    /// returned), which any stored version differs from.
    pub version: Option<i64>,
    /// Index of the selected step in `step_order`.
    pub step: usize,
    /// The ids of the workflow's steps in run order ([`ordered_steps`]): sorted by the
    /// task that read the workflow, not on every frame or key (a workflow can have 30,000
    /// steps).
    pub step_order: Vec<String>,
    /// What the arrow keys move.
    pub focus: DetailFocus,
    /// The context pretty-printed, one entry per line: printed by the task that read the
    /// workflow, not by `update` nor on every frame (a context can be megabytes).
    pub context_lines: Vec<String>,
    /// Lines scrolled in the context.
    pub context_scroll: usize,
    /// Every step's outputs pretty-printed, one entry per line, in run order: printed by
    /// the task that read the workflow, so that selecting a step prints nothing (a
    /// step's outputs can be megabytes). See [`DetailView::selected_outputs_lines`].
    pub outputs_lines: Vec<Vec<String>>,
    /// Lines scrolled in the selected step's outputs.
    pub outputs_scroll: usize,
    /// Checkpoint totals and lineage; `None` until loaded.
    pub history: Option<WorkflowHistory>,
    /// A full read of this workflow ([`Command::LoadDetail`]) is under way: the automatic
    /// refresh starts no other until its answer (or error) arrives.
    pub loading: bool,
    /// Why the workflow's stored context or steps cannot be read, when they cannot (a
    /// corrupt row): the screen shows its list row and this, and rolling back to one of
    /// its checkpoints repairs it.
    pub damaged: Option<String>,
}

/// A workflow read for the detail screen, with its JSON already pretty-printed by the
/// task that read it: `update` only swaps these lines in (printing a 5 MB context takes a
/// third of a second, too long for the UI thread on every refresh or key).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDetail {
    /// The workflow.
    pub state: WorkflowState,
    /// The version it is stored at, if known.
    pub version: Option<i64>,
    /// The ids of its steps in run order ([`ordered_steps`]).
    pub step_order: Vec<String>,
    /// Its context pretty-printed, one entry per line.
    pub context_lines: Vec<String>,
    /// Every step's outputs pretty-printed, one entry per line, in run order (entry `n`
    /// is the outputs of step `n` of `step_order`).
    pub outputs_lines: Vec<Vec<String>>,
    /// Why the stored context or steps cannot be read, if they cannot: then `state` holds
    /// only the workflow's list row (no context, no steps). See [`LoadedDetail::damaged`].
    pub damaged: Option<String>,
}

impl LoadedDetail {
    /// Prints `state`'s context and the outputs of every step. The runtime calls this off
    /// the UI thread, as the work of the task that read `state`: all steps at once, so
    /// that moving between steps costs no printing.
    pub fn print(state: WorkflowState, version: Option<i64>) -> Self {
        let ordered = ordered_steps(&state);
        let outputs_lines = ordered
            .iter()
            .map(|step| format::pretty_lines(&step.outputs))
            .collect();
        let step_order = ordered.iter().map(|step| step.step_id.clone()).collect();
        let context_lines = format::pretty_lines(&state.context);
        Self {
            state,
            version,
            step_order,
            context_lines,
            outputs_lines,
            damaged: None,
        }
    }

    /// A workflow whose stored context or steps cannot be read (`error` says why), shown
    /// from its list row `row`: its ids, status, times and error, no context and no steps.
    pub fn damaged(
        row: &llm_orchestrator_state::admin::WorkflowSummary,
        version: Option<i64>,
        error: String,
    ) -> Self {
        let state = WorkflowState {
            id: row.id,
            workflow_id: row.workflow_id.clone(),
            workflow_name: row.workflow_name.clone(),
            status: row.status,
            user_id: row.user_id.clone(),
            started_at: row.started_at,
            updated_at: row.updated_at,
            completed_at: row.completed_at,
            context: serde_json::Value::Null,
            error: row.error.clone(),
            steps: Default::default(),
        };
        Self {
            state,
            version,
            step_order: Vec::new(),
            context_lines: vec!["(cannot be read: see DAMAGED above)".to_owned()],
            outputs_lines: Vec::new(),
            damaged: Some(error),
        }
    }
}

impl DetailView {
    /// The view in `detail` if it shows workflow `id`; `None` for an answer about a
    /// workflow the user has left, which then changes nothing.
    fn showing(detail: &mut Option<DetailView>, id: Uuid) -> Option<&mut DetailView> {
        detail.as_mut().filter(|view| view.state.id == id)
    }

    /// A workflow just opened, at its first step, scrolled to the top.
    pub fn new(loaded: LoadedDetail, history: Option<WorkflowHistory>) -> Self {
        Self {
            state: loaded.state,
            version: loaded.version,
            step: 0,
            step_order: loaded.step_order,
            focus: DetailFocus::default(),
            context_lines: loaded.context_lines,
            context_scroll: 0,
            outputs_lines: loaded.outputs_lines,
            outputs_scroll: 0,
            history,
            loading: false,
            damaged: loaded.damaged,
        }
    }

    /// The selected step's outputs pretty-printed, one entry per line (none without
    /// steps).
    pub fn selected_outputs_lines(&self) -> &[String] {
        self.outputs_lines.get(self.step).map_or(&[], Vec::as_slice)
    }

    /// Selects step `index` (in run order) and shows its outputs from the top: its lines
    /// were printed with the workflow, so nothing is printed or freed here.
    fn select_step(&mut self, index: usize) {
        self.step = index;
        self.outputs_scroll = 0;
    }

    /// The workflow and its printed lines, for the runtime to free (see
    /// [`Command::Discard`]); the rest is small.
    fn into_loaded(self) -> LoadedDetail {
        LoadedDetail {
            state: self.state,
            version: self.version,
            step_order: self.step_order,
            context_lines: self.context_lines,
            outputs_lines: self.outputs_lines,
            damaged: self.damaged,
        }
    }

    /// A newer copy of the same workflow (a refresh), printed by the task that read it:
    /// swaps the lines in, keeping the step, focus and scroll positions (within the new
    /// lines). Nothing is printed or compared here. Returns what it replaced, for the
    /// runtime to free (see [`Command::Discard`]).
    fn replace(&mut self, loaded: LoadedDetail) -> LoadedDetail {
        let old = LoadedDetail {
            state: std::mem::replace(&mut self.state, loaded.state),
            version: std::mem::replace(&mut self.version, loaded.version),
            step_order: std::mem::replace(&mut self.step_order, loaded.step_order),
            context_lines: std::mem::replace(&mut self.context_lines, loaded.context_lines),
            outputs_lines: std::mem::replace(&mut self.outputs_lines, loaded.outputs_lines),
            damaged: std::mem::replace(&mut self.damaged, loaded.damaged),
        };
        // Fewer steps now (a restore elsewhere): the last one.
        self.step = self.step.min(self.outputs_lines.len().saturating_sub(1));
        self.context_scroll = self.context_scroll.min(last_index(&self.context_lines));
        self.outputs_scroll = self
            .outputs_scroll
            .min(last_index(self.selected_outputs_lines()));
        old
    }
}

/// The index of the last of `lines` (0 if there are none).
fn last_index(lines: &[String]) -> usize {
    lines.len().saturating_sub(1)
}

/// The checkpoints of one workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointsView {
    /// The workflow's store id.
    pub workflow_state_id: Uuid,
    /// The workflow's orchestrator id, for titles.
    pub workflow_id: String,
    /// Newest first, without their snapshots (a snapshot can be megabytes; one loads
    /// when it is opened); `None` while loading.
    pub list: Option<Vec<CheckpointInfo>>,
    /// Index of the selected checkpoint.
    pub selected: usize,
    /// A checkpoint marked with space, to diff against the selected one.
    pub marked: Option<Uuid>,
    /// The workflow's checkpoint totals, once loaded.
    pub usage: Option<CheckpointUsage>,
}

impl CheckpointsView {
    /// The selected checkpoint.
    pub fn selected_checkpoint(&self) -> Option<&CheckpointInfo> {
        self.list.as_ref().and_then(|list| list.get(self.selected))
    }

    /// The listed checkpoint with this id.
    pub fn checkpoint(&self, id: Uuid) -> Option<&CheckpointInfo> {
        self.list.iter().flatten().find(|info| info.id == id)
    }
}

/// One checkpoint's state, fetched by id when the user opens it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotView {
    /// The checkpoint as the list shows it (id, step, time, size): enough for the title
    /// while the snapshot loads.
    pub info: CheckpointInfo,
    /// The snapshot pretty-printed, one entry per line (printed once when it arrives,
    /// not on every frame); `None` while it loads.
    pub lines: Option<Vec<String>>,
    /// Lines scrolled.
    pub scroll: usize,
}

/// A diff between two states.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffView {
    /// What is compared with what.
    pub title: String,
    /// The changes, in path order.
    pub changes: Vec<Change>,
    /// Lines scrolled.
    pub scroll: usize,
}

/// Work for the runtime: each runs in a spawned task and answers with a [`Message`]
/// (all but [`Command::Discard`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A page of workflows; `append` adds it below the loaded rows.
    LoadWorkflows {
        /// Request number, echoed back.
        request: u64,
        /// What to load.
        query: WorkflowQuery,
        /// Add below the loaded rows instead of replacing them.
        append: bool,
    },
    /// Counts per status.
    LoadCounts,
    /// One workflow in full with its version, its context and every step's outputs
    /// printed in the task: on opening it, on `r`, and when an automatic refresh finds its
    /// version changed.
    LoadDetail(Uuid),
    /// Only the version a workflow is stored at (one small query, no JSON): what an
    /// automatic refresh of the detail screen asks first.
    CheckDetailVersion(Uuid),
    /// A workflow's checkpoints without their snapshots (id, step, time, size, pin), and
    /// its totals: what the checkpoints screen lists.
    LoadCheckpointInfos(Uuid),
    /// One checkpoint with its snapshot, by checkpoint id: when the user opens it.
    LoadSnapshot(Uuid),
    /// A workflow's checkpoint totals and lineage.
    LoadHistory(Uuid),
    /// Pin a checkpoint with a label, or unpin it (`None`).
    SetPin {
        /// The checkpoint.
        checkpoint: Uuid,
        /// The label, or `None` to unpin.
        label: Option<String>,
    },
    /// A new workflow from a checkpoint.
    Fork {
        /// The checkpoint.
        checkpoint: Uuid,
        /// The new workflow's workflow_id.
        new_workflow_id: String,
    },
    /// Prune with a policy, or only report what it would delete.
    Prune {
        /// The policy.
        policy: RetentionPolicy,
        /// Only report.
        dry_run: bool,
    },
    /// Diff a checkpoint with another one, or with the current state (`None`).
    Diff {
        /// The older side.
        from: Uuid,
        /// The newer side, or the workflow's current state.
        to: Option<Uuid>,
    },
    /// Work out what restoring a checkpoint changes.
    PlanRestore(Uuid),
    /// Roll back to a checkpoint.
    Restore(Uuid),
    /// Roll back to a checkpoint of a workflow a replica holds the lease on, which the
    /// operator confirmed after being warned: the lease ends (its holder is fenced).
    RestoreOverridingLease(Uuid),
    /// Free a workflow the detail screen no longer shows, off the UI thread: dropping a
    /// 6 MB context and its printed lines takes tens of milliseconds (debug build). No
    /// answer.
    Discard(Box<LoadedDetail>),
}

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
    /// A restore plan is ready for confirmation.
    RestorePlanned {
        /// The checkpoint asked for.
        checkpoint: Uuid,
        /// The plan, or the error.
        result: Result<Box<RestorePlan>, String>,
    },
    /// A restore finished: the workflow as restored, already printed.
    Restored(Result<LoadedDetail, WriteError>),
    /// A task died (a bug): leave, reporting it.
    Fatal(String),
}

/// The whole state of the UI.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// The database, password removed.
    pub database: String,
    /// The database's clock, which leases run by (see [`crate::db::Clock`]); the status
    /// bar says so when this machine's is off from it.
    pub clock: crate::db::Clock,
    /// The retention policy `P` previews: the default until the operator edits one in
    /// the prune popup, then the one last previewed, for the rest of the session.
    pub prune_policy: RetentionPolicy,
    /// Writes are refused.
    pub read_only: bool,
    /// The terminal's height in rows; 0 until the runtime says (then the help assumes it
    /// does not fit).
    pub rows: u16,
    /// The terminal's width in columns; 0 until the runtime says.
    pub cols: u16,
    /// The screens, bottom first; never empty.
    pub screens: Vec<Screen>,
    /// A window over the screen.
    pub popup: Option<Popup>,
    /// The workflows table.
    pub workflows: WorkflowsView,
    /// Workflows per status.
    pub counts: StatusCounts,
    /// The open workflow.
    pub detail: Option<DetailView>,
    /// The open checkpoint list.
    pub checkpoints: Option<CheckpointsView>,
    /// The open snapshot.
    pub snapshot: Option<SnapshotView>,
    /// The open diff.
    pub diff: Option<DiffView>,
    /// Answers that open a screen or popup, while the user waits for them.
    pub awaited: Awaited,
    /// Reads the automatic refresh waits for before asking again.
    pub in_flight: InFlight,
    /// When the workflows were last read.
    pub last_refresh: Option<DateTime<Utc>>,
    /// The last error, shown in the status bar until the next success of the same kind
    /// (or another error).
    pub error: Option<String>,
    /// The read `error` came from, if a read: the next success of that same read (the
    /// automatic refresh, `r`) clears it, and no other success does, so "the workflow on
    /// screen was deleted" stays while the list loads fine.
    pub error_source: Option<ErrorSource>,
    /// The last notice (a restore's result, or "restoring..." while it runs).
    pub notice: Option<String>,
    /// Why the last write (restore, prune, pin, unpin, fork) failed: shown over any
    /// other error until the operator presses a key or another write answers. Reads
    /// neither replace nor clear it: "restore failed" must not vanish at the next
    /// automatic refresh.
    pub write_error: Option<String>,
    /// Ticks since the last refresh.
    pub ticks: u32,
    /// Leave the loop.
    pub quit: bool,
    /// Leave the loop because of this error.
    pub fatal: Option<String>,
    /// Work queued for the runtime.
    pub commands: Vec<Command>,
}

impl App {
    /// Shows `error` in the status bar (until another error, or the user's next success
    /// of its kind).
    pub fn show_error(&mut self, error: String) {
        self.error = Some(error);
        self.error_source = None;
    }

    /// Shows `error`, which a read failed with, until that read succeeds.
    fn show_read_error(&mut self, error: String, source: ErrorSource) {
        self.error = Some(error);
        self.error_source = Some(source);
    }

    /// A write failed with `error`: its "...ing" notice is over, and the status bar says
    /// so until the next key or write: that nothing changed, or, when the connection
    /// broke, that the write may have gone through before it did.
    fn write_failed(&mut self, what: &str, error: &WriteError) {
        self.notice = None;
        self.write_error = Some(if error.may_have_applied() {
            format!("{what} unconfirmed, it may or may not have been applied (r reloads): {error}")
        } else {
            format!("{what} failed, nothing changed: {error}")
        });
    }

    /// A write succeeded with `notice`: an earlier write's error is over.
    fn write_succeeded(&mut self, notice: String) {
        self.notice = Some(notice);
        self.write_error = None;
    }

    /// `source` read fine: an error it failed with before is over.
    fn read_succeeded(&mut self, source: ErrorSource) {
        if self.error_source == Some(source) {
            self.error = None;
            self.error_source = None;
        }
    }

    /// A new UI on the workflows screen, with its first loads queued.
    pub fn new(database: impl Into<String>, read_only: bool) -> Self {
        let mut app = Self {
            database: database.into(),
            clock: crate::db::Clock::default(),
            prune_policy: default_prune_policy(),
            read_only,
            rows: 0,
            cols: 0,
            screens: vec![Screen::Workflows],
            popup: None,
            workflows: WorkflowsView::default(),
            counts: StatusCounts::default(),
            detail: None,
            checkpoints: None,
            snapshot: None,
            diff: None,
            awaited: Awaited::default(),
            in_flight: InFlight::default(),
            last_refresh: None,
            error: None,
            error_source: None,
            notice: None,
            write_error: None,
            ticks: 0,
            quit: false,
            fatal: None,
            commands: Vec::new(),
        };
        app.reload_workflows(PAGE_SIZE);
        app.load_counts();
        app
    }

    /// The screen on top.
    pub fn screen(&self) -> Screen {
        *self.screens.last().unwrap_or(&Screen::Workflows)
    }

    /// Esc on the workflows screen: clears the text filter if there is one, else the
    /// status, stuck and active filters; with none, says that `q` quits.
    fn clear_a_filter(&mut self) {
        let view = &mut self.workflows;
        if !view.text_filter.is_empty() {
            view.text_filter.clear();
            self.notice = Some("text filter cleared".into());
        } else if view.status_filter.is_some() || view.lease_expired || view.active_only {
            view.status_filter = None;
            view.lease_expired = false;
            view.active_only = false;
            self.notice = Some("filters cleared: all workflows".into());
        } else {
            self.notice = Some("nothing to clear; q or Ctrl-C quits".into());
            return;
        }
        view.selected = 0;
        self.reload_workflows(PAGE_SIZE);
    }

    fn push(&mut self, screen: Screen) {
        if self.screen() != screen {
            self.screens.push(screen);
        }
    }

    fn back(&mut self) {
        // What the screen left was waiting for is no longer wanted.
        self.awaited = Awaited::default();
        if self.screens.len() > 1 {
            self.screens.pop();
        } else {
            self.quit = true;
        }
        // Nor is the error of a read only that screen made: no refresh makes it again,
        // so it would stay on the status bar, over the keys, for good.
        let shown = |screen: Screen| self.screens.contains(&screen);
        let orphaned = match self.error_source {
            Some(ErrorSource::Workflow(_) | ErrorSource::History(_)) => !shown(Screen::Detail),
            Some(ErrorSource::CheckpointInfos(_)) => !shown(Screen::Checkpoints),
            Some(ErrorSource::List | ErrorSource::Counts) | None => false,
        };
        if orphaned {
            self.error = None;
            self.error_source = None;
        }
    }

    fn reload_workflows(&mut self, limit: u64) {
        self.workflows.request += 1;
        self.workflows.loading = true;
        self.commands.push(Command::LoadWorkflows {
            request: self.workflows.request,
            query: self.workflows.query(limit),
            append: false,
        });
    }

    /// Reloads what the screens show, keeping selections, as `refresh` says.
    fn refresh(&mut self, refresh: Refresh) {
        self.ticks = 0;
        // A list load still under way (slower than the ticks between refreshes) answers
        // for the timer too: a second one would only make the first's answer stale.
        if refresh.starts(self.workflows.loading) {
            let limit = (self.workflows.rows.len() as u64).clamp(PAGE_SIZE, REFRESH_LIMIT);
            self.reload_workflows(limit);
        }
        if refresh.starts(self.in_flight.counts) {
            self.load_counts();
        }
        for screen in self.screens.clone() {
            match screen {
                Screen::Detail => {
                    if let Some(view) = &self.detail {
                        let (id, loading) = (view.state.id, view.loading);
                        match refresh {
                            Refresh::Full => self.load_detail(id),
                            // The read under way brings the newest version anyway.
                            Refresh::Automatic if loading => {}
                            Refresh::Automatic | Refresh::AfterWrite => {
                                self.commands.push(Command::CheckDetailVersion(id));
                            }
                        }
                        if refresh.starts(self.in_flight.history == Some(id)) {
                            self.load_history(id);
                        }
                    } else if let Some(opening) = &self.awaited.detail {
                        // Nothing shown yet: its first read is slow, or it failed (a lost
                        // connection). The timer reads it again once a read failed, so the
                        // screen recovers by itself; `r` reads it again at once, as Esc
                        // and Enter would.
                        let (id, loading) = (opening.id, opening.loading);
                        if refresh.starts(loading) {
                            self.load_detail(id);
                        }
                        if refresh.starts(self.in_flight.history == Some(id)) {
                            self.load_history(id);
                        }
                    }
                }
                Screen::Checkpoints => {
                    if let Some(view) = &self.checkpoints {
                        let id = view.workflow_state_id;
                        if refresh.starts(self.in_flight.checkpoint_infos == Some(id)) {
                            self.load_checkpoint_infos(id);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn open_checkpoints(&mut self, workflow_state_id: Uuid, workflow_id: String) {
        self.checkpoints = Some(CheckpointsView {
            workflow_state_id,
            workflow_id,
            list: None,
            selected: 0,
            marked: None,
            usage: None,
        });
        self.load_checkpoint_infos(workflow_state_id);
        self.push(Screen::Checkpoints);
    }

    fn load_counts(&mut self) {
        self.in_flight.counts = true;
        self.commands.push(Command::LoadCounts);
    }

    fn load_history(&mut self, workflow_state_id: Uuid) {
        self.in_flight.history = Some(workflow_state_id);
        self.commands.push(Command::LoadHistory(workflow_state_id));
    }

    fn load_checkpoint_infos(&mut self, workflow_state_id: Uuid) {
        self.in_flight.checkpoint_infos = Some(workflow_state_id);
        self.commands
            .push(Command::LoadCheckpointInfos(workflow_state_id));
    }

    /// Shows the snapshot screen for `info` at once, saying it loads, and fetches the
    /// snapshot by id.
    fn open_snapshot(&mut self, info: CheckpointInfo) {
        self.commands.push(Command::LoadSnapshot(info.id));
        self.snapshot = Some(SnapshotView {
            info,
            lines: None,
            scroll: 0,
        });
        self.push(Screen::Snapshot);
    }

    /// A snapshot could not be loaded (pruned meanwhile, connection lost): say so, go
    /// back to the list and reload it.
    fn snapshot_failed(&mut self, err: &str) {
        self.show_error(format!("cannot open the snapshot: {err}"));
        self.snapshot = None;
        if self.screen() == Screen::Snapshot {
            self.screens.pop();
        }
        if let Some(view) = &self.checkpoints {
            self.load_checkpoint_infos(view.workflow_state_id);
        }
    }

    /// Shows `detail` (or nothing) on the detail screen. The workflow shown before goes to
    /// the runtime to be freed off the UI thread, as what a refresh replaces does (see
    /// [`Command::Discard`]): it can be megabytes.
    fn set_detail(&mut self, detail: Option<DetailView>) {
        if let Some(old) = std::mem::replace(&mut self.detail, detail) {
            self.commands
                .push(Command::Discard(Box::new(old.into_loaded())));
        }
    }

    /// Where workflow `id`'s checkpoint totals and lineage go: on its view if it is shown,
    /// kept for it if it is being opened (they often arrive before a large workflow's full
    /// read); `None` for a workflow the user has left.
    fn history_slot(&mut self, id: Uuid) -> Option<&mut Option<WorkflowHistory>> {
        if let Some(view) = DetailView::showing(&mut self.detail, id) {
            return Some(&mut view.history);
        }
        self.awaited.opening(id).map(|opening| &mut opening.history)
    }

    fn open_detail(&mut self, id: Uuid) {
        // The open view is kept if it is this workflow (at its step), else the first
        // full read to arrive for this workflow opens it.
        if self.detail.as_ref().is_none_or(|d| d.state.id != id) {
            self.set_detail(None);
            self.awaited.detail = Some(Opening {
                id,
                history: None,
                loading: false,
            });
        }
        self.load_detail(id);
        self.load_history(id);
        self.push(Screen::Detail);
    }

    /// Reads workflow `id` in full, noting on its view (if open) that the read is under
    /// way.
    fn load_detail(&mut self, id: Uuid) {
        if let Some(view) = DetailView::showing(&mut self.detail, id) {
            view.loading = true;
        } else if let Some(opening) = self.awaited.opening(id) {
            opening.loading = true;
        }
        self.commands.push(Command::LoadDetail(id));
    }

    /// False, with the reason in the status bar, in read-only mode.
    fn may_write(&mut self, what: &str) -> bool {
        if self.read_only {
            self.show_error(format!("read-only mode: {what} is disabled"));
        }
        !self.read_only
    }

    fn start_restore(&mut self, checkpoint: Uuid) {
        if self.may_write("restore") {
            self.awaited.restore_plan = Some(checkpoint);
            self.commands.push(Command::PlanRestore(checkpoint));
        }
    }

    /// Diffs `from` with `to` (the current state if `None`); the diff screen opens when
    /// the answer arrives, unless the user went back meanwhile.
    fn start_diff(&mut self, from: Uuid, to: Option<Uuid>) {
        self.awaited.diff = Some((from, to));
        self.commands.push(Command::Diff { from, to });
    }

    /// `p`: asks whether to unpin a pinned checkpoint (its label would be lost), else asks
    /// for the label to pin it with.
    fn toggle_pin(&mut self, checkpoint: Uuid) {
        if !self.may_write("pinning") {
            return;
        }
        let label = self
            .checkpoints
            .as_ref()
            .and_then(|view| view.checkpoint(checkpoint))
            .and_then(|info| info.pinned.clone());
        if let Some(label) = label {
            self.popup = Some(Popup::ConfirmUnpin { checkpoint, label });
        } else {
            self.popup = Some(Popup::Input {
                purpose: InputPurpose::PinLabel(checkpoint),
                input: String::new(),
                error: None,
            });
        }
    }

    fn start_fork(&mut self, checkpoint: Uuid) {
        if self.may_write("fork") {
            self.popup = Some(Popup::Input {
                purpose: InputPurpose::ForkWorkflowId(checkpoint),
                input: String::new(),
                error: None,
            });
        }
    }
}

/// Why the screens are read again, which decides what a refresh may skip: a context can
/// be megabytes, and a load can take longer than the 5 s between automatic refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// The timer: starts no second read of the list, the counts, the open workflow, its
    /// history or the checkpoint list while one is under way (see [`InFlight`]), and asks
    /// for the workflow's version first, reading it in full only if that changed.
    Automatic,
    /// After a write that leaves the open workflow alone (pin, fork, prune): the list
    /// again even if a load is under way (it may have started before the write), the
    /// workflow's version first.
    AfterWrite,
    /// `r`, and after a restore: everything, the open workflow in full.
    Full,
}

impl Refresh {
    /// Whether this refresh reads something again while a read of it is `under_way`:
    /// the timer waits for that answer, a refresh asked for (`r`, a write) does not.
    fn starts(self, under_way: bool) -> bool {
        self != Refresh::Automatic || !under_way
    }
}

/// Moves a selected row or a scroll position by `delta` (any size), staying on one of
/// `len` rows or lines: the last one stays reachable however long the text is.
fn moved(index: usize, delta: isize, len: usize) -> usize {
    index
        .saturating_add_signed(delta)
        .min(len.saturating_sub(1))
}

/// Movement keys: how far a key moves a selection, if it is one.
fn movement(key: &KeyEvent) -> Option<isize> {
    match key.code {
        KeyCode::Char('j') | KeyCode::Down => Some(1),
        KeyCode::Char('k') | KeyCode::Up => Some(-1),
        KeyCode::PageDown => Some(20),
        KeyCode::PageUp => Some(-20),
        KeyCode::Char('g') | KeyCode::Home => Some(isize::MIN / 2),
        KeyCode::Char('G') | KeyCode::End => Some(isize::MAX / 2),
        _ => None,
    }
}

/// Applies one message to the model.
pub fn update(app: &mut App, message: Message) {
    match message {
        Message::Key(key) => on_key(app, key),
        Message::Resize { rows, cols } => {
            app.rows = rows;
            app.cols = cols;
        }
        Message::Tick => {
            app.ticks += 1;
            if app.ticks >= REFRESH_TICKS && app.popup.is_none() {
                app.refresh(Refresh::Automatic);
            }
        }
        Message::WorkflowsLoaded {
            request,
            append,
            result,
            at,
        } => {
            if request != app.workflows.request {
                return;
            }
            app.workflows.loading = false;
            match result {
                Ok(page) => {
                    let view = &mut app.workflows;
                    if append {
                        view.rows.extend(page.rows);
                    } else {
                        let selected_id = view.selected_row().map(|row| row.id);
                        view.rows = page.rows;
                        view.selected = selected_id
                            .and_then(|id| view.rows.iter().position(|row| row.id == id))
                            .unwrap_or(view.selected)
                            .min(view.rows.len().saturating_sub(1));
                    }
                    view.next = page.next;
                    app.last_refresh = Some(at);
                    app.read_succeeded(ErrorSource::List);
                }
                Err(err) => app.show_read_error(err, ErrorSource::List),
            }
        }
        Message::CountsLoaded(result) => {
            // Answered or failed: the next automatic refresh may ask again.
            app.in_flight.counts = false;
            match result {
                Ok(counts) => {
                    app.counts = counts;
                    app.read_succeeded(ErrorSource::Counts);
                }
                Err(err) => app.show_read_error(err, ErrorSource::Counts),
            }
        }
        Message::DetailLoaded {
            workflow_state_id,
            result,
        } => {
            let mut shown = DetailView::showing(&mut app.detail, workflow_state_id);
            // The read is over, answered or failed: the next refresh may start another.
            if let Some(detail) = shown.as_mut() {
                detail.loading = false;
            }
            // Only for the workflow shown or being opened: another one's answer (the user
            // opened it, then went back or opened another) is dropped.
            let opening = shown.is_none()
                && app
                    .awaited
                    .detail
                    .as_ref()
                    .is_some_and(|opening| opening.id == workflow_state_id);
            match (result, shown) {
                // A refresh of the workflow on screen keeps its place; the one being opened
                // starts afresh. Either way the lines come printed: nothing here is
                // proportional to the JSON.
                (Ok(loaded), Some(detail)) => {
                    let old = detail.replace(loaded);
                    app.commands.push(Command::Discard(Box::new(old)));
                    app.read_succeeded(ErrorSource::Workflow(workflow_state_id));
                }
                (Ok(loaded), None) if opening => {
                    let history = app
                        .awaited
                        .detail
                        .take()
                        .and_then(|opening| opening.history);
                    app.set_detail(Some(DetailView::new(loaded, history)));
                    app.read_succeeded(ErrorSource::Workflow(workflow_state_id));
                }
                // The one being opened stays awaited after an error: another read of it
                // may be under way (Esc, Enter).
                (Err(err), shown) if shown.is_some() || opening => {
                    if let Some(opening) = app.awaited.opening(workflow_state_id) {
                        opening.loading = false;
                    }
                    app.show_read_error(err, ErrorSource::Workflow(workflow_state_id));
                }
                // Another workflow's: dropped, and freed off the UI thread (it can be as
                // big as any).
                (Ok(loaded), None) => app.commands.push(Command::Discard(Box::new(loaded))),
                (Err(_), _) => {}
            }
        }
        Message::DetailVersion {
            workflow_state_id,
            result,
        } => {
            // Only for the workflow on screen: an answer for one the user left is dropped.
            let Some(detail) = DetailView::showing(&mut app.detail, workflow_state_id) else {
                return;
            };
            let source = ErrorSource::Workflow(workflow_state_id);
            match result {
                Ok(version) if Some(version) == detail.version => app.read_succeeded(source),
                // A full read is already under way (a check answered after it started):
                // it brings the new version.
                Ok(_) if detail.loading => {}
                Ok(_) => app.load_detail(workflow_state_id),
                // Deleted meanwhile: the same error a full read gives.
                Err(err) => app.show_read_error(err, source),
            }
        }
        Message::CheckpointInfosLoaded {
            workflow_state_id,
            result,
        } => {
            if app.in_flight.checkpoint_infos == Some(workflow_state_id) {
                app.in_flight.checkpoint_infos = None;
            }
            let Some(view) = app
                .checkpoints
                .as_mut()
                .filter(|view| view.workflow_state_id == workflow_state_id)
            else {
                return;
            };
            match result {
                Ok((list, usage)) => {
                    let selected_id = view.selected_checkpoint().map(|c| c.id);
                    view.selected = selected_id
                        .and_then(|id| list.iter().position(|c| c.id == id))
                        .unwrap_or(view.selected)
                        .min(list.len().saturating_sub(1));
                    // A mark on a checkpoint that is gone (pruned, restored past) would be
                    // invisible, yet `d` would diff against it.
                    view.marked = view
                        .marked
                        .filter(|marked| list.iter().any(|c| c.id == *marked));
                    view.list = Some(list);
                    view.usage = Some(usage);
                    app.read_succeeded(ErrorSource::CheckpointInfos(workflow_state_id));
                }
                Err(err) => {
                    app.show_read_error(err, ErrorSource::CheckpointInfos(workflow_state_id));
                }
            }
        }
        Message::SnapshotLoaded { checkpoint, result } => {
            // Only the snapshot on screen: an answer for one the user left is dropped.
            let Some(view) = app
                .snapshot
                .as_mut()
                .filter(|view| view.info.id == checkpoint)
            else {
                return;
            };
            match result {
                Ok(lines) => view.lines = Some(lines),
                Err(err) => app.snapshot_failed(&err),
            }
        }
        Message::HistoryLoaded {
            workflow_state_id,
            result,
        } => {
            if app.in_flight.history == Some(workflow_state_id) {
                app.in_flight.history = None;
            }
            let Some(slot) = app.history_slot(workflow_state_id) else {
                return;
            };
            match result {
                Ok(history) => {
                    *slot = Some(history);
                    app.read_succeeded(ErrorSource::History(workflow_state_id));
                }
                Err(err) => app.show_read_error(err, ErrorSource::History(workflow_state_id)),
            }
        }
        Message::PinSet {
            checkpoint,
            label,
            result,
        } => match result {
            Ok(()) => {
                app.error = None;
                app.write_succeeded(match label {
                    Some(label) => format!("pinned checkpoint {checkpoint}: {label}"),
                    None => format!("unpinned checkpoint {checkpoint}"),
                });
                app.refresh(Refresh::AfterWrite);
            }
            Err(err) if label.is_some() => app.write_failed("pin", &err),
            Err(err) => app.write_failed("unpin", &err),
        },
        Message::Forked { checkpoint, result } => match result {
            Ok(state) => {
                app.error = None;
                app.write_succeeded(format!(
                    "forked {} ({}) from checkpoint {checkpoint}: {}",
                    state.workflow_id, state.id, state.status
                ));
                app.refresh(Refresh::AfterWrite);
            }
            Err(err) => app.write_failed("fork", &err),
        },
        Message::Pruned {
            policy,
            dry_run,
            result,
        } => match result {
            Ok(report) => {
                app.error = None;
                app.prune_policy = policy;
                if !report.dry_run {
                    app.write_succeeded(format!(
                        "pruned {}, {}, {}",
                        crate::format::count(report.workflows, "workflow", "workflows"),
                        crate::format::count(report.checkpoints, "checkpoint", "checkpoints"),
                        crate::format::size(report.bytes)
                    ));
                    app.refresh(Refresh::AfterWrite);
                }
                app.popup = Some(Popup::Prune {
                    policy,
                    report,
                    done: !report.dry_run,
                    scroll: 0,
                });
            }
            // The preview only read.
            Err(err) if dry_run => app.show_error(format!("prune preview failed: {err}")),
            Err(err) => app.write_failed("prune", &err),
        },
        Message::DiffLoaded { from, to, result } => {
            // Only the diff last asked for, and not after the user went back.
            if app.awaited.diff != Some((from, to)) {
                return;
            }
            app.awaited.diff = None;
            match result {
                Ok((title, changes)) => {
                    app.diff = Some(DiffView {
                        title,
                        changes,
                        scroll: 0,
                    });
                    app.push(Screen::Diff);
                }
                Err(err) => app.show_error(err),
            }
        }
        Message::RestorePlanned { checkpoint, result } => {
            // A confirmation only for the checkpoint last asked about, and not after the
            // user went back: `y` or Enter would restore a checkpoint not on screen.
            if app.awaited.restore_plan != Some(checkpoint) {
                return;
            }
            app.awaited.restore_plan = None;
            match result {
                Ok(plan) => app.popup = Some(Popup::ConfirmRestore { plan, scroll: 0 }),
                Err(err) => app.show_error(err),
            }
        }
        Message::Restored(result) => match result {
            Ok(loaded) => {
                let state = &loaded.state;
                app.write_succeeded(format!(
                    "restored {}: now {}, {}",
                    state.workflow_id,
                    state.status,
                    crate::format::count(state.steps.len() as u64, "step", "steps")
                ));
                app.error = None;
                // The screens change under whatever was awaited: a diff or plan of the
                // state before the restore is stale.
                app.awaited = Awaited::default();
                let history = DetailView::showing(&mut app.detail, state.id)
                    .and_then(|detail| detail.history.take());
                app.set_detail(Some(DetailView::new(loaded, history)));
                // Show the result on the workflow's detail screen, the one below the
                // checkpoints if the user came that way.
                match app.screens.iter().position(|s| *s == Screen::Detail) {
                    Some(index) => app.screens.truncate(index + 1),
                    None => {
                        app.screens.retain(|s| *s == Screen::Workflows);
                        app.push(Screen::Detail);
                    }
                }
                // Its version is not known yet: read it again in full.
                app.refresh(Refresh::Full);
            }
            Err(err) => app.write_failed("restore", &err),
        },
        Message::Fatal(err) => {
            app.fatal = Some(err);
            app.quit = true;
        }
    }
}

fn on_key(app: &mut App, key: KeyEvent) {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.quit = true;
        return;
    }
    // The operator has seen it.
    app.write_error = None;
    if let Some(popup) = app.popup.take() {
        on_popup_key(app, popup, key);
        return;
    }
    app.notice = None;
    match key.code {
        KeyCode::Char('?') => {
            app.popup = Some(Popup::Help { scroll: 0 });
            return;
        }
        // On the workflows screen Esc never quits (Esc Esc out of a popup must not end
        // the session): it clears a filter, and says how to quit when there is none.
        KeyCode::Esc if app.screens.len() == 1 => {
            app.clear_a_filter();
            return;
        }
        KeyCode::Char('q') | KeyCode::Esc => {
            app.back();
            return;
        }
        KeyCode::Char('r') => {
            // The operator asked: read everything again, changed or not.
            app.refresh(Refresh::Full);
            return;
        }
        KeyCode::Char('P') => {
            // A preview first, always (it reads only, so read-only mode may see it too).
            app.commands.push(Command::Prune {
                policy: app.prune_policy,
                dry_run: true,
            });
            return;
        }
        _ => {}
    }
    match app.screen() {
        Screen::Workflows => on_workflows_key(app, key),
        Screen::Detail => on_detail_key(app, key),
        Screen::Checkpoints => on_checkpoints_key(app, key),
        Screen::Snapshot => on_snapshot_key(app, key),
        Screen::Diff => {
            if let (Some(delta), Some(diff)) = (movement(&key), app.diff.as_mut()) {
                diff.scroll = moved(diff.scroll, delta, diff.changes.len());
            }
        }
    }
}

/// Edits the text of a one-line input as a shell line does: characters are typed,
/// Backspace deletes one, Ctrl-W the word before the cursor, Ctrl-U all of it. Other
/// keys with Ctrl or Alt are ignored rather than typed as their letter, except Ctrl and
/// Alt together, which is how AltGr characters (`@` on many keyboards) arrive.
fn edit_text(input: &mut String, key: &KeyEvent) {
    let altgr = key
        .modifiers
        .contains(KeyModifiers::CONTROL | KeyModifiers::ALT);
    let control = key.modifiers.contains(KeyModifiers::CONTROL) && !altgr;
    let alt = key.modifiers.contains(KeyModifiers::ALT) && !altgr;
    match key.code {
        KeyCode::Backspace => {
            input.pop();
        }
        KeyCode::Char('u') if control => input.clear(),
        KeyCode::Char('w') if control => {
            let kept = input.trim_end().rfind(' ').map_or(0, |space| space + 1);
            input.truncate(kept);
        }
        KeyCode::Char(c) if !control && !alt => {
            input.push(c);
        }
        _ => {}
    }
}

fn on_popup_key(app: &mut App, popup: Popup, key: KeyEvent) {
    match popup {
        Popup::Help { scroll } => {
            // Movement keys scroll a help taller than the terminal; any other key, and
            // any key when it fits, closes it.
            let last = crate::ui::help::last_scroll(app.read_only, app.rows);
            if let (Some(delta), Some(last)) = (movement(&key), last) {
                let scroll = moved(scroll, delta, last + 1);
                app.popup = Some(Popup::Help { scroll });
            }
        }
        Popup::Filter { mut input } => match key.code {
            KeyCode::Enter => {
                app.workflows.text_filter = input;
                app.workflows.selected = 0;
                app.reload_workflows(PAGE_SIZE);
            }
            KeyCode::Esc => {}
            _ => {
                edit_text(&mut input, &key);
                app.popup = Some(Popup::Filter { input });
            }
        },
        // Only `y` confirms a destructive action: Enter, pressed out of habit (it opens
        // and submits everywhere else), does nothing here.
        Popup::ConfirmRestore { plan, scroll } => match key.code {
            // Nothing to restore from a checkpoint that holds no state of the workflow:
            // the popup says why until it is closed.
            KeyCode::Char('y') if plan.refused.is_some() => {
                app.popup = Some(Popup::ConfirmRestore { plan, scroll });
            }
            KeyCode::Char('y') => {
                app.notice = Some("restoring...".into());
                // Confirmed under the popup's warning that a replica holds the lease.
                let checkpoint = plan.checkpoint.id;
                app.commands.push(match plan.live_lease {
                    Some(_) => Command::RestoreOverridingLease(checkpoint),
                    None => Command::Restore(checkpoint),
                });
            }
            KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
                app.notice = Some(match plan.refused {
                    Some(_) => "nothing restored; nothing changed".into(),
                    None => "restore cancelled; nothing changed".into(),
                });
            }
            _ => {
                let scroll = match movement(&key) {
                    Some(delta) => {
                        let body = crate::ui::confirm::restore(&plan).body;
                        let last = crate::ui::confirm::last_scroll(&body, app.cols, app.rows);
                        moved(scroll, delta, last + 1)
                    }
                    None => scroll,
                };
                app.popup = Some(Popup::ConfirmRestore { plan, scroll });
            }
        },
        // Like restore: only `y` unpins, and any other key but a no leaves the question.
        Popup::ConfirmUnpin { checkpoint, label } => match key.code {
            KeyCode::Char('y') => app.commands.push(Command::SetPin {
                checkpoint,
                label: None,
            }),
            KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
                app.notice = Some("unpin cancelled; the pin stays".into());
            }
            _ => app.popup = Some(Popup::ConfirmUnpin { checkpoint, label }),
        },
        Popup::Input {
            purpose: InputPurpose::PrunePolicy { previewed, report },
            mut input,
            error,
        } => match key.code {
            // A new preview, or nothing: the prune's `y` applies only a policy it shows.
            KeyCode::Enter => match crate::commands::parse_policy_text(&input) {
                Ok(policy) => {
                    app.commands.push(Command::Prune {
                        policy,
                        dry_run: true,
                    });
                }
                Err(err) => {
                    app.popup = Some(Popup::Input {
                        purpose: InputPurpose::PrunePolicy { previewed, report },
                        input,
                        error: Some(err),
                    });
                }
            },
            KeyCode::Esc => {
                app.popup = Some(Popup::Prune {
                    policy: previewed,
                    report,
                    done: false,
                    scroll: 0,
                });
            }
            _ => {
                edit_text(&mut input, &key);
                app.popup = Some(Popup::Input {
                    purpose: InputPurpose::PrunePolicy { previewed, report },
                    input,
                    error,
                });
            }
        },
        Popup::Input {
            purpose, mut input, ..
        } => {
            match key.code {
                KeyCode::Enter => {
                    let text = input.trim().to_owned();
                    if text.is_empty() {
                        // Say why nothing happened; the popup stays for the text.
                        app.notice = Some(match purpose {
                        InputPurpose::PinLabel(_) => {
                            "a pin needs a label: type one, then Enter (Esc cancels)"
                        }
                        InputPurpose::ForkWorkflowId(_) => {
                            "a fork needs a new workflow_id: type one, then Enter (Esc cancels)"
                        }
                        // Handled by its own arm above; a plain word, never a panic.
                        InputPurpose::PrunePolicy { .. } => "type a policy, then Enter (Esc cancels)",
                    }
                    .into());
                        app.popup = Some(Popup::Input {
                            purpose,
                            input,
                            error: None,
                        });
                        return;
                    }
                    app.commands.push(match purpose {
                        InputPurpose::PinLabel(checkpoint) => Command::SetPin {
                            checkpoint,
                            label: Some(text),
                        },
                        InputPurpose::ForkWorkflowId(checkpoint) => Command::Fork {
                            checkpoint,
                            new_workflow_id: text,
                        },
                        // Handled by its own arm above: nothing to run here.
                        InputPurpose::PrunePolicy { .. } => return,
                    });
                }
                KeyCode::Esc => app.notice = Some("cancelled; nothing changed".into()),
                _ => {
                    edit_text(&mut input, &key);
                    // "needs a label" is answered once there is text.
                    if !input.trim().is_empty() {
                        app.notice = None;
                    }
                    app.popup = Some(Popup::Input {
                        purpose,
                        input,
                        error: None,
                    });
                }
            }
        }
        Popup::Prune {
            policy,
            report,
            done,
            scroll,
        } => match key.code {
            KeyCode::Char('y') if !done => {
                if app.may_write("prune") {
                    app.notice = Some("pruning...".into());
                    app.commands.push(Command::Prune {
                        policy,
                        dry_run: false,
                    });
                }
            }
            KeyCode::Char('e') if !done => {
                app.popup = Some(Popup::Input {
                    purpose: InputPurpose::PrunePolicy {
                        previewed: policy,
                        report,
                    },
                    input: crate::commands::policy_text(&policy),
                    error: None,
                });
            }
            KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') if !done => {
                app.notice = Some("prune cancelled; nothing changed".into());
            }
            _ => {
                // Movement keys scroll a popup taller than the terminal; on the report,
                // any other key (any key when it fits) closes it.
                let body =
                    crate::ui::prune::confirmation(&policy, &report, done, app.read_only).body;
                let last = crate::ui::confirm::last_scroll(&body, app.cols, app.rows);
                let scroll = match movement(&key) {
                    Some(delta) if last > 0 => moved(scroll, delta, last + 1),
                    _ if done => return,
                    _ => scroll,
                };
                app.popup = Some(Popup::Prune {
                    policy,
                    report,
                    done,
                    scroll,
                });
            }
        },
    }
}

fn on_workflows_key(app: &mut App, key: KeyEvent) {
    if let Some(delta) = movement(&key) {
        let view = &mut app.workflows;
        view.selected = moved(view.selected, delta, view.rows.len());
        // Within half a page of the end of what is loaded: fetch the next page, early
        // enough that scrolling does not stop at the end while it loads.
        if view.selected + (PAGE_SIZE as usize) / 2 >= view.rows.len()
            && !view.loading
            && let Some(after) = view.next.clone()
        {
            view.request += 1;
            view.loading = true;
            let mut query = view.query(PAGE_SIZE);
            query.after = Some(after);
            app.commands.push(Command::LoadWorkflows {
                request: view.request,
                query,
                append: true,
            });
        }
        return;
    }
    match key.code {
        KeyCode::Enter => {
            if let Some(row) = app.workflows.selected_row() {
                let id = row.id;
                app.open_detail(id);
            }
        }
        KeyCode::Char('c') => {
            if let Some(row) = app.workflows.selected_row() {
                let (id, workflow_id) = (row.id, row.workflow_id.clone());
                app.open_checkpoints(id, workflow_id);
            }
        }
        KeyCode::Char('a') => {
            app.workflows.active_only = !app.workflows.active_only;
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('x') => {
            app.workflows.lease_expired = !app.workflows.lease_expired;
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('f') => {
            let view = &mut app.workflows;
            view.status_filter = match view.status_filter {
                None => Some(WorkflowStatus::ALL[0]),
                Some(status) => WorkflowStatus::ALL
                    .iter()
                    .position(|s| *s == status)
                    .and_then(|i| WorkflowStatus::ALL.get(i + 1))
                    .copied(),
            };
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('s') => {
            let view = &mut app.workflows;
            let index = WorkflowSort::ALL
                .iter()
                .position(|s| *s == view.sort)
                .unwrap_or(0);
            view.sort = WorkflowSort::ALL[(index + 1) % WorkflowSort::ALL.len()];
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('o') => {
            app.workflows.ascending = !app.workflows.ascending;
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('/') => {
            app.popup = Some(Popup::Filter {
                input: app.workflows.text_filter.clone(),
            });
        }
        _ => {}
    }
}

fn on_detail_key(app: &mut App, key: KeyEvent) {
    let Some(detail) = app.detail.as_mut() else {
        return;
    };
    if let Some(delta) = movement(&key) {
        match detail.focus {
            DetailFocus::Steps => {
                detail.select_step(moved(detail.step, delta, detail.state.steps.len()));
            }
            DetailFocus::Outputs => {
                let lines = detail.selected_outputs_lines().len();
                detail.outputs_scroll = moved(detail.outputs_scroll, delta, lines);
            }
            DetailFocus::Context => {
                let lines = detail.context_lines.len();
                detail.context_scroll = moved(detail.context_scroll, delta, lines);
            }
        }
        return;
    }
    match key.code {
        KeyCode::Tab => {
            detail.focus = match detail.focus {
                DetailFocus::Steps => DetailFocus::Outputs,
                DetailFocus::Outputs => DetailFocus::Context,
                DetailFocus::Context => DetailFocus::Steps,
            };
        }
        KeyCode::Char('c') => {
            let (id, workflow_id) = (detail.state.id, detail.state.workflow_id.clone());
            app.open_checkpoints(id, workflow_id);
        }
        _ => {}
    }
}

fn on_checkpoints_key(app: &mut App, key: KeyEvent) {
    let Some(view) = app.checkpoints.as_mut() else {
        return;
    };
    let len = view.list.as_ref().map_or(0, Vec::len);
    if let Some(delta) = movement(&key) {
        view.selected = moved(view.selected, delta, len);
        return;
    }
    let Some(selected) = view.selected_checkpoint().cloned() else {
        return;
    };
    match key.code {
        KeyCode::Enter => app.open_snapshot(selected),
        KeyCode::Char(' ') | KeyCode::Char('m') => {
            view.marked = if view.marked == Some(selected.id) {
                None
            } else {
                Some(selected.id)
            };
        }
        KeyCode::Char('d') => {
            let (from, to) = match view.marked.filter(|id| *id != selected.id) {
                // Older first, so the diff reads as "what happened since".
                Some(marked) => {
                    let marked_index = view
                        .list
                        .as_ref()
                        .and_then(|list| list.iter().position(|c| c.id == marked))
                        .unwrap_or(0);
                    if marked_index > view.selected {
                        (marked, Some(selected.id))
                    } else {
                        (selected.id, Some(marked))
                    }
                }
                None => (selected.id, None),
            };
            app.start_diff(from, to);
        }
        KeyCode::Char('R') | KeyCode::Char('u') => app.start_restore(selected.id),
        KeyCode::Char('p') => app.toggle_pin(selected.id),
        KeyCode::Char('F') => app.start_fork(selected.id),
        _ => {}
    }
}

fn on_snapshot_key(app: &mut App, key: KeyEvent) {
    let Some(view) = app.snapshot.as_mut() else {
        return;
    };
    if let Some(delta) = movement(&key) {
        // Nothing to scroll while it loads.
        if let Some(lines) = &view.lines {
            view.scroll = moved(view.scroll, delta, lines.len());
        }
        return;
    }
    // Diff and restore fetch the checkpoint by id themselves: they work while it loads.
    let id = view.info.id;
    match key.code {
        KeyCode::Char('d') => app.start_diff(id, None),
        KeyCode::Char('R') | KeyCode::Char('u') => app.start_restore(id),
        _ => {}
    }
}

/// The selected step of the detail view, in run order.
pub fn selected_step(detail: &DetailView) -> Option<&llm_orchestrator_state::StepState> {
    detail
        .step_order
        .get(detail.step)
        .and_then(|id| detail.state.steps.get(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{LONG, failed_workflow, loaded_app, long_workflow, summaries, t0};
    use llm_orchestrator_state::Checkpoint;
    use llm_orchestrator_state::admin::SortValue;
    use serde_json::json;

    /// Answers a full read of the workflow as the runtime does: `state` stored at
    /// `version`, printed.
    fn deliver(app: &mut App, state: WorkflowState, version: i64) {
        let loaded = LoadedDetail::print(state, Some(version));
        update(app, arrived(loaded));
    }

    /// The answer to a full read of `loaded`'s workflow.
    fn arrived(loaded: LoadedDetail) -> Message {
        Message::DetailLoaded {
            workflow_state_id: loaded.state.id,
            result: Ok(loaded),
        }
    }

    fn key(code: KeyCode) -> Message {
        Message::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn press(app: &mut App, keys: &str) {
        for c in keys.chars() {
            update(app, key(KeyCode::Char(c)));
        }
    }

    fn last_workflow_query(app: &App) -> (WorkflowQuery, bool) {
        app.commands
            .iter()
            .rev()
            .find_map(|command| match command {
                Command::LoadWorkflows { query, append, .. } => Some((query.clone(), *append)),
                _ => None,
            })
            .expect("a workflow load was queued")
    }

    fn loaded(app: &App, rows: Vec<WorkflowSummary>) -> Message {
        Message::WorkflowsLoaded {
            request: app.workflows.request,
            append: false,
            result: Ok(WorkflowPage { rows, next: None }),
            at: t0(),
        }
    }

    fn with_checkpoints() -> App {
        let (state, checkpoints) = failed_workflow();
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Char('c')));
        let id = app.checkpoints.as_ref().unwrap().workflow_state_id;
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: id,
                result: Ok(crate::fixtures::checkpoint_infos(&checkpoints)),
            },
        );
        app.detail = Some(DetailView::new(LoadedDetail::print(state, Some(1)), None));
        app.commands.clear();
        app
    }

    #[test]
    fn a_new_app_loads_workflows_and_counts() {
        let app = App::new("db", false);
        assert_eq!(app.screen(), Screen::Workflows);
        let (query, append) = last_workflow_query(&app);
        assert!(!append);
        assert!(query.active_first);
        assert_eq!(query.limit, PAGE_SIZE);
        assert!(app.commands.contains(&Command::LoadCounts));
    }

    #[test]
    fn movement_keys_move_the_selection_within_the_rows() {
        let mut app = loaded_app();
        press(&mut app, "jj");
        assert_eq!(app.workflows.selected, 2);
        press(&mut app, "k");
        assert_eq!(app.workflows.selected, 1);
        update(&mut app, key(KeyCode::End));
        assert_eq!(app.workflows.selected, 4);
        press(&mut app, "j");
        assert_eq!(app.workflows.selected, 4);
        press(&mut app, "g");
        assert_eq!(app.workflows.selected, 0);
        update(&mut app, key(KeyCode::Up));
        assert_eq!(app.workflows.selected, 0);
    }

    #[test]
    fn a_refresh_keeps_the_selected_workflow_when_rows_move() {
        let mut app = loaded_app();
        press(&mut app, "jj");
        let selected = app.workflows.selected_row().unwrap().id;
        let mut rows = summaries();
        rows.reverse();
        update(&mut app, key(KeyCode::Char('r')));
        let message = loaded(&app, rows);
        update(&mut app, message);
        assert_eq!(app.workflows.selected_row().unwrap().id, selected);
        assert_eq!(app.last_refresh, Some(t0()));
    }

    #[test]
    fn stale_answers_are_dropped_and_errors_keep_the_rows() {
        let mut app = loaded_app();
        let stale = Message::WorkflowsLoaded {
            request: app.workflows.request - 1,
            append: false,
            result: Ok(WorkflowPage {
                rows: Vec::new(),
                next: None,
            }),
            at: t0(),
        };
        update(&mut app, stale);
        assert_eq!(app.workflows.rows.len(), 5);
        let request = app.workflows.request;
        update(
            &mut app,
            Message::WorkflowsLoaded {
                request,
                append: false,
                result: Err("connection error: gone".into()),
                at: t0(),
            },
        );
        assert_eq!(app.workflows.rows.len(), 5);
        assert_eq!(app.error.as_deref(), Some("connection error: gone"));
        update(&mut app, Message::CountsLoaded(Err("boom".into())));
        assert_eq!(app.error.as_deref(), Some("boom"));
    }

    #[test]
    fn counts_are_stored() {
        let mut app = App::new("db", false);
        update(
            &mut app,
            Message::CountsLoaded(Ok(crate::fixtures::counts())),
        );
        assert_eq!(app.counts.total(), 5);
    }

    #[test]
    fn ticks_refresh_every_few_seconds() {
        let mut app = loaded_app();
        app.commands.clear();
        for _ in 0..REFRESH_TICKS - 1 {
            update(&mut app, Message::Tick);
        }
        assert!(app.commands.is_empty());
        update(&mut app, Message::Tick);
        assert!(app.commands.contains(&Command::LoadCounts));
        assert!(last_workflow_query(&app).0.after.is_none());
        assert_eq!(app.ticks, 0);
    }

    #[test]
    fn filters_and_sorting_reload_from_the_first_row() {
        let mut app = loaded_app();
        press(&mut app, "a");
        assert!(last_workflow_query(&app).0.active_only);
        press(&mut app, "a");
        assert!(!last_workflow_query(&app).0.active_only);
        press(&mut app, "x");
        assert!(last_workflow_query(&app).0.lease_expired);
        press(&mut app, "x");
        assert!(!last_workflow_query(&app).0.lease_expired);
        press(&mut app, "ff");
        assert_eq!(
            last_workflow_query(&app).0.statuses,
            vec![WorkflowStatus::Running]
        );
        press(&mut app, "s");
        assert_eq!(last_workflow_query(&app).0.sort, WorkflowSort::StartedAt);
        press(&mut app, "o");
        assert!(!last_workflow_query(&app).0.descending);

        press(&mut app, "/");
        assert!(matches!(app.popup, Some(Popup::Filter { .. })));
        press(&mut app, "rag");
        update(&mut app, key(KeyCode::Backspace));
        assert_eq!(app.popup, Some(Popup::Filter { input: "ra".into() }));
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(app.popup, None);
        assert_eq!(last_workflow_query(&app).0.text.as_deref(), Some("ra"));
        press(&mut app, "/x");
        update(&mut app, key(KeyCode::Esc));
        assert_eq!(app.workflows.text_filter, "ra");
    }

    #[test]
    fn text_inputs_edit_like_a_shell_line_and_never_type_control_keys() {
        let ctrl = |c| Message::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
        let mut app = loaded_app();
        press(&mut app, "/");
        let input = |app: &App| match &app.popup {
            Some(Popup::Filter { input }) => input.clone(),
            other => panic!("{other:?}"),
        };
        press(&mut app, "rag answer");
        update(&mut app, ctrl('w'));
        assert_eq!(input(&app), "rag ");
        update(&mut app, ctrl('x'));
        update(
            &mut app,
            Message::Key(KeyEvent::new(KeyCode::Char('b'), KeyModifiers::ALT)),
        );
        assert_eq!(input(&app), "rag ", "Ctrl-X and Alt-B are not text");
        update(&mut app, ctrl('u'));
        assert_eq!(input(&app), "");
        // Upper case comes with Shift, which is text.
        update(
            &mut app,
            Message::Key(KeyEvent::new(KeyCode::Char('R'), KeyModifiers::SHIFT)),
        );
        assert_eq!(input(&app), "R");
        // AltGr arrives as Ctrl+Alt: text.
        update(
            &mut app,
            Message::Key(KeyEvent::new(
                KeyCode::Char('@'),
                KeyModifiers::CONTROL | KeyModifiers::ALT,
            )),
        );
        assert_eq!(input(&app), "R@");
    }

    #[test]
    fn scrolling_near_the_end_loads_the_next_page() {
        let mut app = loaded_app();
        let cursor = PageCursor {
            active: false,
            value: SortValue::Time(t0()),
            id: Uuid::from_u128(5),
        };
        app.workflows.next = Some(cursor.clone());
        app.commands.clear();
        press(&mut app, "j");
        let (query, append) = last_workflow_query(&app);
        assert!(append);
        assert_eq!(query.after, Some(cursor));
        let request = app.workflows.request;
        update(
            &mut app,
            Message::WorkflowsLoaded {
                request,
                append: true,
                result: Ok(WorkflowPage {
                    rows: summaries(),
                    next: None,
                }),
                at: t0(),
            },
        );
        assert_eq!(app.workflows.rows.len(), 10);
        assert_eq!(app.workflows.selected, 1);
    }

    #[test]
    fn enter_opens_the_detail_and_loads_it() {
        let mut app = loaded_app();
        press(&mut app, "j");
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(app.screen(), Screen::Detail);
        assert!(
            app.commands
                .contains(&Command::LoadDetail(Uuid::from_u128(2)))
        );
        let (mut state, _) = failed_workflow();
        state.id = Uuid::from_u128(2);
        deliver(&mut app, state.clone(), 1);
        assert_eq!(app.detail.as_ref().unwrap().state, state);
        press(&mut app, "jj");
        assert_eq!(app.detail.as_ref().unwrap().step, 2);
        press(&mut app, "kk");
        // Outputs of retrieve are 3 lines, the context 9: scrolling stops at the last.
        update(&mut app, key(KeyCode::Tab));
        press(&mut app, "jjjjj");
        update(&mut app, key(KeyCode::Tab));
        press(&mut app, "jjj");
        let detail = app.detail.as_ref().unwrap();
        assert_eq!(
            (detail.step, detail.outputs_scroll, detail.context_scroll),
            (0, 2, 3)
        );
        update(&mut app, key(KeyCode::End));
        assert_eq!(app.detail.as_ref().unwrap().context_scroll, 8);
        update(&mut app, key(KeyCode::Tab));
        press(&mut app, "j");
        assert_eq!(
            app.detail.as_ref().unwrap().outputs_scroll,
            0,
            "a new step starts at the top"
        );
        // A refresh of the same workflow keeps the position.
        let id = state.id;
        deliver(&mut app, state, 1);
        assert_eq!(app.detail.as_ref().unwrap().context_scroll, 8);
        update(
            &mut app,
            Message::DetailLoaded {
                workflow_state_id: id,
                result: Err("gone".into()),
            },
        );
        assert_eq!(app.error.as_deref(), Some("gone"));
        update(&mut app, key(KeyCode::Esc));
        assert_eq!(app.screen(), Screen::Workflows);
    }

    fn snapshot_loaded(checkpoint: &Checkpoint) -> Message {
        Message::SnapshotLoaded {
            checkpoint: checkpoint.id,
            result: Ok(format::pretty_lines(&checkpoint.snapshot)),
        }
    }

    fn is_snapshot_load(command: &Command) -> bool {
        matches!(command, Command::LoadSnapshot(_))
    }

    #[test]
    fn the_checkpoint_list_loads_without_snapshots() {
        let mut app = loaded_app();
        press(&mut app, "c");
        assert_eq!(app.screen(), Screen::Checkpoints);
        // One load for the list, of infos only: no snapshot is read to draw it.
        assert_eq!(
            app.commands,
            vec![Command::LoadCheckpointInfos(Uuid::from_u128(1))]
        );
        let (_, checkpoints) = failed_workflow();
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: Uuid::from_u128(99),
                result: Ok(crate::fixtures::checkpoint_infos(&checkpoints)),
            },
        );
        assert_eq!(
            app.checkpoints.as_ref().unwrap().list,
            None,
            "another workflow's"
        );

        let mut app = with_checkpoints();
        let view = app.checkpoints.as_ref().unwrap();
        assert_eq!(view.list.as_ref().unwrap().len(), 2);
        assert_eq!(view.usage.unwrap().pinned, 1);
        // Moving, marking, refreshing and the automatic refresh load no snapshot either.
        press(&mut app, "j kr");
        for _ in 0..REFRESH_TICKS {
            update(&mut app, Message::Tick);
        }
        assert!(
            app.commands
                .contains(&Command::LoadCheckpointInfos(Uuid::from_u128(1)))
        );
        assert!(
            !app.commands.iter().any(is_snapshot_load),
            "{:?}",
            app.commands
        );

        let id = app.checkpoints.as_ref().unwrap().workflow_state_id;
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: id,
                result: Err("gone".into()),
            },
        );
        assert_eq!(app.error.as_deref(), Some("gone"));
        assert_eq!(
            app.checkpoints
                .as_ref()
                .unwrap()
                .list
                .as_ref()
                .unwrap()
                .len(),
            2,
            "an error keeps the list"
        );
    }

    #[test]
    fn a_refreshed_list_keeps_the_selected_checkpoint() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        press(&mut app, "j");
        let (mut infos, usage) = crate::fixtures::checkpoint_infos(&checkpoints);
        // A newer checkpoint arrived on top: the selection stays on the same checkpoint.
        let mut newer = infos[0].clone();
        newer.id = Uuid::from_u128(0x200);
        infos.insert(0, newer);
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: Uuid::from_u128(1),
                result: Ok((infos, usage)),
            },
        );
        let view = app.checkpoints.as_ref().unwrap();
        assert_eq!(view.selected, 2);
        assert_eq!(view.selected_checkpoint().unwrap().id, checkpoints[1].id);
    }

    #[test]
    fn a_mark_on_a_checkpoint_the_reload_no_longer_lists_is_dropped() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        let (newest, oldest) = (checkpoints[0].id, checkpoints[1].id);
        let reload = |app: &mut App, listed: &[Checkpoint]| {
            update(
                app,
                Message::CheckpointInfosLoaded {
                    workflow_state_id: Uuid::from_u128(1),
                    result: Ok(crate::fixtures::checkpoint_infos(listed)),
                },
            );
        };
        let marked = |app: &App| app.checkpoints.as_ref().unwrap().marked;

        // Marked, and still listed after a reload: still marked.
        press(&mut app, "j ");
        assert_eq!(marked(&app), Some(oldest));
        reload(&mut app, &checkpoints);
        assert_eq!(marked(&app), Some(oldest));

        // Pruned meanwhile: the reload drops the mark, and `d` on what is left diffs with
        // the current state instead of asking for the missing checkpoint.
        reload(&mut app, &checkpoints[..1]);
        assert_eq!(marked(&app), None);
        app.commands.clear();
        press(&mut app, "d");
        assert_eq!(
            app.commands,
            vec![Command::Diff {
                from: newest,
                to: None
            }]
        );
        let mentions_oldest = |command: &Command| match command {
            Command::Diff { from, to } => *from == oldest || *to == Some(oldest),
            _ => false,
        };
        assert!(!app.commands.iter().any(mentions_oldest));

        // A mark on a checkpoint that stays is kept when another goes.
        let mut app = with_checkpoints();
        press(&mut app, " ");
        assert_eq!(marked(&app), Some(newest));
        reload(&mut app, &checkpoints[..1]);
        assert_eq!(marked(&app), Some(newest));

        // An error keeps the list, and the mark with it.
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: Uuid::from_u128(1),
                result: Err("connection error".into()),
            },
        );
        assert_eq!(marked(&app), Some(newest));
    }

    #[test]
    fn enter_opens_the_snapshot_at_once_and_fetches_it_by_id() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        let newest = &checkpoints[0];
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(app.screen(), Screen::Snapshot);
        assert_eq!(app.commands, vec![Command::LoadSnapshot(newest.id)]);
        let view = app.snapshot.as_ref().unwrap();
        assert_eq!(view.info.id, newest.id);
        assert_eq!(view.info.step_id, "prompt");
        assert_eq!(view.lines, None, "loading");
        // While it loads: nothing to scroll, but diff and restore work (they go by id).
        press(&mut app, "jd");
        assert_eq!(app.snapshot.as_ref().unwrap().scroll, 0);
        assert_eq!(
            app.commands.last(),
            Some(&Command::Diff {
                from: newest.id,
                to: None
            })
        );
        press(&mut app, "R");
        assert_eq!(app.commands.last(), Some(&Command::PlanRestore(newest.id)));

        update(&mut app, snapshot_loaded(newest));
        let lines = app.snapshot.as_ref().unwrap().lines.clone().unwrap();
        assert_eq!(lines, format::pretty_lines(&newest.snapshot));
        assert_eq!(lines[0], "{");
        press(&mut app, "j");
        assert_eq!(app.snapshot.as_ref().unwrap().scroll, 1);
        update(&mut app, key(KeyCode::End));
        assert_eq!(app.snapshot.as_ref().unwrap().scroll, lines.len() - 1);
        update(&mut app, key(KeyCode::Esc));
        assert_eq!(app.screen(), Screen::Checkpoints);
    }

    #[test]
    fn a_snapshot_the_user_left_is_not_shown_for_another() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        let (newest, oldest) = (&checkpoints[0], &checkpoints[1]);
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, key(KeyCode::Esc));
        press(&mut app, "j");
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(app.commands.last(), Some(&Command::LoadSnapshot(oldest.id)));
        update(&mut app, snapshot_loaded(newest));
        let view = app.snapshot.as_ref().unwrap();
        assert_eq!((view.info.id, view.lines.as_ref()), (oldest.id, None));
        update(
            &mut app,
            Message::SnapshotLoaded {
                checkpoint: newest.id,
                result: Err("not found".into()),
            },
        );
        assert_eq!(app.error, None, "an error about it is dropped too");
        assert_eq!(app.screen(), Screen::Snapshot);
        update(&mut app, snapshot_loaded(oldest));
        assert!(app.snapshot.as_ref().unwrap().lines.is_some());
    }

    #[test]
    fn a_snapshot_that_cannot_load_says_why_and_reloads_the_list() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        let newest = checkpoints[0].id;
        update(&mut app, key(KeyCode::Enter));
        app.commands.clear();
        let err = format!("not found: checkpoint {newest}");
        update(
            &mut app,
            Message::SnapshotLoaded {
                checkpoint: newest,
                result: Err(err.clone()),
            },
        );
        assert_eq!(app.screen(), Screen::Checkpoints, "back to the list");
        assert_eq!(app.snapshot, None);
        assert_eq!(app.error, Some(format!("cannot open the snapshot: {err}")));
        assert_eq!(
            app.commands,
            vec![Command::LoadCheckpointInfos(Uuid::from_u128(1))]
        );
        // The list comes back without the pruned checkpoint.
        let (infos, usage) = crate::fixtures::checkpoint_infos(&checkpoints[1..]);
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: Uuid::from_u128(1),
                result: Ok((infos, usage)),
            },
        );
        let view = app.checkpoints.as_ref().unwrap();
        assert_eq!(view.selected_checkpoint().unwrap().id, checkpoints[1].id);

        // The same if the user went back before the answer came.
        let mut app = with_checkpoints();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, key(KeyCode::Esc));
        update(
            &mut app,
            Message::SnapshotLoaded {
                checkpoint: newest,
                result: Err("connection error".into()),
            },
        );
        assert_eq!(
            app.screens,
            vec![Screen::Workflows, Screen::Checkpoints],
            "no screen popped twice"
        );
        assert!(app.error.as_deref().unwrap().contains("connection error"));
    }

    #[test]
    fn checkpoint_keys_diff_marked_and_selected() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        let (newest, oldest) = (checkpoints[0].id, checkpoints[1].id);
        press(&mut app, "d");
        assert_eq!(
            app.commands.last(),
            Some(&Command::Diff {
                from: newest,
                to: None
            })
        );
        // Mark the newest, select the oldest: the diff goes oldest -> newest.
        press(&mut app, " jd");
        assert_eq!(
            app.commands.last(),
            Some(&Command::Diff {
                from: oldest,
                to: Some(newest)
            })
        );
        assert!(!app.commands.iter().any(is_snapshot_load));
        update(
            &mut app,
            Message::DiffLoaded {
                from: oldest,
                to: Some(newest),
                result: Ok((
                    "a -> b".into(),
                    crate::diff::diff(&serde_json::json!(1), &serde_json::json!(2)),
                )),
            },
        );
        assert_eq!(app.screen(), Screen::Diff);
        assert_eq!(app.diff.as_ref().unwrap().changes.len(), 1);
        update(&mut app, key(KeyCode::Esc));
        press(&mut app, "d");
        update(
            &mut app,
            Message::DiffLoaded {
                from: oldest,
                to: Some(newest),
                result: Err("nope".into()),
            },
        );
        assert_eq!(app.error.as_deref(), Some("nope"));
        assert_eq!(app.screen(), Screen::Checkpoints);
    }

    #[test]
    fn restore_asks_first_and_can_be_cancelled() {
        let mut app = with_checkpoints();
        press(&mut app, "jR");
        let (state, checkpoints) = failed_workflow();
        let oldest = checkpoints[1].clone();
        assert_eq!(app.commands.last(), Some(&Command::PlanRestore(oldest.id)));
        let plan = RestorePlan::new(state, oldest.clone()).unwrap();
        let planned = |result| Message::RestorePlanned {
            checkpoint: oldest.id,
            result,
        };
        update(&mut app, planned(Ok(Box::new(plan.clone()))));
        assert!(matches!(app.popup, Some(Popup::ConfirmRestore { .. })));
        app.commands.clear();
        press(&mut app, "x");
        assert!(app.popup.is_some(), "other keys keep the question open");
        update(&mut app, key(KeyCode::Enter));
        assert!(app.popup.is_some(), "Enter does not confirm");
        assert!(app.commands.is_empty(), "Enter restores nothing");
        press(&mut app, "n");
        assert_eq!(app.popup, None);
        assert!(app.commands.is_empty());
        press(&mut app, "R");
        update(&mut app, planned(Ok(Box::new(plan))));
        app.commands.clear();
        press(&mut app, "y");
        assert_eq!(app.commands, vec![Command::Restore(oldest.id)]);
        press(&mut app, "R");
        update(&mut app, planned(Err("no such checkpoint".into())));
        assert_eq!(app.error.as_deref(), Some("no such checkpoint"));
    }

    #[test]
    fn a_failed_restore_says_so_until_a_key_and_its_notice_never_comes_back() {
        let mut app = with_checkpoints();
        let (state, checkpoints) = failed_workflow();
        let oldest = checkpoints[1].clone();
        press(&mut app, "jR");
        let plan = RestorePlan::new(state, oldest.clone()).unwrap();
        update(
            &mut app,
            Message::RestorePlanned {
                checkpoint: oldest.id,
                result: Ok(Box::new(plan)),
            },
        );
        press(&mut app, "y");
        assert_eq!(app.notice.as_deref(), Some("restoring..."));
        app.commands.clear();

        // The connection is lost: the restore fails, and so does the next refresh.
        update(
            &mut app,
            Message::Restored(Err(WriteError::new(
                llm_orchestrator_state::ErrorKind::ConnectionFailed,
                "connection error: connection reset",
            ))),
        );
        // The answer was lost, not necessarily the write.
        let failed = "restore unconfirmed, it may or may not have been applied (r reloads): \
                      connection error: connection reset";
        assert_eq!(app.write_error.as_deref(), Some(failed));
        assert_eq!(app.notice, None, "the result arrived: no longer restoring");
        let status = |app: &App| {
            let mut terminal =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(200, 10)).unwrap();
            terminal.draw(|frame| crate::ui::view(app, frame)).unwrap();
            terminal
                .backend()
                .to_string()
                .lines()
                .last()
                .unwrap()
                .to_owned()
        };
        assert!(status(&app).contains(failed), "{}", status(&app));
        update(
            &mut app,
            Message::CountsLoaded(Err("connection error: gone".into())),
        );
        assert!(
            status(&app).contains(failed),
            "a read's error does not hide it"
        );
        // The connection is back: the reads succeed, the write's failure stays, and
        // "restoring..." does not come back.
        update(&mut app, Message::CountsLoaded(Ok(Default::default())));
        let message = loaded(&app, summaries());
        update(&mut app, message);
        assert!(status(&app).contains(failed), "{}", status(&app));
        assert!(!status(&app).contains("restoring"), "{}", status(&app));
        // The operator presses a key: it has been read.
        press(&mut app, "j");
        assert_eq!(app.write_error, None);
        let keys = status(&app);
        assert!(keys.contains("R restore"), "the keys again: {keys}");
        assert!(
            !keys.contains("failed") && !keys.contains("restoring"),
            "{keys}"
        );
    }

    #[test]
    fn read_only_mode_refuses_restore() {
        let mut app = with_checkpoints();
        app.read_only = true;
        press(&mut app, "R");
        assert!(app.commands.is_empty());
        assert!(app.error.as_deref().unwrap().contains("read-only"));
    }

    #[test]
    fn a_finished_restore_shows_the_workflow_and_refreshes() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        let restored = checkpoints[1].state().unwrap();
        let printed = LoadedDetail::print(restored.clone(), None);
        update(&mut app, Message::Restored(Ok(printed)));
        assert_eq!(app.screens, vec![Screen::Workflows, Screen::Detail]);
        let detail = app.detail.as_ref().unwrap();
        assert_eq!(detail.state, restored);
        assert_eq!(detail.version, None);
        assert!(app.notice.as_deref().unwrap().contains("now running"));
        assert!(app.commands.contains(&Command::LoadCounts));
        // Its version is unknown: it is read again in full.
        assert!(app.commands.contains(&Command::LoadDetail(restored.id)));
        update(&mut app, Message::Restored(Err("conflict".into())));
        assert_eq!(
            app.write_error.as_deref(),
            Some("restore failed, nothing changed: conflict")
        );
    }

    #[test]
    fn help_opens_and_any_key_closes_it() {
        let mut app = loaded_app();
        press(&mut app, "?");
        assert_eq!(app.popup, Some(Popup::Help { scroll: 0 }));
        // Movement keys scroll it (a short terminal cannot show every key), down to
        // where its last line is at the bottom.
        update(&mut app, Message::Resize { rows: 24, cols: 80 });
        press(&mut app, "jjk");
        assert_eq!(app.popup, Some(Popup::Help { scroll: 1 }));
        press(&mut app, "G");
        let last = crate::ui::help::line_count(false) - (24 - 4);
        assert_eq!(app.popup, Some(Popup::Help { scroll: last }));
        press(&mut app, "k");
        assert_eq!(app.popup, Some(Popup::Help { scroll: last - 1 }));
        press(&mut app, "q");
        assert_eq!(app.popup, None);
        assert!(!app.quit, "the key only closed the help");
        // A terminal tall enough for all of it: any key closes it, j too.
        update(&mut app, Message::Resize { rows: 60, cols: 80 });
        press(&mut app, "?j");
        assert_eq!(app.popup, None);
    }

    #[test]
    fn esc_on_the_workflows_screen_clears_a_filter_and_never_quits() {
        let mut app = loaded_app();
        press(&mut app, "/");
        for c in "rag".chars() {
            update(&mut app, key(KeyCode::Char(c)));
        }
        update(&mut app, key(KeyCode::Enter));
        press(&mut app, "fx");
        assert_eq!(app.workflows.text_filter, "rag");
        app.commands.clear();

        // Back out of a popup, then Esc again: the text filter goes first, reloaded.
        press(&mut app, "?");
        update(&mut app, key(KeyCode::Esc));
        update(&mut app, key(KeyCode::Esc));
        assert!(!app.quit);
        assert_eq!(app.workflows.text_filter, "");
        assert!(app.workflows.status_filter.is_some() && app.workflows.lease_expired);
        assert!(matches!(last_workflow_query(&app), (query, false) if query.text.is_none()));
        // Then the status and stuck filters.
        update(&mut app, key(KeyCode::Esc));
        assert!(!app.quit);
        assert_eq!(app.workflows.status_filter, None);
        assert!(!app.workflows.lease_expired);
        // Nothing left to clear: it says how to quit, and does not.
        app.commands.clear();
        update(&mut app, key(KeyCode::Esc));
        assert!(!app.quit);
        assert!(app.commands.is_empty());
        assert_eq!(
            app.notice.as_deref(),
            Some("nothing to clear; q or Ctrl-C quits")
        );
        // Esc still goes back from other screens.
        press(&mut app, "c");
        update(&mut app, key(KeyCode::Esc));
        assert_eq!(app.screen(), Screen::Workflows);
        assert!(!app.quit);
        press(&mut app, "q");
        assert!(app.quit);
    }

    #[test]
    fn q_goes_back_then_quits_and_ctrl_c_quits_at_once() {
        let mut app = loaded_app();
        press(&mut app, "c");
        press(&mut app, "q");
        assert!(!app.quit);
        assert_eq!(app.screen(), Screen::Workflows);
        press(&mut app, "q");
        assert!(app.quit);

        let mut app = loaded_app();
        press(&mut app, "c");
        update(
            &mut app,
            Message::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        );
        assert!(app.quit);
    }

    #[test]
    fn a_dead_task_ends_the_ui_with_its_error() {
        let mut app = loaded_app();
        update(&mut app, Message::Fatal("task panicked".into()));
        assert!(app.quit);
        assert_eq!(app.fatal.as_deref(), Some("task panicked"));
    }

    #[test]
    fn resize_changes_only_the_size() {
        let mut app = loaded_app();
        let before = app.clone();
        update(&mut app, Message::Resize { rows: 40, cols: 80 });
        assert_eq!(
            app,
            App {
                rows: 40,
                cols: 80,
                ..before
            }
        );
    }

    #[test]
    fn p_asks_for_a_label_and_pins() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        let newest = checkpoints[0].id;
        press(&mut app, "p");
        assert_eq!(
            app.popup,
            Some(Popup::Input {
                purpose: InputPurpose::PinLabel(newest),
                input: String::new(),
                error: None,
            })
        );
        update(&mut app, key(KeyCode::Enter));
        assert!(app.popup.is_some(), "an empty label is not taken");
        assert!(app.commands.is_empty());
        // And it says why nothing happened (spaces are no label either).
        assert_eq!(
            app.notice.as_deref(),
            Some("a pin needs a label: type one, then Enter (Esc cancels)")
        );
        app.notice = None;
        press(&mut app, "  ");
        update(&mut app, key(KeyCode::Enter));
        assert!(app.notice.is_some());
        update(&mut app, key(KeyCode::Backspace));
        update(&mut app, key(KeyCode::Backspace));
        press(&mut app, "before toolx");
        update(&mut app, key(KeyCode::Backspace));
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(app.popup, None);
        assert_eq!(
            app.commands,
            vec![Command::SetPin {
                checkpoint: newest,
                label: Some("before tool".into())
            }]
        );
        app.commands.clear();
        update(
            &mut app,
            Message::PinSet {
                checkpoint: newest,
                label: Some("before tool".into()),
                result: Ok(()),
            },
        );
        assert_eq!(
            app.notice.as_deref(),
            Some(format!("pinned checkpoint {newest}: before tool").as_str())
        );
        assert!(app.commands.contains(&Command::LoadCheckpointInfos(
            app.checkpoints.as_ref().unwrap().workflow_state_id
        )));
        update(
            &mut app,
            Message::PinSet {
                checkpoint: newest,
                label: None,
                result: Err("not found: checkpoint".into()),
            },
        );
        assert_eq!(
            app.write_error.as_deref(),
            Some("unpin failed, nothing changed: not found: checkpoint")
        );

        // Esc cancels.
        let mut app = with_checkpoints();
        press(&mut app, "pabc");
        update(&mut app, key(KeyCode::Esc));
        assert_eq!(app.popup, None);
        assert!(app.commands.is_empty());
    }

    #[test]
    fn p_on_a_pinned_checkpoint_asks_before_it_unpins() {
        let (_, checkpoints) = failed_workflow();
        let pinned = checkpoints[1].id;
        // `p` asks, showing the label that would be lost; nothing is written yet.
        let mut app = with_checkpoints();
        press(&mut app, "jp");
        assert_eq!(
            app.popup,
            Some(Popup::ConfirmUnpin {
                checkpoint: pinned,
                label: "approved by human".into()
            })
        );
        assert!(app.commands.is_empty());
        // Enter (out of habit) and other keys neither unpin nor close the question.
        update(&mut app, key(KeyCode::Enter));
        press(&mut app, "pj");
        assert!(matches!(app.popup, Some(Popup::ConfirmUnpin { .. })));
        assert!(app.commands.is_empty());
        // n, Esc and q keep the pin.
        for no in [KeyCode::Char('n'), KeyCode::Esc, KeyCode::Char('q')] {
            let mut app = with_checkpoints();
            press(&mut app, "jp");
            update(&mut app, key(no));
            assert_eq!(app.popup, None, "{no:?}");
            assert!(app.commands.is_empty(), "{no:?}");
            assert_eq!(
                app.notice.as_deref(),
                Some("unpin cancelled; the pin stays")
            );
        }
        // y unpins.
        update(&mut app, key(KeyCode::Char('y')));
        assert_eq!(app.popup, None);
        assert_eq!(
            app.commands,
            vec![Command::SetPin {
                checkpoint: pinned,
                label: None
            }]
        );
        update(
            &mut app,
            Message::PinSet {
                checkpoint: pinned,
                label: None,
                result: Ok(()),
            },
        );
        assert!(app.notice.as_deref().unwrap().starts_with("unpinned"));
    }

    #[test]
    fn shift_f_asks_for_a_workflow_id_and_forks() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = failed_workflow();
        let oldest = checkpoints[1].id;
        press(&mut app, "jFretry-1");
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(
            app.commands,
            vec![Command::Fork {
                checkpoint: oldest,
                new_workflow_id: "retry-1".into()
            }]
        );
        app.commands.clear();
        let mut fork = checkpoints[1].state().unwrap();
        fork.workflow_id = "retry-1".into();
        fork.status = WorkflowStatus::Pending;
        update(
            &mut app,
            Message::Forked {
                checkpoint: oldest,
                result: Ok(fork),
            },
        );
        let notice = app.notice.clone().unwrap();
        assert!(notice.starts_with("forked retry-1 ("), "{notice}");
        assert!(notice.ends_with(": pending"), "{notice}");
        assert!(app.commands.contains(&Command::LoadCounts), "a refresh");
        update(
            &mut app,
            Message::Forked {
                checkpoint: oldest,
                result: Err("conflict".into()),
            },
        );
        assert_eq!(
            app.write_error.as_deref(),
            Some("fork failed, nothing changed: conflict")
        );
    }

    #[test]
    fn read_only_mode_refuses_pin_and_fork() {
        let mut app = with_checkpoints();
        app.read_only = true;
        press(&mut app, "p");
        assert_eq!(app.popup, None);
        assert!(app.error.as_deref().unwrap().contains("read-only"));
        app.error = None;
        press(&mut app, "F");
        assert_eq!(app.popup, None);
        assert!(app.error.as_deref().unwrap().contains("read-only"));
        assert!(app.commands.is_empty());
    }

    fn report(dry_run: bool) -> PruneReport {
        PruneReport {
            dry_run,
            workflows: 2,
            checkpoints: 7,
            bytes: 4096,
        }
    }

    /// The prune popup showing the preview of `policy` (a dry run's report).
    fn previewing(policy: RetentionPolicy) -> Option<Popup> {
        Some(Popup::Prune {
            policy,
            report: report(true),
            done: false,
            scroll: 0,
        })
    }

    #[test]
    fn shift_p_previews_a_prune_and_y_applies_it() {
        let mut app = loaded_app();
        app.commands.clear();
        press(&mut app, "P");
        let policy = default_prune_policy();
        assert_eq!(
            app.commands,
            vec![Command::Prune {
                policy,
                dry_run: true
            }]
        );
        app.commands.clear();
        update(
            &mut app,
            Message::Pruned {
                policy,
                dry_run: true,
                result: Ok(report(true)),
            },
        );
        assert_eq!(app.popup, previewing(policy));
        assert!(app.commands.is_empty(), "a preview changes nothing");
        press(&mut app, "x");
        assert!(app.popup.is_some(), "other keys keep the question open");
        update(&mut app, key(KeyCode::Enter));
        assert!(app.popup.is_some(), "Enter does not confirm");
        assert!(app.commands.is_empty(), "Enter prunes nothing");
        press(&mut app, "y");
        assert_eq!(
            app.commands,
            vec![Command::Prune {
                policy,
                dry_run: false
            }]
        );
        app.commands.clear();
        update(
            &mut app,
            Message::Pruned {
                policy,
                dry_run: false,
                result: Ok(report(false)),
            },
        );
        assert_eq!(
            app.popup,
            Some(Popup::Prune {
                policy,
                report: report(false),
                done: true,
                scroll: 0
            })
        );
        assert_eq!(
            app.notice.as_deref(),
            Some("pruned 2 workflows, 7 checkpoints, 4.0 KiB")
        );
        assert!(app.commands.contains(&Command::LoadCounts), "a refresh");
        app.commands.clear();
        press(&mut app, "y");
        assert_eq!(app.popup, None, "any key closes the report");
        assert!(app.commands.is_empty());

        update(
            &mut app,
            Message::Pruned {
                policy,
                dry_run: false,
                result: Err(WriteError::new(
                    llm_orchestrator_state::ErrorKind::ConnectionFailed,
                    "connection error",
                )),
            },
        );
        assert_eq!(
            app.write_error.as_deref(),
            Some(
                "prune unconfirmed, it may or may not have been applied (r reloads): \
                 connection error"
            )
        );
        // A preview that fails wrote nothing either: a read's error.
        update(
            &mut app,
            Message::Pruned {
                policy,
                dry_run: true,
                result: Err("connection error".into()),
            },
        );
        assert_eq!(
            app.error.as_deref(),
            Some("prune preview failed: connection error")
        );
    }

    /// The prune popup of `policy`'s preview, open on `app`.
    fn preview(app: &mut App, policy: RetentionPolicy) {
        update(
            app,
            Message::Pruned {
                policy,
                dry_run: true,
                result: Ok(report(true)),
            },
        );
    }

    /// The policy text being edited in the prune popup, and its error.
    fn policy_input(app: &App) -> (String, Option<String>) {
        match &app.popup {
            Some(Popup::Input {
                purpose: InputPurpose::PrunePolicy { .. },
                input,
                error,
            }) => (input.clone(), error.clone()),
            other => panic!("not editing a policy: {other:?}"),
        }
    }

    #[test]
    fn e_edits_the_prune_policy_previews_it_and_y_prunes_with_exactly_that_one() {
        let mut app = loaded_app();
        preview(&mut app, default_prune_policy());
        app.commands.clear();
        press(&mut app, "e");
        assert_eq!(
            policy_input(&app),
            (
                "older-than=30d keep-checkpoints=10 keep-younger-than=off".to_owned(),
                None
            ),
            "the input starts from the policy shown"
        );
        // Ctrl-U clears it; a rule left out is off.
        update(
            &mut app,
            Message::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
        );
        press(&mut app, "keep-checkpoints=3 keep-younger-than=7d");
        assert!(app.commands.is_empty(), "typing runs nothing");
        update(&mut app, key(KeyCode::Enter));
        let edited = RetentionPolicy {
            keep_last: Some(3),
            keep_younger_than: Some(Duration::from_secs(7 * 86_400)),
            delete_finished_older_than: None,
        };
        assert_eq!(
            app.commands,
            vec![Command::Prune {
                policy: edited,
                dry_run: true
            }],
            "Enter previews the edited policy, a dry run"
        );
        assert_eq!(app.popup, None, "until the preview comes back");
        app.commands.clear();
        preview(&mut app, edited);
        assert_eq!(app.popup, previewing(edited));
        press(&mut app, "y");
        assert_eq!(
            app.commands,
            vec![Command::Prune {
                policy: edited,
                dry_run: false
            }],
            "y prunes with the policy previewed"
        );

        // `P` again, later in the session, starts from the policy last previewed.
        app.popup = None;
        app.commands.clear();
        press(&mut app, "P");
        assert_eq!(
            app.commands,
            vec![Command::Prune {
                policy: edited,
                dry_run: true
            }],
            "P previews the edited policy again, not the default"
        );

        // Esc leaves the input for the preview it came from, unchanged.
        let mut app = loaded_app();
        preview(&mut app, edited);
        app.commands.clear();
        press(&mut app, "e");
        press(&mut app, "0");
        update(&mut app, key(KeyCode::Esc));
        assert!(app.commands.is_empty());
        assert_eq!(app.popup, previewing(edited));
        press(&mut app, "y");
        assert_eq!(
            app.commands,
            vec![Command::Prune {
                policy: edited,
                dry_run: false
            }]
        );

        // A read-only session may edit and preview too; the report is not edited.
        let mut app = loaded_app();
        app.read_only = true;
        preview(&mut app, edited);
        press(&mut app, "e");
        assert!(matches!(app.popup, Some(Popup::Input { .. })));
        let mut app = loaded_app();
        update(
            &mut app,
            Message::Pruned {
                policy: edited,
                dry_run: false,
                result: Ok(report(false)),
            },
        );
        press(&mut app, "e");
        assert_eq!(app.popup, None, "any key closes the report");
    }

    #[test]
    fn a_prune_policy_that_does_not_parse_says_why_and_changes_nothing() {
        let mut app = loaded_app();
        preview(&mut app, default_prune_policy());
        app.commands.clear();
        press(&mut app, "e");
        update(&mut app, key(KeyCode::Backspace));
        update(&mut app, key(KeyCode::Backspace));
        update(&mut app, key(KeyCode::Backspace));
        press(&mut app, "1x");
        update(&mut app, key(KeyCode::Enter));
        assert!(app.commands.is_empty(), "no preview, no prune");
        assert_eq!(
            policy_input(&app),
            (
                "older-than=30d keep-checkpoints=10 keep-younger-than=1x".to_owned(),
                Some(
                    "keep-younger-than: unknown unit \"x\" in \"1x\": use s, m, h, d or w"
                        .to_owned()
                )
            ),
            "the text stays, to be fixed"
        );
        // Nothing at all to prune is refused as the CLI refuses it.
        update(
            &mut app,
            Message::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
        );
        press(&mut app, "older-than=off");
        update(&mut app, key(KeyCode::Enter));
        assert!(app.commands.is_empty());
        assert!(
            policy_input(&app)
                .1
                .unwrap()
                .starts_with("nothing to prune")
        );
        // Esc: the first preview, whose policy `y` still applies.
        update(&mut app, key(KeyCode::Esc));
        press(&mut app, "y");
        assert_eq!(
            app.commands,
            vec![Command::Prune {
                policy: default_prune_policy(),
                dry_run: false
            }]
        );
    }

    #[test]
    fn a_prune_preview_can_be_cancelled_and_read_only_mode_only_previews() {
        let policy = default_prune_policy();
        let preview = Message::Pruned {
            policy,
            dry_run: true,
            result: Ok(report(true)),
        };
        let mut app = loaded_app();
        update(&mut app, preview.clone());
        app.commands.clear();
        press(&mut app, "n");
        assert_eq!(app.popup, None);
        assert!(app.commands.is_empty());
        assert!(app.notice.as_deref().unwrap().contains("cancelled"));

        let mut app = loaded_app();
        app.read_only = true;
        app.commands.clear();
        press(&mut app, "P");
        assert_eq!(app.commands.len(), 1, "a dry run reads only");
        app.commands.clear();
        update(&mut app, preview);
        press(&mut app, "y");
        assert!(app.commands.is_empty());
        assert!(app.error.as_deref().unwrap().contains("read-only"));
    }

    #[test]
    fn the_detail_loads_history_and_keeps_it_across_refreshes() {
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        let id = Uuid::from_u128(1);
        assert!(app.commands.contains(&Command::LoadHistory(id)));
        let (mut state, _) = failed_workflow();
        state.id = id;
        deliver(&mut app, state.clone(), 1);
        let history = WorkflowHistory {
            usage: CheckpointUsage {
                count: 2,
                bytes: 10,
                pinned: 0,
            },
            lineage: vec!["fork x from checkpoint y".into()],
            summary: None,
            read_at: None,
        };
        update(
            &mut app,
            Message::HistoryLoaded {
                workflow_state_id: Uuid::from_u128(99),
                result: Ok(history.clone()),
            },
        );
        assert_eq!(app.detail.as_ref().unwrap().history, None);
        update(
            &mut app,
            Message::HistoryLoaded {
                workflow_state_id: id,
                result: Ok(history.clone()),
            },
        );
        assert_eq!(app.detail.as_ref().unwrap().history, Some(history.clone()));
        app.commands.clear();
        press(&mut app, "r");
        assert!(app.commands.contains(&Command::LoadHistory(id)));
        deliver(&mut app, state, 1);
        assert_eq!(app.detail.as_ref().unwrap().history, Some(history));
        update(
            &mut app,
            Message::HistoryLoaded {
                workflow_state_id: id,
                result: Err("boom".into()),
            },
        );
        assert_eq!(app.error.as_deref(), Some("boom"));
    }

    #[test]
    fn r_reads_a_workflow_whose_first_read_failed_again() {
        let (state, _) = failed_workflow();
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        // While the first read is under way, the timer starts no second one.
        app.commands.clear();
        refresh_ticks(&mut app);
        assert!(!app.commands.iter().any(is_full_load), "{:?}", app.commands);
        let failed = Message::DetailLoaded {
            workflow_state_id: state.id,
            result: Err("connection error: timed out".into()),
        };
        update(&mut app, failed.clone());
        assert_eq!(app.detail, None);

        // Once it failed, the timer reads it again: the screen recovers by itself.
        app.commands.clear();
        refresh_ticks(&mut app);
        assert_eq!(
            app.commands
                .iter()
                .filter(|command| is_full_load(command))
                .count(),
            1,
            "{:?}",
            app.commands
        );
        update(&mut app, failed);

        // `r` on the empty screen reads it again, with its history; the answer opens it.
        app.commands.clear();
        press(&mut app, "r");
        assert_eq!(app.screen(), Screen::Detail);
        assert!(app.commands.contains(&Command::LoadDetail(state.id)));
        assert!(app.commands.contains(&Command::LoadHistory(state.id)));
        deliver(&mut app, state.clone(), 1);
        assert_eq!(app.detail.as_ref().unwrap().state, state);

        // Back on the list, `r` reads no workflow.
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, key(KeyCode::Esc));
        app.commands.clear();
        press(&mut app, "r");
        assert!(!app.commands.iter().any(is_full_load), "{:?}", app.commands);
    }

    #[test]
    fn a_workflow_s_read_error_ends_when_that_workflow_reads_fine_again() {
        let (state, _) = failed_workflow();
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        let failed = Message::DetailLoaded {
            workflow_state_id: state.id,
            result: Err("connection error: timed out".into()),
        };
        update(&mut app, failed.clone());
        assert_eq!(app.error.as_deref(), Some("connection error: timed out"));

        // The list loading fine says nothing about this workflow.
        let message = loaded(&app, summaries());
        update(&mut app, message);
        assert_eq!(app.error.as_deref(), Some("connection error: timed out"));

        // `r` reads it again and it arrives: the error is over.
        press(&mut app, "r");
        deliver(&mut app, state.clone(), 1);
        assert_eq!(app.error, None);

        // The same once it is on screen, for an automatic refresh's version check.
        update(&mut app, failed);
        assert!(app.error.is_some());
        update(
            &mut app,
            Message::DetailVersion {
                workflow_state_id: state.id,
                result: Ok(1),
            },
        );
        assert_eq!(app.error, None);
    }

    #[test]
    fn a_history_arriving_before_the_workflow_being_opened_is_shown_with_it() {
        let (a, _) = failed_workflow();
        let mut b = a.clone();
        b.id = Uuid::from_u128(2);
        let history = |pinned| WorkflowHistory {
            usage: CheckpointUsage {
                count: 2,
                bytes: 10,
                pinned,
            },
            lineage: vec!["fork x from checkpoint y".into()],
            summary: None,
            read_at: None,
        };

        // Its totals and lineage answer first (a large workflow's read takes longer).
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, history_loaded(a.id, Ok(history(1))));
        // Another workflow's history is not taken for it.
        update(&mut app, history_loaded(b.id, Ok(history(7))));
        assert_eq!(app.detail, None);
        deliver(&mut app, a.clone(), 1);
        let detail = app.detail.as_ref().unwrap();
        assert_eq!(detail.state, a);
        assert_eq!(
            detail.history,
            Some(history(1)),
            "not loading... until a refresh"
        );
        // The automatic refresh may ask again: that read was over.
        assert_eq!(app.in_flight.history, None);

        // Its error shows, as one for the workflow on screen does.
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, history_loaded(a.id, Err("timed out".into())));
        assert_eq!(app.error.as_deref(), Some("timed out"));
        deliver(&mut app, a.clone(), 1);
        assert_eq!(app.detail.as_ref().unwrap().history, None);

        // A's history, then the user goes back and opens B: B opens without it.
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, history_loaded(a.id, Ok(history(1))));
        update(&mut app, key(KeyCode::Esc));
        press(&mut app, "j");
        update(&mut app, key(KeyCode::Enter));
        deliver(&mut app, b.clone(), 1);
        assert_eq!(app.detail.as_ref().unwrap().state, b);
        assert_eq!(app.detail.as_ref().unwrap().history, None);
        // And B's own history, arriving after it, is shown.
        update(&mut app, history_loaded(b.id, Ok(history(2))));
        assert_eq!(app.detail.as_ref().unwrap().history, Some(history(2)));
    }

    /// Checks the scroll position `position` of a text of `lines` lines (more than a
    /// u16 holds), starting at the top: PageDown goes down a page at a time all the way
    /// to the last line and stops there, and g/G/End/PageUp/j/k work at the end.
    fn assert_scrolls_to_the_last_line(
        app: &mut App,
        lines: usize,
        position: impl Fn(&App) -> usize,
    ) {
        assert!(lines > 70_000);
        assert_eq!(position(app), 0);
        let mut presses = 0;
        loop {
            let before = position(app);
            update(app, key(KeyCode::PageDown));
            let after = position(app);
            assert!(
                after >= before,
                "PageDown went back from {before} to {after}"
            );
            if after == before {
                break;
            }
            presses += 1;
        }
        assert_eq!(position(app), lines - 1, "PageDown stops on the last line");
        assert_eq!(presses, (lines - 1).div_ceil(20));
        press(app, "j");
        assert_eq!(position(app), lines - 1, "no further than the last line");
        press(app, "k");
        assert_eq!(position(app), lines - 2);
        press(app, "gG");
        assert_eq!(position(app), lines - 1, "G jumps to the last line");
        press(app, "g");
        assert_eq!(position(app), 0);
        update(app, key(KeyCode::End));
        assert_eq!(position(app), lines - 1, "End jumps to the last line");
        update(app, key(KeyCode::PageUp));
        assert_eq!(position(app), lines - 21);
        update(app, key(KeyCode::Home));
        assert_eq!(position(app), 0);
    }

    #[test]
    fn the_detail_scrolls_a_long_context_and_outputs_to_their_last_line() {
        let (state, _) = long_workflow();
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        deliver(&mut app, state, 1);
        let lines = LONG + 4;
        let detail = app.detail.as_ref().unwrap();
        assert_eq!(
            detail.selected_outputs_lines().len(),
            lines,
            "retrieve, the first step"
        );
        assert_eq!(detail.context_lines.len(), lines);
        update(&mut app, key(KeyCode::Tab));
        assert_scrolls_to_the_last_line(&mut app, lines, |app| {
            app.detail.as_ref().unwrap().outputs_scroll
        });
        update(&mut app, key(KeyCode::Tab));
        assert_scrolls_to_the_last_line(&mut app, lines, |app| {
            app.detail.as_ref().unwrap().context_scroll
        });
    }

    #[test]
    fn a_long_snapshot_scrolls_to_its_last_line() {
        let mut app = with_checkpoints();
        let (_, checkpoints) = long_workflow();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, snapshot_loaded(&checkpoints[0]));
        let lines = LONG + 4;
        let view = app.snapshot.as_ref().unwrap();
        assert_eq!(view.lines.as_ref().map(Vec::len), Some(lines));
        assert_scrolls_to_the_last_line(&mut app, lines, |app| {
            app.snapshot.as_ref().unwrap().scroll
        });
    }

    #[test]
    fn a_long_diff_scrolls_to_its_last_change() {
        let mut app = with_checkpoints();
        crate::fixtures::open_long_diff(&mut app);
        assert_eq!(app.screen(), Screen::Diff);
        assert_scrolls_to_the_last_line(&mut app, LONG, |app| app.diff.as_ref().unwrap().scroll);
    }

    /// A workflow as the runtime delivers it, with lines that are not what printing its
    /// JSON gives (`lines` for the context and for each step, named after the step): if
    /// `update` printed anything, the test would see it.
    fn placeholder(state: &WorkflowState, version: i64, lines: usize) -> LoadedDetail {
        LoadedDetail {
            state: state.clone(),
            version: Some(version),
            step_order: ordered_steps(state)
                .iter()
                .map(|step| step.step_id.clone())
                .collect(),
            context_lines: (0..lines).map(|n| format!("context {n}")).collect(),
            outputs_lines: ordered_steps(state)
                .iter()
                .map(|step| {
                    (0..lines)
                        .map(|n| format!("outputs of {} {n}", step.step_id))
                        .collect()
                })
                .collect(),
            damaged: None,
        }
    }

    /// The app on the detail screen of [`failed_workflow`], stored at version 3, its
    /// history arrived, with nothing queued.
    fn on_the_detail() -> (App, WorkflowState) {
        let (state, _) = failed_workflow();
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        deliver(&mut app, state.clone(), 3);
        update(
            &mut app,
            history_loaded(state.id, Ok(WorkflowHistory::default())),
        );
        app.commands.clear();
        (app, state)
    }

    fn history_loaded(id: Uuid, result: Result<WorkflowHistory, String>) -> Message {
        Message::HistoryLoaded {
            workflow_state_id: id,
            result,
        }
    }

    fn refresh_ticks(app: &mut App) {
        for _ in 0..REFRESH_TICKS {
            update(app, Message::Tick);
        }
    }

    fn is_full_load(command: &Command) -> bool {
        matches!(command, Command::LoadDetail { .. })
    }

    #[test]
    fn an_automatic_refresh_asks_only_the_version_and_stops_there_when_unchanged() {
        let (mut app, state) = on_the_detail();
        press(&mut app, "j");
        refresh_ticks(&mut app);
        assert!(
            app.commands
                .contains(&Command::CheckDetailVersion(state.id))
        );
        assert!(app.commands.contains(&Command::LoadHistory(state.id)));
        assert!(!app.commands.iter().any(is_full_load), "{:?}", app.commands);

        app.commands.clear();
        let before = app.clone();
        let unchanged = Message::DetailVersion {
            workflow_state_id: state.id,
            result: Ok(3),
        };
        update(&mut app, unchanged);
        assert!(app.commands.is_empty(), "{:?}", app.commands);
        assert_eq!(app, before, "the view is untouched");

        // An answer about a workflow no longer on screen is dropped, changed or not.
        let elsewhere = Message::DetailVersion {
            workflow_state_id: Uuid::from_u128(99),
            result: Ok(7),
        };
        update(&mut app, elsewhere);
        assert_eq!(app, before);
    }

    #[test]
    fn a_changed_version_reads_the_workflow_in_full_keeping_the_selected_step() {
        let (mut app, state) = on_the_detail();
        press(&mut app, "jj");
        refresh_ticks(&mut app);
        app.commands.clear();
        let changed = Message::DetailVersion {
            workflow_state_id: state.id,
            result: Ok(4),
        };
        update(&mut app, changed);
        assert_eq!(app.commands, vec![Command::LoadDetail(state.id)]);
        deliver(&mut app, state.clone(), 4);
        let detail = app.detail.as_ref().unwrap();
        assert_eq!((detail.version, detail.step), (Some(4), 2));
        app.commands.clear();
        refresh_ticks(&mut app);
        app.commands.clear();
        update(
            &mut app,
            Message::DetailVersion {
                workflow_state_id: state.id,
                result: Ok(4),
            },
        );
        assert!(app.commands.is_empty(), "version 4 is the one shown now");
    }

    #[test]
    fn r_reads_the_open_workflow_in_full_changed_or_not() {
        let (mut app, state) = on_the_detail();
        press(&mut app, "j");
        press(&mut app, "r");
        assert!(app.commands.contains(&Command::LoadDetail(state.id)));
        assert!(
            !app.commands
                .contains(&Command::CheckDetailVersion(state.id))
        );
        assert!(app.commands.contains(&Command::LoadHistory(state.id)));
    }

    #[test]
    fn a_workflow_deleted_meanwhile_shows_the_error_and_reads_nothing() {
        let (mut app, state) = on_the_detail();
        refresh_ticks(&mut app);
        app.commands.clear();
        let gone = format!("not found: workflow state {}", state.id);
        update(
            &mut app,
            Message::DetailVersion {
                workflow_state_id: state.id,
                result: Err(gone.clone()),
            },
        );
        assert_eq!(app.error, Some(gone.clone()));
        assert!(app.commands.is_empty());
        assert_eq!(app.detail.as_ref().unwrap().state, state, "still shown");

        // The list's own automatic refresh succeeding says nothing about that workflow:
        // the error stays for the operator to see.
        let message = loaded(&app, summaries());
        update(&mut app, message);
        assert_eq!(app.error, Some(gone));
    }

    #[test]
    fn a_list_error_is_cleared_by_the_next_list_load_only() {
        let mut app = loaded_app();
        let failed = Message::WorkflowsLoaded {
            request: app.workflows.request,
            append: false,
            result: Err("connection error: gone".into()),
            at: t0(),
        };
        update(&mut app, failed);
        assert_eq!(app.error.as_deref(), Some("connection error: gone"));
        update(&mut app, Message::CountsLoaded(Ok(Default::default())));
        assert_eq!(
            app.error.as_deref(),
            Some("connection error: gone"),
            "counts are not the list"
        );
        let message = loaded(&app, summaries());
        update(&mut app, message);
        assert_eq!(app.error, None, "the list loads again: its error is over");
    }

    #[test]
    fn every_periodic_read_s_error_ends_when_that_read_works_again() {
        // The server went away: each read the refresh makes failed in turn, the last
        // error shown. Once it is back, the error must go when that read succeeds;
        // before, a failed count stayed on the status bar for good.
        let gone = || Err::<(), String>("connection error: refused".into());
        let (mut app, state) = on_the_detail();
        let id = state.id;
        let failures: Vec<Message> = vec![
            Message::CountsLoaded(gone().map(|_| Default::default())),
            Message::HistoryLoaded {
                workflow_state_id: id,
                result: gone().map(|_| Default::default()),
            },
        ];
        let successes: Vec<Message> = vec![
            Message::CountsLoaded(Ok(Default::default())),
            Message::HistoryLoaded {
                workflow_state_id: id,
                result: Ok(Default::default()),
            },
        ];
        for (failure, success) in failures.into_iter().zip(successes) {
            let what = format!("{failure:?}");
            update(&mut app, failure);
            assert_eq!(
                app.error.as_deref(),
                Some("connection error: refused"),
                "{what}"
            );
            update(&mut app, success);
            assert_eq!(app.error, None, "{what}");
        }
        // The checkpoints screen's list, too.
        press(&mut app, "c");
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: id,
                result: Err("connection error: refused".into()),
            },
        );
        assert!(app.error.is_some());
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: id,
                result: Ok((Vec::new(), Default::default())),
            },
        );
        assert_eq!(app.error, None);

        // Left before the read worked again: nothing would read it again, so going back
        // ends its error too; the list's error stays until the list reads.
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: id,
                result: Err("connection error: refused".into()),
            },
        );
        press(&mut app, "q");
        assert_eq!(app.error, None, "the checkpoints screen was left");
        update(
            &mut app,
            Message::HistoryLoaded {
                workflow_state_id: id,
                result: Err("connection error: refused".into()),
            },
        );
        press(&mut app, "q");
        assert_eq!(app.error, None, "the detail screen was left");
        update(
            &mut app,
            Message::CountsLoaded(Err("connection error: refused".into())),
        );
        press(&mut app, "?");
        update(&mut app, key(KeyCode::Esc));
        assert!(app.error.is_some(), "the counts are read on every screen");
    }

    #[test]
    fn pins_forks_and_prunes_check_the_open_workflow_s_version_only() {
        let (mut app, state) = on_the_detail();
        update(
            &mut app,
            Message::PinSet {
                checkpoint: Uuid::from_u128(0x100),
                label: None,
                result: Ok(()),
            },
        );
        assert!(
            app.commands
                .contains(&Command::CheckDetailVersion(state.id))
        );
        assert!(!app.commands.iter().any(is_full_load));
    }

    fn is_list_load(command: &Command) -> bool {
        matches!(command, Command::LoadWorkflows { .. })
    }

    #[test]
    fn an_automatic_refresh_starts_no_second_list_load_while_one_is_under_way() {
        let mut app = loaded_app();
        refresh_ticks(&mut app);
        assert_eq!(app.commands.iter().filter(|c| is_list_load(c)).count(), 1);
        let request = app.workflows.request;

        // The load takes longer than the ticks between refreshes: the next refresh
        // reloads the rest (the counts answered) but not the list, and the answer under
        // way stays current.
        update(
            &mut app,
            Message::CountsLoaded(Ok(crate::fixtures::counts())),
        );
        app.commands.clear();
        refresh_ticks(&mut app);
        assert!(!app.commands.iter().any(is_list_load), "{:?}", app.commands);
        assert!(app.commands.contains(&Command::LoadCounts));
        assert_eq!(app.workflows.request, request);

        // Its answer arrives, here an error: the load is over, the next refresh loads.
        update(
            &mut app,
            Message::WorkflowsLoaded {
                request,
                append: false,
                result: Err("connection error: timed out".into()),
                at: t0(),
            },
        );
        app.commands.clear();
        refresh_ticks(&mut app);
        assert_eq!(app.commands.iter().filter(|c| is_list_load(c)).count(), 1);

        // And after a page arrives.
        let message = loaded(&app, summaries());
        update(&mut app, message);
        app.commands.clear();
        refresh_ticks(&mut app);
        assert_eq!(app.commands.iter().filter(|c| is_list_load(c)).count(), 1);

        // Asked for (`r`, a write): the list loads again even with a load under way.
        app.commands.clear();
        press(&mut app, "r");
        assert!(app.commands.iter().any(is_list_load));
        app.commands.clear();
        update(
            &mut app,
            Message::PinSet {
                checkpoint: Uuid::from_u128(0x100),
                label: None,
                result: Ok(()),
            },
        );
        assert!(app.commands.iter().any(is_list_load));
    }

    #[test]
    fn an_automatic_refresh_starts_no_second_full_read_while_one_is_under_way() {
        let (mut app, state) = on_the_detail();
        refresh_ticks(&mut app);
        app.commands.clear();
        let changed = |version| Message::DetailVersion {
            workflow_state_id: state.id,
            result: Ok(version),
        };
        update(&mut app, changed(4));
        assert_eq!(app.commands, vec![Command::LoadDetail(state.id)]);

        // The read takes longer than the ticks between refreshes: no version check (its
        // answer would differ from the version shown) and no second read.
        app.commands.clear();
        refresh_ticks(&mut app);
        assert!(
            !app.commands.iter().any(|command| is_full_load(command)
                || *command == Command::CheckDetailVersion(state.id)),
            "{:?}",
            app.commands
        );
        // A check answered while it runs (one asked before, or after a write) starts none.
        update(&mut app, changed(5));
        assert!(!app.commands.iter().any(is_full_load), "{:?}", app.commands);

        // An answer about another workflow does not end this one's read.
        update(
            &mut app,
            Message::DetailLoaded {
                workflow_state_id: Uuid::from_u128(99),
                result: Err("not found".into()),
            },
        );
        app.commands.clear();
        refresh_ticks(&mut app);
        assert!(!app.commands.iter().any(is_full_load), "{:?}", app.commands);

        // It fails: the read is over, and the next refresh asks again.
        update(
            &mut app,
            Message::DetailLoaded {
                workflow_state_id: state.id,
                result: Err("connection error: timed out".into()),
            },
        );
        // The next refresh checks the version again, and a changed one is read in full.
        let checks_and_reads = |app: &mut App, version| {
            app.commands.clear();
            refresh_ticks(app);
            assert!(
                app.commands
                    .contains(&Command::CheckDetailVersion(state.id))
            );
            app.commands.clear();
            update(app, changed(version));
            assert_eq!(app.commands, vec![Command::LoadDetail(state.id)]);
        };
        checks_and_reads(&mut app, 5);

        // It arrives: the same.
        deliver(&mut app, state.clone(), 5);
        checks_and_reads(&mut app, 6);

        // `r` reads it in full even with a read under way.
        app.commands.clear();
        press(&mut app, "r");
        assert!(app.commands.contains(&Command::LoadDetail(state.id)));
    }

    #[test]
    fn a_full_read_of_a_workflow_the_user_left_is_dropped_and_freed() {
        let (a, _) = failed_workflow();
        let mut b = a.clone();
        b.id = Uuid::from_u128(2);
        b.workflow_id = "rag-answer-0002".into();
        let failed = |id, err: &str| Message::DetailLoaded {
            workflow_state_id: id,
            result: Err(err.into()),
        };

        // A (the first row) opened and left before its read arrives; then B opened, twice
        // (Enter, Esc, Enter): A's late answer does not show A on B's screen.
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, key(KeyCode::Esc));
        press(&mut app, "j");
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, key(KeyCode::Esc));
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(app.screen(), Screen::Detail);
        app.commands.clear();
        let late = LoadedDetail::print(a.clone(), Some(1));
        update(&mut app, arrived(late.clone()));
        assert_eq!(app.detail, None, "B still loading, not A");
        // Freed off the UI thread, as what a refresh replaces is.
        assert_eq!(app.commands, vec![Command::Discard(Box::new(late))]);
        update(&mut app, failed(a.id, "not found"));
        assert_eq!(app.error, None, "an error about A is dropped too");

        // B's first read fails: its error shows, and still not A.
        update(&mut app, failed(b.id, "connection error: timed out"));
        assert_eq!(app.detail, None);
        assert_eq!(app.error.as_deref(), Some("connection error: timed out"));
        // Its second read arrives: B opens.
        deliver(&mut app, b.clone(), 1);
        assert_eq!(app.detail.as_ref().unwrap().state, b);

        // Back on the list before the answer: the workflow is not kept in memory.
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, key(KeyCode::Esc));
        app.commands.clear();
        let late = LoadedDetail::print(a.clone(), Some(1));
        update(&mut app, arrived(late.clone()));
        assert_eq!(app.detail, None);
        assert_eq!(app.commands, vec![Command::Discard(Box::new(late))]);

        // Opened again: its answer shows it.
        update(&mut app, key(KeyCode::Enter));
        deliver(&mut app, a.clone(), 1);
        assert_eq!(app.detail.as_ref().unwrap().state, a);
    }

    #[test]
    fn opening_another_workflow_or_a_restore_frees_the_one_shown_off_the_ui_thread() {
        let (a, checkpoints) = failed_workflow();
        let discards = |app: &App| -> Vec<LoadedDetail> {
            app.commands
                .iter()
                .filter_map(|command| match command {
                    Command::Discard(old) => Some(*old.clone()),
                    _ => None,
                })
                .collect()
        };

        // A shown, then the user goes back and opens B (the second row): A goes to the
        // runtime to be freed, as what a refresh replaces does.
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        deliver(&mut app, a.clone(), 1);
        update(&mut app, key(KeyCode::Esc));
        press(&mut app, "j");
        app.commands.clear();
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(app.detail, None);
        assert_eq!(discards(&app), [LoadedDetail::print(a.clone(), Some(1))]);

        // Opened again, the same workflow is kept: nothing is freed.
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        deliver(&mut app, a.clone(), 1);
        update(&mut app, key(KeyCode::Esc));
        app.commands.clear();
        update(&mut app, key(KeyCode::Enter));
        assert!(discards(&app).is_empty(), "{:?}", app.commands);
        assert_eq!(app.detail.as_ref().unwrap().state, a);

        // A restore's answer replaces the workflow shown: that one is freed the same way.
        let mut app = with_checkpoints();
        let restored = LoadedDetail::print(checkpoints[1].state().unwrap(), None);
        update(&mut app, Message::Restored(Ok(restored.clone())));
        assert_eq!(app.detail.as_ref().unwrap().state, restored.state);
        assert_eq!(discards(&app), [LoadedDetail::print(a, Some(1))]);
    }

    #[test]
    fn a_diff_or_restore_plan_the_user_left_opens_nothing() {
        let (state, checkpoints) = failed_workflow();
        let (newest, oldest) = (checkpoints[0].id, checkpoints[1].id);
        let diffed = |from, to| Message::DiffLoaded {
            from,
            to,
            result: Ok(("x".into(), crate::diff::diff(&json!(1), &json!(2)))),
        };

        // `d`, then back to the list before the diff arrives: the list stays on top.
        let mut app = with_checkpoints();
        press(&mut app, "d");
        update(&mut app, key(KeyCode::Esc));
        update(&mut app, diffed(newest, None));
        assert_eq!(app.screens, vec![Screen::Workflows]);
        assert_eq!(app.diff, None);

        // Two diffs asked for: only the last one opens.
        let mut app = with_checkpoints();
        press(&mut app, "djd");
        update(&mut app, diffed(newest, None));
        assert_eq!(app.screen(), Screen::Checkpoints);
        update(&mut app, diffed(oldest, None));
        assert_eq!(app.screen(), Screen::Diff);

        // `R`, then back to the list before the plan arrives: no question, and Enter
        // opens the workflow rather than restoring.
        let planned = |checkpoint: &Checkpoint| Message::RestorePlanned {
            checkpoint: checkpoint.id,
            result: Ok(Box::new(
                RestorePlan::new(state.clone(), checkpoint.clone()).unwrap(),
            )),
        };
        let mut app = with_checkpoints();
        press(&mut app, "jR");
        update(&mut app, key(KeyCode::Esc));
        update(&mut app, planned(&checkpoints[1]));
        assert_eq!(app.popup, None);
        app.commands.clear();
        update(&mut app, key(KeyCode::Enter));
        assert_eq!(app.screen(), Screen::Detail);
        assert!(
            !app.commands
                .iter()
                .any(|command| matches!(command, Command::Restore(_))),
            "{:?}",
            app.commands
        );

        // `R` on one checkpoint, then on another: only the last one is asked about.
        let mut app = with_checkpoints();
        press(&mut app, "jRkR");
        update(&mut app, planned(&checkpoints[1]));
        assert_eq!(app.popup, None);
        update(&mut app, planned(&checkpoints[0]));
        let Some(Popup::ConfirmRestore { plan, .. }) = &app.popup else {
            panic!("no question: {:?}", app.popup);
        };
        assert_eq!(plan.checkpoint.id, newest);
    }

    #[test]
    fn an_automatic_refresh_asks_no_second_count_history_or_checkpoint_list_until_answered() {
        let (mut app, state) = on_the_detail();
        let id = state.id;
        press(&mut app, "c");
        let (_, checkpoints) = failed_workflow();
        let infos = |result| Message::CheckpointInfosLoaded {
            workflow_state_id: id,
            result,
        };
        update(
            &mut app,
            infos(Ok(crate::fixtures::checkpoint_infos(&checkpoints))),
        );
        let asked = |app: &App| {
            let count = |wanted: Command| app.commands.iter().filter(|c| **c == wanted).count();
            (
                count(Command::LoadCounts),
                count(Command::LoadHistory(id)),
                count(Command::LoadCheckpointInfos(id)),
            )
        };

        // Nothing under way: the timer asks for each once.
        app.commands.clear();
        refresh_ticks(&mut app);
        assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.commands);

        // None has answered by the next refresh: none is asked again.
        app.commands.clear();
        refresh_ticks(&mut app);
        assert_eq!(asked(&app), (0, 0, 0), "{:?}", app.commands);

        // Answers about another workflow end nothing here.
        let other = Uuid::from_u128(99);
        update(&mut app, history_loaded(other, Err("gone".into())));
        update(
            &mut app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: other,
                result: Err("gone".into()),
            },
        );
        app.commands.clear();
        refresh_ticks(&mut app);
        assert_eq!(asked(&app), (0, 0, 0), "{:?}", app.commands);

        // They fail: each read is over, and the next refresh asks again.
        update(&mut app, Message::CountsLoaded(Err("timed out".into())));
        update(&mut app, history_loaded(id, Err("timed out".into())));
        update(&mut app, infos(Err("timed out".into())));
        app.commands.clear();
        refresh_ticks(&mut app);
        assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.commands);

        // They arrive: the same.
        update(
            &mut app,
            Message::CountsLoaded(Ok(crate::fixtures::counts())),
        );
        update(&mut app, history_loaded(id, Ok(WorkflowHistory::default())));
        update(
            &mut app,
            infos(Ok(crate::fixtures::checkpoint_infos(&checkpoints))),
        );
        app.commands.clear();
        refresh_ticks(&mut app);
        assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.commands);

        // Asked for (`r`, a write): each is read again even with a read under way.
        app.commands.clear();
        press(&mut app, "r");
        assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.commands);
        app.commands.clear();
        update(
            &mut app,
            Message::PinSet {
                checkpoint: checkpoints[0].id,
                label: None,
                result: Ok(()),
            },
        );
        assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.commands);
    }

    /// The detail shows exactly the context and outputs lines `loaded` carries.
    fn shows_the_lines_of(detail: &DetailView, loaded: &LoadedDetail) {
        assert_eq!(detail.context_lines, loaded.context_lines);
        assert_eq!(detail.outputs_lines, loaded.outputs_lines);
    }

    #[test]
    fn the_detail_shows_the_lines_the_runtime_printed_without_printing() {
        let (state, _) = failed_workflow();
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        // Opening: the lines delivered are the lines shown, as they are.
        update(&mut app, arrived(placeholder(&state, 1, 50)));
        let detail = app.detail.as_ref().unwrap();
        shows_the_lines_of(detail, &placeholder(&state, 1, 50));
        assert_eq!((detail.step, detail.version), (0, Some(1)));

        // A refresh keeps the step, focus and places, within the new lines.
        update(&mut app, key(KeyCode::Tab));
        press(&mut app, "jjjjjjjjjj");
        update(&mut app, key(KeyCode::Tab));
        update(&mut app, key(KeyCode::End));
        let detail = app.detail.as_ref().unwrap();
        assert_eq!((detail.outputs_scroll, detail.context_scroll), (10, 49));
        update(&mut app, arrived(placeholder(&state, 2, 20)));
        let detail = app.detail.as_ref().unwrap();
        shows_the_lines_of(detail, &placeholder(&state, 2, 20));
        assert_eq!(detail.context_scroll, 19, "clamped to the last of 20 lines");
        assert_eq!(detail.outputs_scroll, 10, "still within 20 lines");
        assert_eq!(
            (detail.step, detail.focus, detail.version),
            (0, DetailFocus::Context, Some(2))
        );
        // What it showed before goes to the runtime to be freed there.
        assert_eq!(
            app.commands.last(),
            Some(&Command::Discard(Box::new(placeholder(&state, 1, 50))))
        );

        // A refresh after the user moved to another step: that step's delivered lines.
        update(&mut app, key(KeyCode::Tab));
        press(&mut app, "j");
        update(&mut app, arrived(placeholder(&state, 3, 5)));
        let detail = app.detail.as_ref().unwrap();
        assert_eq!(detail.step, 1);
        assert_eq!(
            detail.selected_outputs_lines(),
            placeholder(&state, 3, 5).outputs_lines[1]
        );
        assert_eq!(detail.selected_outputs_lines()[0], "outputs of prompt 0");

        // Fewer steps now (restored elsewhere): the last one left is selected.
        press(&mut app, "G");
        let mut shorter = state.clone();
        shorter.steps.remove("tool_call");
        update(&mut app, arrived(placeholder(&shorter, 4, 5)));
        let detail = app.detail.as_ref().unwrap();
        assert_eq!(detail.step, 1);
        assert_eq!(detail.selected_outputs_lines()[0], "outputs of prompt 0");

        // Another workflow opened starts afresh, at its first step.
        let mut other = state;
        other.id = Uuid::from_u128(2);
        update(&mut app, key(KeyCode::Esc));
        press(&mut app, "j");
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, arrived(placeholder(&other, 1, 5)));
        let detail = app.detail.as_ref().unwrap();
        assert_eq!(detail.state.id, other.id);
        assert_eq!((detail.step, detail.context_scroll), (0, 0));
        shows_the_lines_of(detail, &placeholder(&other, 1, 5));
    }

    #[test]
    fn moving_between_steps_prints_nothing_and_shows_each_step_s_outputs() {
        let (state, _) = failed_workflow();
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, arrived(placeholder(&state, 1, 3)));
        app.commands.clear();
        let shown = |app: &App| {
            let detail = app.detail.as_ref().unwrap();
            let step = selected_step(detail).unwrap().step_id.clone();
            (step, detail.selected_outputs_lines()[0].clone())
        };
        let expect = |step: &str| (step.to_owned(), format!("outputs of {step} 0"));
        // Each key picks the step's delivered lines: were anything printed, the JSON would
        // show instead; were anything freed, a discard or a change to the lines would.
        for (keys, step) in [
            ("j", "prompt"),
            ("j", "tool_call"),
            ("j", "tool_call"),
            ("k", "prompt"),
            ("k", "retrieve"),
            ("G", "tool_call"),
            ("g", "retrieve"),
        ] {
            press(&mut app, keys);
            assert_eq!(shown(&app), expect(step), "after {keys}");
            shows_the_lines_of(app.detail.as_ref().unwrap(), &placeholder(&state, 1, 3));
        }
        update(&mut app, key(KeyCode::Down));
        update(&mut app, key(KeyCode::Up));
        assert_eq!(shown(&app), expect("retrieve"));
        assert!(app.commands.is_empty(), "{:?}", app.commands);

        // Outputs scroll within the selected step's lines, and a new step starts at the top.
        update(&mut app, key(KeyCode::Tab));
        update(&mut app, key(KeyCode::End));
        assert_eq!(app.detail.as_ref().unwrap().outputs_scroll, 2);
        update(&mut app, key(KeyCode::Tab));
        update(&mut app, key(KeyCode::Tab));
        press(&mut app, "j");
        assert_eq!(app.detail.as_ref().unwrap().outputs_scroll, 0);

        // With the lines as the runtime prints them, each step shows its own outputs.
        let mut app = loaded_app();
        update(&mut app, key(KeyCode::Enter));
        deliver(&mut app, state.clone(), 1);
        for (n, step) in ["retrieve", "prompt", "tool_call"].into_iter().enumerate() {
            if n > 0 {
                press(&mut app, "j");
            }
            assert_eq!(
                app.detail.as_ref().unwrap().selected_outputs_lines(),
                format::pretty_lines(&state.steps[step].outputs),
                "{step}"
            );
        }
    }

    #[test]
    fn printing_a_loaded_workflow_prints_the_context_and_every_step() {
        let (state, _) = failed_workflow();
        let loaded = LoadedDetail::print(state.clone(), Some(5));
        assert_eq!(loaded.context_lines, format::pretty_lines(&state.context));
        assert_eq!(loaded.version, Some(5));
        // In run order, as the steps table lists them.
        assert_eq!(
            loaded.outputs_lines,
            ["retrieve", "prompt", "tool_call"]
                .map(|step| { format::pretty_lines(&state.steps[step].outputs) })
        );
        let mut no_steps = state;
        no_steps.steps.clear();
        let empty = LoadedDetail::print(no_steps, None);
        assert!(empty.outputs_lines.is_empty());
        let detail = DetailView::new(empty, None);
        assert!(detail.selected_outputs_lines().is_empty());
    }
}
