//! The prune popup: the policy and what it deletes (a dry run), then what it deleted.

use llm_orchestrator_state::{PruneReport, RetentionPolicy};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::commands::describe_policy;
use crate::format;

/// Draws the prune preview (`done` false) or report (`done` true).
pub fn render(
    policy: &RetentionPolicy,
    report: &PruneReport,
    done: bool,
    read_only: bool,
    frame: &mut Frame,
    area: Rect,
) {
    let popup = super::centered(area, 70, 50);
    let mut lines = vec![Line::from(if done {
        "Policy applied to every workflow:"
    } else {
        "Policy (a dry run: nothing is deleted yet):"
    })];
    lines.extend(
        describe_policy(policy)
            .split("; ")
            .map(|rule| Line::from(format!("  - {rule}"))),
    );
    lines.push(Line::from(""));
    lines.push(
        Line::from(format!(
            "{}: {} workflows, {} checkpoints, {}",
            if done { "deleted" } else { "would delete" },
            report.workflows,
            report.checkpoints,
            format::size(report.bytes)
        ))
        .style(Style::new().add_modifier(Modifier::BOLD)),
    );
    lines.push(Line::from(""));
    let footer = if done {
        "any key closes"
    } else if read_only {
        "read-only mode: preview only    Esc: close"
    } else {
        "y / Enter: prune    n / Esc: cancel"
    };
    lines.push(Line::from(footer).style(Style::new().add_modifier(Modifier::BOLD)));
    let (title, colour) = if done {
        (" Pruned ", Color::Green)
    } else {
        (" Prune old history? ", Color::Yellow)
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(title)
                .border_style(Style::new().fg(colour)),
        ),
        popup,
    );
}
