//! A deep diff: one line per changed path.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::app::App;
use crate::diff::{Change, compact};
use crate::format::printable;

/// Coloured lines of a list of changes.
pub fn change_lines(changes: &[Change]) -> Vec<Line<'static>> {
    changes
        .iter()
        .map(|change| match change {
            Change::Added { path, new } => Line::from(vec![
                Span::styled(
                    format!("+ {}: ", printable(path)),
                    Style::new().fg(Color::Green),
                ),
                Span::raw(compact(new)),
            ]),
            Change::Removed { path, old } => Line::from(vec![
                Span::styled(
                    format!("- {}: ", printable(path)),
                    Style::new().fg(Color::Red),
                ),
                Span::raw(compact(old)),
            ]),
            Change::Changed { path, old, new } => Line::from(vec![
                Span::styled(
                    format!("~ {}: ", printable(path)),
                    Style::new().fg(Color::Yellow),
                ),
                Span::styled(compact(old), Style::new().fg(Color::Red)),
                Span::raw(" -> "),
                Span::styled(compact(new), Style::new().fg(Color::Green)),
            ]),
        })
        .collect()
}

/// Draws the diff screen.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(view) = &app.diff else {
        return;
    };
    let block = Block::bordered().title(format!(
        " Diff {} ({}) ",
        printable(&view.title),
        crate::format::count(view.changes.len() as u64, "change", "changes")
    ));
    // Only the changes in view are formatted: a diff of two big snapshots can be long.
    let height = block.inner(area).height;
    let mut lines = change_lines(super::in_view(&view.changes, view.scroll, height));
    if view.changes.is_empty() {
        lines.push(Line::from("no differences"));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
