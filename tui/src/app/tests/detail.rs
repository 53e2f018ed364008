//! The detail screen: one workflow, its history, its printed lines and scrolling.

use super::*;

#[test]
fn the_detail_loads_history_and_keeps_it_across_refreshes() {
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    let id = Uuid::from_u128(1);
    assert!(app.effects.contains(&Effect::LoadHistory(id)));
    let (mut state, _) = failed_workflow();
    state.id = id;
    deliver(&mut app, state.clone(), 1);
    let history = WorkflowHistory {
        usage: CheckpointUsage {
            count: 2,
            bytes: 10,
            pinned: 0,
        },
        lineage: vec!["fork x from checkpoint y".into()],
        summary: None,
        read_at: None,
    };
    update(
        &mut app,
        Message::HistoryLoaded {
            workflow_state_id: Uuid::from_u128(99),
            result: Ok(history.clone()),
        },
    );
    assert_eq!(app.detail.as_ref().unwrap().history, None);
    update(
        &mut app,
        Message::HistoryLoaded {
            workflow_state_id: id,
            result: Ok(history.clone()),
        },
    );
    assert_eq!(app.detail.as_ref().unwrap().history, Some(history.clone()));
    app.effects.clear();
    press(&mut app, "r");
    assert!(app.effects.contains(&Effect::LoadHistory(id)));
    deliver(&mut app, state, 1);
    assert_eq!(app.detail.as_ref().unwrap().history, Some(history));
    update(
        &mut app,
        Message::HistoryLoaded {
            workflow_state_id: id,
            result: Err("boom".into()),
        },
    );
    assert_eq!(app.error.as_deref(), Some("boom"));
}

#[test]
fn r_reads_a_workflow_whose_first_read_failed_again() {
    let (state, _) = failed_workflow();
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    // While the first read is under way, the timer starts no second one.
    app.effects.clear();
    refresh_ticks(&mut app);
    assert!(!app.effects.iter().any(is_full_load), "{:?}", app.effects);
    let failed = Message::DetailLoaded {
        workflow_state_id: state.id,
        result: Err("connection error: timed out".into()),
    };
    update(&mut app, failed.clone());
    assert_eq!(app.detail, None);

    // Once it failed, the timer reads it again: the screen recovers by itself.
    app.effects.clear();
    refresh_ticks(&mut app);
    assert_eq!(
        app.effects
            .iter()
            .filter(|effect| is_full_load(effect))
            .count(),
        1,
        "{:?}",
        app.effects
    );
    update(&mut app, failed);

    // `r` on the empty screen reads it again, with its history; the answer opens it.
    app.effects.clear();
    press(&mut app, "r");
    assert_eq!(app.screen(), Screen::Detail);
    assert!(app.effects.contains(&Effect::LoadDetail(state.id)));
    assert!(app.effects.contains(&Effect::LoadHistory(state.id)));
    deliver(&mut app, state.clone(), 1);
    assert_eq!(app.detail.as_ref().unwrap().state, state);

    // Back on the list, `r` reads no workflow.
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, key(KeyCode::Esc));
    app.effects.clear();
    press(&mut app, "r");
    assert!(!app.effects.iter().any(is_full_load), "{:?}", app.effects);
}

#[test]
fn a_workflow_s_read_error_ends_when_that_workflow_reads_fine_again() {
    let (state, _) = failed_workflow();
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    let failed = Message::DetailLoaded {
        workflow_state_id: state.id,
        result: Err("connection error: timed out".into()),
    };
    update(&mut app, failed.clone());
    assert_eq!(app.error.as_deref(), Some("connection error: timed out"));

    // The list loading fine says nothing about this workflow.
    let message = loaded(&app, summaries());
    update(&mut app, message);
    assert_eq!(app.error.as_deref(), Some("connection error: timed out"));

    // `r` reads it again and it arrives: the error is over.
    press(&mut app, "r");
    deliver(&mut app, state.clone(), 1);
    assert_eq!(app.error, None);

    // The same once it is on screen, for an automatic refresh's version check.
    update(&mut app, failed);
    assert!(app.error.is_some());
    update(
        &mut app,
        Message::DetailVersion {
            workflow_state_id: state.id,
            result: Ok(1),
        },
    );
    assert_eq!(app.error, None);
}

