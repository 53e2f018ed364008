//! The rollback confirmation popup, and the detail screen after a rollback.

use super::*;

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
