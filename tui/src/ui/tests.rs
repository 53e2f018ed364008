//! Snapshots of every screen and popup, drawn on a `TestBackend` from fixed data.

use insta::assert_snapshot;
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
fn large_step_and_checkpoint_counts_are_shown_whole() {
    let mut app = loaded_app();
    let row = &mut app.workflows.rows[0];
    (row.steps_done, row.steps_total, row.checkpoint_count) = (29_999, 30_000, 123_456);
    let text = draw(&app).backend().to_string();
    let line = text.lines().find(|line| line.contains("wf-0001")).unwrap();
    assert!(line.contains(" 29999/30000 123456 "), "{line}");
}

#[test]
fn the_workflows_table_shows_who_holds_each_lease_and_which_expired() {
    // A replica that stopped renewing its lease (crashed) leaves its workflow stuck until
    // another recovers it: that is the one an operator looks for.
    let mut app = loaded_app();
    let read_at = app.last_refresh.unwrap();
    let lease = |app: &mut App, row: usize, owner: &str, expires_in: i64| {
        let row = &mut app.workflows.rows[row];
        row.lease_owner = Some(owner.to_owned());
        row.lease_expires_at = Some(read_at + chrono::Duration::seconds(expires_in));
    };
    lease(&mut app, 1, "replica-1", 30);
    lease(&mut app, 2, "replica-2", -180);
    lease(&mut app, 3, "replica-3", -180);
    lease(&mut app, 0, "worker-7f3a9c-prod-eu-west-1b", -60);
    let terminal = draw(&app);
    let text = terminal.backend().to_string();
    let row = |workflow_id: &str| {
        let line = text
            .lines()
            .find(|line| line.contains(workflow_id))
            .unwrap();
        line.trim_end_matches(['"', '│']).trim_end().to_owned()
    };
    assert!(row("wf-0002").ends_with(" replica-1"), "{text}");
    assert!(row("wf-0003").ends_with(" replica-2 expired"), "{text}");
    // Finished: whoever held it no longer matters.
    assert!(row("wf-0004").ends_with(" -"), "{text}");
    // A long owner is cut, and the name keeps its room.
    assert!(row("wf-0001").ends_with(" worker-7f3a… expired"), "{text}");
    assert!(
        row("wf-0001").contains(" Sample pending workflow "),
        "{text}"
    );
    let buffer = terminal.backend().buffer();
    let (x, y) = (0..buffer.area.height)
        .find_map(|y| {
            let line: String = (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect();
            let x = line.find("replica-2")?;
            Some((line[..x].chars().count() as u16, y))
        })
        .unwrap();
    assert_eq!(buffer[(x, y)].fg, Color::Red);
}

/// `app` drawn on a terminal of `width` by 24, as text.
fn draw_at(app: &App, width: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, 24)).unwrap();
    terminal.draw(|frame| super::view(app, frame)).unwrap();
    terminal.backend().to_string()
}

#[test]
fn an_80_column_terminal_keeps_the_id_the_lease_the_stuck_count_and_the_help_key() {
    let mut app = loaded_app();
    let read_at = app.last_refresh.unwrap();
    app.workflows.rows[0].workflow_id = "ticket-triage-0020".to_owned();
    app.workflows.rows[0].lease_owner = Some("worker-2".to_owned());
    app.workflows.rows[0].lease_expires_at = Some(read_at - chrono::Duration::minutes(1));
    let mut counts = crate::fixtures::counts();
    counts.lease_expired = 1;
    update(&mut app, Message::CountsLoaded(Ok(counts)));
    let text = draw_at(&app, 80);
    let lines: Vec<&str> = text.lines().collect();
    // STARTED, USER and CKPTS give way; the rest is whole.
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "\"│",
            "STATUS",
            "WORKFLOW_ID",
            "NAME",
            "UPDATED",
            "▼",
            "STEPS",
            "LEASE",
            "│\""
        ],
        "{text}"
    );
    assert!(lines[2].contains(" ticket-triage-0020 "), "{text}");
    assert!(lines[2].contains(" worker-2 expired"), "{text}");
    assert!(
        lines[22].starts_with("\" 1 stuck (x)  sqlite://workflows.db  5 workflows:"),
        "{text}"
    );
    assert!(
        lines[23]
            .trim_end_matches('"')
            .trim_end()
            .ends_with("  ... ? help"),
        "{text}"
    );
    // Wide enough: every column, and every key.
    let text = draw_at(&app, 160);
    let lines: Vec<&str> = text.lines().collect();
    for column in ["USER", "STARTED", "CKPTS"] {
        assert!(lines[1].contains(column), "{text}");
    }
    assert!(lines[23].contains("? help  q quit"), "{text}");
}

#[test]
fn the_detail_header_keeps_its_lineage_in_80_columns_and_dates_only_other_days() {
    let mut app = detail_app();
    let text = draw_at(&app, 80);
    assert!(
        text.contains(
            "│times       started 2026-11-25 09:00:00  updated 09:00:50  completed 09:00:50"
        ),
        "{text}"
    );
    assert!(
        text.contains("│lineage     forked from rag-answer-0000"),
        "{text}"
    );
    // Narrower still, the times wrap and the box grows instead of losing its last lines.
    let text = draw_at(&app, 60);
    assert!(
        text.contains("│lineage     forked from rag-answer-0000"),
        "{text}"
    );
    // A step that ran on a later day (a workflow resumed the next morning) shows its date.
    let detail = app.detail.as_mut().unwrap();
    let step = detail.state.steps.get_mut("tool_call").unwrap();
    step.completed_at = Some(step.completed_at.unwrap() + chrono::Duration::days(1));
    let text = draw_at(&app, 120);
    let row = text
        .lines()
        .find(|line| line.contains("  tool_call "))
        .unwrap();
    assert!(
        row.contains(" 09:00:20            2026-11-26 09:00:50 "),
        "{row}"
    );
}

