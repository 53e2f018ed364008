//! The one-line input popups: a checkpoint's pin label (`p`) and a fork's new workflow_id
//! (`F`). (The prune policy's input is the prune popup's: see [`super::prune`].)

use llm_orchestrator_state::{PruneReport, RetentionPolicy};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use uuid::Uuid;

use super::{Outcome, edit_text};
use crate::app::{App, Effect};

/// What the text of [`Popup::Input`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    /// The label to pin this checkpoint with.
    PinLabel(Uuid),
    /// The workflow_id of a new workflow forked from this checkpoint.
    ForkWorkflowId(Uuid),
    /// The retention policy to preview instead of `previewed`, whose preview (`report`)
    /// comes back, unchanged, on Esc.
    PrunePolicy {
        /// The policy of the preview being edited.
        previewed: RetentionPolicy,
        /// What it would delete.
        report: PruneReport,
    },
}

/// Enter pins or forks with the text typed (and says why nothing happens without text);
/// Esc cancels; other keys edit the text.
pub(in crate::app) fn on_key(
    app: &mut App,
    purpose: InputPurpose,
    input: &mut String,
    error: &mut Option<String>,
    key: &KeyEvent,
) -> Outcome {
    match key.code {
        KeyCode::Enter => {
            let text = input.trim().to_owned();
            if text.is_empty() {
                // Say why nothing happened; the popup stays for the text.
                app.notice = Some(
                    match purpose {
                        InputPurpose::PinLabel(_) => {
                            "a pin needs a label: type one, then Enter (Esc cancels)"
                        }
                        InputPurpose::ForkWorkflowId(_) => {
                            "a fork needs a new workflow_id: type one, then Enter (Esc cancels)"
                        }
                        // Handled by the prune popup's own handler; a plain word, never a
                        // panic.
                        InputPurpose::PrunePolicy { .. } => {
                            "type a policy, then Enter (Esc cancels)"
                        }
                    }
                    .into(),
                );
                *error = None;
                return Outcome::Stay;
            }
            match purpose {
                InputPurpose::PinLabel(checkpoint) => Outcome::Apply(Effect::SetPin {
                    checkpoint,
                    label: Some(text),
                }),
                InputPurpose::ForkWorkflowId(checkpoint) => Outcome::Apply(Effect::Fork {
                    checkpoint,
                    new_workflow_id: text,
                }),
                // Handled by the prune popup's own handler: nothing to run here.
                InputPurpose::PrunePolicy { .. } => Outcome::Close,
            }
        }
        KeyCode::Esc => {
            app.notice = Some("cancelled; nothing changed".into());
            Outcome::Close
        }
        _ => {
            edit_text(input, key);
            // "needs a label" is answered once there is text.
            if !input.trim().is_empty() {
                app.notice = None;
            }
            *error = None;
            Outcome::Stay
        }
    }
}
