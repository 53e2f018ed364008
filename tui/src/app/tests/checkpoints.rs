//! The checkpoints screen: the list, marks and diffs, pins and forks.

use super::*;

#[test]
fn the_checkpoint_list_loads_without_snapshots() {
    let mut app = loaded_app();
    press(&mut app, "c");
    assert_eq!(app.screen(), Screen::Checkpoints);
    // One load for the list, of infos only: no snapshot is read to draw it.
    assert_eq!(
        app.effects,
        vec![Effect::LoadCheckpointInfos(Uuid::from_u128(1))]
    );
    let (_, checkpoints) = failed_workflow();
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: Uuid::from_u128(99),
            result: Ok(crate::fixtures::checkpoint_infos(&checkpoints)),
        },
    );
    assert_eq!(
        app.checkpoints.as_ref().unwrap().list,
        None,
        "another workflow's"
    );

    let mut app = with_checkpoints();
    let view = app.checkpoints.as_ref().unwrap();
    assert_eq!(view.list.as_ref().unwrap().len(), 2);
    assert_eq!(view.usage.unwrap().pinned, 1);
    // Moving, marking, refreshing and the automatic refresh load no snapshot either.
    press(&mut app, "j kr");
    for _ in 0..REFRESH_TICKS {
        update(&mut app, Message::Tick);
    }
    assert!(
        app.effects
            .contains(&Effect::LoadCheckpointInfos(Uuid::from_u128(1)))
    );
    assert!(
        !app.effects.iter().any(is_snapshot_load),
        "{:?}",
        app.effects
    );

    let id = app.checkpoints.as_ref().unwrap().workflow_state_id;
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: id,
            result: Err("gone".into()),
        },
    );
    assert_eq!(app.error.as_deref(), Some("gone"));
    assert_eq!(
        app.checkpoints
            .as_ref()
            .unwrap()
            .list
            .as_ref()
            .unwrap()
            .len(),
        2,
        "an error keeps the list"
    );
}

#[test]
fn a_refreshed_list_keeps_the_selected_checkpoint() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    press(&mut app, "j");
    let (mut infos, usage) = crate::fixtures::checkpoint_infos(&checkpoints);
    // A newer checkpoint arrived on top: the selection stays on the same checkpoint.
    let mut newer = infos[0].clone();
    newer.id = Uuid::from_u128(0x200);
    infos.insert(0, newer);
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: Uuid::from_u128(1),
            result: Ok((infos, usage)),
        },
    );
    let view = app.checkpoints.as_ref().unwrap();
    assert_eq!(view.selected, 2);
    assert_eq!(view.selected_checkpoint().unwrap().id, checkpoints[1].id);
}

#[test]
fn a_mark_on_a_checkpoint_the_reload_no_longer_lists_is_dropped() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    let (newest, oldest) = (checkpoints[0].id, checkpoints[1].id);
    let reload = |app: &mut App, listed: &[Checkpoint]| {
        update(
            app,
            Message::CheckpointInfosLoaded {
                workflow_state_id: Uuid::from_u128(1),
                result: Ok(crate::fixtures::checkpoint_infos(listed)),
            },
        );
    };
    let marked = |app: &App| app.checkpoints.as_ref().unwrap().marked;

    // Marked, and still listed after a reload: still marked.
    press(&mut app, "j ");
    assert_eq!(marked(&app), Some(oldest));
    reload(&mut app, &checkpoints);
    assert_eq!(marked(&app), Some(oldest));

    // Pruned meanwhile: the reload drops the mark, and `d` on what is left diffs with
    // the current state instead of asking for the missing checkpoint.
    reload(&mut app, &checkpoints[..1]);
    assert_eq!(marked(&app), None);
    app.effects.clear();
    press(&mut app, "d");
    assert_eq!(
        app.effects,
        vec![Effect::Diff {
            from: newest,
            to: None
        }]
    );
    let mentions_oldest = |effect: &Effect| match effect {
        Effect::Diff { from, to } => *from == oldest || *to == Some(oldest),
        _ => false,
    };
    assert!(!app.effects.iter().any(mentions_oldest));

    // A mark on a checkpoint that stays is kept when another goes.
    let mut app = with_checkpoints();
    press(&mut app, " ");
    assert_eq!(marked(&app), Some(newest));
    reload(&mut app, &checkpoints[..1]);
    assert_eq!(marked(&app), Some(newest));

    // An error keeps the list, and the mark with it.
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: Uuid::from_u128(1),
            result: Err("connection error".into()),
        },
    );
    assert_eq!(marked(&app), Some(newest));
}

#[test]
fn checkpoint_keys_diff_marked_and_selected() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    let (newest, oldest) = (checkpoints[0].id, checkpoints[1].id);
    press(&mut app, "d");
    assert_eq!(
        app.effects.last(),
        Some(&Effect::Diff {
            from: newest,
            to: None
        })
    );
    // Mark the newest, select the oldest: the diff goes oldest -> newest.
    press(&mut app, " jd");
    assert_eq!(
        app.effects.last(),
        Some(&Effect::Diff {
            from: oldest,
            to: Some(newest)
        })
    );
    assert!(!app.effects.iter().any(is_snapshot_load));
    update(
        &mut app,
        Message::DiffLoaded {
            from: oldest,
            to: Some(newest),
            result: Ok((
                "a -> b".into(),
                crate::diff::diff(&serde_json::json!(1), &serde_json::json!(2)),
            )),
        },
    );
    assert_eq!(app.screen(), Screen::Diff);
    assert_eq!(app.diff.as_ref().unwrap().changes.len(), 1);
    update(&mut app, key(KeyCode::Esc));
    press(&mut app, "d");
    update(
        &mut app,
        Message::DiffLoaded {
            from: oldest,
            to: Some(newest),
            result: Err("nope".into()),
        },
    );
    assert_eq!(app.error.as_deref(), Some("nope"));
    assert_eq!(app.screen(), Screen::Checkpoints);
}

