//! The unpin confirmation: which checkpoint, the label that goes, and what that means.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use uuid::Uuid;

use super::confirm::Confirmation;
use crate::format;

/// Asks before unpinning `checkpoint`: its `label` ("approved by human") is gone for good
/// once it is unpinned, and pruning may then delete the checkpoint.
pub fn confirmation(checkpoint: Uuid, label: &str) -> Confirmation<'static> {
    Confirmation {
        title: "Unpin this checkpoint?",
        colour: Color::Yellow,
        body: vec![
            Line::from(format!("checkpoint {checkpoint}")),
            Line::from(format!("pinned as: {}", format::printable(label)))
                .style(Style::new().add_modifier(Modifier::BOLD)),
            Line::from(""),
            Line::from("Unpinning removes the label; pruning may then delete the checkpoint."),
        ],
        keys: "y: unpin    n / Esc: keep the pin",
    }
}
