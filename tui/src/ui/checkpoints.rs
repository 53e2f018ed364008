//! The checkpoints of one workflow, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Cell, HighlightSpacing, Paragraph, Row, Table, TableState};

use crate::app::App;
use crate::commands::usage_text;
use crate::format;

/// Columns of the table without ID and PINNED: the mark, TAKEN, AFTER STEP, SIZE and
/// STATUS, and the spacing after each.
const WIDTH_WITHOUT_ID: u16 = 1 + 19 + 16 + 10 + 10 + 5;

/// The least room PINNED must keep for the ID column to be shown.
const PINNED_MIN: u16 = 12;

/// Draws the checkpoints screen.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(view) = &app.checkpoints else {
        return;
    };
    let Some(list) = &view.list else {
        let title = format!(
            " Checkpoints of {} (newest first) ",
            format::printable(&view.workflow_id)
        );
        frame.render_widget(
            Paragraph::new("loading...").block(Block::bordered().title(title)),
            area,
        );
        return;
    };
    // Only the newest CHECKPOINT_LIMIT are listed: say so when there are more.
    let title = match &view.usage {
        Some(usage) if usage.count > list.len() as u64 => format!(
            " Checkpoints of {} (newest {} of {}) ",
            format::printable(&view.workflow_id),
            list.len(),
            usage.count
        ),
        _ => format!(
            " Checkpoints of {} (newest first) ",
            format::printable(&view.workflow_id)
        ),
    };
    // Drawn from what the store lists without the snapshots (the workflow's status in
    // each is a column of its own); Enter loads the one snapshot to show.
    // The id gives way on a narrow terminal (the snapshot's title shows it), and the year
    // of TAKEN, so that the pin labels, which say what pruning keeps, stay in view.
    let with_id = area.width.saturating_sub(2 + 2) >= WIDTH_WITHOUT_ID + 1 + 36 + PINNED_MIN;
    let kept = |mut cells: Vec<Cell<'static>>| {
        if !with_id {
            cells.remove(5);
        }
        Row::new(cells)
    };
    let header = kept(
        ["", "TAKEN", "AFTER STEP", "SIZE", "STATUS", "ID", "PINNED"]
            .map(Cell::from)
            .to_vec(),
    )
    .style(super::header_style());
    let (in_view, selected) = super::table_rows_in_view(list, view.selected, area.height);
    let rows = in_view.iter().map(|checkpoint| {
        kept(vec![
            Cell::from(if view.marked == Some(checkpoint.id) {
                "*"
            } else {
                ""
            }),
            Cell::from(if with_id {
                format::time(Some(checkpoint.timestamp))
            } else {
                format::short_time(checkpoint.timestamp)
            }),
            Cell::from(format::printable(&checkpoint.step_id).into_owned()),
            Cell::from(format::size(checkpoint.size_bytes)),
            match checkpoint.workflow_status {
                Some(status) => Cell::from(status.as_str()).style(super::status_style(status)),
                None => Cell::from("unknown"),
            },
            Cell::from(checkpoint.id.to_string()),
            match &checkpoint.pinned {
                Some(label) => Cell::from(format::printable(label).into_owned())
                    .style(Style::new().fg(Color::Magenta)),
                None => Cell::from(""),
            },
        ])
    });
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(if with_id { 19 } else { 14 }),
        Constraint::Length(16),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(36),
        Constraint::Fill(1),
    ];
    if !with_id {
        widths.remove(5);
    }
    let table = Table::new(rows, widths)
        .header(header)
        .block(if list.is_empty() {
            Block::bordered()
                .title(title)
                .title_bottom(" no checkpoints: nothing to roll back to ")
        } else if let Some(usage) = &view.usage {
            Block::bordered()
                .title(title)
                .title_bottom(format!(" total: {} ", usage_text(usage)))
        } else {
            Block::bordered().title(title)
        })
        .row_highlight_style(super::selected_style())
        .highlight_symbol("> ")
        // An empty list has no selection: the header would shift two columns left.
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut state);
}
