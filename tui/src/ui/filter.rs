//! The text filter prompt of the workflows table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Clear, Paragraph};

/// Draws the filter prompt.
pub fn render(input: &str, frame: &mut Frame, area: Rect) {
    let popup = area.centered(Constraint::Percentage(60), Constraint::Length(3));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(format!("{input}_")).block(
            Block::bordered()
                .title(" Filter: workflow id, name, user or uuid (Enter apply, Esc cancel) "),
        ),
        popup,
    );
}
