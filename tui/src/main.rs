//! Admin UI (work in progress).
fn main() {}