#[test]
fn the_checkpoint_ids_give_way_to_the_pin_labels_in_80_columns() {
    let app = checkpoints_app();
    let text = draw_at(&app, 80);
    assert!(text.contains(" approved by human"), "{text}");
    assert!(!text.contains(" ID "), "{text}");
    let text = draw_at(&app, 120);
    assert!(text.contains(" ID "), "{text}");
    assert!(text.contains(" approved by human"), "{text}");
}

#[test]
fn the_status_bar_counts_the_stuck_workflows() {
    let mut app = loaded_app();
    let status_line = |app: &App| {
        let text = draw(app).backend().to_string();
        text.lines().rev().nth(1).unwrap().to_owned()
    };
    assert!(
        !status_line(&app).contains("stuck"),
        "{}",
        status_line(&app)
    );
    let mut counts = crate::fixtures::counts();
    counts.lease_expired = 2;
    update(&mut app, Message::CountsLoaded(Ok(counts)));
    assert!(
        status_line(&app).starts_with("\" 2 stuck (x)  sqlite://workflows.db  5 workflows:"),
        "{}",
        status_line(&app)
    );
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
fn an_empty_table_says_which_two_filters_exclude_each_other() {
    // The line where the first row would be.
    let bottom = |app: &App| {
        let text = draw(app).backend().to_string();
        let line = text.lines().nth(2).unwrap();
        line.trim_matches(|c| c == '"' || c == '│')
            .trim()
            .to_owned()
    };
    let mut app = loaded_app();
    app.workflows.rows.clear();
    assert_eq!(bottom(&app), "no workflows in this database");
    // A finished status and the stuck filter: a finished workflow holds no lease.
    app.workflows.status_filter = Some(llm_orchestrator_state::WorkflowStatus::Completed);
    press(&mut app, "x");
    app.workflows.rows.clear();
    app.workflows.loading = false;
    assert_eq!(
        bottom(&app),
        "none: completed workflows hold no lease (x: all leases)"
    );
    press(&mut app, "xa");
    app.workflows.loading = false;
    assert_eq!(
        bottom(&app),
        "none: completed is not active (a: all statuses)"
    );
    // A status that can be stuck: nothing to explain.
    app.workflows.status_filter = Some(llm_orchestrator_state::WorkflowStatus::Running);
    assert_eq!(
        bottom(&app),
        "no workflows match these filters (Esc clears them)"
    );
}

#[test]
fn a_text_filter_that_matches_nothing_says_so_under_a_header_in_its_place() {
    // `/` then `%` (LIKE's wildcard, matched literally): no row. The table was blank, and
    // its header shifted two columns left (no selection, no room kept for "> ").
    let mut app = loaded_app();
    let full = draw(&app).backend().to_string();
    let header = |text: &str| text.lines().nth(1).unwrap().to_owned();
    press(&mut app, "/%");
    update(&mut app, key(KeyCode::Enter));
    app.workflows.rows.clear();
    app.workflows.loading = false;
    let text = draw(&app).backend().to_string();
    assert!(
        header(&text).starts_with("\"│  STATUS    WORKFLOW_ID"),
        "{text}"
    );
    assert_eq!(header(&text), header(&full), "{text}");
    let line = text.lines().nth(2).unwrap();
    assert!(
        line.starts_with("\"│  no workflows match the filter \"%\" (Esc clears it)    "),
        "{text}"
    );
}

#[test]
fn the_workflows_title_says_active_first_whenever_the_rows_are_in_that_order() {
    let says = |app: &App, text: &str| {
        let shown = title(app);
        assert!(shown.contains(text), "{shown}");
    };
    // All statuses: running and paused rows come before the finished ones.
    let mut app = loaded_app();
    says(&app, " sort: active first, updated desc ");
    press(&mut app, "so");
    says(&app, " sort: active first, started asc ");
    // One kind of rows only: the order is the sort column's alone.
    press(&mut app, "a");
    says(&app, "(active) sort: started asc ");
    press(&mut app, "af");
    says(&app, "(all, pending) sort: started asc ");
    // Expired leases are of active workflows only.
    press(&mut app, "fffffx");
    says(&app, "(active, lease expired) sort: started asc ");
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
fn the_help_scrolls_in_an_80_by_24_terminal() {
    let draw_small = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| super::view(app, frame)).unwrap();
        terminal.backend().to_string()
    };
    let mut app = loaded_app();
    app.read_only = true;
    update(&mut app, Message::Resize { rows: 24, cols: 80 });
    press(&mut app, "?");
    let text = draw_small(&app);
    assert!(
        text.contains(" Keys (j/k scroll, any other key closes) "),
        "{text}"
    );
    assert!(text.contains("read-only mode"), "{text}");
    assert!(text.contains(" 9 more below (j) "), "{text}");
    assert!(!text.contains("diff with current / rollback"), "{text}");
    // The last key is reachable, on the popup's last row, and what is above is counted.
    // Every line is whole: the popup takes the whole width of a narrow terminal.
    press(&mut app, "G");
    let text = draw_small(&app);
    assert!(
        text.contains("fork: a new workflow from this checkpoint "),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[20].contains("diff with current / rollback"), "{text}");
    assert!(lines[21].contains(" 9 more above (k) "), "{text}");
    press(&mut app, "k");
    let text = draw_small(&app);
    assert!(text.contains(" 8 above (k), 1 below (j) "), "{text}");
    // Any other key closes it.
    press(&mut app, "q");
    assert!(app.popup.is_none());
}

