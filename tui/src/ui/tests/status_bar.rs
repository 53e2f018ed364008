//! The status bar: counts, notices, errors and read-only mode; and escaping on every screen.

use super::*;

#[test]
fn the_status_bar_counts_the_stuck_workflows() {
    let mut app = loaded_app();
    let status_line = |app: &App| {
        let text = draw(app).backend().to_string();
        text.lines().rev().nth(1).unwrap().to_owned()
    };
    assert!(
        !status_line(&app).contains("stuck"),
        "{}",
        status_line(&app)
    );
    let mut counts = crate::fixtures::counts();
    counts.lease_expired = 2;
    update(&mut app, Message::CountsLoaded(Ok(counts)));
    assert!(
        status_line(&app).starts_with("\" 2 stuck (x)  sqlite://workflows.db  5 workflows:"),
        "{}",
        status_line(&app)
    );
}

#[test]
fn read_only_status_bar() {
    let mut app = loaded_app();
    app.read_only = true;
    app.database = "postgres://ops:***@db.internal/prod".into();
    let terminal = draw(&app);
    let text = terminal.backend().to_string();
    assert!(text.contains("READ-ONLY"));
    assert!(text.contains("postgres://ops:***@db.internal/prod"));
}

#[test]
fn after_a_pin_the_status_bar_says_what_happened() {
    let mut app = checkpoints_app();
    update(
        &mut app,
        Message::PinSet {
            checkpoint: uuid::Uuid::from_u128(0x101),
            label: Some("before tool call".into()),
            result: Ok(()),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("pinned checkpoint 00000000-0000-0000-0000-000000000101: before tool call"),
        "{text}"
    );
}

#[test]
fn stored_control_characters_are_shown_escaped_on_every_screen() {
    const USER: &str = "evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED";
    let (mut state, _) = failed_workflow();
    state.user_id = Some(USER.to_owned());
    state.error = Some("boom\r\u{1b}[2J".to_owned());
    state.steps.get_mut("tool_call").unwrap().error = Some("step\u{9b}5m failed".to_owned());
    let mut app = loaded_app();
    app.workflows.rows[0].user_id = Some(USER.to_owned());
    app.workflows.rows[0].workflow_name = "name\rline".to_owned();
    // USER is ten columns wide: the start of the escape shows.
    let list = draw(&app).backend().to_string();
    assert!(list.contains(r" evil\u{1b} "), "{list}");
    assert!(list.contains(r"name\rline"), "{list}");

    let mut app = detail_of(state, WorkflowHistory::default());
    press(&mut app, "jj");
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains(r"evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED"),
        "{text}"
    );
    assert!(text.contains(r"boom\r\u{1b}[2J"), "{text}");
    assert!(text.contains(r"step\u{9b}5m failed"), "{text}");

    // The status bar: an error quoting stored data.
    app.show_error("no workflow \u{1b}[2Jx".to_owned());
    let text = draw(&app).backend().to_string();
    assert!(text.contains(r"error: no workflow \u{1b}[2Jx"), "{text}");
}
