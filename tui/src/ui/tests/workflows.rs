//! The workflows screen: its table, columns, filters and titles, in wide and narrow terminals.

use super::*;

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
