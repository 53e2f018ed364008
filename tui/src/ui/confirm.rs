//! The restore confirmation: exactly what will change.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::restore_plan::RestorePlan;

/// Draws the confirmation popup.
pub fn render(plan: &RestorePlan, frame: &mut Frame, area: Rect) {
    let popup = super::centered(area, 80, 70);
    let mut lines: Vec<Line> = plan.lines().into_iter().map(Line::from).collect();
    lines.push(Line::from(""));
    lines.push(
        Line::from("y / Enter: restore    n / Esc: cancel")
            .style(Style::new().add_modifier(Modifier::BOLD)),
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(" Restore this checkpoint? ")
                .border_style(Style::new().fg(Color::Yellow)),
        ),
        popup,
    );
}
