//! The rollback confirmation (`R` on a checkpoint or a snapshot): the plan of what a
//! rollback to the checkpoint changes, asked for first and shown when it arrives; only `y`
//! rolls back.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use uuid::Uuid;

use super::{Outcome, Popup};
use crate::app::detail::{DetailView, LoadedDetail};
use crate::app::{App, Awaited, Effect, Refresh, Screen, moved, movement};
use crate::error::WriteError;
use crate::rollback_plan::RollbackPlan;

impl App {
    pub(in crate::app) fn start_rollback(&mut self, checkpoint: Uuid) {
        if self.may_write("rollback") {
            self.awaited.rollback_plan = Some(checkpoint);
            self.effects.push(Effect::PlanRollback(checkpoint));
        }
    }
}

/// Only `y` confirms a destructive action: Enter, pressed out of habit (it opens and
/// submits everywhere else), does nothing here. Movement keys scroll a plan longer than
/// the popup.
pub(in crate::app) fn on_key(
    app: &mut App,
    plan: &RollbackPlan,
    scroll: &mut usize,
    key: &KeyEvent,
) -> Outcome {
    match key.code {
        // Nothing to roll back to in a checkpoint that holds no state of the workflow:
        // the popup says why until it is closed.
        KeyCode::Char('y') if plan.refused.is_some() => Outcome::Stay,
        KeyCode::Char('y') => {
            app.notice = Some("rolling back...".into());
            // Confirmed under the popup's warning that a replica holds the lease.
            let checkpoint = plan.checkpoint.id;
            Outcome::Apply(match plan.live_lease {
                Some(_) => Effect::RollbackOverridingLease(checkpoint),
                None => Effect::Rollback(checkpoint),
            })
        }
        KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
            app.notice = Some(match plan.refused {
                Some(_) => "nothing rolled back; nothing changed".into(),
                None => "rollback cancelled; nothing changed".into(),
            });
            Outcome::Close
        }
        _ => {
            if let Some(delta) = movement(key) {
                let body = crate::ui::confirm::rollback(plan).body;
                let last = crate::ui::confirm::last_scroll(&body, app.cols, app.rows);
                *scroll = moved(*scroll, delta, last + 1);
            }
            Outcome::Stay
        }
    }
}

/// A rollback plan arrived ([`crate::app::Message::RollbackPlanned`]): the confirmation
/// opens.
pub(in crate::app) fn planned(
    app: &mut App,
    checkpoint: Uuid,
    result: Result<Box<RollbackPlan>, String>,
) {
    // A confirmation only for the checkpoint last asked about, and not after the
    // user went back: `y` or Enter would roll back to a checkpoint not on screen.
    if app.awaited.rollback_plan != Some(checkpoint) {
        return;
    }
    app.awaited.rollback_plan = None;
    match result {
        Ok(plan) => app.popup = Some(Popup::ConfirmRollback { plan, scroll: 0 }),
        Err(err) => app.show_error(err),
    }
}

/// A rollback finished ([`crate::app::Message::RolledBack`]): the workflow as rolled back
/// shows on its detail screen.
pub(in crate::app) fn rolled_back(app: &mut App, result: Result<LoadedDetail, WriteError>) {
    match result {
        Ok(loaded) => {
            let state = &loaded.state;
            app.write_succeeded(format!(
                "rolled back {}: now {}, {}",
                state.workflow_id,
                state.status,
                crate::format::count(state.steps.len() as u64, "step", "steps")
            ));
            app.error = None;
            // The screens change under whatever was awaited: a diff or plan of the
            // state before the rollback is stale.
            app.awaited = Awaited::default();
            let history = DetailView::showing(&mut app.detail, state.id)
                .and_then(|detail| detail.history.take());
            app.set_detail(Some(DetailView::new(loaded, history)));
            // Show the result on the workflow's detail screen, the one below the
            // checkpoints if the user came that way.
            match app.screens.iter().position(|s| *s == Screen::Detail) {
                Some(index) => app.screens.truncate(index + 1),
                None => {
                    app.screens.retain(|s| *s == Screen::Workflows);
                    app.push(Screen::Detail);
                }
            }
            // Its version is not known yet: read it again in full.
            app.refresh(Refresh::Full);
        }
        Err(err) => app.write_failed("rollback", &err),
    }
}
