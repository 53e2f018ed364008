//! The state held by one checkpoint, as coloured JSON; "loading" until it arrives.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Paragraph};

use crate::app::App;
use crate::format;

use super::json;

/// Draws the snapshot screen.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(view) = &app.snapshot else {
        return;
    };
    let info = &view.info;
    let title = format!(
        " Snapshot after {} at {} ({}) ",
        format::printable(&info.step_id),
        format::time(Some(info.timestamp)),
        info.id
    );
    let block = Block::bordered().title(title);
    let Some(lines) = &view.lines else {
        frame.render_widget(
            Paragraph::new(format!(
                "loading the snapshot ({})...",
                format::size(info.size_bytes)
            ))
            .block(block),
            area,
        );
        return;
    };
    json::render(lines, view.scroll, block, frame, area);
}
