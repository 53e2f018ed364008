//! The checkpoints screen: one workflow's checkpoints, newest first, and what can be done
//! to one: open it, mark it and diff, roll back to it, pin or unpin it, fork from it.

use llm_orchestrator_state::{CheckpointInfo, CheckpointUsage, WorkflowState};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use uuid::Uuid;

use super::popups::{InputPurpose, Popup};
use super::{App, Effect, ErrorSource, Refresh, Screen, moved, movement};
use crate::error::WriteError;

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

impl App {
    pub(super) fn open_checkpoints(&mut self, workflow_state_id: Uuid, workflow_id: String) {
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

    pub(super) fn load_checkpoint_infos(&mut self, workflow_state_id: Uuid) {
        self.in_flight.checkpoint_infos = Some(workflow_state_id);
        self.effects
            .push(Effect::LoadCheckpointInfos(workflow_state_id));
    }

    /// `p`: asks whether to unpin a pinned checkpoint (its label would be lost), else asks
    /// for the label to pin it with.
    pub(super) fn toggle_pin(&mut self, checkpoint: Uuid) {
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

    pub(super) fn start_fork(&mut self, checkpoint: Uuid) {
        if self.may_write("fork") {
            self.popup = Some(Popup::Input {
                purpose: InputPurpose::ForkWorkflowId(checkpoint),
                input: String::new(),
                error: None,
            });
        }
    }
}

/// A key on the checkpoints screen.
pub(super) fn on_key(app: &mut App, key: KeyEvent) {
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
        KeyCode::Char('R') | KeyCode::Char('u') => app.start_rollback(selected.id),
        KeyCode::Char('p') => app.toggle_pin(selected.id),
        KeyCode::Char('F') => app.start_fork(selected.id),
        _ => {}
    }
}

/// A workflow's checkpoints and totals arrived ([`super::Message::CheckpointInfosLoaded`]).
pub(super) fn infos_loaded(
    app: &mut App,
    workflow_state_id: Uuid,
    result: Result<(Vec<CheckpointInfo>, CheckpointUsage), String>,
) {
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
            // A mark on a checkpoint that is gone (pruned, rolled back past) would be
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

/// A pin was set or removed ([`super::Message::PinSet`]).
pub(super) fn pin_set(
    app: &mut App,
    checkpoint: Uuid,
    label: Option<String>,
    result: Result<(), WriteError>,
) {
    match result {
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
    }
}

/// A fork was created, or failed ([`super::Message::Forked`]).
pub(super) fn forked(app: &mut App, checkpoint: Uuid, result: Result<WorkflowState, WriteError>) {
    match result {
        Ok(state) => {
            app.error = None;
            app.write_succeeded(format!(
                "forked {} ({}) from checkpoint {checkpoint}: {}",
                state.workflow_id, state.id, state.status
            ));
            app.refresh(Refresh::AfterWrite);
        }
        Err(err) => app.write_failed("fork", &err),
    }
}
