//! The workflows screen: loading, paging, selecting, filtering and sorting the table.

use super::*;

#[test]
fn a_new_app_loads_workflows_and_counts() {
    let app = App::new("db", false);
    assert_eq!(app.screen(), Screen::Workflows);
    let (query, append) = last_workflow_query(&app);
    assert!(!append);
    assert!(query.active_first);
    assert_eq!(query.limit, PAGE_SIZE);
    assert!(app.effects.contains(&Effect::LoadCounts));
}

#[test]
fn movement_keys_move_the_selection_within_the_rows() {
    let mut app = loaded_app();
    press(&mut app, "jj");
    assert_eq!(app.workflows.selected, 2);
    press(&mut app, "k");
    assert_eq!(app.workflows.selected, 1);
    update(&mut app, key(KeyCode::End));
    assert_eq!(app.workflows.selected, 4);
    press(&mut app, "j");
    assert_eq!(app.workflows.selected, 4);
    press(&mut app, "g");
    assert_eq!(app.workflows.selected, 0);
    update(&mut app, key(KeyCode::Up));
    assert_eq!(app.workflows.selected, 0);
}

#[test]
fn a_refresh_keeps_the_selected_workflow_when_rows_move() {
    let mut app = loaded_app();
    press(&mut app, "jj");
    let selected = app.workflows.selected_row().unwrap().id;
    let mut rows = summaries();
    rows.reverse();
    update(&mut app, key(KeyCode::Char('r')));
    let message = loaded(&app, rows);
    update(&mut app, message);
    assert_eq!(app.workflows.selected_row().unwrap().id, selected);
    assert_eq!(app.last_refresh, Some(t0()));
}

#[test]
fn stale_answers_are_dropped_and_errors_keep_the_rows() {
    let mut app = loaded_app();
    let stale = Message::WorkflowsLoaded {
        request: app.workflows.request - 1,
        append: false,
        result: Ok(WorkflowPage {
            rows: Vec::new(),
            next: None,
        }),
        at: t0(),
    };
    update(&mut app, stale);
    assert_eq!(app.workflows.rows.len(), 5);
    let request = app.workflows.request;
    update(
        &mut app,
        Message::WorkflowsLoaded {
            request,
            append: false,
            result: Err("connection error: gone".into()),
            at: t0(),
        },
    );
    assert_eq!(app.workflows.rows.len(), 5);
    assert_eq!(app.error.as_deref(), Some("connection error: gone"));
    update(&mut app, Message::CountsLoaded(Err("boom".into())));
    assert_eq!(app.error.as_deref(), Some("boom"));
}

#[test]
fn counts_are_stored() {
    let mut app = App::new("db", false);
    update(
        &mut app,
        Message::CountsLoaded(Ok(crate::fixtures::counts())),
    );
    assert_eq!(app.counts.total(), 5);
}

#[test]
fn ticks_refresh_every_few_seconds() {
    let mut app = loaded_app();
    app.effects.clear();
    for _ in 0..REFRESH_TICKS - 1 {
        update(&mut app, Message::Tick);
    }
    assert!(app.effects.is_empty());
    update(&mut app, Message::Tick);
    assert!(app.effects.contains(&Effect::LoadCounts));
    assert!(last_workflow_query(&app).0.after.is_none());
    assert_eq!(app.ticks, 0);
}

#[test]
fn filters_and_sorting_reload_from_the_first_row() {
    let mut app = loaded_app();
    press(&mut app, "a");
    assert!(last_workflow_query(&app).0.active_only);
    press(&mut app, "a");
    assert!(!last_workflow_query(&app).0.active_only);
    press(&mut app, "x");
    assert!(last_workflow_query(&app).0.lease_expired);
    press(&mut app, "x");
    assert!(!last_workflow_query(&app).0.lease_expired);
    press(&mut app, "ff");
    assert_eq!(
        last_workflow_query(&app).0.statuses,
        vec![WorkflowStatus::Running]
    );
    press(&mut app, "s");
    assert_eq!(last_workflow_query(&app).0.sort, WorkflowSort::StartedAt);
    press(&mut app, "o");
    assert!(!last_workflow_query(&app).0.descending);

    press(&mut app, "/");
    assert!(matches!(app.popup, Some(Popup::Filter { .. })));
    press(&mut app, "rag");
    update(&mut app, key(KeyCode::Backspace));
    assert_eq!(app.popup, Some(Popup::Filter { input: "ra".into() }));
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.popup, None);
    assert_eq!(last_workflow_query(&app).0.text.as_deref(), Some("ra"));
    press(&mut app, "/x");
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.workflows.text_filter, "ra");
}

