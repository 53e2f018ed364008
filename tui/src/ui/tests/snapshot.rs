//! The snapshot screen: loading, scrolling, and a checkpoint that is gone.

use super::*;

#[test]
fn snapshot_screen() {
    let app = the_oldest_snapshot_loaded();
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn snapshot_screen_while_it_loads() {
    assert_snapshot!(draw(&opening_the_oldest_snapshot()).backend());
}

#[test]
fn snapshot_screen_scrolled_draws_the_lines_in_view() {
    let mut app = the_oldest_snapshot_loaded();
    press(&mut app, "jj");
    let text = draw(&app).backend().to_string();
    let first = text.lines().nth(1).unwrap_or_default();
    assert!(first.starts_with(r#""│  "context": {"#), "{text}");
    assert!(
        text.contains(r#""updated_at": "2026-11-25T09:00:03Z""#),
        "{text}"
    );
}

#[test]
fn a_snapshot_that_is_gone_shows_the_error_over_the_list() {
    let (_, checkpoints) = failed_workflow();
    let id = checkpoints[1].id;
    let mut app = opening_the_oldest_snapshot();
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: id,
            result: Err(format!("not found: checkpoint {id}")),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(text.contains("Checkpoints of rag-answer-0001"), "{text}");
    assert!(
        text.contains(&format!(
            "error: cannot open the snapshot: not found: checkpoint {id}"
        )),
        "{text}"
    );
}

#[test]
fn snapshot_screen_of_the_orchestrators_own_json() {
    let (mut app, own) = checkpoints_app_with_own_json();
    update(&mut app, enter());
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: own.id,
            result: Ok(crate::format::pretty_lines(&own.snapshot)),
        },
    );
    let text = draw(&app).backend().to_string();
    assert!(text.contains(r#""checkpoint": 3,"#), "{text}");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn the_snapshot_screen_draws_the_lines_in_view_past_line_65535() {
    let (_, checkpoints) = long_workflow();
    let mut app = checkpoints_app();
    update(&mut app, enter());
    update(
        &mut app,
        Message::SnapshotLoaded {
            checkpoint: checkpoints[0].id,
            result: Ok(crate::format::pretty_lines(&checkpoints[0].snapshot)),
        },
    );
    update(&mut app, key(KeyCode::End));
    press(&mut app, "kkk");
    let terminal = draw(&app);
    assert_eq!(
        box_rows(&terminal, "Snapshot after prompt", 5),
        [
            r#"    "line 79998","#,
            r#"    "line 79999""#,
            "  ]",
            "}",
            ""
        ]
    );
    for _ in 0..500 {
        update(&mut app, key(KeyCode::PageUp));
    }
    assert_eq!(
        box_rows(&draw(&app), "Snapshot after prompt", 1),
        [r#"    "line 69998","#]
    );
}
