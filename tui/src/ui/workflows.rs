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

/// The columns STARTED, USER and CKPTS give up, in this order, when the table is too
/// narrow for WORKFLOW_ID and NAME to keep this many columns between them (20 and 16).
const ID_AND_NAME_MIN: u16 = 36;

/// The width of each of the table's nine columns within `inner` columns (the table
/// without its borders and selection mark), `None` for a column left out; `counts` are
/// the widths of STEPS, CKPTS and LEASE. Columns are dropped as [`ID_AND_NAME_MIN`]
/// says, and on a terminal narrower still WORKFLOW_ID and NAME share what is left.
fn column_widths(inner: u16, counts: [u16; 3]) -> [Option<Constraint>; 9] {
    let [steps, checkpoints, lease] = counts;
    // STATUS, WORKFLOW_ID, NAME, USER, STARTED, UPDATED, STEPS, CKPTS, LEASE; the two
    // zeros are the shared columns.
    let mut fixed = [
        Some(9),
        Some(0),
        Some(0),
        Some(10),
        Some(14),
        Some(14),
        Some(steps),
        Some(checkpoints),
        Some(lease),
    ];
    let room = |fixed: &[Option<u16>; 9]| {
        let shown = fixed.iter().flatten().count() as u16;
        let used: u16 = fixed.iter().flatten().sum();
        // One column of spacing between each two columns.
        inner.saturating_sub(used + shown.saturating_sub(1))
    };
    for dropped in [4, 3, 7] {
        if room(&fixed) >= ID_AND_NAME_MIN {
            break;
        }
        fixed[dropped] = None;
    }
    let room = room(&fixed);
    // The id tells workflows apart (its end is often a number): two thirds of a narrow
    // table's room.
    let id_width = if room >= ID_AND_NAME_MIN {
        20
    } else {
        room * 2 / 3
    };
    let mut widths = fixed.map(|width| width.map(Constraint::Length));
    widths[1] = Some(Constraint::Length(id_width));
    widths[2] = Some(Constraint::Fill(1));
    widths
}

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
    let header: Vec<String> = [
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
    .into_iter()
    .map(|(name, sort)| {
        if sort == Some(view.sort) {
            format!("{name}{arrow}")
        } else {
            name.to_owned()
        }
    })
    .collect();
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
    let widths = column_widths(
        area.width.saturating_sub(2 + 2),
        [steps_width, checkpoints_width, lease_width].map(|w| w as u16),
    );
    let kept = |cells: Vec<Cell<'static>>| -> Vec<Cell<'static>> {
        cells
            .into_iter()
            .zip(&widths)
            .filter_map(|(cell, width)| width.map(|_| cell))
            .collect()
    };
    let rows = shown
        .iter()
        .zip(counts)
        .map(|(row, (steps, checkpoints, lease))| {
            Row::new(kept(vec![
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
            ]))
        })
        .collect::<Vec<_>>();
    let header =
        Row::new(kept(header.into_iter().map(Cell::from).collect())).style(super::header_style());
    let widths: Vec<Constraint> = widths.into_iter().flatten().collect();
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
