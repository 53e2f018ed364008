//! Refreshes, automatic and asked for: what each reads again, and what it skips while a read is under way.

use super::*;

#[test]
fn an_automatic_refresh_asks_only_the_version_and_stops_there_when_unchanged() {
    let (mut app, state) = on_the_detail();
    press(&mut app, "j");
    refresh_ticks(&mut app);
    assert!(app.effects.contains(&Effect::CheckDetailVersion(state.id)));
    assert!(app.effects.contains(&Effect::LoadHistory(state.id)));
    assert!(!app.effects.iter().any(is_full_load), "{:?}", app.effects);

    app.effects.clear();
    let before = app.clone();
    let unchanged = Message::DetailVersion {
        workflow_state_id: state.id,
        result: Ok(3),
    };
    update(&mut app, unchanged);
    assert!(app.effects.is_empty(), "{:?}", app.effects);
    assert_eq!(app, before, "the view is untouched");

    // An answer about a workflow no longer on screen is dropped, changed or not.
    let elsewhere = Message::DetailVersion {
        workflow_state_id: Uuid::from_u128(99),
        result: Ok(7),
    };
    update(&mut app, elsewhere);
    assert_eq!(app, before);
}

#[test]
fn a_changed_version_reads_the_workflow_in_full_keeping_the_selected_step() {
    let (mut app, state) = on_the_detail();
    press(&mut app, "jj");
    refresh_ticks(&mut app);
    app.effects.clear();
    let changed = Message::DetailVersion {
        workflow_state_id: state.id,
        result: Ok(4),
    };
    update(&mut app, changed);
    assert_eq!(app.effects, vec![Effect::LoadDetail(state.id)]);
    deliver(&mut app, state.clone(), 4);
    let detail = app.detail.as_ref().unwrap();
    assert_eq!((detail.version, detail.step), (Some(4), 2));
    app.effects.clear();
    refresh_ticks(&mut app);
    app.effects.clear();
    update(
        &mut app,
        Message::DetailVersion {
            workflow_state_id: state.id,
            result: Ok(4),
        },
    );
    assert!(app.effects.is_empty(), "version 4 is the one shown now");
}

#[test]
fn r_reads_the_open_workflow_in_full_changed_or_not() {
    let (mut app, state) = on_the_detail();
    press(&mut app, "j");
    press(&mut app, "r");
    assert!(app.effects.contains(&Effect::LoadDetail(state.id)));
    assert!(!app.effects.contains(&Effect::CheckDetailVersion(state.id)));
    assert!(app.effects.contains(&Effect::LoadHistory(state.id)));
}

#[test]
fn a_workflow_deleted_meanwhile_shows_the_error_and_reads_nothing() {
    let (mut app, state) = on_the_detail();
    refresh_ticks(&mut app);
    app.effects.clear();
    let gone = format!("not found: workflow state {}", state.id);
    update(
        &mut app,
        Message::DetailVersion {
            workflow_state_id: state.id,
            result: Err(gone.clone()),
        },
    );
    assert_eq!(app.error, Some(gone.clone()));
    assert!(app.effects.is_empty());
    assert_eq!(app.detail.as_ref().unwrap().state, state, "still shown");

    // The list's own automatic refresh succeeding says nothing about that workflow:
    // the error stays for the operator to see.
    let message = loaded(&app, summaries());
    update(&mut app, message);
    assert_eq!(app.error, Some(gone));
}

#[test]
fn a_list_error_is_cleared_by_the_next_list_load_only() {
    let mut app = loaded_app();
    let failed = Message::WorkflowsLoaded {
        request: app.workflows.request,
        append: false,
        result: Err("connection error: gone".into()),
        at: t0(),
    };
    update(&mut app, failed);
    assert_eq!(app.error.as_deref(), Some("connection error: gone"));
    update(&mut app, Message::CountsLoaded(Ok(Default::default())));
    assert_eq!(
        app.error.as_deref(),
        Some("connection error: gone"),
        "counts are not the list"
    );
    let message = loaded(&app, summaries());
    update(&mut app, message);
    assert_eq!(app.error, None, "the list loads again: its error is over");
}

