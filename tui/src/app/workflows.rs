//! The workflows screen: the table of workflows, its filters and sort, its pages, and the
//! counts per status the status bar shows.

use chrono::{DateTime, Utc};
use llm_orchestrator_state::WorkflowStatus;
use llm_orchestrator_state::admin::{
    PageCursor, StatusCounts, WorkflowPage, WorkflowQuery, WorkflowSort, WorkflowSummary,
};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::popups::Popup;
use super::{App, Effect, ErrorSource, PAGE_SIZE, moved, movement};

/// The workflows table and how it is filtered and sorted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowsView {
    /// The loaded rows, in display order.
    pub rows: Vec<WorkflowSummary>,
    /// Index of the selected row.
    pub selected: usize,
    /// Only pending, running and paused workflows.
    pub active_only: bool,
    /// Only this status.
    pub status_filter: Option<WorkflowStatus>,
    /// Only active workflows whose recovery lease expired (`x`): stuck, their replica
    /// gone.
    pub lease_expired: bool,
    /// Substring of workflow id, name or user.
    pub text_filter: String,
    /// The sort column.
    pub sort: WorkflowSort,
    /// Sort ascending instead of descending.
    pub ascending: bool,
    /// Where the next page starts, if there is one.
    pub next: Option<PageCursor>,
    /// The latest load asked for; older answers are dropped.
    pub request: u64,
    /// A load is under way.
    pub loading: bool,
}

impl WorkflowsView {
    /// The selected row.
    pub fn selected_row(&self) -> Option<&WorkflowSummary> {
        self.rows.get(self.selected)
    }

    /// Whether the rows show active workflows before finished ones. The query always asks
    /// for that order, but it only shows when both kinds can be listed: not with `a`
    /// (active only) nor with a status filter.
    pub fn active_first(&self) -> bool {
        let query = self.query(0);
        let listed = |status: &&WorkflowStatus| {
            (query.statuses.is_empty() || query.statuses.contains(status))
                && (!query.only_active() || status.is_active())
        };
        let mut listed = WorkflowStatus::ALL.iter().filter(listed);
        query.active_first
            && listed.clone().any(|status| status.is_active())
            && listed.any(|status| !status.is_active())
    }

    /// The query for these filters, from the first row.
    pub fn query(&self, limit: u64) -> WorkflowQuery {
        WorkflowQuery {
            statuses: self.status_filter.into_iter().collect(),
            active_only: self.active_only,
            lease_expired: self.lease_expired,
            text: Some(self.text_filter.clone()).filter(|t| !t.is_empty()),
            sort: self.sort,
            descending: !self.ascending,
            active_first: true,
            after: None,
            limit,
        }
    }
}

impl App {
    /// Esc on the workflows screen: clears the text filter if there is one, else the
    /// status, stuck and active filters; with none, says that `q` quits.
    pub(super) fn clear_a_filter(&mut self) {
        let view = &mut self.workflows;
        if !view.text_filter.is_empty() {
            view.text_filter.clear();
            self.notice = Some("text filter cleared".into());
        } else if view.status_filter.is_some() || view.lease_expired || view.active_only {
            view.status_filter = None;
            view.lease_expired = false;
            view.active_only = false;
            self.notice = Some("filters cleared: all workflows".into());
        } else {
            self.notice = Some("nothing to clear; q or Ctrl-C quits".into());
            return;
        }
        view.selected = 0;
        self.reload_workflows(PAGE_SIZE);
    }

    pub(super) fn reload_workflows(&mut self, limit: u64) {
        self.workflows.request += 1;
        self.workflows.loading = true;
        self.effects.push(Effect::LoadWorkflows {
            request: self.workflows.request,
            query: self.workflows.query(limit),
            append: false,
        });
    }
}

/// A key on the workflows screen.
pub(super) fn on_key(app: &mut App, key: KeyEvent) {
    if let Some(delta) = movement(&key) {
        let view = &mut app.workflows;
        view.selected = moved(view.selected, delta, view.rows.len());
        // Within half a page of the end of what is loaded: fetch the next page, early
        // enough that scrolling does not stop at the end while it loads.
        if view.selected + (PAGE_SIZE as usize) / 2 >= view.rows.len()
            && !view.loading
            && let Some(after) = view.next.clone()
        {
            view.request += 1;
            view.loading = true;
            let mut query = view.query(PAGE_SIZE);
            query.after = Some(after);
            app.effects.push(Effect::LoadWorkflows {
                request: view.request,
                query,
                append: true,
            });
        }
        return;
    }
    match key.code {
        KeyCode::Enter => {
            if let Some(row) = app.workflows.selected_row() {
                let id = row.id;
                app.open_detail(id);
            }
        }
        KeyCode::Char('c') => {
            if let Some(row) = app.workflows.selected_row() {
                let (id, workflow_id) = (row.id, row.workflow_id.clone());
                app.open_checkpoints(id, workflow_id);
            }
        }
        KeyCode::Char('a') => {
            app.workflows.active_only = !app.workflows.active_only;
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('x') => {
            app.workflows.lease_expired = !app.workflows.lease_expired;
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('f') => {
            let view = &mut app.workflows;
            view.status_filter = match view.status_filter {
                None => Some(WorkflowStatus::ALL[0]),
                Some(status) => WorkflowStatus::ALL
                    .iter()
                    .position(|s| *s == status)
                    .and_then(|i| WorkflowStatus::ALL.get(i + 1))
                    .copied(),
            };
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('s') => {
            let view = &mut app.workflows;
            let index = WorkflowSort::ALL
                .iter()
                .position(|s| *s == view.sort)
                .unwrap_or(0);
            view.sort = WorkflowSort::ALL[(index + 1) % WorkflowSort::ALL.len()];
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('o') => {
            app.workflows.ascending = !app.workflows.ascending;
            app.reload_workflows(PAGE_SIZE);
        }
        KeyCode::Char('/') => {
            app.popup = Some(Popup::Filter {
                input: app.workflows.text_filter.clone(),
            });
        }
        _ => {}
    }
}

/// A page of workflows arrived ([`super::Message::WorkflowsLoaded`]).
pub(super) fn loaded(
    app: &mut App,
    request: u64,
    append: bool,
    result: Result<WorkflowPage, String>,
    at: DateTime<Utc>,
) {
    if request != app.workflows.request {
        return;
    }
    app.workflows.loading = false;
    match result {
        Ok(page) => {
            let view = &mut app.workflows;
            if append {
                view.rows.extend(page.rows);
            } else {
                let selected_id = view.selected_row().map(|row| row.id);
                view.rows = page.rows;
                view.selected = selected_id
                    .and_then(|id| view.rows.iter().position(|row| row.id == id))
                    .unwrap_or(view.selected)
                    .min(view.rows.len().saturating_sub(1));
            }
            view.next = page.next;
            app.last_refresh = Some(at);
            app.read_succeeded(ErrorSource::List);
        }
        Err(err) => app.show_read_error(err, ErrorSource::List),
    }
}

/// The counts per status arrived ([`super::Message::CountsLoaded`]).
pub(super) fn counts_loaded(app: &mut App, result: Result<StatusCounts, String>) {
    // Answered or failed: the next automatic refresh may ask again.
    app.in_flight.counts = false;
    match result {
        Ok(counts) => {
            app.counts = counts;
            app.read_succeeded(ErrorSource::Counts);
        }
        Err(err) => app.show_read_error(err, ErrorSource::Counts),
    }
}