#[test]
fn detail_screen() {
    let mut app = detail_app();
    press(&mut app, "jj");
    assert_snapshot!(draw(&app).backend());
}

/// The detail of [`failed_workflow`] with `error` as its failed step's (tool_call's) error.
fn detail_with_step_error(error: &str) -> App {
    let (mut state, _) = failed_workflow();
    state.steps.get_mut("tool_call").unwrap().error = Some(error.to_owned());
    detail_of(state, WorkflowHistory::default())
}

#[test]
fn the_selected_step_s_error_is_shown_in_full_above_its_outputs() {
    let error = "context length exceeded (131072 tokens) on chunk 23 of s3://reports/q3-earnings.pdf; \
                 retried 2 times with a smaller window, giving up";
    let mut app = detail_with_step_error(error);
    // Steps without an error show their outputs as before.
    let text = draw(&app).backend().to_string();
    assert!(!text.contains("Error of"), "{text}");
    assert_eq!(box_rows(&draw(&app), "Outputs of retrieve", 1), ["{"]);

    // The failed step: its error, cut at the screen edge in the table, reads in full.
    press(&mut app, "jj");
    let terminal = draw(&app);
    let rows = box_rows(&terminal, "Error of tool_call", 3);
    assert_eq!(
        rows,
        [
            "context length exceeded (131072 tokens) on chunk 23 of",
            "s3://reports/q3-earnings.pdf; retried 2 times with a",
            "smaller window, giving up",
        ]
    );
    assert_eq!(rows.join(" "), error);
    // Its outputs follow, below the error's box.
    assert_eq!(box_rows(&terminal, "Outputs of tool_call", 1), ["null"]);
    let text = terminal.backend().to_string();
    assert!(!text.contains("more lines"), "{text}");
}

#[test]
fn a_long_workflow_error_leaves_room_for_the_checkpoints_and_lineage() {
    let (mut state, _) = failed_workflow();
    state.error = Some("the provider returned 529 overloaded; backing off; ".repeat(30));
    let mut app = loaded_app();
    update(&mut app, enter());
    update(&mut app, loaded(state));
    let text = draw(&app).backend().to_string();
    let fields: Vec<&str> = text
        .lines()
        .map(|line| line.trim_matches('"'))
        .take_while(|line| !line.starts_with('└'))
        .collect();
    let named = |name: &str| {
        fields
            .iter()
            .filter(|line| line.starts_with(&format!("│{name} ")))
            .count()
    };
    assert_eq!((named("checkpoints"), named("lineage")), (1, 1), "{text}");
    // Four lines of error, the last saying how much is left out, under its name.
    let error: Vec<&str> = fields
        .iter()
        .skip_while(|line| !line.starts_with("│error "))
        .take(4)
        .copied()
        .collect();
    assert!(error[0].contains("the provider returned 529"), "{text}");
    assert!(error[1].starts_with("│            "), "{text}");
    assert!(
        error[3].contains("more lines (wfadmin show prints it whole)"),
        "{text}"
    );
}

#[test]
fn the_detail_says_whose_lease_expired_and_what_that_means() {
    let (mut state, _) = failed_workflow();
    state.status = llm_orchestrator_state::WorkflowStatus::Running;
    state.error = None;
    let mut app = loaded_app();
    let read_at = app.last_refresh.unwrap();
    let mut row = app.workflows.rows[0].clone();
    assert_eq!(row.id, state.id);
    row.status = state.status;
    row.lease_owner = Some("worker-2".to_owned());
    row.lease_expires_at = Some(read_at - chrono::Duration::minutes(3));
    update(&mut app, enter());
    // The lease is read with the workflow's history, not taken from the list, which a
    // filter (or a search) may have emptied by now.
    app.workflows.rows.clear();
    let id = state.id;
    update(&mut app, loaded(state));
    // Read with the list (no time of its own), or at `read_at`.
    let history =
        |row: &llm_orchestrator_state::admin::WorkflowSummary, read_at| Message::HistoryLoaded {
            workflow_state_id: id,
            result: Ok(WorkflowHistory {
                summary: Some(row.clone()),
                read_at,
                ..Default::default()
            }),
        };
    let text = draw(&app).backend().to_string();
    assert!(text.contains("│lease       loading... "), "{text}");
    update(&mut app, history(&row, None));
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("│lease       worker-2, expired 3m ago: stuck until recover_workflows"),
        "{text}"
    );
    // Renewed, as the next refresh reads it: whose it is and until when.
    row.lease_expires_at = Some(read_at + chrono::Duration::minutes(1));
    update(&mut app, history(&row, None));
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("│lease       worker-2, until 2026-11-25 10:01:00 "),
        "{text}"
    );
    // Judged as of when the history was read, not the list (which may be older).
    update(
        &mut app,
        history(&row, Some(read_at + chrono::Duration::minutes(2))),
    );
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("│lease       worker-2, expired 1m ago: stuck"),
        "{text}"
    );
}

