//! One workflow: its fields and error, the steps, the selected step's error and outputs, the
//! context.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::app::{App, DetailFocus, selected_step};
use crate::commands::{lease_words, usage_text};
use crate::format;

use super::json;

fn field(name: &str, value: String) -> Line<'static> {
    styled_field(name, value, Style::new())
}

fn styled_field(name: &str, value: String, style: Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<12}"), Style::new().fg(Color::Blue)),
        Span::styled(value, style),
    ])
}

/// Draws the detail screen.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(detail) = &app.detail else {
        frame.render_widget(
            Paragraph::new("loading...").block(Block::bordered().title(" Workflow ")),
            area,
        );
        return;
    };
    let state = &detail.state;
    let step_count = detail.step_order.len();
    let (usage, lineage) = match &detail.history {
        Some(history) if history.lineage.is_empty() => {
            (usage_text(&history.usage), vec!["-".to_owned()])
        }
        Some(history) => (usage_text(&history.usage), history.lineage.clone()),
        None => ("loading...".to_owned(), vec!["loading...".to_owned()]),
    };
    // A workflow forked again and again still leaves room for its steps.
    let lineage_shown = lineage.len().min(4);
    let lineage_more = lineage.len() > lineage_shown;
    let error = workflow_error_lines(
        state.error.as_deref(),
        usize::from(area.width.saturating_sub(2 + FIELD_NAME_WIDTH)),
    );
    let mut fields = vec![
        field("id", state.id.to_string()),
        field(
            "workflow",
            format!(
                "{}  ({})",
                format::printable(&state.workflow_id),
                format::printable(&state.workflow_name)
            ),
        ),
        styled_field(
            "status",
            state.status.to_string(),
            super::status_style(state.status),
        ),
        field(
            "user",
            format::printable(state.user_id.as_deref().unwrap_or("-")).into_owned(),
        ),
        field(
            "times",
            format!(
                "started {}  updated {}  completed {}",
                format::time(Some(state.started_at)),
                time_on_the_day_of(state.updated_at, state.started_at),
                state.completed_at.map_or_else(
                    || "-".to_owned(),
                    |at| time_on_the_day_of(at, state.started_at)
                )
            ),
        ),
    ];
    if let Some(why) = &detail.damaged {
        fields.push(styled_field(
            "DAMAGED",
            format!(
                "its stored context or steps cannot be read ({}); roll it back to a \
                 checkpoint (c) to repair it",
                format::printable(why)
            ),
            Style::new().fg(Color::Red),
        ));
    }
    let error_style = Style::new().fg(if state.error.is_some() {
        Color::Red
    } else {
        Color::Reset
    });
    for (n, line) in error.into_iter().enumerate() {
        fields.push(styled_field(
            if n == 0 { "error" } else { "" },
            line,
            error_style,
        ));
    }
    fields.push(lease_line(app));
    fields.push(field("checkpoints", usage));
    for (n, line) in lineage.into_iter().take(lineage_shown).enumerate() {
        fields.push(field(if n == 0 { "lineage" } else { "" }, line));
    }
    if lineage_more {
        fields.push(field("", "... (wfadmin show lists them all)".to_owned()));
    }
    let fields = Paragraph::new(fields)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(format!(
            " Workflow {} ",
            format::printable(&state.workflow_id)
        )));
    // As tall as its lines once wrapped: a narrow terminal wraps the times, and a fixed
    // height would push the checkpoints and lineage out of the box.
    let fields_height = fields.line_count(area.width.saturating_sub(2));
    let steps_height = u16::try_from(step_count).unwrap_or(u16::MAX).clamp(1, 10) + 3;
    let [fields_area, steps_area, lower] = Layout::vertical([
        Constraint::Length(u16::try_from(fields_height).unwrap_or(u16::MAX)),
        Constraint::Length(steps_height),
        Constraint::Min(3),
    ])
    .areas(area);
    frame.render_widget(fields, fields_area);

    let header = Row::new([
        "STEP",
        "STATUS",
        "RETRIES",
        "STARTED",
        "COMPLETED",
        "DURATION",
        "ERROR",
    ])
    .style(super::header_style());
    let (in_view, selected) =
        super::table_rows_in_view(&detail.step_order, detail.step, steps_area.height);
    // Times of the day the workflow started as times of day only: room for the error.
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or_else(
            || "-".to_owned(),
            |at| time_on_the_day_of(at, state.started_at),
        )
    };
    let steps: Vec<_> = in_view
        .iter()
        .filter_map(|id| state.steps.get(id))
        .map(|step| (step, time(step.started_at), time(step.completed_at)))
        .collect();
    let time_width = steps
        .iter()
        .map(|(_, started, completed)| started.len().max(completed.len()))
        .fold("COMPLETED".len(), usize::max) as u16;
    let rows = steps.into_iter().map(|(step, started, completed)| {
        Row::new([
            Cell::from(format::printable(&step.step_id).into_owned()),
            Cell::from(step.status.as_str()).style(super::step_style(step.status)),
            Cell::from(step.retry_count.to_string()),
            Cell::from(started),
            Cell::from(completed),
            Cell::from(format::duration(step.started_at, step.completed_at)),
            Cell::from(format::printable(step.error.as_deref().unwrap_or("-")).into_owned())
                .style(Style::new().fg(Color::Red)),
        ])
    });
    let focused = |focus: DetailFocus| {
        if detail.focus == focus {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        }
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(time_width),
            Constraint::Length(time_width),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(
        Block::bordered()
            .title(format!(" Steps ({step_count}) "))
            .border_style(focused(DetailFocus::Steps)),
    )
    .row_highlight_style(super::selected_style())
    .highlight_symbol("> ");
    let mut table_state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, steps_area, &mut table_state);

    let [outputs_column, context_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(lower);
    // The JSON was printed when it arrived (DetailView); only the lines in view are drawn.
    let outputs_block = Block::bordered().border_style(focused(DetailFocus::Outputs));
    let selected = selected_step(detail);
    let outputs_area = match selected.and_then(|step| Some((step, step.error.as_deref()?))) {
        Some((step, error)) => render_step_error(&step.step_id, error, frame, outputs_column),
        None => outputs_column,
    };
    match selected {
        Some(step) => json::render(
            detail.selected_outputs_lines(),
            detail.outputs_scroll,
            outputs_block.title(format!(" Outputs of {} ", format::printable(&step.step_id))),
            frame,
            outputs_area,
        ),
        None => frame.render_widget(
            Paragraph::new("no steps").block(outputs_block.title(" Outputs ")),
            outputs_area,
        ),
    }
    json::render(
        &detail.context_lines,
        detail.context_scroll,
        Block::bordered()
            .title(" Context ")
            .border_style(focused(DetailFocus::Context)),
        frame,
        context_area,
    );
}