#[test]
fn every_periodic_read_s_error_ends_when_that_read_works_again() {
    // The server went away: each read the refresh makes failed in turn, the last
    // error shown. Once it is back, the error must go when that read succeeds;
    // before, a failed count stayed on the status bar for good.
    let gone = || Err::<(), String>("connection error: refused".into());
    let (mut app, state) = on_the_detail();
    let id = state.id;
    let failures: Vec<Message> = vec![
        Message::CountsLoaded(gone().map(|_| Default::default())),
        Message::HistoryLoaded {
            workflow_state_id: id,
            result: gone().map(|_| Default::default()),
        },
    ];
    let successes: Vec<Message> = vec![
        Message::CountsLoaded(Ok(Default::default())),
        Message::HistoryLoaded {
            workflow_state_id: id,
            result: Ok(Default::default()),
        },
    ];
    for (failure, success) in failures.into_iter().zip(successes) {
        let what = format!("{failure:?}");
        update(&mut app, failure);
        assert_eq!(
            app.error.as_deref(),
            Some("connection error: refused"),
            "{what}"
        );
        update(&mut app, success);
        assert_eq!(app.error, None, "{what}");
    }
    // The checkpoints screen's list, too.
    press(&mut app, "c");
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: id,
            result: Err("connection error: refused".into()),
        },
    );
    assert!(app.error.is_some());
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: id,
            result: Ok((Vec::new(), Default::default())),
        },
    );
    assert_eq!(app.error, None);

    // Left before the read worked again: nothing would read it again, so going back
    // ends its error too; the list's error stays until the list reads.
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: id,
            result: Err("connection error: refused".into()),
        },
    );
    press(&mut app, "q");
    assert_eq!(app.error, None, "the checkpoints screen was left");
    update(
        &mut app,
        Message::HistoryLoaded {
            workflow_state_id: id,
            result: Err("connection error: refused".into()),
        },
    );
    press(&mut app, "q");
    assert_eq!(app.error, None, "the detail screen was left");
    update(
        &mut app,
        Message::CountsLoaded(Err("connection error: refused".into())),
    );
    press(&mut app, "?");
    update(&mut app, key(KeyCode::Esc));
    assert!(app.error.is_some(), "the counts are read on every screen");
}

#[test]
fn pins_forks_and_prunes_check_the_open_workflow_s_version_only() {
    let (mut app, state) = on_the_detail();
    update(
        &mut app,
        Message::PinSet {
            checkpoint: Uuid::from_u128(0x100),
            label: None,
            result: Ok(()),
        },
    );
    assert!(app.effects.contains(&Effect::CheckDetailVersion(state.id)));
    assert!(!app.effects.iter().any(is_full_load));
}

#[test]
fn an_automatic_refresh_starts_no_second_list_load_while_one_is_under_way() {
    let mut app = loaded_app();
    refresh_ticks(&mut app);
    assert_eq!(app.effects.iter().filter(|c| is_list_load(c)).count(), 1);
    let request = app.workflows.request;

    // The load takes longer than the ticks between refreshes: the next refresh
    // reloads the rest (the counts answered) but not the list, and the answer under
    // way stays current.
    update(
        &mut app,
        Message::CountsLoaded(Ok(crate::fixtures::counts())),
    );
    app.effects.clear();
    refresh_ticks(&mut app);
    assert!(!app.effects.iter().any(is_list_load), "{:?}", app.effects);
    assert!(app.effects.contains(&Effect::LoadCounts));
    assert_eq!(app.workflows.request, request);

    // Its answer arrives, here an error: the load is over, the next refresh loads.
    update(
        &mut app,
        Message::WorkflowsLoaded {
            request,
            append: false,
            result: Err("connection error: timed out".into()),
            at: t0(),
        },
    );
    app.effects.clear();
    refresh_ticks(&mut app);
    assert_eq!(app.effects.iter().filter(|c| is_list_load(c)).count(), 1);

    // And after a page arrives.
    let message = loaded(&app, summaries());
    update(&mut app, message);
    app.effects.clear();
    refresh_ticks(&mut app);
    assert_eq!(app.effects.iter().filter(|c| is_list_load(c)).count(), 1);

    // Asked for (`r`, a write): the list loads again even with a load under way.
    app.effects.clear();
    press(&mut app, "r");
    assert!(app.effects.iter().any(is_list_load));
    app.effects.clear();
    update(
        &mut app,
        Message::PinSet {
            checkpoint: Uuid::from_u128(0x100),
            label: None,
            result: Ok(()),
        },
    );
    assert!(app.effects.iter().any(is_list_load));
}

