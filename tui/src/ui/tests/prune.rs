//! The prune popup: preview, report, policy input, read-only mode, tiny terminals.

use super::*;

fn prune_app(dry_run: bool) -> App {
    let mut app = loaded_app();
    update(
        &mut app,
        Message::Pruned {
            policy: default_prune_policy(),
            dry_run,
            result: Ok(PruneReport {
                dry_run,
                workflows: 3,
                checkpoints: 41,
                bytes: 83_200,
            }),
        },
    );
    app
}

#[test]
fn counts_of_one_are_singular_in_the_prune_popup_and_the_status_bar() {
    let mut app = loaded_app();
    update(
        &mut app,
        Message::Pruned {
            policy: default_prune_policy(),
            dry_run: true,
            result: Ok(PruneReport {
                dry_run: true,
                workflows: 1,
                checkpoints: 1,
                bytes: 639,
            }),
        },
    );
    app.counts = Default::default();
    app.counts.by_status.insert("failed".into(), 1);
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("would delete: 1 workflow, 1 checkpoint, 639 B"),
        "{text}"
    );
    assert!(text.contains(" 1 workflow: 1 failed"), "{text}");
}

#[test]
fn prune_preview_popup() {
    assert_snapshot!(draw(&prune_app(true)).backend());
}

#[test]
fn prune_report_popup() {
    assert_snapshot!(draw(&prune_app(false)).backend());
}

/// The prune preview, `e`, and the policy typed over the one shown.
fn prune_policy_app(policy: &str) -> App {
    let mut app = prune_app(true);
    press(&mut app, "e");
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    press(&mut app, policy);
    app
}

#[test]
fn prune_policy_input_with_an_error() {
    let mut app = prune_policy_app("older-than=30days keep-checkpoints=3");
    update(&mut app, key(KeyCode::Enter));
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn prune_preview_of_an_edited_policy() {
    let mut app = prune_policy_app("keep-checkpoints=3 keep-younger-than=7d");
    update(&mut app, key(KeyCode::Enter));
    let [Effect::Prune { policy, dry_run }] = app.effects[..] else {
        panic!("{:?}", app.effects);
    };
    assert!(dry_run);
    update(
        &mut app,
        Message::Pruned {
            policy,
            dry_run,
            result: Ok(PruneReport {
                dry_run,
                workflows: 0,
                checkpoints: 12,
                bytes: 20_480,
            }),
        },
    );
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn prune_preview_in_read_only_mode_says_so() {
    let mut app = prune_app(true);
    app.read_only = true;
    let text = draw(&app).backend().to_string();
    assert!(text.contains("read-only mode: preview only"), "{text}");
    assert!(!text.contains("y: prune"), "{text}");
}

#[test]
fn a_prune_preview_on_a_tiny_terminal_keeps_its_keys_in_view() {
    let mut app = prune_app(true);
    update(&mut app, Message::Resize { rows: 12, cols: 40 });
    let text = draw_sized(&app, 40, 12);
    assert!(text.contains("y: prune"), "{text}");
    // (its end, "to scroll)", is cut at this width)
    assert!(text.contains("more lines (j/k"), "{text}");
    press(&mut app, "G");
    let text = draw_sized(&app, 40, 12);
    assert!(text.contains("would delete: 3"), "{text}");
    assert!(text.contains("y: prune"), "{text}");
}