#[test]
fn a_history_arriving_before_the_workflow_being_opened_is_shown_with_it() {
    let (a, _) = failed_workflow();
    let mut b = a.clone();
    b.id = Uuid::from_u128(2);
    let history = |pinned| WorkflowHistory {
        usage: CheckpointUsage {
            count: 2,
            bytes: 10,
            pinned,
        },
        lineage: vec!["fork x from checkpoint y".into()],
        summary: None,
        read_at: None,
    };

    // Its totals and lineage answer first (a large workflow's read takes longer).
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, history_loaded(a.id, Ok(history(1))));
    // Another workflow's history is not taken for it.
    update(&mut app, history_loaded(b.id, Ok(history(7))));
    assert_eq!(app.detail, None);
    deliver(&mut app, a.clone(), 1);
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(detail.state, a);
    assert_eq!(
        detail.history,
        Some(history(1)),
        "not loading... until a refresh"
    );
    // The automatic refresh may ask again: that read was over.
    assert_eq!(app.in_flight.history, None);

    // Its error shows, as one for the workflow on screen does.
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, history_loaded(a.id, Err("timed out".into())));
    assert_eq!(app.error.as_deref(), Some("timed out"));
    deliver(&mut app, a.clone(), 1);
    assert_eq!(app.detail.as_ref().unwrap().history, None);

    // A's history, then the user goes back and opens B: B opens without it.
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, history_loaded(a.id, Ok(history(1))));
    update(&mut app, key(KeyCode::Esc));
    press(&mut app, "j");
    update(&mut app, key(KeyCode::Enter));
    deliver(&mut app, b.clone(), 1);
    assert_eq!(app.detail.as_ref().unwrap().state, b);
    assert_eq!(app.detail.as_ref().unwrap().history, None);
    // And B's own history, arriving after it, is shown.
    update(&mut app, history_loaded(b.id, Ok(history(2))));
    assert_eq!(app.detail.as_ref().unwrap().history, Some(history(2)));
}

#[test]
fn the_detail_scrolls_a_long_context_and_outputs_to_their_last_line() {
    let (state, _) = long_workflow();
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    deliver(&mut app, state, 1);
    let lines = LONG + 4;
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(
        detail.selected_outputs_lines().len(),
        lines,
        "retrieve, the first step"
    );
    assert_eq!(detail.context_lines.len(), lines);
    update(&mut app, key(KeyCode::Tab));
    assert_scrolls_to_the_last_line(&mut app, lines, |app| {
        app.detail.as_ref().unwrap().outputs_scroll
    });
    update(&mut app, key(KeyCode::Tab));
    assert_scrolls_to_the_last_line(&mut app, lines, |app| {
        app.detail.as_ref().unwrap().context_scroll
    });
}

/// The detail shows exactly the context and outputs lines `loaded` carries.
fn shows_the_lines_of(detail: &DetailView, loaded: &LoadedDetail) {
    assert_eq!(detail.context_lines, loaded.context_lines);
    assert_eq!(detail.outputs_lines, loaded.outputs_lines);
}

#[test]
fn the_detail_shows_the_lines_the_runtime_printed_without_printing() {
    let (state, _) = failed_workflow();
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    // Opening: the lines delivered are the lines shown, as they are.
    update(&mut app, arrived(placeholder(&state, 1, 50)));
    let detail = app.detail.as_ref().unwrap();
    shows_the_lines_of(detail, &placeholder(&state, 1, 50));
    assert_eq!((detail.step, detail.version), (0, Some(1)));

    // A refresh keeps the step, focus and places, within the new lines.
    update(&mut app, key(KeyCode::Tab));
    press(&mut app, "jjjjjjjjjj");
    update(&mut app, key(KeyCode::Tab));
    update(&mut app, key(KeyCode::End));
    let detail = app.detail.as_ref().unwrap();
    assert_eq!((detail.outputs_scroll, detail.context_scroll), (10, 49));
    update(&mut app, arrived(placeholder(&state, 2, 20)));
    let detail = app.detail.as_ref().unwrap();
    shows_the_lines_of(detail, &placeholder(&state, 2, 20));
    assert_eq!(detail.context_scroll, 19, "clamped to the last of 20 lines");
    assert_eq!(detail.outputs_scroll, 10, "still within 20 lines");
    assert_eq!(
        (detail.step, detail.focus, detail.version),
        (0, DetailFocus::Context, Some(2))
    );
    // What it showed before goes to the runtime to be freed there.
    assert_eq!(
        app.effects.last(),
        Some(&Effect::Discard(Box::new(placeholder(&state, 1, 50))))
    );

    // A refresh after the user moved to another step: that step's delivered lines.
    update(&mut app, key(KeyCode::Tab));
    press(&mut app, "j");
    update(&mut app, arrived(placeholder(&state, 3, 5)));
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(detail.step, 1);
    assert_eq!(
        detail.selected_outputs_lines(),
        placeholder(&state, 3, 5).outputs_lines[1]
    );
    assert_eq!(detail.selected_outputs_lines()[0], "outputs of prompt 0");

    // Fewer steps now (rolled back elsewhere): the last one left is selected.
    press(&mut app, "G");
    let mut shorter = state.clone();
    shorter.steps.remove("tool_call");
    update(&mut app, arrived(placeholder(&shorter, 4, 5)));
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(detail.step, 1);
    assert_eq!(detail.selected_outputs_lines()[0], "outputs of prompt 0");

    // Another workflow opened starts afresh, at its first step.
    let mut other = state;
    other.id = Uuid::from_u128(2);
    update(&mut app, key(KeyCode::Esc));
    press(&mut app, "j");
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, arrived(placeholder(&other, 1, 5)));
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(detail.state.id, other.id);
    assert_eq!((detail.step, detail.context_scroll), (0, 0));
    shows_the_lines_of(detail, &placeholder(&other, 1, 5));
}