#[test]
fn a_workflow_with_many_steps_shows_the_steps_around_the_selected_one() {
    // Only the rows in view are built (a workflow may have 30,000 steps); they must be
    // the ones the table would have scrolled to.
    let (mut state, _) = failed_workflow();
    state.steps.clear();
    for n in 0..200 {
        state.upsert_step(llm_orchestrator_state::StepState::new(format!("s{n:03}")));
    }
    let mut app = loaded_app();
    update(&mut app, enter());
    update(&mut app, loaded(state));
    let shown = |app: &App| -> Vec<String> {
        box_rows(&draw(app), "Steps (200)", 11)[1..]
            .iter()
            .map(|row| row.chars().take(6).collect())
            .collect()
    };
    let names = |from: usize, selected: usize| -> Vec<String> {
        (from..from + 10)
            .map(|n| {
                let mark = if n == selected { "> " } else { "  " };
                format!("{mark}s{n:03}")
            })
            .collect()
    };
    assert_eq!(shown(&app), names(0, 0));
    press(&mut app, &"j".repeat(150));
    assert_eq!(shown(&app), names(141, 150));
    assert_eq!(box_rows(&draw(&app), "Outputs of s150", 1), ["null"]);
    press(&mut app, "kkkkk");
    assert_eq!(shown(&app), names(136, 145));
    press(&mut app, "G");
    assert_eq!(shown(&app), names(190, 199));
}

#[test]
fn a_step_error_too_long_for_the_pane_says_how_much_is_left_out() {
    let error: Vec<String> = (1..=20).map(|n| format!("traceback line {n}")).collect();
    let mut app = detail_with_step_error(&error.join("\n"));
    press(&mut app, "G");
    let terminal = draw(&app);
    // 13 rows below the steps: 8 lines of error, and the outputs keep one.
    assert_eq!(box_rows(&terminal, "Error of tool_call", 8), error[..8]);
    assert_eq!(box_rows(&terminal, "Outputs of tool_call", 1), ["null"]);
    let text = terminal.backend().to_string();
    assert!(
        text.contains("└ 12 more lines (wfadmin show prints them all) ─"),
        "{text}"
    );
}

#[test]
fn a_workflow_left_before_it_arrived_is_not_drawn_on_the_one_opened_next() {
    let (first, _) = failed_workflow();
    let mut app = loaded_app();
    update(&mut app, enter());
    press(&mut app, "qj");
    update(&mut app, enter());
    update(&mut app, loaded(first));
    let text = draw(&app).backend().to_string();
    assert!(text.contains("loading..."), "{text}");
    assert!(!text.contains("rag-answer-0001"), "{text}");
}

#[test]
fn detail_screen_scrolled_context() {
    let (state, _) = failed_workflow();
    let mut app = loaded_app();
    app.screens.push(crate::app::Screen::Detail);
    let mut detail = DetailView::new(LoadedDetail::print(state, Some(1)), None);
    detail.focus = DetailFocus::Context;
    detail.context_scroll = 2;
    app.detail = Some(detail);
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn detail_screen_of_a_workflow_whose_row_is_unreadable() {
    // The runtime's answer for a workflow whose context does not read back: its list row
    // and why, shown as damaged instead of an error in place of the screen.
    let (state, _) = failed_workflow();
    let mut app = loaded_app();
    update(&mut app, enter());
    let row = app
        .workflows
        .rows
        .iter()
        .find(|row| row.id == state.id)
        .cloned()
        .unwrap();
    let why = "serialization error: Json(\"recursion limit exceeded at line 1 column 129\")";
    update(
        &mut app,
        Message::DetailLoaded {
            workflow_state_id: row.id,
            result: Ok(LoadedDetail::damaged(&row, Some(3), why.to_owned())),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(text.contains("DAMAGED"), "{text}");
    assert!(text.contains("recursion limit exceeded"), "{text}");
    assert_eq!(app.error, None);
    assert_snapshot!(draw(&app).backend());
    // Its checkpoints, to roll it back to, are one key away.
    press(&mut app, "c");
    assert_eq!(
        app.checkpoints.as_ref().map(|view| view.workflow_state_id),
        Some(row.id)
    );
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
        Message::CheckpointInfosLoaded {
            workflow_state_id: id,
            result: Ok(checkpoint_infos(&[])),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("no checkpoints: nothing to roll back to"),
        "{text}"
    );
}

#[test]
fn a_checkpoint_list_cut_at_the_limit_says_how_many_there_are() {
    let mut app = detail_app();
    press(&mut app, "c");
    let (state, checkpoints) = failed_workflow();
    let (infos, mut usage) = checkpoint_infos(&checkpoints);
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: state.id,
            result: Ok((infos.clone(), usage)),
        },
    );
    assert!(title(&app).contains("(newest first)"), "{}", title(&app));
    usage.count = 1_500;
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: state.id,
            result: Ok((infos, usage)),
        },
    );
    assert!(
        title(&app).contains("(newest 2 of 1500)"),
        "{}",
        title(&app)
    );
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

