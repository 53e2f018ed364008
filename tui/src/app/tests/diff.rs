//! The diff screen.

use super::*;

#[test]
fn a_long_diff_scrolls_to_its_last_change() {
    let mut app = with_checkpoints();
    crate::fixtures::open_long_diff(&mut app);
    assert_eq!(app.screen(), Screen::Diff);
    assert_scrolls_to_the_last_line(&mut app, LONG, |app| app.diff.as_ref().unwrap().scroll);
}
