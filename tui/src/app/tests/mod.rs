//! Tests of `update`, grouped by the screen or popup they are about; the helpers here
//! answer and press as the runtime and the user would.

use super::*;
use llm_orchestrator_state::admin::{
    PageCursor, WorkflowPage, WorkflowQuery, WorkflowSort, WorkflowSummary,
};
use llm_orchestrator_state::{
    CheckpointUsage, PruneReport, RetentionPolicy, WorkflowState, WorkflowStatus,
};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;
use uuid::Uuid;

use crate::commands::ordered_steps;
use crate::fixtures::{LONG, failed_workflow, loaded_app, long_workflow, summaries, t0};
use crate::format;
use crate::rollback_plan::RollbackPlan;
use llm_orchestrator_state::Checkpoint;
use llm_orchestrator_state::admin::SortValue;
use serde_json::json;

mod checkpoints;
mod detail;
mod diff;
mod keys;
mod prune;
mod refresh;
mod rollback;
mod snapshot;
mod workflows;

/// Answers a full read of the workflow as the runtime does: `state` stored at
/// `version`, printed.
fn deliver(app: &mut App, state: WorkflowState, version: i64) {
    let loaded = LoadedDetail::print(state, Some(version));
    update(app, arrived(loaded));
}

/// The answer to a full read of `loaded`'s workflow.
fn arrived(loaded: LoadedDetail) -> Message {
    Message::DetailLoaded {
        workflow_state_id: loaded.state.id,
        result: Ok(loaded),
    }
}

fn key(code: KeyCode) -> Message {
    Message::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        update(app, key(KeyCode::Char(c)));
    }
}

fn last_workflow_query(app: &App) -> (WorkflowQuery, bool) {
    app.effects
        .iter()
        .rev()
        .find_map(|effect| match effect {
            Effect::LoadWorkflows { query, append, .. } => Some((query.clone(), *append)),
            _ => None,
        })
        .expect("a workflow load was queued")
}

fn loaded(app: &App, rows: Vec<WorkflowSummary>) -> Message {
    Message::WorkflowsLoaded {
        request: app.workflows.request,
        append: false,
        result: Ok(WorkflowPage { rows, next: None }),
        at: t0(),
    }
}

fn with_checkpoints() -> App {
    let (state, checkpoints) = failed_workflow();
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Char('c')));
    let id = app.checkpoints.as_ref().unwrap().workflow_state_id;
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: id,
            result: Ok(crate::fixtures::checkpoint_infos(&checkpoints)),
        },
    );
    app.detail = Some(DetailView::new(LoadedDetail::print(state, Some(1)), None));
    app.effects.clear();
    app
}

fn snapshot_loaded(checkpoint: &Checkpoint) -> Message {
    Message::SnapshotLoaded {
        checkpoint: checkpoint.id,
        result: Ok(format::pretty_lines(&checkpoint.snapshot)),
    }
}

fn is_snapshot_load(effect: &Effect) -> bool {
    matches!(effect, Effect::LoadSnapshot(_))
}

/// Checks the scroll position `position` of a text of `lines` lines (more than a
/// u16 holds), starting at the top: PageDown goes down a page at a time all the way
/// to the last line and stops there, and g/G/End/PageUp/j/k work at the end.
fn assert_scrolls_to_the_last_line(app: &mut App, lines: usize, position: impl Fn(&App) -> usize) {
    assert!(lines > 70_000);
    assert_eq!(position(app), 0);
    let mut presses = 0;
    loop {
        let before = position(app);
        update(app, key(KeyCode::PageDown));
        let after = position(app);
        assert!(
            after >= before,
            "PageDown went back from {before} to {after}"
        );
        if after == before {
            break;
        }
        presses += 1;
    }
    assert_eq!(position(app), lines - 1, "PageDown stops on the last line");
    assert_eq!(presses, (lines - 1).div_ceil(20));
    press(app, "j");
    assert_eq!(position(app), lines - 1, "no further than the last line");
    press(app, "k");
    assert_eq!(position(app), lines - 2);
    press(app, "gG");
    assert_eq!(position(app), lines - 1, "G jumps to the last line");
    press(app, "g");
    assert_eq!(position(app), 0);
    update(app, key(KeyCode::End));
    assert_eq!(position(app), lines - 1, "End jumps to the last line");
    update(app, key(KeyCode::PageUp));
    assert_eq!(position(app), lines - 21);
    update(app, key(KeyCode::Home));
    assert_eq!(position(app), 0);
}

/// A workflow as the runtime delivers it, with lines that are not what printing its
/// JSON gives (`lines` for the context and for each step, named after the step): if
/// `update` printed anything, the test would see it.
fn placeholder(state: &WorkflowState, version: i64, lines: usize) -> LoadedDetail {
    LoadedDetail {
        state: state.clone(),
        version: Some(version),
        step_order: ordered_steps(state)
            .iter()
            .map(|step| step.step_id.clone())
            .collect(),
        context_lines: (0..lines).map(|n| format!("context {n}")).collect(),
        outputs_lines: ordered_steps(state)
            .iter()
            .map(|step| {
                (0..lines)
                    .map(|n| format!("outputs of {} {n}", step.step_id))
                    .collect()
            })
            .collect(),
        damaged: None,
    }
}

/// The app on the detail screen of [`failed_workflow`], stored at version 3, its
/// history arrived, with nothing queued.
fn on_the_detail() -> (App, WorkflowState) {
    let (state, _) = failed_workflow();
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    deliver(&mut app, state.clone(), 3);
    update(
        &mut app,
        history_loaded(state.id, Ok(WorkflowHistory::default())),
    );
    app.effects.clear();
    (app, state)
}

fn history_loaded(id: Uuid, result: Result<WorkflowHistory, String>) -> Message {
    Message::HistoryLoaded {
        workflow_state_id: id,
        result,
    }
}

fn refresh_ticks(app: &mut App) {
    for _ in 0..REFRESH_TICKS {
        update(app, Message::Tick);
    }
}

fn is_full_load(effect: &Effect) -> bool {
    matches!(effect, Effect::LoadDetail { .. })
}

fn is_list_load(effect: &Effect) -> bool {
    matches!(effect, Effect::LoadWorkflows { .. })
}