#[test]
fn an_automatic_refresh_starts_no_second_full_read_while_one_is_under_way() {
    let (mut app, state) = on_the_detail();
    refresh_ticks(&mut app);
    app.effects.clear();
    let changed = |version| Message::DetailVersion {
        workflow_state_id: state.id,
        result: Ok(version),
    };
    update(&mut app, changed(4));
    assert_eq!(app.effects, vec![Effect::LoadDetail(state.id)]);

    // The read takes longer than the ticks between refreshes: no version check (its
    // answer would differ from the version shown) and no second read.
    app.effects.clear();
    refresh_ticks(&mut app);
    assert!(
        !app.effects
            .iter()
            .any(|effect| is_full_load(effect) || *effect == Effect::CheckDetailVersion(state.id)),
        "{:?}",
        app.effects
    );
    // A check answered while it runs (one asked before, or after a write) starts none.
    update(&mut app, changed(5));
    assert!(!app.effects.iter().any(is_full_load), "{:?}", app.effects);

    // An answer about another workflow does not end this one's read.
    update(
        &mut app,
        Message::DetailLoaded {
            workflow_state_id: Uuid::from_u128(99),
            result: Err("not found".into()),
        },
    );
    app.effects.clear();
    refresh_ticks(&mut app);
    assert!(!app.effects.iter().any(is_full_load), "{:?}", app.effects);

    // It fails: the read is over, and the next refresh asks again.
    update(
        &mut app,
        Message::DetailLoaded {
            workflow_state_id: state.id,
            result: Err("connection error: timed out".into()),
        },
    );
    // The next refresh checks the version again, and a changed one is read in full.
    let checks_and_reads = |app: &mut App, version| {
        app.effects.clear();
        refresh_ticks(app);
        assert!(app.effects.contains(&Effect::CheckDetailVersion(state.id)));
        app.effects.clear();
        update(app, changed(version));
        assert_eq!(app.effects, vec![Effect::LoadDetail(state.id)]);
    };
    checks_and_reads(&mut app, 5);

    // It arrives: the same.
    deliver(&mut app, state.clone(), 5);
    checks_and_reads(&mut app, 6);

    // `r` reads it in full even with a read under way.
    app.effects.clear();
    press(&mut app, "r");
    assert!(app.effects.contains(&Effect::LoadDetail(state.id)));
}

