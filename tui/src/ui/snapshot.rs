//! The state held by one checkpoint, as coloured JSON.

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
    let checkpoint = &view.checkpoint;
    let title = format!(
        " Snapshot after {} at {} ({}) ",
        checkpoint.step_id,
        format::time(Some(checkpoint.timestamp)),
        checkpoint.id
    );
    frame.render_widget(
        Paragraph::new(json::lines(&checkpoint.snapshot))
            .scroll((view.scroll, 0))
            .block(Block::bordered().title(title)),
        area,
    );
}
