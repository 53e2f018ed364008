//! The snapshot screen: one checkpoint's state, fetched by id.

use super::*;

#[test]
fn enter_opens_the_snapshot_at_once_and_fetches_it_by_id() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    let newest = &checkpoints[0];
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.screen(), Screen::Snapshot);
    assert_eq!(app.effects, vec![Effect::LoadSnapshot(newest.id)]);
    let view = app.snapshot.as_ref().unwrap();
    assert_eq!(view.info.id, newest.id);
    assert_eq!(view.info.step_id, "prompt");
    assert_eq!(view.lines, None, "loading");
    // While it loads: nothing to scroll, but diff and rollback work (they go by id).
    press(&mut app, "jd");
    assert_eq!(app.snapshot.as_ref().unwrap().scroll, 0);
    assert_eq!(
        app.effects.last(),
        Some(&Effect::Diff {
            from: newest.id,
            to: None
        })
    );
    press(&mut app, "R");
    assert_eq!(app.effects.last(), Some(&Effect::PlanRollback(newest.id)));

    update(&mut app, snapshot_loaded(newest));
    let lines = app.snapshot.as_ref().unwrap().lines.clone().unwrap();
    assert_eq!(lines, format::pretty_lines(&newest.snapshot));
    assert_eq!(lines[0], "{");
    press(&mut app, "j");
    assert_eq!(app.snapshot.as_ref().unwrap().scroll, 1);
    update(&mut app, key(KeyCode::End));
    assert_eq!(app.snapshot.as_ref().unwrap().scroll, lines.len() - 1);
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.screen(), Screen::Checkpoints);
}

#[test]
fn a_snapshot_the_user_left_is_not_shown_for_another() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    let (newest, oldest) = (&checkpoints[0], &checkpoints[1]);
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, key(KeyCode::Esc));
    press(&mut app, "j");
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.effects.last(), Some(&Effect::LoadSnapshot(oldest.id)));
    update(&mut app, snapshot_loaded(newest));
    let view = app.snapshot.as_ref().unwrap();
    assert_eq!((view.info.id, view.lines.as_ref()), (oldest.id, None));
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: newest.id,
            result: Err("not found".into()),
        },
    );
    assert_eq!(app.error, None, "an error about it is dropped too");
    assert_eq!(app.screen(), Screen::Snapshot);
    update(&mut app, snapshot_loaded(oldest));
    assert!(app.snapshot.as_ref().unwrap().lines.is_some());
}

#[test]
fn a_snapshot_that_cannot_load_says_why_and_reloads_the_list() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    let newest = checkpoints[0].id;
    update(&mut app, key(KeyCode::Enter));
    app.effects.clear();
    let err = format!("not found: checkpoint {newest}");
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: newest,
            result: Err(err.clone()),
        },
    );
    assert_eq!(app.screen(), Screen::Checkpoints, "back to the list");
    assert_eq!(app.snapshot, None);
    assert_eq!(app.error, Some(format!("cannot open the snapshot: {err}")));
    assert_eq!(
        app.effects,
        vec![Effect::LoadCheckpointInfos(Uuid::from_u128(1))]
    );
    // The list comes back without the pruned checkpoint.
    let (infos, usage) = crate::fixtures::checkpoint_infos(&checkpoints[1..]);
    update(
        &mut app,
        Message::CheckpointInfosLoaded {
            workflow_state_id: Uuid::from_u128(1),
            result: Ok((infos, usage)),
        },
    );
    let view = app.checkpoints.as_ref().unwrap();
    assert_eq!(view.selected_checkpoint().unwrap().id, checkpoints[1].id);

    // The same if the user went back before the answer came.
    let mut app = with_checkpoints();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, key(KeyCode::Esc));
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: newest,
            result: Err("connection error".into()),
        },
    );
    assert_eq!(
        app.screens,
        vec![Screen::Workflows, Screen::Checkpoints],
        "no screen popped twice"
    );
    assert!(app.error.as_deref().unwrap().contains("connection error"));
}

#[test]
fn a_long_snapshot_scrolls_to_its_last_line() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = long_workflow();
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, snapshot_loaded(&checkpoints[0]));
    let lines = LONG + 4;
    let view = app.snapshot.as_ref().unwrap();
    assert_eq!(view.lines.as_ref().map(Vec::len), Some(lines));
    assert_scrolls_to_the_last_line(&mut app, lines, |app| app.snapshot.as_ref().unwrap().scroll);
}
