//! The checkpoints screen and the popups it opens for pins and forks.

use super::*;

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
