//! The prune popup: the preview, the policy input and the prune.

use super::*;

fn report(dry_run: bool) -> PruneReport {
    PruneReport {
        dry_run,
        workflows: 2,
        checkpoints: 7,
        bytes: 4096,
    }
}

/// The prune popup showing the preview of `policy` (a dry run's report).
fn previewing(policy: RetentionPolicy) -> Option<Popup> {
    Some(Popup::Prune {
        policy,
        report: report(true),
        done: false,
        scroll: 0,
    })
}

#[test]
fn shift_p_previews_a_prune_and_y_applies_it() {
    let mut app = loaded_app();
    app.effects.clear();
    press(&mut app, "P");
    let policy = default_prune_policy();
    assert_eq!(
        app.effects,
        vec![Effect::Prune {
            policy,
            dry_run: true
        }]
    );
    app.effects.clear();
    update(
        &mut app,
        Message::Pruned {
            policy,
            dry_run: true,
            result: Ok(report(true)),
        },
    );
    assert_eq!(app.popup, previewing(policy));
    assert!(app.effects.is_empty(), "a preview changes nothing");
    press(&mut app, "x");
    assert!(app.popup.is_some(), "other keys keep the question open");
    update(&mut app, key(KeyCode::Enter));
    assert!(app.popup.is_some(), "Enter does not confirm");
    assert!(app.effects.is_empty(), "Enter prunes nothing");
    press(&mut app, "y");
    assert_eq!(
        app.effects,
        vec![Effect::Prune {
            policy,
            dry_run: false
        }]
    );
    app.effects.clear();
    update(
        &mut app,
        Message::Pruned {
            policy,
            dry_run: false,
            result: Ok(report(false)),
        },
    );
    assert_eq!(
        app.popup,
        Some(Popup::Prune {
            policy,
            report: report(false),
            done: true,
            scroll: 0
        })
    );
    assert_eq!(
        app.notice.as_deref(),
        Some("pruned 2 workflows, 7 checkpoints, 4.0 KiB")
    );
    assert!(app.effects.contains(&Effect::LoadCounts), "a refresh");
    app.effects.clear();
    press(&mut app, "y");
    assert_eq!(app.popup, None, "any key closes the report");
    assert!(app.effects.is_empty());

    update(
        &mut app,
        Message::Pruned {
            policy,
            dry_run: false,
            result: Err(WriteError::new(
                llm_orchestrator_state::ErrorKind::ConnectionFailed,
                "connection error",
            )),
        },
    );
    assert_eq!(
        app.write_error.as_deref(),
        Some(
            "prune unconfirmed, it may or may not have been applied (r reloads): \
             connection error"
        )
    );
    // A preview that fails wrote nothing either: a read's error.
    update(
        &mut app,
        Message::Pruned {
            policy,
            dry_run: true,
            result: Err("connection error".into()),
        },
    );
    assert_eq!(
        app.error.as_deref(),
        Some("prune preview failed: connection error")
    );
}

/// The prune popup of `policy`'s preview, open on `app`.
fn preview(app: &mut App, policy: RetentionPolicy) {
    update(
        app,
        Message::Pruned {
            policy,
            dry_run: true,
            result: Ok(report(true)),
        },
    );
}

/// The policy text being edited in the prune popup, and its error.
fn policy_input(app: &App) -> (String, Option<String>) {
    match &app.popup {
        Some(Popup::Input {
            purpose: InputPurpose::PrunePolicy { .. },
            input,
            error,
        }) => (input.clone(), error.clone()),
        other => panic!("not editing a policy: {other:?}"),
    }
}