/// The workflow's recovery lease, as read with its history (again at every refresh) and
/// as of when it was read:
/// "loading..." until that read arrives, `-` once the workflow is gone.
fn lease_line(app: &App) -> Line<'static> {
    let history = app.detail.as_ref().and_then(|view| view.history.as_ref());
    let Some(history) = history else {
        return field("lease", "loading...".to_owned());
    };
    let Some(row) = &history.summary else {
        return field("lease", "-".to_owned());
    };
    let now = history
        .read_at
        .or(app.last_refresh)
        .unwrap_or_else(|| app.clock.now());
    match lease_words(row, now) {
        (words, false) => field("lease", words),
        (words, true) => styled_field(
            "lease",
            format!("{words}: stuck until recover_workflows hands it to another replica"),
            Style::new().fg(Color::Red),
        ),
    }
}

/// `at` as a time of day when it is on the same day as `day` (the times of a workflow
/// that ran within a day fit an 80-column terminal), else with its date.
fn time_on_the_day_of(
    at: chrono::DateTime<chrono::Utc>,
    day: chrono::DateTime<chrono::Utc>,
) -> String {
    if at.date_naive() == day.date_naive() {
        at.format("%H:%M:%S").to_string()
    } else {
        format::time(Some(at))
    }
}

/// Columns the field names take ("checkpoints" and a space).
const FIELD_NAME_WIDTH: u16 = 12;

/// Lines the workflow's error may take among the fields: a long one would push the
/// checkpoints and lineage out of the box.
const WORKFLOW_ERROR_LINES: usize = 4;

/// The workflow's error wrapped to `width` (`-` when it has none), at most
/// [`WORKFLOW_ERROR_LINES`] lines, the last saying how many more there are.
fn workflow_error_lines(error: Option<&str>, width: usize) -> Vec<String> {
    let Some(error) = error else {
        return vec!["-".to_owned()];
    };
    let mut lines = format::wrap(error, width);
    if lines.len() > WORKFLOW_ERROR_LINES {
        let more = lines.len() - (WORKFLOW_ERROR_LINES - 1);
        lines.truncate(WORKFLOW_ERROR_LINES - 1);
        lines.push(format!(
            "... {more} more lines (wfadmin show prints it whole)"
        ));
    }
    lines
}

/// Rows the outputs keep under a step's error: a border, a line, a border.
const OUTPUTS_MIN_HEIGHT: u16 = 3;

/// Draws a step's error in full, wrapped, at the top of `area` (the steps table cuts it
/// at the screen edge), and returns the rest of `area`, for the step's outputs. The error
/// takes the rows it needs, up to all but [`OUTPUTS_MIN_HEIGHT`]; the bottom border says
/// how many lines did not fit.
fn render_step_error(step_id: &str, error: &str, frame: &mut Frame, area: Rect) -> Rect {
    let room = usize::from(area.height.saturating_sub(OUTPUTS_MIN_HEIGHT + 2));
    if room == 0 {
        // Too small a terminal: the table's ERROR column is all there is room for.
        return area;
    }
    let lines = format::wrap(error, usize::from(area.width.saturating_sub(2)));
    let shown = lines.len().min(room);
    let [error_area, rest] =
        Layout::vertical([Constraint::Length(shown as u16 + 2), Constraint::Fill(1)]).areas(area);
    let mut block = Block::bordered().title(format!(" Error of {} ", format::printable(step_id)));
    let more = lines.len() - shown;
    if more > 0 {
        block = block.title_bottom(format!(
            " {more} more {} (wfadmin show prints {}) ",
            if more == 1 { "line" } else { "lines" },
            if more == 1 { "it" } else { "them all" }
        ));
    }
    let text: Vec<Line> = lines
        .into_iter()
        .take(shown)
        .map(|line| Line::styled(line, Style::new().fg(Color::Red)))
        .collect();
    frame.render_widget(Paragraph::new(text).block(block), error_area);
    rest
}