#[test]
fn a_full_read_of_a_workflow_the_user_left_is_dropped_and_freed() {
    let (a, _) = failed_workflow();
    let mut b = a.clone();
    b.id = Uuid::from_u128(2);
    b.workflow_id = "rag-answer-0002".into();
    let failed = |id, err: &str| Message::DetailLoaded {
        workflow_state_id: id,
        result: Err(err.into()),
    };

    // A (the first row) opened and left before its read arrives; then B opened, twice
    // (Enter, Esc, Enter): A's late answer does not show A on B's screen.
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, key(KeyCode::Esc));
    press(&mut app, "j");
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, key(KeyCode::Esc));
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.screen(), Screen::Detail);
    app.effects.clear();
    let late = LoadedDetail::print(a.clone(), Some(1));
    update(&mut app, arrived(late.clone()));
    assert_eq!(app.detail, None, "B still loading, not A");
    // Freed off the UI thread, as what a refresh replaces is.
    assert_eq!(app.effects, vec![Effect::Discard(Box::new(late))]);
    update(&mut app, failed(a.id, "not found"));
    assert_eq!(app.error, None, "an error about A is dropped too");

    // B's first read fails: its error shows, and still not A.
    update(&mut app, failed(b.id, "connection error: timed out"));
    assert_eq!(app.detail, None);
    assert_eq!(app.error.as_deref(), Some("connection error: timed out"));
    // Its second read arrives: B opens.
    deliver(&mut app, b.clone(), 1);
    assert_eq!(app.detail.as_ref().unwrap().state, b);

    // Back on the list before the answer: the workflow is not kept in memory.
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, key(KeyCode::Esc));
    app.effects.clear();
    let late = LoadedDetail::print(a.clone(), Some(1));
    update(&mut app, arrived(late.clone()));
    assert_eq!(app.detail, None);
    assert_eq!(app.effects, vec![Effect::Discard(Box::new(late))]);

    // Opened again: its answer shows it.
    update(&mut app, key(KeyCode::Enter));
    deliver(&mut app, a.clone(), 1);
    assert_eq!(app.detail.as_ref().unwrap().state, a);
}

#[test]
fn opening_another_workflow_or_a_rollback_frees_the_one_shown_off_the_ui_thread() {
    let (a, checkpoints) = failed_workflow();
    let discards = |app: &App| -> Vec<LoadedDetail> {
        app.effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Discard(old) => Some(*old.clone()),
                _ => None,
            })
            .collect()
    };

    // A shown, then the user goes back and opens B (the second row): A goes to the
    // runtime to be freed, as what a refresh replaces does.
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    deliver(&mut app, a.clone(), 1);
    update(&mut app, key(KeyCode::Esc));
    press(&mut app, "j");
    app.effects.clear();
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.detail, None);
    assert_eq!(discards(&app), [LoadedDetail::print(a.clone(), Some(1))]);

    // Opened again, the same workflow is kept: nothing is freed.
    let mut app = loaded_app();
    update(&mut app, key(KeyCode::Enter));
    deliver(&mut app, a.clone(), 1);
    update(&mut app, key(KeyCode::Esc));
    app.effects.clear();
    update(&mut app, key(KeyCode::Enter));
    assert!(discards(&app).is_empty(), "{:?}", app.effects);
    assert_eq!(app.detail.as_ref().unwrap().state, a);

    // A rollback's answer replaces the workflow shown: that one is freed the same way.
    let mut app = with_checkpoints();
    let rolled_back = LoadedDetail::print(checkpoints[1].state().unwrap(), None);
    update(&mut app, Message::RolledBack(Ok(rolled_back.clone())));
    assert_eq!(app.detail.as_ref().unwrap().state, rolled_back.state);
    assert_eq!(discards(&app), [LoadedDetail::print(a, Some(1))]);
}

