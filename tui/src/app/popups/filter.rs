//! The filter popup (`/`): a text filter for the workflows table.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::{Outcome, edit_text};
use crate::app::{App, PAGE_SIZE};

/// Enter filters the table by the text typed, from its first row; Esc leaves the filter
/// as it was; other keys edit the text.
pub(in crate::app) fn on_key(app: &mut App, input: &mut String, key: &KeyEvent) -> Outcome {
    match key.code {
        KeyCode::Enter => {
            app.workflows.text_filter = std::mem::take(input);
            app.workflows.selected = 0;
            app.reload_workflows(PAGE_SIZE);
            Outcome::Close
        }
        KeyCode::Esc => Outcome::Close,
        _ => {
            edit_text(input, key);
            Outcome::Stay
        }
    }
}
