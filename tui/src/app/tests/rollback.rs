//! The rollback: its plan, its confirmation popup and its answer.

use super::*;

#[test]
fn rollback_asks_first_and_can_be_cancelled() {
    let mut app = with_checkpoints();
    press(&mut app, "jR");
    let (state, checkpoints) = failed_workflow();
    let oldest = checkpoints[1].clone();
    assert_eq!(app.effects.last(), Some(&Effect::PlanRollback(oldest.id)));
    let plan = RollbackPlan::new(state, oldest.clone()).unwrap();
    let planned = |result| Message::RollbackPlanned {
        checkpoint: oldest.id,
        result,
    };
    update(&mut app, planned(Ok(Box::new(plan.clone()))));
    assert!(matches!(app.popup, Some(Popup::ConfirmRollback { .. })));
    app.effects.clear();
    press(&mut app, "x");
    assert!(app.popup.is_some(), "other keys keep the question open");
    update(&mut app, key(KeyCode::Enter));
    assert!(app.popup.is_some(), "Enter does not confirm");
    assert!(app.effects.is_empty(), "Enter rolls back nothing");
    press(&mut app, "n");
    assert_eq!(app.popup, None);
    assert!(app.effects.is_empty());
    press(&mut app, "R");
    update(&mut app, planned(Ok(Box::new(plan))));
    app.effects.clear();
    press(&mut app, "y");
    assert_eq!(app.effects, vec![Effect::Rollback(oldest.id)]);
    press(&mut app, "R");
    update(&mut app, planned(Err("no such checkpoint".into())));
    assert_eq!(app.error.as_deref(), Some("no such checkpoint"));
}

#[test]
fn a_failed_rollback_says_so_until_a_key_and_its_notice_never_comes_back() {
    let mut app = with_checkpoints();
    let (state, checkpoints) = failed_workflow();
    let oldest = checkpoints[1].clone();
    press(&mut app, "jR");
    let plan = RollbackPlan::new(state, oldest.clone()).unwrap();
    update(
        &mut app,
        Message::RollbackPlanned {
            checkpoint: oldest.id,
            result: Ok(Box::new(plan)),
        },
    );
    press(&mut app, "y");
    assert_eq!(app.notice.as_deref(), Some("rolling back..."));
    app.effects.clear();

    // The connection is lost: the rollback fails, and so does the next refresh.
    update(
        &mut app,
        Message::RolledBack(Err(WriteError::new(
            llm_orchestrator_state::ErrorKind::ConnectionFailed,
            "connection error: connection reset",
        ))),
    );
    // The answer was lost, not necessarily the write.
    let failed = "rollback unconfirmed, it may or may not have been applied (r reloads): \
                  connection error: connection reset";
    assert_eq!(app.write_error.as_deref(), Some(failed));
    assert_eq!(
        app.notice, None,
        "the result arrived: no longer rolling back"
    );
    let status = |app: &App| {
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(200, 10)).unwrap();
        terminal.draw(|frame| crate::ui::view(app, frame)).unwrap();
        terminal
            .backend()
            .to_string()
            .lines()
            .last()
            .unwrap()
            .to_owned()
    };
    assert!(status(&app).contains(failed), "{}", status(&app));
    update(
        &mut app,
        Message::CountsLoaded(Err("connection error: gone".into())),
    );
    assert!(
        status(&app).contains(failed),
        "a read's error does not hide it"
    );
    // The connection is back: the reads succeed, the write's failure stays, and
    // "rolling back..." does not come back.
    update(&mut app, Message::CountsLoaded(Ok(Default::default())));
    let message = loaded(&app, summaries());
    update(&mut app, message);
    assert!(status(&app).contains(failed), "{}", status(&app));
    assert!(!status(&app).contains("rolling back"), "{}", status(&app));
    // The operator presses a key: it has been read.
    press(&mut app, "j");
    assert_eq!(app.write_error, None);
    let keys = status(&app);
    assert!(keys.contains("R rollback"), "the keys again: {keys}");
    assert!(
        !keys.contains("failed") && !keys.contains("rolling back"),
        "{keys}"
    );
}

#[test]
fn read_only_mode_refuses_rollback() {
    let mut app = with_checkpoints();
    app.read_only = true;
    press(&mut app, "R");
    assert!(app.effects.is_empty());
    assert!(app.error.as_deref().unwrap().contains("read-only"));
}

#[test]
fn a_finished_rollback_shows_the_workflow_and_refreshes() {
    let mut app = with_checkpoints();
    let (_, checkpoints) = failed_workflow();
    let rolled_back = checkpoints[1].state().unwrap();
    let printed = LoadedDetail::print(rolled_back.clone(), None);
    update(&mut app, Message::RolledBack(Ok(printed)));
    assert_eq!(app.screens, vec![Screen::Workflows, Screen::Detail]);
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(detail.state, rolled_back);
    assert_eq!(detail.version, None);
    assert!(app.notice.as_deref().unwrap().contains("now running"));
    assert!(app.effects.contains(&Effect::LoadCounts));
    // Its version is unknown: it is read again in full.
    assert!(app.effects.contains(&Effect::LoadDetail(rolled_back.id)));
    update(&mut app, Message::RolledBack(Err("conflict".into())));
    assert_eq!(
        app.write_error.as_deref(),
        Some("rollback failed, nothing changed: conflict")
    );
}
