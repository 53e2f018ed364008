//! The popups: windows over the current screen. Each module owns one popup's keys: its
//! handler changes the popup's state and says, as an [`Outcome`], whether the popup stays,
//! closes, closes with an [`Effect`] for the event loop, or gives way to another popup.

use llm_orchestrator_state::{PruneReport, RetentionPolicy};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use uuid::Uuid;

use super::{App, Effect};
use crate::rollback_plan::RollbackPlan;

pub(super) mod filter;
pub(super) mod help;
pub(super) mod input;
pub(super) mod prune;
pub(super) mod rollback;
pub(super) mod unpin;

pub use input::InputPurpose;
pub use prune::default_prune_policy;

/// A window over the current screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    /// Every key, scrolled down by `scroll` lines (j/k; any other key closes it): a
    /// terminal of fewer than 32 rows cannot show them all.
    Help {
        /// The first line shown.
        scroll: usize,
    },
    /// Typing a text filter for the workflows table.
    Filter {
        /// The text typed so far.
        input: String,
    },
    /// What a rollback changes, scrolled down by `scroll` rows (j/k, PgUp/PgDn, g/G: a
    /// plan can be longer than the popup); `y` confirms.
    ConfirmRollback {
        /// The plan.
        plan: Box<RollbackPlan>,
        /// The first row of the plan shown.
        scroll: usize,
    },
    /// A line of text: a checkpoint's pin label or fork's workflow_id, or the prune
    /// popup's policy.
    Input {
        /// What the text is for.
        purpose: InputPurpose,
        /// The text typed so far.
        input: String,
        /// Why the last Enter changed nothing (a policy that does not parse), in words.
        error: Option<String>,
    },
    /// Unpinning a checkpoint, which loses its label; `y` confirms.
    ConfirmUnpin {
        /// The pinned checkpoint.
        checkpoint: Uuid,
        /// Its pin's label ("approved by human").
        label: String,
    },
    /// A prune's preview (`done` false: `y` applies it) or its report (`done` true).
    Prune {
        /// The policy.
        policy: RetentionPolicy,
        /// What it deletes, or deleted.
        report: PruneReport,
        /// The prune ran.
        done: bool,
        /// The first row shown (j/k on a terminal too small for all of it).
        scroll: usize,
    },
}

/// What a key pressed in a popup did to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The popup stays open, with whatever the key changed in it.
    Stay,
    /// The popup closes; nothing runs.
    Close,
    /// The popup closes and the event loop performs this effect.
    Apply(Effect),
    /// The popup gives way to this one (the prune preview and its policy's input).
    Open(Popup),
}

/// A key pressed while `popup` (taken off the screen) is open: its own module handles it,
/// and the [`Outcome`] puts it back, closes it, queues its effect or opens the next one.
pub(super) fn on_key(app: &mut App, mut popup: Popup, key: KeyEvent) {
    let outcome = match &mut popup {
        Popup::Help { scroll } => help::on_key(app, scroll, &key),
        Popup::Filter { input } => filter::on_key(app, input, &key),
        Popup::ConfirmRollback { plan, scroll } => rollback::on_key(app, plan, scroll, &key),
        Popup::ConfirmUnpin { checkpoint, .. } => unpin::on_key(app, *checkpoint, &key),
        Popup::Input {
            purpose: InputPurpose::PrunePolicy { previewed, report },
            input,
            error,
        } => prune::on_policy_key(*previewed, *report, input, error, &key),
        Popup::Input {
            purpose,
            input,
            error,
        } => input::on_key(app, *purpose, input, error, &key),
        Popup::Prune {
            policy,
            report,
            done,
            scroll,
        } => prune::on_key(app, *policy, *report, *done, scroll, &key),
    };
    match outcome {
        Outcome::Stay => app.popup = Some(popup),
        Outcome::Close => {}
        Outcome::Apply(effect) => app.effects.push(effect),
        Outcome::Open(next) => app.popup = Some(next),
    }
}

/// Edits the text of a one-line input as a shell line does: characters are typed,
/// Backspace deletes one, Ctrl-W the word before the cursor, Ctrl-U all of it. Other
/// keys with Ctrl or Alt are ignored rather than typed as their letter, except Ctrl and
/// Alt together, which is how AltGr characters (`@` on many keyboards) arrive.
pub(super) fn edit_text(input: &mut String, key: &KeyEvent) {
    let altgr = key
        .modifiers
        .contains(KeyModifiers::CONTROL | KeyModifiers::ALT);
    let control = key.modifiers.contains(KeyModifiers::CONTROL) && !altgr;
    let alt = key.modifiers.contains(KeyModifiers::ALT) && !altgr;
    match key.code {
        KeyCode::Backspace => {
            input.pop();
        }
        KeyCode::Char('u') if control => input.clear(),
        KeyCode::Char('w') if control => {
            let kept = input.trim_end().rfind(' ').map_or(0, |space| space + 1);
            input.truncate(kept);
        }
        KeyCode::Char(c) if !control && !alt => {
            input.push(c);
        }
        _ => {}
    }
}
