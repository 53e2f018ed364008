//! A confirmation popup (rollback, prune): what will change, scrollable, above a key line
//! that is always in view, however long the text and however small the terminal.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::rollback_plan::RollbackPlan;

/// What a confirmation popup shows.
pub struct Confirmation<'a> {
    /// The box title.
    pub title: &'static str,
    /// The border colour.
    pub colour: Color,
    /// What will change (scrolls when it does not fit).
    pub body: Vec<Line<'a>>,
    /// The keys that answer, always shown on the last row.
    pub keys: &'static str,
}

/// The body as drawn in a box `width` cells wide: its rows once wrapped.
fn wrapped_rows(body: &[Line<'_>], width: u16) -> usize {
    Paragraph::new(body.to_vec())
        .wrap(Wrap { trim: false })
        .line_count(width)
}

/// The box of a confirmation popup with `body` in `main` (the area above the status
/// bar): as tall as the body needs, at most 70% of `main`; and its inside split into the
/// body, the row saying what is out of view, and the key line. The key line comes first:
/// a box too small for anything else keeps it.
fn layout(main: Rect, body: &[Line<'_>]) -> (Rect, [Rect; 3]) {
    let largest = super::centered(main, 80, 70);
    let needed = wrapped_rows(body, largest.width.saturating_sub(2)) + 2 + 2;
    let height = u16::try_from(needed)
        .unwrap_or(u16::MAX)
        .min(largest.height);
    let popup = main.centered(Constraint::Percentage(80), Constraint::Length(height));
    let rows = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(Block::bordered().inner(popup));
    (popup, rows)
}

/// The largest scroll of `body` in a terminal of `cols` x `rows` (its last line at the
/// bottom of the box); with the size not known yet (0), its last line.
pub fn last_scroll(body: &[Line<'_>], cols: u16, rows: u16) -> usize {
    if cols == 0 || rows == 0 {
        return body.len().saturating_sub(1);
    }
    let main = super::main_area(Rect::new(0, 0, cols, rows));
    let (_, [body_area, ..]) = layout(main, body);
    wrapped_rows(body, body_area.width).saturating_sub(usize::from(body_area.height))
}

/// Draws `confirmation` scrolled `scroll` rows down (as far as its last line).
pub fn render(confirmation: Confirmation<'_>, scroll: usize, frame: &mut Frame, area: Rect) {
    let (popup, [body_area, more_area, keys_area]) = layout(area, &confirmation.body);
    let block = Block::bordered()
        .title(format!(" {} ", confirmation.title))
        .border_style(Style::new().fg(confirmation.colour));
    let total = wrapped_rows(&confirmation.body, body_area.width);
    let height = usize::from(body_area.height);
    let scroll = scroll.min(total.saturating_sub(height));
    let below = total.saturating_sub(scroll + height);
    let more = match (scroll, below) {
        (0, 0) => String::new(),
        (1, 0) => "1 line above (k to scroll back)".to_owned(),
        (_, 0) => format!("{scroll} lines above (k to scroll back)"),
        (_, 1) => "… 1 more line (j/k to scroll)".to_owned(),
        (_, below) => format!("… {below} more lines (j/k to scroll)"),
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(block, popup);
    frame.render_widget(
        Paragraph::new(confirmation.body)
            .wrap(Wrap { trim: false })
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0)),
        body_area,
    );
    frame.render_widget(
        Paragraph::new(more).style(Style::new().fg(Color::Yellow)),
        more_area,
    );
    frame.render_widget(
        Paragraph::new(confirmation.keys).style(Style::new().add_modifier(Modifier::BOLD)),
        keys_area,
    );
}

/// What the rollback confirmation says: exactly what will change, after the plan's
/// warning (a replica running the workflow) in red on the first line, in a red box; or,
/// for a checkpoint that holds no state of the workflow, why nothing can be rolled back.
pub fn rollback(plan: &RollbackPlan) -> Confirmation<'static> {
    if plan.refused.is_some() {
        return Confirmation {
            title: "This checkpoint cannot be rolled back to",
            colour: Color::Red,
            body: plan.lines().into_iter().map(Line::from).collect(),
            keys: "Esc: close",
        };
    }
    let warned = plan.warning().is_some();
    let alarm = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    Confirmation {
        title: "Roll back to this checkpoint?",
        colour: if warned { Color::Red } else { Color::Yellow },
        body: plan
            .lines()
            .into_iter()
            .enumerate()
            .map(|(n, line)| match n {
                0 if warned => Line::styled(line, alarm),
                _ => Line::from(line),
            })
            .collect(),
        keys: "y: roll back    n / Esc: cancel",
    }
}
