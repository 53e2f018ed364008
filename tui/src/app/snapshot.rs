//! The snapshot screen: the state one checkpoint holds, fetched by id when it opens.

use llm_orchestrator_state::CheckpointInfo;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use uuid::Uuid;

use super::{App, Effect, Screen, moved, movement};

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

impl App {
    /// Shows the snapshot screen for `info` at once, saying it loads, and fetches the
    /// snapshot by id.
    pub(super) fn open_snapshot(&mut self, info: CheckpointInfo) {
        self.effects.push(Effect::LoadSnapshot(info.id));
        self.snapshot = Some(SnapshotView {
            info,
            lines: None,
            scroll: 0,
        });
        self.push(Screen::Snapshot);
    }

    /// A snapshot could not be loaded (pruned meanwhile, connection lost): say so, go
    /// back to the list and reload it.
    pub(super) fn snapshot_failed(&mut self, err: &str) {
        self.show_error(format!("cannot open the snapshot: {err}"));
        self.snapshot = None;
        if self.screen() == Screen::Snapshot {
            self.screens.pop();
        }
        if let Some(view) = &self.checkpoints {
            self.load_checkpoint_infos(view.workflow_state_id);
        }
    }
}

/// A key on the snapshot screen.
pub(super) fn on_key(app: &mut App, key: KeyEvent) {
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
    // Diff and rollback fetch the checkpoint by id themselves: they work while it loads.
    let id = view.info.id;
    match key.code {
        KeyCode::Char('d') => app.start_diff(id, None),
        KeyCode::Char('R') | KeyCode::Char('u') => app.start_rollback(id),
        _ => {}
    }
}

/// The snapshot of the checkpoint opened arrived, printed ([`super::Message::SnapshotLoaded`]).
pub(super) fn loaded(app: &mut App, checkpoint: Uuid, result: Result<Vec<String>, String>) {
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