#[test]
fn snapshot_screen() {
    let app = the_oldest_snapshot_loaded();
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn snapshot_screen_while_it_loads() {
    assert_snapshot!(draw(&opening_the_oldest_snapshot()).backend());
}

#[test]
fn snapshot_screen_scrolled_draws_the_lines_in_view() {
    let mut app = the_oldest_snapshot_loaded();
    press(&mut app, "jj");
    let text = draw(&app).backend().to_string();
    let first = text.lines().nth(1).unwrap_or_default();
    assert!(first.starts_with(r#""│  "context": {"#), "{text}");
    assert!(
        text.contains(r#""updated_at": "2026-11-25T09:00:03Z""#),
        "{text}"
    );
}

#[test]
fn a_snapshot_that_is_gone_shows_the_error_over_the_list() {
    let (_, checkpoints) = failed_workflow();
    let id = checkpoints[1].id;
    let mut app = opening_the_oldest_snapshot();
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: id,
            result: Err(format!("not found: checkpoint {id}")),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(text.contains("Checkpoints of rag-answer-0001"), "{text}");
    assert!(
        text.contains(&format!(
            "error: cannot open the snapshot: not found: checkpoint {id}"
        )),
        "{text}"
    );
}

#[test]
fn diff_screen() {
    let (state, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    let changes = crate::diff::diff(
        &checkpoints[1].snapshot,
        &serde_json::to_value(&state).unwrap(),
    );
    press(&mut app, "jd");
    update(
        &mut app,
        Message::DiffLoaded {
            from: checkpoints[1].id,
            to: None,
            result: Ok((
                "after retrieve (2026-11-25 09:00:03) -> current state".into(),
                changes,
            )),
        },
    );
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn rollback_confirmation_popup() {
    let (state, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    let plan = RollbackPlan::new(state, checkpoints[1].clone()).unwrap();
    press(&mut app, "jR");
    update(
        &mut app,
        Message::RollbackPlanned {
            checkpoint: checkpoints[1].id,
            result: Ok(Box::new(plan)),
        },
    );
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn rollback_confirmation_popup_warns_in_red_that_a_replica_runs_the_workflow() {
    // worker-1 still renews its lease: it runs the workflow, and the store refuses a
    // plain rollback. The operator must see that before pressing y, which rolls back and
    // ends the lease.
    let (state, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    let lease = crate::rollback_plan::LiveLease {
        owner: "worker-1".into(),
        until: Some(crate::fixtures::t0() + chrono::Duration::seconds(42)),
    };
    let plan = RollbackPlan::new(state, checkpoints[1].clone())
        .unwrap()
        .with_live_lease(Some(lease));
    press(&mut app, "jR");
    update(
        &mut app,
        Message::RollbackPlanned {
            checkpoint: checkpoints[1].id,
            result: Ok(Box::new(plan)),
        },
    );
    let terminal = draw(&app);
    let buffer = terminal.backend().buffer();
    let (x, y) = (0..buffer.area.height)
        .find_map(|y| {
            let line: String = (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect();
            let x = line.find("WARNING: worker-1 holds this workflow's lease until")?;
            Some((line[..x].chars().count() as u16, y))
        })
        .expect("the warning is shown");
    assert_eq!(buffer[(x, y)].fg, Color::Red);
    // First in the box, above what changes.
    let text = terminal.backend().to_string();
    let row_of = |needle: &str| text.lines().position(|line| line.contains(needle));
    assert_eq!(row_of("WARNING: worker-1"), Some(usize::from(y)), "{text}");
    assert!(
        row_of("Roll back workflow") > Some(usize::from(y)),
        "{text}"
    );
    assert_snapshot!(terminal.backend());

    app.effects.clear();
    press(&mut app, "y");
    assert_eq!(
        app.effects,
        vec![Effect::RollbackOverridingLease(checkpoints[1].id)]
    );
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

#[test]
fn snapshot_screen_of_the_orchestrators_own_json() {
    let (mut app, own) = checkpoints_app_with_own_json();
    update(&mut app, enter());
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: own.id,
            result: Ok(crate::format::pretty_lines(&own.snapshot)),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(text.contains(r#""checkpoint": 3,"#), "{text}");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn a_checkpoint_that_holds_no_state_says_why_it_cannot_be_rolled_back_to() {
    let (state, _) = failed_workflow();
    let (mut app, own) = checkpoints_app_with_own_json();
    press(&mut app, "R");
    assert_eq!(app.effects.last(), Some(&Effect::PlanRollback(own.id)));
    let plan = RollbackPlan::new(state, own.clone()).unwrap();
    assert!(plan.refused.is_some(), "{plan:?}");
    update(
        &mut app,
        Message::RollbackPlanned {
            checkpoint: own.id,
            result: Ok(Box::new(plan)),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("This checkpoint cannot be rolled back to"),
        "{text}"
    );
    assert!(text.contains("holds no state of workflow state"), "{text}");
    assert_snapshot!(draw(&app).backend());

    // `y` rolls back nothing, and the popup stays until closed.
    app.effects.clear();
    press(&mut app, "y");
    assert!(app.effects.is_empty(), "{:?}", app.effects);
    assert!(app.popup.is_some());
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
    );
    assert_eq!(app.popup, None);
    assert!(app.effects.is_empty(), "{:?}", app.effects);
    assert_eq!(
        app.notice.as_deref(),
        Some("nothing rolled back; nothing changed")
    );
}

#[test]
fn after_a_rollback() {
    let (_, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    update(
        &mut app,
        Message::RolledBack(Ok(LoadedDetail::print(
            checkpoints[1].state().unwrap(),
            None,
        ))),
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

#[test]
fn pin_label_popup() {
    let mut app = checkpoints_app();
    press(&mut app, "papproved");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn an_empty_pin_label_says_why_nothing_happened() {
    let mut app = checkpoints_app();
    press(&mut app, "p");
    update(&mut app, key(KeyCode::Enter));
    let text = draw(&app).backend().to_string();
    assert!(text.contains("Pin checkpoint"), "the popup stays: {text}");
    assert!(
        text.contains("a pin needs a label: type one, then Enter (Esc cancels)"),
        "{text}"
    );
}

#[test]
fn unpin_confirmation_popup() {
    // The label that unpinning loses is on screen before anything changes.
    let mut app = checkpoints_app();
    press(&mut app, "jp");
    let terminal = draw(&app);
    let text = terminal.backend().to_string();
    assert!(text.contains("Unpin this checkpoint?"), "{text}");
    assert!(text.contains("pinned as: approved by human"), "{text}");
    assert!(text.contains("y: unpin    n / Esc: keep the pin"), "{text}");
    assert_snapshot!(terminal.backend());
}

#[test]
fn fork_popup() {
    let mut app = checkpoints_app();
    press(&mut app, "jFretry-1");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn after_a_pin_the_status_bar_says_what_happened() {
    let mut app = checkpoints_app();
    update(
        &mut app,
        Message::PinSet {
            checkpoint: uuid::Uuid::from_u128(0x101),
            label: Some("before tool call".into()),
            result: Ok(()),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("pinned checkpoint 00000000-0000-0000-0000-000000000101: before tool call"),
        "{text}"
    );
}

fn prune_app(dry_run: bool) -> App {
    let mut app = loaded_app();
    update(
        &mut app,
        Message::Pruned {
            policy: default_prune_policy(),
            dry_run,
            result: Ok(PruneReport {
                dry_run,
                workflows: 3,
                checkpoints: 41,
                bytes: 83_200,
            }),
        },
    );
    app
}

#[test]
fn counts_of_one_are_singular_in_the_prune_popup_and_the_status_bar() {
    let mut app = loaded_app();
    update(
        &mut app,
        Message::Pruned {
            policy: default_prune_policy(),
            dry_run: true,
            result: Ok(PruneReport {
                dry_run: true,
                workflows: 1,
                checkpoints: 1,
                bytes: 639,
            }),
        },
    );
    app.counts = Default::default();
    app.counts.by_status.insert("failed".into(), 1);
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("would delete: 1 workflow, 1 checkpoint, 639 B"),
        "{text}"
    );
    assert!(text.contains(" 1 workflow: 1 failed"), "{text}");
}

#[test]
fn prune_preview_popup() {
    assert_snapshot!(draw(&prune_app(true)).backend());
}

#[test]
fn prune_report_popup() {
    assert_snapshot!(draw(&prune_app(false)).backend());
}

/// The prune preview, `e`, and the policy typed over the one shown.
fn prune_policy_app(policy: &str) -> App {
    let mut app = prune_app(true);
    press(&mut app, "e");
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    press(&mut app, policy);
    app
}

#[test]
fn prune_policy_input_with_an_error() {
    let mut app = prune_policy_app("older-than=30days keep-checkpoints=3");
    update(&mut app, key(KeyCode::Enter));
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn prune_preview_of_an_edited_policy() {
    let mut app = prune_policy_app("keep-checkpoints=3 keep-younger-than=7d");
    update(&mut app, key(KeyCode::Enter));
    let [Effect::Prune { policy, dry_run }] = app.effects[..] else {
        panic!("{:?}", app.effects);
    };
    assert!(dry_run);
    update(
        &mut app,
        Message::Pruned {
            policy,
            dry_run,
            result: Ok(PruneReport {
                dry_run,
                workflows: 0,
                checkpoints: 12,
                bytes: 20_480,
            }),
        },
    );
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn prune_preview_in_read_only_mode_says_so() {
    let mut app = prune_app(true);
    app.read_only = true;
    let text = draw(&app).backend().to_string();
    assert!(text.contains("read-only mode: preview only"), "{text}");
    assert!(!text.contains("y: prune"), "{text}");
}

#[test]
fn the_help_in_read_only_mode_says_what_is_disabled() {
    // Every key fills a 32-row terminal: the note comes first, so it is never cut.
    let mut app = loaded_app();
    app.read_only = true;
    press(&mut app, "?");
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("read-only mode: rollback, pin, fork and prune are disabled"),
        "{text}"
    );
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

#[test]
fn the_detail_draws_the_lines_in_view_past_line_65535() {
    let (state, _) = long_workflow();
    let mut app = loaded_app();
    update(&mut app, enter());
    update(&mut app, loaded(state));
    // Outputs: End, then up 3 lines from the last (`}` is line LONG + 3).
    update(&mut app, key(KeyCode::Tab));
    update(&mut app, key(KeyCode::End));
    press(&mut app, "kkk");
    // Context: End, then 500 pages up: line LONG + 3 - 10,000 = 70,003 is at the top.
    update(&mut app, key(KeyCode::Tab));
    update(&mut app, key(KeyCode::End));
    for _ in 0..500 {
        update(&mut app, key(KeyCode::PageUp));
    }
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(
        (detail.outputs_scroll, detail.context_scroll),
        (LONG, 70_003)
    );
    let terminal = draw(&app);
    assert_eq!(
        box_rows(&terminal, "Outputs of retrieve", 5),
        [
            r#"    "line 79998","#,
            r#"    "line 79999""#,
            "  ]",
            "}",
            ""
        ]
    );
    assert_eq!(
        box_rows(&terminal, "Context", 2),
        [r#"    "line 70001","#, r#"    "line 70002","#]
    );
}

#[test]
fn the_snapshot_screen_draws_the_lines_in_view_past_line_65535() {
    let (_, checkpoints) = long_workflow();
    let mut app = checkpoints_app();
    update(&mut app, enter());
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: checkpoints[0].id,
            result: Ok(crate::format::pretty_lines(&checkpoints[0].snapshot)),
        },
    );
    update(&mut app, key(KeyCode::End));
    press(&mut app, "kkk");
    let terminal = draw(&app);
    assert_eq!(
        box_rows(&terminal, "Snapshot after prompt", 5),
        [
            r#"    "line 79998","#,
            r#"    "line 79999""#,
            "  ]",
            "}",
            ""
        ]
    );
    for _ in 0..500 {
        update(&mut app, key(KeyCode::PageUp));
    }
    assert_eq!(
        box_rows(&draw(&app), "Snapshot after prompt", 1),
        [r#"    "line 69998","#]
    );
}

#[test]
fn the_diff_screen_draws_the_changes_in_view_past_line_65535() {
    let mut app = checkpoints_app();
    crate::fixtures::open_long_diff(&mut app);
    update(&mut app, key(KeyCode::End));
    update(&mut app, key(KeyCode::PageUp));
    assert_eq!(
        box_rows(&draw(&app), "Diff long", 3),
        [
            "+ context.messages[79979]: 79979",
            "+ context.messages[79980]: 79980",
            "+ context.messages[79981]: 79981",
        ]
    );
    update(&mut app, key(KeyCode::End));
    assert_eq!(
        box_rows(&draw(&app), "Diff long", 2),
        ["+ context.messages[79999]: 79999", ""]
    );
}

#[test]
fn the_detail_screen_draws_the_lines_printed_on_arrival() {
    let (state, _) = failed_workflow();
    let mut app = detail_app();
    // Lines that are not what printing the JSON gives: if drawing printed the context
    // or the outputs again, the screen would show the JSON instead.
    let detail = app.detail.as_mut().unwrap();
    assert_eq!(detail.state.context, state.context);
    detail.context_lines = vec!["context printed once".into()];
    detail.outputs_lines = ["retrieve", "prompt", "tool_call"]
        .map(|step| vec![format!("{step} outputs printed once")])
        .into();
    let terminal = draw(&app);
    assert_eq!(
        box_rows(&terminal, "Context", 2),
        ["context printed once", ""]
    );
    assert_eq!(
        box_rows(&terminal, "Outputs of retrieve", 2),
        ["retrieve outputs printed once", ""]
    );
    // Moving between steps shows each step's lines as they arrived: nothing is printed.
    press(&mut app, "j");
    assert_eq!(
        box_rows(&draw(&app), "Outputs of prompt", 2),
        ["prompt outputs printed once", ""]
    );
    press(&mut app, "jk");
    assert_eq!(
        box_rows(&draw(&app), "Outputs of prompt", 2),
        ["prompt outputs printed once", ""]
    );
}

#[test]
fn stored_control_characters_are_shown_escaped_on_every_screen() {
    const USER: &str = "evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED";
    let (mut state, _) = failed_workflow();
    state.user_id = Some(USER.to_owned());
    state.error = Some("boom\r\u{1b}[2J".to_owned());
    state.steps.get_mut("tool_call").unwrap().error = Some("step\u{9b}5m failed".to_owned());
    let mut app = loaded_app();
    app.workflows.rows[0].user_id = Some(USER.to_owned());
    app.workflows.rows[0].workflow_name = "name\rline".to_owned();
    // USER is ten columns wide: the start of the escape shows.
    let list = draw(&app).backend().to_string();
    assert!(list.contains(r" evil\u{1b} "), "{list}");
    assert!(list.contains(r"name\rline"), "{list}");

    let mut app = detail_of(state, WorkflowHistory::default());
    press(&mut app, "jj");
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains(r"evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED"),
        "{text}"
    );
    assert!(text.contains(r"boom\r\u{1b}[2J"), "{text}");
    assert!(text.contains(r"step\u{9b}5m failed"), "{text}");

    // The status bar: an error quoting stored data.
    app.show_error("no workflow \u{1b}[2Jx".to_owned());
    let text = draw(&app).backend().to_string();
    assert!(text.contains(r"error: no workflow \u{1b}[2Jx"), "{text}");
}

/// The rollback confirmation of a plan longer than an 80x24 terminal shows: the
/// checkpoints app on `rows` x `cols` with the plan of a context of 40 changed keys.
fn long_rollback_confirmation(cols: u16, rows: u16) -> App {
    let (mut state, checkpoints) = failed_workflow();
    for n in 0..40 {
        state.context[format!("key_{n:02}")] = format!("value {n}").into();
    }
    let plan = RollbackPlan::new(state, checkpoints[1].clone()).unwrap();
    let mut app = checkpoints_app();
    update(&mut app, Message::Resize { rows, cols });
    press(&mut app, "jR");
    update(
        &mut app,
        Message::RollbackPlanned {
            checkpoint: checkpoints[1].id,
            result: Ok(Box::new(plan)),
        },
    );
    app
}

/// [`loaded_app`] with workflow_ids that share a long start and differ at the end.
fn long_ids_app() -> App {
    let mut app = App::new("sqlite://workflows.db", false);
    let request = app.workflows.request;
    app.effects.clear();
    let rows = crate::fixtures::summaries()
        .into_iter()
        .enumerate()
        .map(|(n, row)| llm_orchestrator_state::admin::WorkflowSummary {
            workflow_id: format!("customer-onboarding-pipeline-{:06}", 123 + n),
            ..row
        })
        .collect();
    update(
        &mut app,
        Message::WorkflowsLoaded {
            request,
            append: false,
            result: Ok(llm_orchestrator_state::admin::WorkflowPage { rows, next: None }),
            at: crate::fixtures::t0() + chrono::Duration::hours(1),
        },
    );
    update(
        &mut app,
        Message::CountsLoaded(Ok(crate::fixtures::counts())),
    );
    app
}

#[test]
fn long_workflow_ids_keep_the_end_that_tells_them_apart() {
    let app = long_ids_app();
    // Wide enough: whole.
    let wide = draw_sized(&app, 160, 12);
    for n in 123..128 {
        assert!(
            wide.contains(&format!("customer-onboarding-pipeline-000{n} ")),
            "{wide}"
        );
    }
    // Not wide enough: cut in the middle, each still its own.
    let text = draw_sized(&app, 120, 12);
    for n in 123..128 {
        assert!(
            text.contains(&format!("customer-onboa…pipeline-000{n} ")),
            "{text}"
        );
    }
    assert_snapshot!(text);
    // Narrow: the column shrinks, the end stays.
    let narrow = draw_sized(&app, 60, 12);
    for n in 123..128 {
        assert!(
            narrow.contains(&format!("customer-…ine-000{n} ")),
            "{narrow}"
        );
    }
}

#[test]
fn wide_character_ids_are_cut_in_the_middle_by_the_cells_they_take() {
    // CJK and emoji take two cells each: counted as characters, the id overflowed its
    // column, and ratatui cut its end (the part that tells these apart) without a "…".
    let mut app = long_ids_app();
    for (n, row) in app.workflows.rows.iter_mut().enumerate() {
        row.workflow_id = format!("請求書-処理-パイプライン-長い名前-🚀-{:04}", 21 + n);
        row.workflow_name = "請求書の処理".to_owned();
    }
    let text = draw_sized(&app, 100, 12);
    for n in 21..26 {
        assert!(
            text.contains(&format!("請求書-処理-パ…名前-🚀-{n:04} ")),
            "{text}"
        );
    }
    assert_snapshot!(text);
}

fn draw_sized(app: &App, cols: u16, rows: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|frame| super::view(app, frame)).unwrap();
    terminal.backend().to_string()
}

#[test]
fn a_rollback_plan_longer_than_the_popup_scrolls_and_keeps_its_keys_in_view() {
    let mut app = long_rollback_confirmation(80, 24);
    let text = draw_sized(&app, 80, 24);
    assert!(text.contains("y: roll back    n / Esc: cancel"), "{text}");
    assert!(text.contains("more lines (j/k to scroll)"), "{text}");
    assert!(text.contains("Roll back workflow"), "{text}");
    assert!(!text.contains("key_39"), "{text}");

    // To the end: the last change, and the keys still.
    press(&mut app, "G");
    let text = draw_sized(&app, 80, 24);
    assert!(text.contains("- context.key_39: \"value 39\""), "{text}");
    assert!(text.contains("y: roll back    n / Esc: cancel"), "{text}");
    assert!(text.contains("lines above (k to scroll back)"), "{text}");
    assert!(!text.contains("more lines (j/k"), "{text}");
    // One k shows the line above the last screenful again, at once (G stopped at the
    // last scroll that fills the box, not beyond).
    press(&mut app, "k");
    let after_k = draw_sized(&app, 80, 24);
    assert!(
        after_k.contains("… 1 more line (j/k to scroll)"),
        "{after_k}"
    );
    press(&mut app, "g");
    assert_eq!(
        draw_sized(&app, 80, 24),
        draw_sized(&long_rollback_confirmation(80, 24), 80, 24)
    );
    assert!(app.popup.is_some(), "scrolling keeps the question open");
}

#[test]
fn a_prune_preview_on_a_tiny_terminal_keeps_its_keys_in_view() {
    let mut app = prune_app(true);
    update(&mut app, Message::Resize { rows: 12, cols: 40 });
    let text = draw_sized(&app, 40, 12);
    assert!(text.contains("y: prune"), "{text}");
    // (its end, "to scroll)", is cut at this width)
    assert!(text.contains("more lines (j/k"), "{text}");
    press(&mut app, "G");
    let text = draw_sized(&app, 40, 12);
    assert!(text.contains("would delete: 3"), "{text}");
    assert!(text.contains("y: prune"), "{text}");
}
