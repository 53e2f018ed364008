//! The status bar: database, counts, last refresh, errors; and the keys of the screen.

use llm_orchestrator_state::WorkflowStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, Screen};
use crate::format;

/// The keys of the screen shown, each with what it does.
fn keys(app: &App) -> &'static [(&'static str, &'static str)] {
    match app.screen() {
        Screen::Workflows => &[
            ("j/k", "move"),
            ("Enter", "open"),
            ("c", "checkpoints"),
            ("a", "active"),
            ("f", "status"),
            ("x", "stuck"),
            ("/", "filter"),
            ("s/o", "sort"),
            ("P", "prune"),
            ("r", "refresh"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Detail => &[
            ("j/k", "step"),
            ("Tab", "steps/outputs/context"),
            ("c", "checkpoints"),
            ("r", "refresh"),
            ("?", "help"),
            ("Esc", "back"),
        ],
        Screen::Checkpoints => &[
            ("j/k", "move"),
            ("Enter", "snapshot"),
            ("space", "mark"),
            ("d", "diff"),
            ("R", "rollback"),
            ("p", "pin"),
            ("F", "fork"),
            ("P", "prune"),
            ("r", "refresh"),
            ("?", "help"),
            ("Esc", "back"),
        ],
        Screen::Snapshot => &[
            ("j/k", "scroll"),
            ("d", "diff with current"),
            ("R", "rollback"),
            ("?", "help"),
            ("Esc", "back"),
        ],
        Screen::Diff => &[("j/k", "scroll"), ("?", "help"), ("Esc", "back")],
    }
}

/// `keys` as one line of at most `width` columns: those that fit, in order, then
/// "... ? help" when some did not, so that the key to every other key is always shown.
fn key_line(keys: &[(&str, &str)], width: usize) -> String {
    let join = |keys: &mut dyn Iterator<Item = &(&str, &str)>| {
        keys.map(|(key, what)| format!("{key} {what}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let all = join(&mut keys.iter());
    if format::width(&all) <= width {
        return all;
    }
    const MORE: &str = "  ... ? help";
    let mut line = String::new();
    for (key, what) in keys.iter().filter(|(key, _)| *key != "?") {
        let part = format!("{}{key} {what}", if line.is_empty() { "" } else { "  " });
        if format::width(&line) + format::width(&part) + MORE.len() > width {
            break;
        }
        line.push_str(&part);
    }
    line + MORE
}

/// Draws the two status lines: database, counts and refresh time; then the error or
/// notice if there is one, else the keys of the screen.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let [top, bottom] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let mut spans = Vec::new();
    // Stuck: their replica stopped renewing the lease. `x` lists them. First, before a
    // database URL that may be long, so that a narrow terminal does not cut it off.
    if app.counts.lease_expired > 0 {
        spans.push(Span::styled(
            format!(" {} stuck (x) ", app.counts.lease_expired),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    // Leases are counted by the database's clock: say when this machine's is off from it
    // (lease times are counted by the database's), before the URL that may be long.
    if let Some(apart) = app.clock.apart() {
        spans.push(Span::styled(
            format!(" {apart} "),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    spans.push(Span::styled(
        format!(" {} ", app.database),
        Style::new().bg(Color::Blue).fg(Color::White),
    ));
    if app.read_only {
        spans.push(Span::styled(
            " READ-ONLY ",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    spans.push(Span::raw(format!(
        " {}:",
        format::count(app.counts.total(), "workflow", "workflows")
    )));
    for status in WorkflowStatus::ALL {
        let count = app.counts.get(status);
        if count > 0 {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                format!("{count} {status}"),
                super::status_style(status),
            ));
        }
    }
    if let Some(at) = app.last_refresh {
        spans.push(Span::raw(format!(
            " | refreshed {} UTC",
            at.format("%H:%M:%S")
        )));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), top);
    let second = if let Some(error) = app.write_error.as_ref().or(app.error.as_ref()) {
        Paragraph::new(format!(" error: {}", format::printable(error)))
            .style(Style::new().fg(Color::White).bg(Color::Red))
    } else if let Some(notice) = &app.notice {
        Paragraph::new(format!(" {}", format::printable(notice)))
            .style(Style::new().fg(Color::Green))
    } else {
        Paragraph::new(key_line(keys(app), usize::from(bottom.width)))
            .style(Style::new().fg(Color::DarkGray))
    };
    frame.render_widget(second, bottom);
}
