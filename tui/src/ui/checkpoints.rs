//! The checkpoints of one workflow, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use crate::app::App;
use crate::commands::usage_text;
use crate::format;

/// Draws the checkpoints screen.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(view) = &app.checkpoints else {
        return;
    };
    let Some(list) = &view.list else {
        let title = format!(" Checkpoints of {} (newest first) ", view.workflow_id);
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
            view.workflow_id,
            list.len(),
            usage.count
        ),
        _ => format!(" Checkpoints of {} (newest first) ", view.workflow_id),
    };
    // Drawn from what the store lists without the snapshots (the workflow's status in
    // each is a column of its own); Enter loads the one snapshot to show.
    let header = Row::new(["", "TAKEN", "AFTER STEP", "SIZE", "STATUS", "ID", "PINNED"])
        .style(super::header_style());
    let (in_view, selected) = super::table_rows_in_view(list, view.selected, area.height);
    let rows = in_view.iter().map(|checkpoint| {
        Row::new([
            Cell::from(if view.marked == Some(checkpoint.id) {
                "*"
            } else {
                ""
            }),
            Cell::from(format::time(Some(checkpoint.timestamp))),
            Cell::from(checkpoint.step_id.clone()),
            Cell::from(format::size(checkpoint.size_bytes)),
            match checkpoint.workflow_status {
                Some(status) => Cell::from(status.as_str()).style(super::status_style(status)),
                None => Cell::from("unknown"),
            },
            Cell::from(checkpoint.id.to_string()),
            match &checkpoint.pinned {
                Some(label) => Cell::from(label.clone()).style(Style::new().fg(Color::Magenta)),
                None => Cell::from(""),
            },
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(1),
            Constraint::Length(19),
            Constraint::Length(16),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(36),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(if list.is_empty() {
        Block::bordered()
            .title(title)
            .title_bottom(" no checkpoints: nothing to restore ")
    } else if let Some(usage) = &view.usage {
        Block::bordered()
            .title(title)
            .title_bottom(format!(" total: {} ", usage_text(usage)))
    } else {
        Block::bordered().title(title)
    })
    .row_highlight_style(super::selected_style())
    .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut state);
}
