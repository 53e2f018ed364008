//! The workflows table.

use llm_orchestrator_state::admin::WorkflowSort;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, HighlightSpacing, Paragraph, Row, Table, TableState};

use crate::app::{App, WorkflowsView};
use crate::commands::lease_of;
use crate::format;

/// The most columns the LEASE column takes: an owner's name can be 255 characters (a
/// host name and a process id often), and NAME must keep its room.
const LEASE_WIDTH_MAX: usize = 20;

/// The columns WORKFLOW_ID takes at least, when there is room: short ids leave the rest
/// to NAME.
const ID_WIDTH_MIN: u16 = 20;

/// The columns a narrow table leaves out, first to last (indexes into the nine
/// columns), each while WORKFLOW_ID and NAME would have fewer columns between them than
/// it says: STARTED, USER and CKPTS while fewer than 36; STEPS, LEASE and UPDATED only
/// while fewer than 27. STATUS, WORKFLOW_ID and NAME stay.
const GIVE_WAY: [(usize, u16); 6] = [(4, 36), (3, 36), (7, 36), (6, 27), (8, 27), (5, 27)];

/// The width of each of the table's nine columns within `inner` columns (the table
/// without its borders and selection mark), `None` for a column left out; `counts` are
/// the widths of STEPS, CKPTS and LEASE, and `longest_id` the longest WORKFLOW_ID in
/// view. Columns give way as [`GIVE_WAY`] says; of what is left WORKFLOW_ID gets up to
/// two thirds, as much as its longest id needs (at least 20, what it always had: the
/// id tells workflows apart), and NAME the rest.
fn column_widths(inner: u16, counts: [u16; 3], longest_id: u16) -> [Option<Constraint>; 9] {
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
    for (column, id_and_name_min) in GIVE_WAY {
        if room(&fixed) < id_and_name_min {
            fixed[column] = None;
        }
    }
    let id_width = (room(&fixed) * 2 / 3).min(longest_id.max(ID_WIDTH_MIN));
    let mut widths = fixed.map(|width| width.map(Constraint::Length));
    widths[1] = Some(Constraint::Length(id_width));
    widths[2] = Some(Constraint::Fill(1));
    widths
}

