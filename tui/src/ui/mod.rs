//! `view`: draws the model. One file per screen or popup.

mod checkpoints;
pub(crate) mod confirm;
mod detail;
mod diff;
mod filter;
pub(crate) mod help;
mod input;
mod json;
pub(crate) mod prune;
mod snapshot;
mod status_bar;
pub(crate) mod unpin;
mod workflows;

use llm_orchestrator_state::WorkflowStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};

use crate::app::{App, Popup, Screen};

/// Draws the whole UI for `app`.
pub fn view(app: &App, frame: &mut Frame) {
    let [main, status] = split(frame.area());
    match app.screen() {
        Screen::Workflows => workflows::render(app, frame, main),
        Screen::Detail => detail::render(app, frame, main),
        Screen::Checkpoints => checkpoints::render(app, frame, main),
        Screen::Snapshot => snapshot::render(app, frame, main),
        Screen::Diff => diff::render(app, frame, main),
    }
    status_bar::render(app, frame, status);
    match &app.popup {
        Some(Popup::Help { scroll }) => help::render(app.read_only, *scroll, frame, main),
        Some(Popup::Filter { input }) => filter::render(input, frame, main),
        Some(Popup::ConfirmRollback { plan, scroll }) => {
            confirm::render(confirm::rollback(plan), *scroll, frame, main);
        }
        Some(Popup::Input {
            purpose,
            input,
            error,
        }) => input::render(*purpose, input, error.as_deref(), frame, main),
        Some(Popup::Prune {
            policy,
            report,
            done,
            scroll,
        }) => confirm::render(
            prune::confirmation(policy, report, *done, app.read_only),
            *scroll,
            frame,
            main,
        ),
        Some(Popup::ConfirmUnpin { checkpoint, label }) => {
            confirm::render(unpin::confirmation(*checkpoint, label), 0, frame, main);
        }
        None => {}
    }
}

/// A terminal's `area` as the screens and popups above, the two status lines below.
fn split(area: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area)
}

/// The part of a terminal's `area` the screens and popups use: all but the status lines.
pub fn main_area(area: Rect) -> Rect {
    split(area)[0]
}

/// The colour of a workflow status.
pub fn status_style(status: WorkflowStatus) -> Style {
    let color = match status {
        WorkflowStatus::Pending => Color::Gray,
        WorkflowStatus::Running => Color::Cyan,
        WorkflowStatus::Paused => Color::Yellow,
        WorkflowStatus::Completed => Color::Green,
        WorkflowStatus::Failed => Color::Red,
    };
    Style::new().fg(color)
}

/// The colour of a step status.
pub fn step_style(status: llm_orchestrator_state::StepStatus) -> Style {
    use llm_orchestrator_state::StepStatus as S;
    let color = match status {
        S::Pending => Color::Gray,
        S::Running => Color::Cyan,
        S::Completed => Color::Green,
        S::Failed => Color::Red,
        S::Skipped => Color::DarkGray,
    };
    Style::new().fg(color)
}

/// The style of the selected row.
pub fn selected_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// The style of table headers.
pub fn header_style() -> Style {
    Style::new().add_modifier(Modifier::BOLD).fg(Color::Blue)
}

/// What a box `height` rows tall shows of `items` (lines, changes) scrolled `scroll` down.
/// Screens build and draw only these: a text can run to hundreds of thousands of lines,
/// more than is cheap to colour on every frame and more than `Paragraph::scroll` (u16)
/// can reach.
pub fn in_view<T>(items: &[T], scroll: usize, height: u16) -> &[T] {
    let start = scroll.min(items.len());
    let end = start.saturating_add(usize::from(height)).min(items.len());
    &items[start..end]
}

/// The rows of a table that an area `height` rows tall (borders and header included)
/// shows with row `selected` selected, and the selected row's index among them. Tables
/// turn only these into widgets (a workflow can have 30,000 steps), scrolled as ratatui
/// scrolls a table drawn afresh: the selected row at the bottom edge once it is below
/// the first screenful.
pub fn table_rows_in_view<T>(rows: &[T], selected: usize, height: u16) -> (&[T], usize) {
    let fits = height.saturating_sub(3).max(1);
    let first = selected.saturating_sub(usize::from(fits) - 1);
    (in_view(rows, first, fits), selected - first)
}

/// A rectangle of `width` x `height` (percent) centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    area.centered(
        Constraint::Percentage(width),
        Constraint::Percentage(height),
    )
}

#[cfg(test)]
mod tests;
