//! A line of text: the label to pin a checkpoint with, a fork's workflow_id, or the
//! retention policy the prune popup previews.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::app::InputPurpose;
use crate::format;

/// Draws the input popup, with `error` (why the last Enter changed nothing) under the
/// text; the text wraps rather than running out of the box.
pub fn render(
    purpose: InputPurpose,
    input: &str,
    error: Option<&str>,
    frame: &mut Frame,
    area: Rect,
) {
    let (title, prompt, hint) = match purpose {
        InputPurpose::PinLabel(id) => (
            format!(" Pin checkpoint {id} "),
            "label: ",
            "Enter pin (pruning keeps it while its workflow stays)   Esc cancel",
        ),
        InputPurpose::ForkWorkflowId(id) => (
            format!(" Fork checkpoint {id} "),
            "new workflow_id: ",
            "Enter fork (a new pending workflow from this state)   Esc cancel",
        ),
        InputPurpose::PrunePolicy { .. } => (
            " Prune policy (a rule left out or off is not applied) ".to_owned(),
            "policy: ",
            "Enter preview this policy (nothing is deleted)   Esc keep the previous one",
        ),
    };
    let mut lines = vec![Line::from(format!("{prompt}{input}_"))];
    if let Some(error) = error {
        lines.push(
            Line::from(format!("error: {}", format::printable(error)))
                .style(Style::new().fg(Color::Red)),
        );
    }
    lines.push(Line::from(hint).style(Style::new().fg(Color::DarkGray)));
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    let width = area
        .centered(Constraint::Percentage(70), Constraint::Length(1))
        .width;
    let height = paragraph.line_count(width.saturating_sub(2)) + 2;
    let popup = area.centered(
        Constraint::Length(width),
        Constraint::Length(u16::try_from(height).unwrap_or(u16::MAX)),
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(paragraph.block(Block::bordered().title(title)), popup);
}