#[test]
fn p_asks_for_a_label_and_pins() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    let newest = checkpoints[0].id;
    press(&mut app, "p");
    assert_eq!(
        app.popup,
        Some(Popup::Input {
            purpose: InputPurpose::PinLabel(newest),
            input: String::new(),
            error: None,
        })
    );
    update(&mut app, key(KeyCode::Enter));
    assert!(app.popup.is_some(), "an empty label is not taken");
    assert!(app.effects.is_empty());
    // And it says why nothing happened (spaces are no label either).
    assert_eq!(
        app.notice.as_deref(),
        Some("a pin needs a label: type one, then Enter (Esc cancels)")
    );
    app.notice = None;
    press(&mut app, "  ");
    update(&mut app, key(KeyCode::Enter));
    assert!(app.notice.is_some());
    update(&mut app, key(KeyCode::Backspace));
    update(&mut app, key(KeyCode::Backspace));
    press(&mut app, "before toolx");
    update(&mut app, key(KeyCode::Backspace));
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.popup, None);
    assert_eq!(
        app.effects,
        vec![Effect::SetPin {
            checkpoint: newest,
            label: Some("before tool".into())
        }]
    );
    app.effects.clear();
    update(
        &mut app,
        Message::PinSet {
            checkpoint: newest,
            label: Some("before tool".into()),
            result: Ok(()),
        },
    );
    assert_eq!(
        app.notice.as_deref(),
        Some(format!("pinned checkpoint {newest}: before tool").as_str())
    );
    assert!(app.effects.contains(&Effect::LoadCheckpointInfos(
        app.checkpoints.as_ref().unwrap().workflow_state_id
    )));
    update(
        &mut app,
        Message::PinSet {
            checkpoint: newest,
            label: None,
            result: Err("not found: checkpoint".into()),
        },
    );
    assert_eq!(
        app.write_error.as_deref(),
        Some("unpin failed, nothing changed: not found: checkpoint")
    );

    // Esc cancels.
    let mut app = with_checkpoints();
    press(&mut app, "pabc");
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.popup, None);
    assert!(app.effects.is_empty());
}

#[test]
fn p_on_a_pinned_checkpoint_asks_before_it_unpins() {
    let (_, checkpoints) = failed_workflow();
    let pinned = checkpoints[1].id;
    // `p` asks, showing the label that would be lost; nothing is written yet.
    let mut app = with_checkpoints();
    press(&mut app, "jp");
    assert_eq!(
        app.popup,
        Some(Popup::ConfirmUnpin {
            checkpoint: pinned,
            label: "approved by human".into()
        })
    );
    assert!(app.effects.is_empty());
    // Enter (out of habit) and other keys neither unpin nor close the question.
    update(&mut app, key(KeyCode::Enter));
    press(&mut app, "pj");
    assert!(matches!(app.popup, Some(Popup::ConfirmUnpin { .. })));
    assert!(app.effects.is_empty());
    // n, Esc and q keep the pin.
    for no in [KeyCode::Char('n'), KeyCode::Esc, KeyCode::Char('q')] {
        let mut app = with_checkpoints();
        press(&mut app, "jp");
        update(&mut app, key(no));
        assert_eq!(app.popup, None, "{no:?}");
        assert!(app.effects.is_empty(), "{no:?}");
        assert_eq!(
            app.notice.as_deref(),
            Some("unpin cancelled; the pin stays")
        );
    }
    // y unpins.
    update(&mut app, key(KeyCode::Char('y')));
    assert_eq!(app.popup, None);
    assert_eq!(
        app.effects,
        vec![Effect::SetPin {
            checkpoint: pinned,
            label: None
        }]
    );
    update(
        &mut app,
        Message::PinSet {
            checkpoint: pinned,
            label: None,
            result: Ok(()),
        },
    );
    assert!(app.notice.as_deref().unwrap().starts_with("unpinned"));
}

#[test]
fn shift_f_asks_for_a_workflow_id_and_forks() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    let oldest = checkpoints[1].id;
    press(&mut app, "jFretry-1");
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(
        app.effects,
        vec![Effect::Fork {
            checkpoint: oldest,
            new_workflow_id: "retry-1".into()
        }]
    );
    app.effects.clear();
    let mut fork = checkpoints[1].state().unwrap();
    fork.workflow_id = "retry-1".into();
    fork.status = WorkflowStatus::Pending;
    update(
        &mut app,
        Message::Forked {
            checkpoint: oldest,
            result: Ok(fork),
        },
    );
    let notice = app.notice.clone().unwrap();
    assert!(notice.starts_with("forked retry-1 ("), "{notice}");
    assert!(notice.ends_with(": pending"), "{notice}");
    assert!(app.effects.contains(&Effect::LoadCounts), "a refresh");
    update(
        &mut app,
        Message::Forked {
            checkpoint: oldest,
            result: Err("conflict".into()),
        },
    );
    assert_eq!(
        app.write_error.as_deref(),
        Some("fork failed, nothing changed: conflict")
    );
}

#[test]
fn read_only_mode_refuses_pin_and_fork() {
    let mut app = with_checkpoints();
    app.read_only = true;
    press(&mut app, "p");
    assert_eq!(app.popup, None);
    assert!(app.error.as_deref().unwrap().contains("read-only"));
    app.error = None;
    press(&mut app, "F");
    assert_eq!(app.popup, None);
    assert!(app.error.as_deref().unwrap().contains("read-only"));
    assert!(app.effects.is_empty());
}
