//! The filter and help popups.

use super::*;

#[test]
fn filter_popup() {
    let mut app = loaded_app();
    press(&mut app, "/rag");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn help_popup() {
    let mut app = loaded_app();
    press(&mut app, "?");
    assert_snapshot!(draw(&app).backend());
}

#[test]
fn the_help_scrolls_in_an_80_by_24_terminal() {
    let draw_small = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| super::view(app, frame)).unwrap();
        terminal.backend().to_string()
    };
    let mut app = loaded_app();
    app.read_only = true;
    update(&mut app, Message::Resize { rows: 24, cols: 80 });
    press(&mut app, "?");
    let text = draw_small(&app);
    assert!(
        text.contains(" Keys (j/k scroll, any other key closes) "),
        "{text}"
    );
    assert!(text.contains("read-only mode"), "{text}");
    assert!(text.contains(" 9 more below (j) "), "{text}");
    assert!(!text.contains("diff with current / rollback"), "{text}");
    // The last key is reachable, on the popup's last row, and what is above is counted.
    // Every line is whole: the popup takes the whole width of a narrow terminal.
    press(&mut app, "G");
    let text = draw_small(&app);
    assert!(
        text.contains("fork: a new workflow from this checkpoint "),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[20].contains("diff with current / rollback"), "{text}");
    assert!(lines[21].contains(" 9 more above (k) "), "{text}");
    press(&mut app, "k");
    let text = draw_small(&app);
    assert!(text.contains(" 8 above (k), 1 below (j) "), "{text}");
    // Any other key closes it.
    press(&mut app, "q");
    assert!(app.popup.is_none());
}

#[test]
fn the_help_in_read_only_mode_says_what_is_disabled() {
    // Every key fills a 32-row terminal: the note comes first, so it is never cut.
    let mut app = loaded_app();
    app.read_only = true;
    press(&mut app, "?");
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains("read-only mode: rollback, pin, fork and prune are disabled"),
        "{text}"
    );
}