#[test]
fn e_edits_the_prune_policy_previews_it_and_y_prunes_with_exactly_that_one() {
    let mut app = loaded_app();
    preview(&mut app, default_prune_policy());
    app.effects.clear();
    press(&mut app, "e");
    assert_eq!(
        policy_input(&app),
        (
            "older-than=30d keep-checkpoints=10 keep-younger-than=off".to_owned(),
            None
        ),
        "the input starts from the policy shown"
    );
    // Ctrl-U clears it; a rule left out is off.
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    press(&mut app, "keep-checkpoints=3 keep-younger-than=7d");
    assert!(app.effects.is_empty(), "typing runs nothing");
    update(&mut app, key(KeyCode::Enter));
    let edited = RetentionPolicy {
        keep_last: Some(3),
        keep_younger_than: Some(Duration::from_secs(7 * 86_400)),
        delete_finished_older_than: None,
    };
    assert_eq!(
        app.effects,
        vec![Effect::Prune {
            policy: edited,
            dry_run: true
        }],
        "Enter previews the edited policy, a dry run"
    );
    assert_eq!(app.popup, None, "until the preview comes back");
    app.effects.clear();
    preview(&mut app, edited);
    assert_eq!(app.popup, previewing(edited));
    press(&mut app, "y");
    assert_eq!(
        app.effects,
        vec![Effect::Prune {
            policy: edited,
            dry_run: false
        }],
        "y prunes with the policy previewed"
    );

    // `P` again, later in the session, starts from the policy last previewed.
    app.popup = None;
    app.effects.clear();
    press(&mut app, "P");
    assert_eq!(
        app.effects,
        vec![Effect::Prune {
            policy: edited,
            dry_run: true
        }],
        "P previews the edited policy again, not the default"
    );

    // Esc leaves the input for the preview it came from, unchanged.
    let mut app = loaded_app();
    preview(&mut app, edited);
    app.effects.clear();
    press(&mut app, "e");
    press(&mut app, "0");
    update(&mut app, key(KeyCode::Esc));
    assert!(app.effects.is_empty());
    assert_eq!(app.popup, previewing(edited));
    press(&mut app, "y");
    assert_eq!(
        app.effects,
        vec![Effect::Prune {
            policy: edited,
            dry_run: false
        }]
    );

    // A read-only session may edit and preview too; the report is not edited.
    let mut app = loaded_app();
    app.read_only = true;
    preview(&mut app, edited);
    press(&mut app, "e");
    assert!(matches!(app.popup, Some(Popup::Input { .. })));
    let mut app = loaded_app();
    update(
        &mut app,
        Message::Pruned {
            policy: edited,
            dry_run: false,
            result: Ok(report(false)),
        },
    );
    press(&mut app, "e");
    assert_eq!(app.popup, None, "any key closes the report");
}

#[test]
fn a_prune_policy_that_does_not_parse_says_why_and_changes_nothing() {
    let mut app = loaded_app();
    preview(&mut app, default_prune_policy());
    app.effects.clear();
    press(&mut app, "e");
    update(&mut app, key(KeyCode::Backspace));
    update(&mut app, key(KeyCode::Backspace));
    update(&mut app, key(KeyCode::Backspace));
    press(&mut app, "1x");
    update(&mut app, key(KeyCode::Enter));
    assert!(app.effects.is_empty(), "no preview, no prune");
    assert_eq!(
        policy_input(&app),
        (
            "older-than=30d keep-checkpoints=10 keep-younger-than=1x".to_owned(),
            Some("keep-younger-than: unknown unit \"x\" in \"1x\": use s, m, h, d or w".to_owned())
        ),
        "the text stays, to be fixed"
    );
    // Nothing at all to prune is refused as the CLI refuses it.
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    press(&mut app, "older-than=off");
    update(&mut app, key(KeyCode::Enter));
    assert!(app.effects.is_empty());
    assert!(
        policy_input(&app)
            .1
            .unwrap()
            .starts_with("nothing to prune")
    );
    // Esc: the first preview, whose policy `y` still applies.
    update(&mut app, key(KeyCode::Esc));
    press(&mut app, "y");
    assert_eq!(
        app.effects,
        vec![Effect::Prune {
            policy: default_prune_policy(),
            dry_run: false
        }]
    );
}

#[test]
fn a_prune_preview_can_be_cancelled_and_read_only_mode_only_previews() {
    let policy = default_prune_policy();
    let preview = Message::Pruned {
        policy,
        dry_run: true,
        result: Ok(report(true)),
    };
    let mut app = loaded_app();
    update(&mut app, preview.clone());
    app.effects.clear();
    press(&mut app, "n");
    assert_eq!(app.popup, None);
    assert!(app.effects.is_empty());
    assert!(app.notice.as_deref().unwrap().contains("cancelled"));

    let mut app = loaded_app();
    app.read_only = true;
    app.effects.clear();
    press(&mut app, "P");
    assert_eq!(app.effects.len(), 1, "a dry run reads only");
    app.effects.clear();
    update(&mut app, preview);
    press(&mut app, "y");
    assert!(app.effects.is_empty());
    assert!(app.error.as_deref().unwrap().contains("read-only"));
}
