//! `?`: every key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::App;

const KEYS: &[(&str, &str)] = &[
    ("Everywhere", ""),
    ("j / k / arrows", "move or scroll"),
    ("PgUp / PgDn, g / G", "page, first, last"),
    ("Enter", "open"),
    ("Esc / q", "back; quit on the workflows screen"),
    ("r", "refresh now (also every 5 s)"),
    ("?", "this help"),
    ("P", "prune old history (shows a dry run first)"),
    ("Ctrl-C", "quit"),
    ("Workflows", ""),
    ("c", "checkpoints of the selected workflow"),
    ("a", "all / active only"),
    ("f", "cycle the status filter"),
    ("x", "only workflows whose lease expired (stuck)"),
    ("/", "filter by workflow id, name, user or uuid"),
    ("s / o", "next sort column / reverse order"),
    ("Workflow detail", ""),
    ("Tab", "j/k move steps, scroll outputs, or scroll context"),
    ("c", "checkpoints"),
    ("Checkpoints", ""),
    ("Enter", "open the snapshot"),
    ("space", "mark a checkpoint to diff with"),
    ("d", "diff marked vs selected, or selected vs current"),
    ("R", "restore the selected checkpoint (asks first)"),
    ("p", "pin with a label (pruning keeps it) / unpin"),
    ("F", "fork: a new workflow from this checkpoint"),
    ("Snapshot", ""),
    ("d / R", "diff with current / restore"),
];

/// Draws the help popup.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let popup = super::centered(area, 80, 100);
    // First: the list below fills a 32-row terminal, and this must not be cut.
    let mut lines: Vec<Line> = Vec::new();
    if app.read_only {
        lines.push(Line::from(
            "read-only mode: restore, pin, fork and prune are disabled",
        ));
    }
    lines.extend(KEYS.iter().map(|(key, what)| {
        if what.is_empty() {
            Line::from(Span::styled(*key, super::header_style()))
        } else {
            Line::from(vec![
                Span::styled(format!("  {key:<20}"), Style::new().fg(Color::Yellow)),
                Span::raw(*what),
            ])
        }
    }));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys (any key closes) ")),
        popup,
    );
}
