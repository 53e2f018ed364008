//! A line of text for a checkpoint: the label to pin it with, or a fork's workflow_id.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::InputPurpose;

/// Draws the input popup.
pub fn render(purpose: InputPurpose, input: &str, frame: &mut Frame, area: Rect) {
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
    };
    let popup = area.centered(Constraint::Percentage(70), Constraint::Length(4));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(format!("{prompt}{input}_")),
            Line::from(hint).style(Style::new().fg(Color::DarkGray)),
        ])
        .block(Block::bordered().title(title)),
        popup,
    );
}