#[test]
fn scrolling_near_the_end_loads_the_next_page() {
    let mut app = loaded_app();
    let cursor = PageCursor {
        active: false,
        value: SortValue::Time(t0()),
        id: Uuid::from_u128(5),
    };
    app.workflows.next = Some(cursor.clone());
    app.effects.clear();
    press(&mut app, "j");
    let (query, append) = last_workflow_query(&app);
    assert!(append);
    assert_eq!(query.after, Some(cursor));
    let request = app.workflows.request;
    update(
        &mut app,
        Message::WorkflowsLoaded {
            request,
            append: true,
            result: Ok(WorkflowPage {
                rows: summaries(),
                next: None,
            }),
            at: t0(),
        },
    );
    assert_eq!(app.workflows.rows.len(), 10);
    assert_eq!(app.workflows.selected, 1);
}

#[test]
fn enter_opens_the_detail_and_loads_it() {
    let mut app = loaded_app();
    press(&mut app, "j");
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.screen(), Screen::Detail);
    assert!(
        app.effects
            .contains(&Effect::LoadDetail(Uuid::from_u128(2)))
    );
    let (mut state, _) = failed_workflow();
    state.id = Uuid::from_u128(2);
    deliver(&mut app, state.clone(), 1);
    assert_eq!(app.detail.as_ref().unwrap().state, state);
    press(&mut app, "jj");
    assert_eq!(app.detail.as_ref().unwrap().step, 2);
    press(&mut app, "kk");
    // Outputs of retrieve are 3 lines, the context 9: scrolling stops at the last.
    update(&mut app, key(KeyCode::Tab));
    press(&mut app, "jjjjj");
    update(&mut app, key(KeyCode::Tab));
    press(&mut app, "jjj");
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(
        (detail.step, detail.outputs_scroll, detail.context_scroll),
        (0, 2, 3)
    );
    update(&mut app, key(KeyCode::End));
    assert_eq!(app.detail.as_ref().unwrap().context_scroll, 8);
    update(&mut app, key(KeyCode::Tab));
    press(&mut app, "j");
    assert_eq!(
        app.detail.as_ref().unwrap().outputs_scroll,
        0,
        "a new step starts at the top"
    );
    // A refresh of the same workflow keeps the position.
    let id = state.id;
    deliver(&mut app, state, 1);
    assert_eq!(app.detail.as_ref().unwrap().context_scroll, 8);
    update(
        &mut app,
        Message::DetailLoaded {
            workflow_state_id: id,
            result: Err("gone".into()),
        },
    );
    assert_eq!(app.error.as_deref(), Some("gone"));
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.screen(), Screen::Workflows);
}

#[test]
fn esc_on_the_workflows_screen_clears_a_filter_and_never_quits() {
    let mut app = loaded_app();
    press(&mut app, "/");
    for c in "rag".chars() {
        update(&mut app, key(KeyCode::Char(c)));
    }
    update(&mut app, key(KeyCode::Enter));
    press(&mut app, "fx");
    assert_eq!(app.workflows.text_filter, "rag");
    app.effects.clear();

    // Back out of a popup, then Esc again: the text filter goes first, reloaded.
    press(&mut app, "?");
    update(&mut app, key(KeyCode::Esc));
    update(&mut app, key(KeyCode::Esc));
    assert!(!app.quit);
    assert_eq!(app.workflows.text_filter, "");
    assert!(app.workflows.status_filter.is_some() && app.workflows.lease_expired);
    assert!(matches!(last_workflow_query(&app), (query, false) if query.text.is_none()));
    // Then the status and stuck filters.
    update(&mut app, key(KeyCode::Esc));
    assert!(!app.quit);
    assert_eq!(app.workflows.status_filter, None);
    assert!(!app.workflows.lease_expired);
    // Nothing left to clear: it says how to quit, and does not.
    app.effects.clear();
    update(&mut app, key(KeyCode::Esc));
    assert!(!app.quit);
    assert!(app.effects.is_empty());
    assert_eq!(
        app.notice.as_deref(),
        Some("nothing to clear; q or Ctrl-C quits")
    );
    // Esc still goes back from other screens.
    press(&mut app, "c");
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.screen(), Screen::Workflows);
    assert!(!app.quit);
    press(&mut app, "q");
    assert!(app.quit);
}