/// What the empty table says, on its first line: which of its filters exclude each
/// other, when two do; else which filters match nothing, and how to clear them.
fn none_match(view: &WorkflowsView) -> String {
    let filtered = view.status_filter.is_some() || view.lease_expired || view.active_only;
    match view.status_filter.filter(|status| !status.is_active()) {
        Some(status) if view.lease_expired => {
            format!("none: {status} workflows hold no lease (x: all leases)")
        }
        Some(status) if view.active_only => {
            format!("none: {status} is not active (a: all statuses)")
        }
        _ if !view.text_filter.is_empty() => format!(
            "no workflows match the filter {:?}{} (Esc clears it)",
            format::printable(&view.text_filter),
            if filtered {
                " with the others in the title"
            } else {
                ""
            }
        ),
        _ if filtered => "no workflows match these filters (Esc clears them)".to_owned(),
        _ => "no workflows in this database".to_owned(),
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
    let now = app.last_refresh.unwrap_or_else(|| app.clock.now());
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
                        format!(
                            "{} expired",
                            format::cut(&format::printable(owner), LEASE_WIDTH_MAX - 8)
                        ),
                        true,
                    ),
                    None => (
                        format::cut(&format::printable(owner), LEASE_WIDTH_MAX),
                        false,
                    ),
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
        .filter_map(|(.., lease)| Some(format::width(&lease.as_ref()?.0)))
        .fold(5, usize::max)
        .min(LEASE_WIDTH_MAX);
    let ids: Vec<String> = shown
        .iter()
        .map(|row| format::printable(&row.workflow_id).into_owned())
        .collect();
    let longest_id = ids.iter().map(|id| format::width(id)).max().unwrap_or(0);
    let widths = column_widths(
        area.width.saturating_sub(2 + 2),
        [steps_width, checkpoints_width, lease_width].map(|w| w as u16),
        u16::try_from(longest_id).unwrap_or(u16::MAX),
    );
    // Cut in the middle when it must be: ids that share a long start
    // (customer-onboarding-pipeline-000123, -000124) differ at their end.
    let id_width = match widths[1] {
        Some(Constraint::Length(width)) => usize::from(width),
        _ => longest_id,
    };
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
        .zip(ids)
        .map(|((row, (steps, checkpoints, lease)), id)| {
            Row::new(kept(vec![
                Cell::from(row.status.as_str()).style(super::status_style(row.status)),
                Cell::from(format::cut_middle(&id, id_width)),
                Cell::from(format::printable(&row.workflow_name).into_owned()),
                Cell::from(format::printable(row.user_id.as_deref().unwrap_or("-")).into_owned()),
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
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(super::selected_style())
        .highlight_symbol("> ")
        // Without rows there is no selection: the header would shift two columns left.
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut state);
    if view.rows.is_empty() && !view.loading {
        // Where the first row would be, not a blank table.
        let [_, line] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)])
            .areas(inner.inner(Margin::new(2, 0)));
        frame.render_widget(
            Paragraph::new(Line::from(none_match(view))).style(Style::new().fg(Color::Yellow)),
            line,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of the columns kept at `width` terminal columns, and WORKFLOW_ID's width.
    fn kept(width: u16, lease: u16) -> (Vec<&'static str>, u16) {
        const NAMES: [&str; 9] = [
            "STATUS", "ID", "NAME", "USER", "STARTED", "UPDATED", "STEPS", "CKPTS", "LEASE",
        ];
        let widths = column_widths(width - 4, [5, 5, lease], 18);
        let names = NAMES
            .iter()
            .zip(&widths)
            .filter_map(|(name, width)| width.map(|_| *name))
            .collect();
        let id = match widths[1] {
            Some(Constraint::Length(id)) => id,
            other => panic!("{other:?}"),
        };
        (names, id)
    }

    #[test]
    fn columns_give_way_in_order_and_the_id_keeps_its_room() {
        let all = [
            "STATUS", "ID", "NAME", "USER", "STARTED", "UPDATED", "STEPS", "CKPTS", "LEASE",
        ];
        assert_eq!(kept(160, 20), (all.to_vec(), 20));
        assert_eq!(kept(120, 5), (all.to_vec(), 20));
        // A 20-column lease at 120: STARTED gives way, NAME keeps 30 columns.
        let (names, id) = kept(120, 20);
        assert_eq!(
            names,
            [
                "STATUS", "ID", "NAME", "USER", "UPDATED", "STEPS", "CKPTS", "LEASE"
            ]
        );
        assert_eq!(id, 20);
        let (names, id) = kept(80, 16);
        assert_eq!(names, ["STATUS", "ID", "NAME", "UPDATED", "STEPS", "LEASE"]);
        assert_eq!(id, 18);
        let (names, id) = kept(60, 16);
        assert_eq!(names, ["STATUS", "ID", "NAME", "UPDATED"]);
        assert_eq!(id, 20);
        let (names, id) = kept(40, 16);
        assert_eq!(names, ["STATUS", "ID", "NAME"]);
        assert_eq!(id, 16);
        // Too narrow for anything sensible: still no panic, and the id before the name.
        let (names, id) = kept(8, 16);
        assert_eq!(names, ["STATUS", "ID", "NAME"]);
        assert_eq!(id, 0);
    }

    /// WORKFLOW_ID's width at `width` terminal columns with ids of `longest` characters.
    fn id_width(width: u16, longest: u16) -> u16 {
        match column_widths(width - 4, [5, 5, 5], longest)[1] {
            Some(Constraint::Length(id)) => id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_long_id_widens_its_column_as_far_as_the_terminal_allows() {
        // Short ids keep the 20 columns they always had.
        assert_eq!(id_width(120, 8), 20);
        // A 35-character id: all of it where there is room, two thirds of it otherwise.
        assert_eq!(id_width(200, 35), 35);
        assert_eq!(id_width(160, 35), 35);
        assert_eq!(id_width(120, 35), 30);
        assert_eq!(id_width(80, 35), 25);
        // Never more than the longest id needs (NAME has the rest).
        assert_eq!(id_width(300, 40), 40);
    }
}
