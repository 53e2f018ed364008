//! The unpin confirmation (`p` on a pinned checkpoint): unpinning loses the pin's label.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use uuid::Uuid;

use super::Outcome;
use crate::app::{App, Effect};

/// Like the rollback's: only `y` unpins, and any other key but a no leaves the question.
pub(in crate::app) fn on_key(app: &mut App, checkpoint: Uuid, key: &KeyEvent) -> Outcome {
    match key.code {
        KeyCode::Char('y') => Outcome::Apply(Effect::SetPin {
            checkpoint,
            label: None,
        }),
        KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
            app.notice = Some("unpin cancelled; the pin stays".into());
            Outcome::Close
        }
        _ => Outcome::Stay,
    }
}
