//! The prune popup: the policy and what it deletes (a dry run), then what it deleted.

use llm_orchestrator_state::{PruneReport, RetentionPolicy};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

use super::confirm::Confirmation;
use crate::commands::{describe_policy, policy_text};
use crate::format;

/// The prune preview (`done` false) or report (`done` true), as a confirmation popup.
pub fn confirmation(
    policy: &RetentionPolicy,
    report: &PruneReport,
    done: bool,
    read_only: bool,
) -> Confirmation<'static> {
    let mut body = vec![Line::from(if done {
        "Policy applied to every workflow:"
    } else {
        "Policy (a dry run: nothing is deleted yet):"
    })];
    body.extend(
        describe_policy(policy)
            .split("; ")
            .map(|rule| Line::from(format!("  - {rule}"))),
    );
    if !done {
        // The policy as `e` edits it (and as `y` applies it).
        body.push(Line::from(format!("  policy: {}", policy_text(policy))));
    }
    body.push(Line::from(""));
    body.push(
        Line::from(format!(
            "{}: {}, {}, {}",
            if done { "deleted" } else { "would delete" },
            format::count(report.workflows, "workflow", "workflows"),
            format::count(report.checkpoints, "checkpoint", "checkpoints"),
            format::size(report.bytes)
        ))
        .style(Style::new().add_modifier(Modifier::BOLD)),
    );
    let keys = if done {
        "any key closes"
    } else if read_only {
        "read-only mode: preview only    e: edit the policy    Esc: close"
    } else {
        "y: prune    e: edit the policy    n / Esc: cancel"
    };
    let (title, colour) = if done {
        ("Pruned", Color::Green)
    } else {
        ("Prune old history?", Color::Yellow)
    };
    Confirmation {
        title,
        colour,
        body,
        keys,
    }
}
