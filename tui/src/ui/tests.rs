//! Snapshots of every screen and popup, drawn on a `TestBackend` from fixed data.

use insta::assert_snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;

use crate::app::{App, DetailFocus, DetailView, Message, SnapshotView, update};
use crate::fixtures::{failed_workflow, loaded_app};
use crate::restore_plan::RestorePlan;

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(120, 32)).unwrap();
    terminal.draw(|frame| super::view(app, frame)).unwrap();
    terminal
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        update(
            app,
            Message::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        );
    }
}

fn detail_app() -> App {
    let mut app = loaded_app();
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    let (state, _) = failed_workflow();
    update(&mut app, Message::DetailLoaded(Ok(state)));
    app
}

fn checkpoints_app() -> App {
    let mut app = detail_app();
    press(&mut app, "c");
    let (state, checkpoints) = failed_workflow();
    update(
        &mut app,
        Message::CheckpointsLoaded {
            workflow_state_id: state.id,
            result: Ok(checkpoints),
        },
    );
    app
}

#[test]
fn workflows_screen() {
    let mut app = loaded_app();
    press(&mut app, "j");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn workflows_screen_colours_statuses() {
    let app = loaded_app();
    let terminal = draw(&app);
    let buffer = terminal.backend().buffer();
    // Row 2 is the first data row (border, header); the status column starts after the
    // border and the highlight symbol.
    let failed_row = (0..buffer.area.height)
        .find(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, *y)].symbol().to_owned())
                .collect::<String>()
                .contains("failed ")
        })
        .unwrap();
    let x = (0..buffer.area.width)
        .find(|x| buffer[(*x, failed_row)].symbol() == "f")
        .unwrap();
    assert_eq!(buffer[(x, failed_row)].fg, Color::Red);
}

#[test]
fn workflows_screen_with_filters_and_an_error() {
    let mut app = loaded_app();
    app.workflows.active_only = true;
    app.workflows.text_filter = "rag".into();
    app.workflows.rows.clear();
    app.error = Some("connection error: cannot connect to postgres://app:***@db/prod".into());
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn filter_popup() {
    let mut app = loaded_app();
    press(&mut app, "/rag");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn help_popup() {
    let mut app = loaded_app();
    press(&mut app, "?");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn detail_screen() {
    let mut app = detail_app();
    press(&mut app, "jj");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn detail_screen_scrolled_context() {
    let (state, _) = failed_workflow();
    let mut app = loaded_app();
    app.screens.push(crate::app::Screen::Detail);
    app.detail = Some(DetailView {
        state,
        step: 0,
        focus: DetailFocus::Context,
        context_scroll: 2,
        outputs_scroll: 0,
    });
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn checkpoints_screen() {
    let mut app = checkpoints_app();
    press(&mut app, " j");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn checkpoints_screen_without_checkpoints() {
    let mut app = detail_app();
    press(&mut app, "c");
    let id = app.checkpoints.as_ref().unwrap().workflow_state_id;
    update(
        &mut app,
        Message::CheckpointsLoaded {
            workflow_state_id: id,
            result: Ok(Vec::new()),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("no checkpoints: nothing to restore"),
        "{text}"
    );
}

#[test]
fn snapshot_screen() {
    let (_, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    app.screens.push(crate::app::Screen::Snapshot);
    app.snapshot = Some(SnapshotView {
        checkpoint: checkpoints[1].clone(),
        scroll: 0,
    });
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn diff_screen() {
    let (state, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    let changes = crate::diff::diff(
        &checkpoints[1].snapshot,
        &serde_json::to_value(&state).unwrap(),
    );
    update(
        &mut app,
        Message::DiffLoaded(Ok((
            "after retrieve (2026-11-25 09:00:03) -> current state".into(),
            changes,
        ))),
    );
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn restore_confirmation_popup() {
    let (state, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    let plan = RestorePlan::new(state, checkpoints[1].clone()).unwrap();
    update(&mut app, Message::RestorePlanned(Ok(Box::new(plan))));
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn after_a_restore() {
    let (_, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    update(
        &mut app,
        Message::Restored(Ok(checkpoints[1].state().unwrap())),
    );
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn read_only_status_bar() {
    let mut app = loaded_app();
    app.read_only = true;
    app.database = "postgres://ops:***@db.internal/prod".into();
    let terminal = draw(&app);
    let text = terminal.backend().to_string();
    assert!(text.contains("READ-ONLY"));
    assert!(text.contains("postgres://ops:***@db.internal/prod"));
}

#[test]
fn a_long_table_scrolls_to_keep_the_selection_visible() {
    let mut app = loaded_app();
    let base = app.workflows.rows[0].clone();
    app.workflows.rows = (0..500u128)
        .map(|n| {
            let mut row = base.clone();
            row.id = uuid::Uuid::from_u128(n + 1);
            row.workflow_id = format!("wf-{n:04}");
            row
        })
        .collect();
    app.workflows.selected = 321;
    let terminal = draw(&app);
    let text = terminal.backend().to_string();
    let selected = text
        .lines()
        .find(|line| line.contains("│> "))
        .expect("the selected row is drawn");
    assert!(selected.contains("wf-0321"), "{selected}");
    assert!(!text.contains("wf-0000"));
}
