//! The diff screen.

use super::*;

#[test]
fn diff_screen() {
    let (state, checkpoints) = failed_workflow();
    let mut app = checkpoints_app();
    let changes = crate::diff::diff(
        &checkpoints[1].snapshot,
        &serde_json::to_value(&state).unwrap(),
    );
    press(&mut app, "jd");
    update(
        &mut app,
        Message::DiffLoaded {
            from: checkpoints[1].id,
            to: None,
            result: Ok((
                "after retrieve (2026-11-25 09:00:03) -> current state".into(),
                changes,
            )),
        },
    );
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn the_diff_screen_draws_the_changes_in_view_past_line_65535() {
    let mut app = checkpoints_app();
    crate::fixtures::open_long_diff(&mut app);
    update(&mut app, key(KeyCode::End));
    update(&mut app, key(KeyCode::PageUp));
    assert_eq!(
        box_rows(&draw(&app), "Diff long", 3),
        [
            "+ context.messages[79979]: 79979",
            "+ context.messages[79980]: 79980",
            "+ context.messages[79981]: 79981",
        ]
    );
    update(&mut app, key(KeyCode::End));
    assert_eq!(
        box_rows(&draw(&app), "Diff long", 2),
        ["+ context.messages[79999]: 79999", ""]
    );
}