#[test]
fn a_diff_or_rollback_plan_the_user_left_opens_nothing() {
    let (state, checkpoints) = failed_workflow();
    let (newest, oldest) = (checkpoints[0].id, checkpoints[1].id);
    let diffed = |from, to| Message::DiffLoaded {
        from,
        to,
        result: Ok(("x".into(), crate::diff::diff(&json!(1), &json!(2)))),
    };

    // `d`, then back to the list before the diff arrives: the list stays on top.
    let mut app = with_checkpoints();
    press(&mut app, "d");
    update(&mut app, key(KeyCode::Esc));
    update(&mut app, diffed(newest, None));
    assert_eq!(app.screens, vec![Screen::Workflows]);
    assert_eq!(app.diff, None);

    // Two diffs asked for: only the last one opens.
    let mut app = with_checkpoints();
    press(&mut app, "djd");
    update(&mut app, diffed(newest, None));
    assert_eq!(app.screen(), Screen::Checkpoints);
    update(&mut app, diffed(oldest, None));
    assert_eq!(app.screen(), Screen::Diff);

    // `R`, then back to the list before the plan arrives: no question, and Enter
    // opens the workflow rather than rolling back.
    let planned = |checkpoint: &Checkpoint| Message::RollbackPlanned {
        checkpoint: checkpoint.id,
        result: Ok(Box::new(
            RollbackPlan::new(state.clone(), checkpoint.clone()).unwrap(),
        )),
    };
    let mut app = with_checkpoints();
    press(&mut app, "jR");
    update(&mut app, key(KeyCode::Esc));
    update(&mut app, planned(&checkpoints[1]));
    assert_eq!(app.popup, None);
    app.effects.clear();
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.screen(), Screen::Detail);
    assert!(
        !app.effects
            .iter()
            .any(|effect| matches!(effect, Effect::Rollback(_))),
        "{:?}",
        app.effects
    );

    // `R` on one checkpoint, then on another: only the last one is asked about.
    let mut app = with_checkpoints();
    press(&mut app, "jRkR");
    update(&mut app, planned(&checkpoints[1]));
    assert_eq!(app.popup, None);
    update(&mut app, planned(&checkpoints[0]));
    let Some(Popup::ConfirmRollback { plan, .. }) = &app.popup else {
        panic!("no question: {:?}", app.popup);
    };
    assert_eq!(plan.checkpoint.id, newest);
}

#[test]
fn an_automatic_refresh_asks_no_second_count_history_or_checkpoint_list_until_answered() {
    let (mut app, state) = on_the_detail();
    let id = state.id;
    press(&mut app, "c");
    let (_, checkpoints) = failed_workflow();
    let infos = |result| Message::CheckpointInfosLoaded {
        workflow_state_id: id,
        result,
    };
    update(
        &mut app,
        infos(Ok(crate::fixtures::checkpoint_infos(&checkpoints))),
    );
    let asked = |app: &App| {
        let count = |wanted: Effect| app.effects.iter().filter(|c| **c == wanted).count();
        (
            count(Effect::LoadCounts),
            count(Effect::LoadHistory(id)),
            count(Effect::LoadCheckpointInfos(id)),
        )
    };

    // Nothing under way: the timer asks for each once.
    app.effects.clear();
    refresh_ticks(&mut app);
    assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.effects);

    // None has answered by the next refresh: none is asked again.
    app.effects.clear();
    refresh_ticks(&mut app);
    assert_eq!(asked(&app), (0, 0, 0), "{:?}", app.effects);

    // Answers about another workflow end nothing here.
    let other = Uuid::from_u128(99);
    update(&mut app, history_loaded(other, Err("gone".into())));
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: other,
            result: Err("gone".into()),
        },
    );
    app.effects.clear();
    refresh_ticks(&mut app);
    assert_eq!(asked(&app), (0, 0, 0), "{:?}", app.effects);

    // They fail: each read is over, and the next refresh asks again.
    update(&mut app, Message::CountsLoaded(Err("timed out".into())));
    update(&mut app, history_loaded(id, Err("timed out".into())));
    update(&mut app, infos(Err("timed out".into())));
    app.effects.clear();
    refresh_ticks(&mut app);
    assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.effects);

    // They arrive: the same.
    update(
        &mut app,
        Message::CountsLoaded(Ok(crate::fixtures::counts())),
    );
    update(&mut app, history_loaded(id, Ok(WorkflowHistory::default())));
    update(
        &mut app,
        infos(Ok(crate::fixtures::checkpoint_infos(&checkpoints))),
    );
    app.effects.clear();
    refresh_ticks(&mut app);
    assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.effects);

    // Asked for (`r`, a write): each is read again even with a read under way.
    app.effects.clear();
    press(&mut app, "r");
    assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.effects);
    app.effects.clear();
    update(
        &mut app,
        Message::PinSet {
            checkpoint: checkpoints[0].id,
            label: None,
            result: Ok(()),
        },
    );
    assert_eq!(asked(&app), (1, 1, 1), "{:?}", app.effects);
}
