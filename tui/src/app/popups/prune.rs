//! The prune popup (`P`): a preview of what a retention policy deletes, `y` to apply it,
//! `e` to edit the policy in a one-line input, then the report of what went.

use std::time::Duration;

use llm_orchestrator_state::{PruneReport, RetentionPolicy};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::{InputPurpose, Outcome, Popup, edit_text};
use crate::app::{App, Effect, Refresh, moved, movement};
use crate::error::WriteError;

/// The policy the prune popup (`P`) previews first, until `e` edits it: keep the newest
/// 10 checkpoints of every workflow, delete finished workflows untouched for 30 days; pins
/// stay.
pub fn default_prune_policy() -> RetentionPolicy {
    RetentionPolicy {
        keep_last: Some(10),
        keep_younger_than: None,
        delete_finished_older_than: Some(Duration::from_secs(30 * 24 * 3600)),
    }
}

/// `P`: a preview first, always (it reads only, so read-only mode may see it too).
pub(in crate::app) fn preview(app: &mut App) {
    app.effects.push(Effect::Prune {
        policy: app.prune_policy,
        dry_run: true,
    });
}

/// The preview (`done` false): `y` prunes, `e` edits the policy, `n` or Esc cancels. The
/// report (`done` true): any key closes it. Movement keys scroll either when it is taller
/// than the terminal.
pub(in crate::app) fn on_key(
    app: &mut App,
    policy: RetentionPolicy,
    report: PruneReport,
    done: bool,
    scroll: &mut usize,
    key: &KeyEvent,
) -> Outcome {
    match key.code {
        KeyCode::Char('y') if !done => {
            if !app.may_write("prune") {
                return Outcome::Close;
            }
            app.notice = Some("pruning...".into());
            Outcome::Apply(Effect::Prune {
                policy,
                dry_run: false,
            })
        }
        KeyCode::Char('e') if !done => Outcome::Open(Popup::Input {
            purpose: InputPurpose::PrunePolicy {
                previewed: policy,
                report,
            },
            input: crate::commands::policy_text(&policy),
            error: None,
        }),
        KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') if !done => {
            app.notice = Some("prune cancelled; nothing changed".into());
            Outcome::Close
        }
        _ => {
            // Movement keys scroll a popup taller than the terminal; on the report, any
            // other key (any key when it fits) closes it.
            let body = crate::ui::prune::confirmation(&policy, &report, done, app.read_only).body;
            let last = crate::ui::confirm::last_scroll(&body, app.cols, app.rows);
            match movement(key) {
                Some(delta) if last > 0 => *scroll = moved(*scroll, delta, last + 1),
                _ if done => return Outcome::Close,
                _ => {}
            }
            Outcome::Stay
        }
    }
}

/// The policy's input (`e`): Enter previews the policy typed (the prune's `y` applies
/// only a policy it shows), or says why it does not parse; Esc goes back to the preview
/// of `previewed`; other keys edit the text.
pub(in crate::app) fn on_policy_key(
    previewed: RetentionPolicy,
    report: PruneReport,
    input: &mut String,
    error: &mut Option<String>,
    key: &KeyEvent,
) -> Outcome {
    match key.code {
        KeyCode::Enter => match crate::commands::parse_policy_text(input) {
            Ok(policy) => Outcome::Apply(Effect::Prune {
                policy,
                dry_run: true,
            }),
            Err(err) => {
                *error = Some(err);
                Outcome::Stay
            }
        },
        KeyCode::Esc => Outcome::Open(Popup::Prune {
            policy: previewed,
            report,
            done: false,
            scroll: 0,
        }),
        _ => {
            edit_text(input, key);
            Outcome::Stay
        }
    }
}

/// A prune or its preview finished ([`crate::app::Message::Pruned`]): the popup shows the
/// preview, or the report of what went.
pub(in crate::app) fn pruned(
    app: &mut App,
    policy: RetentionPolicy,
    dry_run: bool,
    result: Result<PruneReport, WriteError>,
) {
    match result {
        Ok(report) => {
            app.error = None;
            app.prune_policy = policy;
            if !report.dry_run {
                app.write_succeeded(format!(
                    "pruned {}, {}, {}",
                    crate::format::count(report.workflows, "workflow", "workflows"),
                    crate::format::count(report.checkpoints, "checkpoint", "checkpoints"),
                    crate::format::size(report.bytes)
                ));
                app.refresh(Refresh::AfterWrite);
            }
            app.popup = Some(Popup::Prune {
                policy,
                report,
                done: !report.dry_run,
                scroll: 0,
            });
        }
        // The preview only read.
        Err(err) if dry_run => app.show_error(format!("prune preview failed: {err}")),
        Err(err) => app.write_failed("prune", &err),
    }
}
