//! The keys every screen shares (help, back, quit) and the one-line text inputs.

use super::*;

#[test]
fn text_inputs_edit_like_a_shell_line_and_never_type_control_keys() {
    let ctrl = |c| Message::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
    let mut app = loaded_app();
    press(&mut app, "/");
    let input = |app: &App| match &app.popup {
        Some(Popup::Filter { input }) => input.clone(),
        other => panic!("{other:?}"),
    };
    press(&mut app, "rag answer");
    update(&mut app, ctrl('w'));
    assert_eq!(input(&app), "rag ");
    update(&mut app, ctrl('x'));
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Char('b'), KeyModifiers::ALT)),
    );
    assert_eq!(input(&app), "rag ", "Ctrl-X and Alt-B are not text");
    update(&mut app, ctrl('u'));
    assert_eq!(input(&app), "");
    // Upper case comes with Shift, which is text.
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Char('R'), KeyModifiers::SHIFT)),
    );
    assert_eq!(input(&app), "R");
    // AltGr arrives as Ctrl+Alt: text.
    update(
        &mut app,
        Message::Key(KeyEvent::new(
            KeyCode::Char('@'),
            KeyModifiers::CONTROL | KeyModifiers::ALT,
        )),
    );
    assert_eq!(input(&app), "R@");
}

#[test]
fn help_opens_and_any_key_closes_it() {
    let mut app = loaded_app();
    press(&mut app, "?");
    assert_eq!(app.popup, Some(Popup::Help { scroll: 0 }));
    // Movement keys scroll it (a short terminal cannot show every key), down to
    // where its last line is at the bottom.
    update(&mut app, Message::Resize { rows: 24, cols: 80 });
    press(&mut app, "jjk");
    assert_eq!(app.popup, Some(Popup::Help { scroll: 1 }));
    press(&mut app, "G");
    let last = crate::ui::help::line_count(false) - (24 - 4);
    assert_eq!(app.popup, Some(Popup::Help { scroll: last }));
    press(&mut app, "k");
    assert_eq!(app.popup, Some(Popup::Help { scroll: last - 1 }));
    press(&mut app, "q");
    assert_eq!(app.popup, None);
    assert!(!app.quit, "the key only closed the help");
    // A terminal tall enough for all of it: any key closes it, j too.
    update(&mut app, Message::Resize { rows: 60, cols: 80 });
    press(&mut app, "?j");
    assert_eq!(app.popup, None);
}

#[test]
fn q_goes_back_then_quits_and_ctrl_c_quits_at_once() {
    let mut app = loaded_app();
    press(&mut app, "c");
    press(&mut app, "q");
    assert!(!app.quit);
    assert_eq!(app.screen(), Screen::Workflows);
    press(&mut app, "q");
    assert!(app.quit);

    let mut app = loaded_app();
    press(&mut app, "c");
    update(
        &mut app,
        Message::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(app.quit);
}

#[test]
fn a_dead_task_ends_the_ui_with_its_error() {
    let mut app = loaded_app();
    update(&mut app, Message::Fatal("task panicked".into()));
    assert!(app.quit);
    assert_eq!(app.fatal.as_deref(), Some("task panicked"));
}

#[test]
fn resize_changes_only_the_size() {
    let mut app = loaded_app();
    let before = app.clone();
    update(&mut app, Message::Resize { rows: 40, cols: 80 });
    assert_eq!(
        app,
        App {
            rows: 40,
            cols: 80,
            ..before
        }
    );
}
