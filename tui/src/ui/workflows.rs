//! The workflows table.

use llm_orchestrator_state::admin::WorkflowSort;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use crate::app::{App, WorkflowsView};
use crate::commands::lease_of;
use crate::format;

/// The most columns the LEASE column takes: an owner's name can be 255 characters (a
/// host name and a process id often), and NAME must keep its room.
const LEASE_WIDTH_MAX: usize = 20;

/// What the empty table says: which of its filters exclude each other, when two do.
fn none_match(view: &WorkflowsView) -> String {
    match view.status_filter.filter(|status| !status.is_active()) {
        Some(status) if view.lease_expired => format!(
            " no workflows match: {status} workflows hold no lease (x turns that filter off) "
        ),
        Some(status) if view.active_only => {
            format!(" no workflows match: {status} is not active (a turns that filter off) ")
        }
        _ => " no workflows match ".to_owned(),
    }
}

/// Draws the workflows table.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let view = &app.workflows;
    let mut title = format!(
        " Workflows ({}{}) sort: {}{} {} ",
        if view.active_only || view.lease_expired {
            "active"
        } else {
            "all"
        },
        view.status_filter
            .map(|s| format!(", {s}"))
            .unwrap_or_default()
            + if view.lease_expired {
                ", lease expired"
            } else {
                ""
            },
        // Else a finished workflow updated a minute ago below a running one from this
        // morning looks like a sorting bug.
        if view.active_first() {
            "active first, "
        } else {
            ""
        },
        view.sort.as_str(),
        if view.ascending { "asc" } else { "desc" },
    );
    if !view.text_filter.is_empty() {
        title.push_str(&format!("filter: {:?} ", view.text_filter));
    }
    if view.loading {
        title.push_str("loading... ");
    }
    let arrow = if view.ascending { " ▲" } else { " ▼" };
    let header = Row::new(
        [
            ("STATUS", Some(WorkflowSort::Status)),
            ("WORKFLOW_ID", Some(WorkflowSort::WorkflowId)),
            ("NAME", Some(WorkflowSort::WorkflowName)),
            ("USER", None),
            ("STARTED", Some(WorkflowSort::StartedAt)),
            ("UPDATED", Some(WorkflowSort::UpdatedAt)),
            ("STEPS", None),
            ("CKPTS", None),
            ("LEASE", None),
        ]
        .map(|(name, sort)| {
            if sort == Some(view.sort) {
                format!("{name}{arrow}")
            } else {
                name.to_owned()
            }
        }),
    )
    .style(super::header_style());
    // Only the rows that fit are turned into widgets, so a table with 100,000 loaded
    // rows draws as fast as one with 30.
    let (shown, selected) = super::table_rows_in_view(&view.rows, view.selected, area.height);
    // Leases as of the list's reading: a lease shown expired expired by then.
    let now = app.last_refresh.unwrap_or_else(llm_orchestrator_state::now);
    let counts: Vec<_> = shown
        .iter()
        .map(|row| {
            (
                format!("{}/{}", row.steps_done, row.steps_total),
                row.checkpoint_count.to_string(),
                // How long ago it expired is left out (UPDATED says since when nothing
                // happened) and a long owner is cut, never "expired": NAME keeps room.
                lease_of(row, now).map(|(owner, expired_for)| match expired_for {
                    Some(_) => (
                        format!("{} expired", format::cut(owner, LEASE_WIDTH_MAX - 8)),
                        true,
                    ),
                    None => (format::cut(owner, LEASE_WIDTH_MAX), false),
                }),
            )
        })
        .collect();
    // As wide as the widest count in view (digits only): "0/30000" cut to "0/300" would
    // lie.
    let steps_width = counts
        .iter()
        .map(|(steps, ..)| steps.len())
        .fold(5, usize::max);
    let checkpoints_width = counts
        .iter()
        .map(|(_, ckpts, _)| ckpts.len())
        .fold(5, usize::max);
    let lease_width = counts
        .iter()
        .filter_map(|(.., lease)| Some(lease.as_ref()?.0.chars().count()))
        .fold(5, usize::max)
        .min(LEASE_WIDTH_MAX);
    let rows = shown
        .iter()
        .zip(counts)
        .map(|(row, (steps, checkpoints, lease))| {
            Row::new([
                Cell::from(row.status.as_str()).style(super::status_style(row.status)),
                Cell::from(row.workflow_id.clone()),
                Cell::from(row.workflow_name.clone()),
                Cell::from(row.user_id.clone().unwrap_or_else(|| "-".into())),
                Cell::from(format::short_time(row.started_at)),
                Cell::from(format::short_time(row.updated_at)),
                Cell::from(steps),
                Cell::from(checkpoints),
                match lease {
                    Some((text, true)) => Cell::from(text).style(Style::new().fg(Color::Red)),
                    Some((text, false)) => Cell::from(text),
                    None => Cell::from("-"),
                },
            ])
        });
    let widths = [
        Constraint::Length(9),
        Constraint::Length(20),
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Length(14),
        Constraint::Length(14),
        Constraint::Length(steps_width as u16),
        Constraint::Length(checkpoints_width as u16),
        Constraint::Length(lease_width as u16),
    ];
    let mut block = Block::bordered().title(title);
    if view.rows.is_empty() && !view.loading {
        block = block.title_bottom(Line::from(none_match(view)));
    }
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(super::selected_style())
        .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut state);
}
