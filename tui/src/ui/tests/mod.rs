//! Snapshots of every screen and popup, drawn on a `TestBackend` from fixed data.
//!
//! One file per screen or popup; the helpers here draw and drive an `App`.

use insta::assert_snapshot;
// `super::view` in the screens' files means the UI's, as it did when they were one.
use super::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;

use llm_orchestrator_state::{CheckpointUsage, PruneReport};

use crate::app::{
    App, DetailFocus, DetailView, Effect, LoadedDetail, Message, WorkflowHistory,
    default_prune_policy, update,
};
use crate::fixtures::{LONG, checkpoint_infos, failed_workflow, loaded_app, long_workflow};
use crate::rollback_plan::RollbackPlan;

mod checkpoints;
mod detail;
mod diff;
mod popups;
mod prune;
mod rollback;
mod snapshot;
mod status_bar;
mod workflows;

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(120, 32)).unwrap();
    terminal.draw(|frame| super::view(app, frame)).unwrap();
    terminal
}

/// The top line of the screen: the box title of the screen shown.
fn title(app: &App) -> String {
    draw(app)
        .backend()
        .to_string()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

fn enter() -> Message {
    Message::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        update(
            app,
            Message::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        );
    }
}

/// A workflow arriving as the runtime delivers it: read at version 1, printed.
fn loaded(state: llm_orchestrator_state::WorkflowState) -> Message {
    Message::DetailLoaded {
        workflow_state_id: state.id,
        result: Ok(LoadedDetail::print(state, Some(1))),
    }
}

/// The detail screen of `state`, opened from the list, with `history` (its summary
/// taken from the list row, as the store would read it).
fn detail_of(state: llm_orchestrator_state::WorkflowState, history: WorkflowHistory) -> App {
    let mut app = loaded_app();
    update(&mut app, enter());
    let id = state.id;
    update(&mut app, loaded(state));
    let summary = app.workflows.rows.iter().find(|row| row.id == id).cloned();
    update(
        &mut app,
        Message::HistoryLoaded {
            workflow_state_id: id,
            result: Ok(WorkflowHistory { summary, ..history }),
        },
    );
    app
}

fn detail_app() -> App {
    detail_of(
        failed_workflow().0,
        WorkflowHistory {
            usage: CheckpointUsage {
                count: 2,
                bytes: 2500,
                pinned: 1,
            },
            lineage: vec![
                "forked from rag-answer-0000 at checkpoint 00000000-0000-0000-0000-000000000099"
                    .into(),
                "fork retry-1 from checkpoint 00000000-0000-0000-0000-000000000100".into(),
            ],
            summary: None,
            read_at: None,
        },
    )
}

fn checkpoints_app() -> App {
    let mut app = detail_app();
    press(&mut app, "c");
    let (state, checkpoints) = failed_workflow();
    let infos = checkpoint_infos(&checkpoints);
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: state.id,
            result: Ok(infos),
        },
    );
    app
}

/// `app` drawn on a terminal of `width` by 24, as text.
fn draw_at(app: &App, width: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, 24)).unwrap();
    terminal.draw(|frame| super::view(app, frame)).unwrap();
    terminal.backend().to_string()
}

/// The checkpoints screen after `j Enter`: the oldest checkpoint's snapshot asked for.
fn opening_the_oldest_snapshot() -> App {
    let mut app = checkpoints_app();
    press(&mut app, "j");
    update(&mut app, enter());
    app
}

/// The snapshot screen of the oldest checkpoint, its snapshot arrived.
fn the_oldest_snapshot_loaded() -> App {
    let (_, checkpoints) = failed_workflow();
    let mut app = opening_the_oldest_snapshot();
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: checkpoints[1].id,
            result: Ok(crate::format::pretty_lines(&checkpoints[1].snapshot)),
        },
    );
    app
}

/// The checkpoints screen of the failed workflow, whose newest checkpoint holds the
/// orchestrator's own JSON (selected), not a workflow state.
fn checkpoints_app_with_own_json() -> (App, llm_orchestrator_state::Checkpoint) {
    let mut app = detail_app();
    press(&mut app, "c");
    let (state, mut checkpoints) = failed_workflow();
    let own = crate::fixtures::own_json_checkpoint(&state);
    checkpoints.insert(0, own.clone());
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: state.id,
            result: Ok(checkpoint_infos(&checkpoints)),
        },
    );
    (app, own)
}

fn key(code: KeyCode) -> Message {
    Message::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// The first `count` rows inside the box whose top border starts with `┌ {title}`,
/// without the borders and trailing spaces.
fn box_rows(terminal: &Terminal<TestBackend>, title: &str, count: usize) -> Vec<String> {
    let buffer = terminal.backend().buffer();
    let rows: Vec<Vec<&str>> = (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect()
        })
        .collect();
    let top = format!("┌ {title}");
    let top: Vec<String> = top.chars().map(String::from).collect();
    let (y, left) = rows
        .iter()
        .enumerate()
        .find_map(|(y, cells)| {
            let x = cells.windows(top.len()).position(|cells| cells == top)?;
            Some((y, x))
        })
        .unwrap_or_else(|| panic!("no box {title:?}"));
    let right = (left + 1..rows[y].len())
        .find(|&x| rows[y][x] == "┐")
        .expect("the box's top right corner");
    rows[y + 1..y + 1 + count]
        .iter()
        .map(|cells| cells[left + 1..right].concat().trim_end().to_owned())
        .collect()
}

fn draw_sized(app: &App, cols: u16, rows: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|frame| super::view(app, frame)).unwrap();
    terminal.backend().to_string()
}
