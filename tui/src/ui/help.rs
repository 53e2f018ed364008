//! `?`: every key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

/// Every key, under the heading of the screens where it works (a heading has no text).
const KEYS: &[(&str, &str)] = &[
    ("Everywhere", ""),
    ("j / k / arrows", "move or scroll"),
    ("PgUp / PgDn, g / G", "page, first, last"),
    ("Enter", "open"),
    (
        "Esc / q",
        "back; on workflows q quits, Esc clears the filter",
    ),
    ("r", "refresh now (also every 5 s)"),
    ("?", "this help"),
    (
        "P",
        "prune old history (a dry run first; e edits the policy; only y confirms)",
    ),
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
    (
        "R",
        "roll back to the selected checkpoint (asks; only y confirms)",
    ),
    ("p", "pin with a label / unpin (asks first)"),
    ("F", "fork: a new workflow from this checkpoint"),
    ("Snapshot", ""),
    ("d / R", "diff with current / rollback"),
];

/// How many lines the help has (with the read-only note when `read_only`).
pub fn line_count(read_only: bool) -> usize {
    KEYS.len() + usize::from(read_only)
}

/// Rows of help a terminal of `rows` rows shows: the popup fills the screen above the
/// two status lines, inside its border.
fn visible_rows(rows: u16) -> usize {
    usize::from(rows.saturating_sub(2 + 2))
}

/// The largest scroll that still fills the popup on a terminal of `rows` rows; `None`
/// when the help fits and needs no scrolling. With `rows` 0 (not known yet) it may
/// scroll to its last line.
pub fn last_scroll(read_only: bool, rows: u16) -> Option<usize> {
    let lines = line_count(read_only);
    if rows == 0 {
        return Some(lines.saturating_sub(1));
    }
    let visible = visible_rows(rows);
    (lines > visible).then(|| lines - visible)
}

/// Draws the help popup from line `scroll` on (as far as the popup stays full). When
/// the terminal is too short for every line, the title says how to scroll and the
/// bottom edge how many lines are above and below.
pub fn render(read_only: bool, scroll: usize, frame: &mut Frame, area: Rect) {
    // The whole width of a narrow terminal: four fifths of 80 columns cut the longest
    // lines ("fork: a new workflow from this checkpoint").
    let popup = super::centered(area, if area.width < 100 { 100 } else { 80 }, 100);
    let mut lines: Vec<Line> = Vec::new();
    // First, so that it is seen without scrolling.
    if read_only {
        lines.push(Line::from(
            "read-only mode: rollback, pin, fork and prune are disabled",
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
    let rows = usize::from(popup.height.saturating_sub(2));
    let scroll = scroll.min(lines.len().saturating_sub(rows));
    let mut block = Block::bordered().title(if lines.len() > rows {
        " Keys (j/k scroll, any other key closes) "
    } else {
        " Keys (any key closes) "
    });
    let below = lines.len().saturating_sub(scroll + rows);
    let position = match (scroll, below) {
        (0, 0) => None,
        (0, below) => Some(format!(" {below} more below (j) ")),
        (above, 0) => Some(format!(" {above} more above (k) ")),
        (above, below) => Some(format!(" {above} above (k), {below} below (j) ")),
    };
    if let Some(position) = position {
        block = block.title_bottom(Line::from(position));
    }
    let shown: Vec<Line> = lines.into_iter().skip(scroll).collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(shown).block(block), popup);
}
