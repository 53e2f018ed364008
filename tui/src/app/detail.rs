//! The detail screen: one workflow in full (fields, context, steps and their outputs),
//! with its checkpoint totals and lineage.

use chrono::{DateTime, Utc};
use llm_orchestrator_state::admin::WorkflowSummary;
use llm_orchestrator_state::{CheckpointUsage, WorkflowState};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use uuid::Uuid;

use super::{App, Effect, ErrorSource, Opening, Screen, moved, movement};
use crate::commands::ordered_steps;
use crate::format;

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
    /// only when the stored version differs. `None` when unknown (the state a rollback
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
    /// A full read of this workflow ([`Effect::LoadDetail`]) is under way: the automatic
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
    pub(super) fn showing(detail: &mut Option<DetailView>, id: Uuid) -> Option<&mut DetailView> {
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
    /// [`Effect::Discard`]); the rest is small.
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
    /// runtime to free (see [`Effect::Discard`]).
    fn replace(&mut self, loaded: LoadedDetail) -> LoadedDetail {
        let old = LoadedDetail {
            state: std::mem::replace(&mut self.state, loaded.state),
            version: std::mem::replace(&mut self.version, loaded.version),
            step_order: std::mem::replace(&mut self.step_order, loaded.step_order),
            context_lines: std::mem::replace(&mut self.context_lines, loaded.context_lines),
            outputs_lines: std::mem::replace(&mut self.outputs_lines, loaded.outputs_lines),
            damaged: std::mem::replace(&mut self.damaged, loaded.damaged),
        };
        // Fewer steps now (a rollback elsewhere): the last one.
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

/// The selected step of the detail view, in run order.
pub fn selected_step(detail: &DetailView) -> Option<&llm_orchestrator_state::StepState> {
    detail
        .step_order
        .get(detail.step)
        .and_then(|id| detail.state.steps.get(id))
}

impl App {
    pub(super) fn load_history(&mut self, workflow_state_id: Uuid) {
        self.in_flight.history = Some(workflow_state_id);
        self.effects.push(Effect::LoadHistory(workflow_state_id));
    }

    /// Shows `detail` (or nothing) on the detail screen. The workflow shown before goes to
    /// the runtime to be freed off the UI thread, as what a refresh replaces does (see
    /// [`Effect::Discard`]): it can be megabytes.
    pub(super) fn set_detail(&mut self, detail: Option<DetailView>) {
        if let Some(old) = std::mem::replace(&mut self.detail, detail) {
            self.effects
                .push(Effect::Discard(Box::new(old.into_loaded())));
        }
    }

    /// Where workflow `id`'s checkpoint totals and lineage go: on its view if it is shown,
    /// kept for it if it is being opened (they often arrive before a large workflow's full
    /// read); `None` for a workflow the user has left.
    pub(super) fn history_slot(&mut self, id: Uuid) -> Option<&mut Option<WorkflowHistory>> {
        if let Some(view) = DetailView::showing(&mut self.detail, id) {
            return Some(&mut view.history);
        }
        self.awaited.opening(id).map(|opening| &mut opening.history)
    }

    pub(super) fn open_detail(&mut self, id: Uuid) {
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
    pub(super) fn load_detail(&mut self, id: Uuid) {
        if let Some(view) = DetailView::showing(&mut self.detail, id) {
            view.loading = true;
        } else if let Some(opening) = self.awaited.opening(id) {
            opening.loading = true;
        }
        self.effects.push(Effect::LoadDetail(id));
    }
}

/// A key on the detail screen.
pub(super) fn on_key(app: &mut App, key: KeyEvent) {
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

/// A full read of a workflow finished ([`super::Message::DetailLoaded`]).
pub(super) fn loaded(app: &mut App, workflow_state_id: Uuid, result: Result<LoadedDetail, String>) {
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
            app.effects.push(Effect::Discard(Box::new(old)));
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
        (Ok(loaded), None) => app.effects.push(Effect::Discard(Box::new(loaded))),
        (Err(_), _) => {}
    }
}

/// The version a workflow is stored at arrived ([`super::Message::DetailVersion`]).
pub(super) fn version_checked(app: &mut App, workflow_state_id: Uuid, result: Result<i64, String>) {
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

/// A workflow's checkpoint totals and lineage arrived ([`super::Message::HistoryLoaded`]).
pub(super) fn history_loaded(
    app: &mut App,
    workflow_state_id: Uuid,
    result: Result<WorkflowHistory, String>,
) {
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
