//! The detail screen: header, steps, errors, context and outputs, and scrolling them.

use super::*;

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