#[test]
fn moving_between_steps_prints_nothing_and_shows_each_step_s_outputs() {
    let (state, _) = failed_workflow();
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, arrived(placeholder(&state, 1, 3)));
    app.effects.clear();
    let shown = |app: &App| {
        let detail = app.detail.as_ref().unwrap();
        let step = selected_step(detail).unwrap().step_id.clone();
        (step, detail.selected_outputs_lines()[0].clone())
    };
    let expect = |step: &str| (step.to_owned(), format!("outputs of {step} 0"));
    // Each key picks the step's delivered lines: were anything printed, the JSON would
    // show instead; were anything freed, a discard or a change to the lines would.
    for (keys, step) in [
        ("j", "prompt"),
        ("j", "tool_call"),
        ("j", "tool_call"),
        ("k", "prompt"),
        ("k", "retrieve"),
        ("G", "tool_call"),
        ("g", "retrieve"),
    ] {
        press(&mut app, keys);
        assert_eq!(shown(&app), expect(step), "after {keys}");
        shows_the_lines_of(app.detail.as_ref().unwrap(), &placeholder(&state, 1, 3));
    }
    update(&mut app, key(KeyCode::Down));
    update(&mut app, key(KeyCode::Up));
    assert_eq!(shown(&app), expect("retrieve"));
    assert!(app.effects.is_empty(), "{:?}", app.effects);

    // Outputs scroll within the selected step's lines, and a new step starts at the top.
    update(&mut app, key(KeyCode::Tab));
    update(&mut app, key(KeyCode::End));
    assert_eq!(app.detail.as_ref().unwrap().outputs_scroll, 2);
    update(&mut app, key(KeyCode::Tab));
    update(&mut app, key(KeyCode::Tab));
    press(&mut app, "j");
    assert_eq!(app.detail.as_ref().unwrap().outputs_scroll, 0);

    // With the lines as the runtime prints them, each step shows its own outputs.
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    deliver(&mut app, state.clone(), 1);
    for (n, step) in ["retrieve", "prompt", "tool_call"].into_iter().enumerate() {
        if n > 0 {
            press(&mut app, "j");
        }
        assert_eq!(
            app.detail.as_ref().unwrap().selected_outputs_lines(),
            format::pretty_lines(&state.steps[step].outputs),
            "{step}"
        );
    }
}

#[test]
fn printing_a_loaded_workflow_prints_the_context_and_every_step() {
    let (state, _) = failed_workflow();
    let loaded = LoadedDetail::print(state.clone(), Some(5));
    assert_eq!(loaded.context_lines, format::pretty_lines(&state.context));
    assert_eq!(loaded.version, Some(5));
    // In run order, as the steps table lists them.
    assert_eq!(
        loaded.outputs_lines,
        ["retrieve", "prompt", "tool_call"]
            .map(|step| { format::pretty_lines(&state.steps[step].outputs) })
    );
    let mut no_steps = state;
    no_steps.steps.clear();
    let empty = LoadedDetail::print(no_steps, None);
    assert!(empty.outputs_lines.is_empty());
    let detail = DetailView::new(empty, None);
    assert!(detail.selected_outputs_lines().is_empty());
}
