//! The diff screen: a deep diff of two states (two checkpoints, or a checkpoint and the
//! workflow's current state).

use ratatui::crossterm::event::KeyEvent;
use uuid::Uuid;

use super::{App, Effect, Screen, moved, movement};
use crate::diff::Change;

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

impl App {
    /// Diffs `from` with `to` (the current state if `None`); the diff screen opens when
    /// the answer arrives, unless the user went back meanwhile.
    pub(super) fn start_diff(&mut self, from: Uuid, to: Option<Uuid>) {
        self.awaited.diff = Some((from, to));
        self.effects.push(Effect::Diff { from, to });
    }
}

/// A key on the diff screen: movement keys scroll it.
pub(super) fn on_key(app: &mut App, key: KeyEvent) {
    if let (Some(delta), Some(diff)) = (movement(&key), app.diff.as_mut()) {
        diff.scroll = moved(diff.scroll, delta, diff.changes.len());
    }
}

/// A diff arrived ([`super::Message::DiffLoaded`]).
pub(super) fn loaded(
    app: &mut App,
    from: Uuid,
    to: Option<Uuid>,
    result: Result<(String, Vec<Change>), String>,
) {
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
