//! The help popup (`?`): every key, scrollable on a terminal too short for all of them.

use ratatui::crossterm::event::KeyEvent;

use super::Outcome;
use crate::app::{App, moved, movement};

/// Movement keys scroll a help taller than the terminal; any other key, and any key when
/// it fits, closes it.
pub(in crate::app) fn on_key(app: &mut App, scroll: &mut usize, key: &KeyEvent) -> Outcome {
    let last = crate::ui::help::last_scroll(app.read_only, app.rows);
    if let (Some(delta), Some(last)) = (movement(key), last) {
        *scroll = moved(*scroll, delta, last + 1);
        return Outcome::Stay;
    }
    Outcome::Close
}
