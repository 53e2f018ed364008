//! The interactive UI's model, messages and `update` (The Elm Architecture).
//!
//! `update` never touches the database or the terminal: it changes the model and queues
//! [`Effect`]s, which the runtime runs in spawned tasks; their answers come back as
//! [`Message`]s.
//!
//! This module holds the model ([`App`]) and routes: each [`Message`] to the screen or
//! popup it is about, each key to the popup open or else to the screen on top. Each screen
//! has a module that owns its state, its keys and the answers it waits for
//! ([`workflows`], [`detail`], [`checkpoints`], [`snapshot`], [`diff`]); each popup has one
//! under [`popups`], whose key handler says what became of the popup
//! ([`popups::Outcome`]).

use chrono::{DateTime, Utc};
use llm_orchestrator_state::RetentionPolicy;
use llm_orchestrator_state::admin::StatusCounts;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use uuid::Uuid;

use crate::error::WriteError;

pub mod checkpoints;
pub mod detail;
pub mod diff;
mod effect;
mod message;
pub mod popups;
pub mod snapshot;
#[cfg(test)]
mod tests;
pub mod workflows;

pub use checkpoints::CheckpointsView;
pub use detail::{DetailFocus, DetailView, LoadedDetail, WorkflowHistory, selected_step};
pub use diff::DiffView;
pub use effect::Effect;
pub use message::Message;
pub use popups::{InputPurpose, Popup, default_prune_policy};
pub use snapshot::SnapshotView;
pub use workflows::WorkflowsView;

/// Rows fetched per page of the workflows table.
pub const PAGE_SIZE: u64 = 200;
/// Most rows an automatic refresh reloads (the rest load again as the user scrolls).
pub const REFRESH_LIMIT: u64 = 2000;
/// Ticks between automatic refreshes (the runtime ticks every 250 ms: 5 s).
pub const REFRESH_TICKS: u32 = 20;

/// The screens, stacked: Esc or `q` goes back to the one below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The table of workflows.
    Workflows,
    /// One workflow: fields, context, steps.
    Detail,
    /// The checkpoints of one workflow.
    Checkpoints,
    /// The state held by one checkpoint.
    Snapshot,
    /// A deep diff of two states.
    Diff,
}

/// A read whose failure the status bar shows until the same read succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// Loading the workflows table.
    List,
    /// Reading this workflow (in full, or its version).
    Workflow(Uuid),
    /// The counts per status of the status bar.
    Counts,
    /// This workflow's checkpoint totals, lineage and lease (the detail's history).
    History(Uuid),
    /// The checkpoints screen's list of this workflow's checkpoints.
    CheckpointInfos(Uuid),
}

/// Answers the user is waiting for that open a screen or a popup when they arrive. Going
/// back abandons them: an answer not awaited (any more) is dropped, so that a slow answer
/// never shows one workflow or checkpoint over another, nor after the user left.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Awaited {
    /// The workflow the detail screen is opening: its first full read is under way and
    /// nothing of it is shown yet.
    pub detail: Option<Opening>,
    /// The diff asked for with `d`: the older side and the newer one (`None`: the current
    /// state).
    pub diff: Option<(Uuid, Option<Uuid>)>,
    /// The checkpoint whose rollback plan was asked for with `R`.
    pub rollback_plan: Option<Uuid>,
}

impl Awaited {
    /// The workflow being opened, if it is `id`.
    fn opening(&mut self, id: Uuid) -> Option<&mut Opening> {
        self.detail.as_mut().filter(|opening| opening.id == id)
    }
}

/// A workflow the detail screen is opening, and what arrived of it before its full read.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// The workflow's store id.
    pub id: Uuid,
    /// Its checkpoint totals and lineage, if they arrived first (two small queries, often
    /// quicker than reading a large workflow): shown with it when it opens.
    pub history: Option<WorkflowHistory>,
    /// A full read of it is under way; false after one failed, when the automatic
    /// refresh reads it again.
    pub loading: bool,
}

/// Reads under way that the automatic refresh starts no second of until they answer or
/// fail: on a database slower than the refresh they would pile up. (The list and the
/// open workflow's full read keep their own flags: [`WorkflowsView::loading`],
/// [`DetailView::loading`].)
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InFlight {
    /// The counts per status.
    pub counts: bool,
    /// The checkpoint totals and lineage of this workflow.
    pub history: Option<Uuid>,
    /// The checkpoint list of this workflow.
    pub checkpoint_infos: Option<Uuid>,
}

/// The whole state of the UI.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// The database, password removed.
    pub database: String,
    /// The database's clock, which leases run by (see [`crate::db::Clock`]); the status
    /// bar says so when this machine's is off from it.
    pub clock: crate::db::Clock,
    /// The retention policy `P` previews: the default until the operator edits one in
    /// the prune popup, then the one last previewed, for the rest of the session.
    pub prune_policy: RetentionPolicy,
    /// Writes are refused.
    pub read_only: bool,
    /// The terminal's height in rows; 0 until the runtime says (then the help assumes it
    /// does not fit).
    pub rows: u16,
    /// The terminal's width in columns; 0 until the runtime says.
    pub cols: u16,
    /// The screens, bottom first; never empty.
    pub screens: Vec<Screen>,
    /// A window over the screen.
    pub popup: Option<Popup>,
    /// The workflows table.
    pub workflows: WorkflowsView,
    /// Workflows per status.
    pub counts: StatusCounts,
    /// The open workflow.
    pub detail: Option<DetailView>,
    /// The open checkpoint list.
    pub checkpoints: Option<CheckpointsView>,
    /// The open snapshot.
    pub snapshot: Option<SnapshotView>,
    /// The open diff.
    pub diff: Option<DiffView>,
    /// Answers that open a screen or popup, while the user waits for them.
    pub awaited: Awaited,
    /// Reads the automatic refresh waits for before asking again.
    pub in_flight: InFlight,
    /// When the workflows were last read.
    pub last_refresh: Option<DateTime<Utc>>,
    /// The last error, shown in the status bar until the next success of the same kind
    /// (or another error).
    pub error: Option<String>,
    /// The read `error` came from, if a read: the next success of that same read (the
    /// automatic refresh, `r`) clears it, and no other success does, so "the workflow on
    /// screen was deleted" stays while the list loads fine.
    pub error_source: Option<ErrorSource>,
    /// The last notice (a rollback's result, or "rolling back..." while it runs).
    pub notice: Option<String>,
    /// Why the last write (rollback, prune, pin, unpin, fork) failed: shown over any
    /// other error until the operator presses a key or another write answers. Reads
    /// neither replace nor clear it: "rollback failed" must not vanish at the next
    /// automatic refresh.
    pub write_error: Option<String>,
    /// Ticks since the last refresh.
    pub ticks: u32,
    /// Leave the loop.
    pub quit: bool,
    /// Leave the loop because of this error.
    pub fatal: Option<String>,
    /// Work queued for the runtime.
    pub effects: Vec<Effect>,
}

impl App {
    /// Shows `error` in the status bar (until another error, or the user's next success
    /// of its kind).
    pub fn show_error(&mut self, error: String) {
        self.error = Some(error);
        self.error_source = None;
    }

    /// Shows `error`, which a read failed with, until that read succeeds.
    fn show_read_error(&mut self, error: String, source: ErrorSource) {
        self.error = Some(error);
        self.error_source = Some(source);
    }

    /// A write failed with `error`: its "...ing" notice is over, and the status bar says
    /// so until the next key or write: that nothing changed, or, when the connection
    /// broke, that the write may have gone through before it did.
    fn write_failed(&mut self, what: &str, error: &WriteError) {
        self.notice = None;
        self.write_error = Some(if error.may_have_applied() {
            format!("{what} unconfirmed, it may or may not have been applied (r reloads): {error}")
        } else {
            format!("{what} failed, nothing changed: {error}")
        });
    }

    /// A write succeeded with `notice`: an earlier write's error is over.
    fn write_succeeded(&mut self, notice: String) {
        self.notice = Some(notice);
        self.write_error = None;
    }

    /// `source` read fine: an error it failed with before is over.
    fn read_succeeded(&mut self, source: ErrorSource) {
        if self.error_source == Some(source) {
            self.error = None;
            self.error_source = None;
        }
    }

    /// A new UI on the workflows screen, with its first loads queued.
    pub fn new(database: impl Into<String>, read_only: bool) -> Self {
        let mut app = Self {
            database: database.into(),
            clock: crate::db::Clock::default(),
            prune_policy: default_prune_policy(),
            read_only,
            rows: 0,
            cols: 0,
            screens: vec![Screen::Workflows],
            popup: None,
            workflows: WorkflowsView::default(),
            counts: StatusCounts::default(),
            detail: None,
            checkpoints: None,
            snapshot: None,
            diff: None,
            awaited: Awaited::default(),
            in_flight: InFlight::default(),
            last_refresh: None,
            error: None,
            error_source: None,
            notice: None,
            write_error: None,
            ticks: 0,
            quit: false,
            fatal: None,
            effects: Vec::new(),
        };
        app.reload_workflows(PAGE_SIZE);
        app.load_counts();
        app
    }

    /// The screen on top.
    pub fn screen(&self) -> Screen {
        *self.screens.last().unwrap_or(&Screen::Workflows)
    }

    fn push(&mut self, screen: Screen) {
        if self.screen() != screen {
            self.screens.push(screen);
        }
    }

    fn back(&mut self) {
        // What the screen left was waiting for is no longer wanted.
        self.awaited = Awaited::default();
        if self.screens.len() > 1 {
            self.screens.pop();
        } else {
            self.quit = true;
        }
        // Nor is the error of a read only that screen made: no refresh makes it again,
        // so it would stay on the status bar, over the keys, for good.
        let shown = |screen: Screen| self.screens.contains(&screen);
        let orphaned = match self.error_source {
            Some(ErrorSource::Workflow(_) | ErrorSource::History(_)) => !shown(Screen::Detail),
            Some(ErrorSource::CheckpointInfos(_)) => !shown(Screen::Checkpoints),
            Some(ErrorSource::List | ErrorSource::Counts) | None => false,
        };
        if orphaned {
            self.error = None;
            self.error_source = None;
        }
    }

    /// Reloads what the screens show, keeping selections, as `refresh` says.
    fn refresh(&mut self, refresh: Refresh) {
        self.ticks = 0;
        // A list load still under way (slower than the ticks between refreshes) answers
        // for the timer too: a second one would only make the first's answer stale.
        if refresh.starts(self.workflows.loading) {
            let limit = (self.workflows.rows.len() as u64).clamp(PAGE_SIZE, REFRESH_LIMIT);
            self.reload_workflows(limit);
        }
        if refresh.starts(self.in_flight.counts) {
            self.load_counts();
        }
        for screen in self.screens.clone() {
            match screen {
                Screen::Detail => {
                    if let Some(view) = &self.detail {
                        let (id, loading) = (view.state.id, view.loading);
                        match refresh {
                            Refresh::Full => self.load_detail(id),
                            // The read under way brings the newest version anyway.
                            Refresh::Automatic if loading => {}
                            Refresh::Automatic | Refresh::AfterWrite => {
                                self.effects.push(Effect::CheckDetailVersion(id));
                            }
                        }
                        if refresh.starts(self.in_flight.history == Some(id)) {
                            self.load_history(id);
                        }
                    } else if let Some(opening) = &self.awaited.detail {
                        // Nothing shown yet: its first read is slow, or it failed (a lost
                        // connection). The timer reads it again once a read failed, so the
                        // screen recovers by itself; `r` reads it again at once, as Esc
                        // and Enter would.
                        let (id, loading) = (opening.id, opening.loading);
                        if refresh.starts(loading) {
                            self.load_detail(id);
                        }
                        if refresh.starts(self.in_flight.history == Some(id)) {
                            self.load_history(id);
                        }
                    }
                }
                Screen::Checkpoints => {
                    if let Some(view) = &self.checkpoints {
                        let id = view.workflow_state_id;
                        if refresh.starts(self.in_flight.checkpoint_infos == Some(id)) {
                            self.load_checkpoint_infos(id);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn load_counts(&mut self) {
        self.in_flight.counts = true;
        self.effects.push(Effect::LoadCounts);
    }

    /// False, with the reason in the status bar, in read-only mode.
    fn may_write(&mut self, what: &str) -> bool {
        if self.read_only {
            self.show_error(format!("read-only mode: {what} is disabled"));
        }
        !self.read_only
    }
}

/// Why the screens are read again, which decides what a refresh may skip: a context can
/// be megabytes, and a load can take longer than the 5 s between automatic refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// The timer: starts no second read of the list, the counts, the open workflow, its
    /// history or the checkpoint list while one is under way (see [`InFlight`]), and asks
    /// for the workflow's version first, reading it in full only if that changed.
    Automatic,
    /// After a write that leaves the open workflow alone (pin, fork, prune): the list
    /// again even if a load is under way (it may have started before the write), the
    /// workflow's version first.
    AfterWrite,
    /// `r`, and after a rollback: everything, the open workflow in full.
    Full,
}

impl Refresh {
    /// Whether this refresh reads something again while a read of it is `under_way`:
    /// the timer waits for that answer, a refresh asked for (`r`, a write) does not.
    fn starts(self, under_way: bool) -> bool {
        self != Refresh::Automatic || !under_way
    }
}

/// Moves a selected row or a scroll position by `delta` (any size), staying on one of
/// `len` rows or lines: the last one stays reachable however long the text is.
fn moved(index: usize, delta: isize, len: usize) -> usize {
    index
        .saturating_add_signed(delta)
        .min(len.saturating_sub(1))
}

/// Movement keys: how far a key moves a selection, if it is one.
fn movement(key: &KeyEvent) -> Option<isize> {
    match key.code {
        KeyCode::Char('j') | KeyCode::Down => Some(1),
        KeyCode::Char('k') | KeyCode::Up => Some(-1),
        KeyCode::PageDown => Some(20),
        KeyCode::PageUp => Some(-20),
        KeyCode::Char('g') | KeyCode::Home => Some(isize::MIN / 2),
        KeyCode::Char('G') | KeyCode::End => Some(isize::MAX / 2),
        _ => None,
    }
}

/// Applies one message to the model.
pub fn update(app: &mut App, message: Message) {
    match message {
        Message::Key(key) => on_key(app, key),
        Message::Resize { rows, cols } => {
            app.rows = rows;
            app.cols = cols;
        }
        Message::Tick => {
            app.ticks += 1;
            if app.ticks >= REFRESH_TICKS && app.popup.is_none() {
                app.refresh(Refresh::Automatic);
            }
        }
        Message::WorkflowsLoaded {
            request,
            append,
            result,
            at,
        } => workflows::loaded(app, request, append, result, at),
        Message::CountsLoaded(result) => workflows::counts_loaded(app, result),
        Message::DetailLoaded {
            workflow_state_id,
            result,
        } => detail::loaded(app, workflow_state_id, result),
        Message::DetailVersion {
            workflow_state_id,
            result,
        } => detail::version_checked(app, workflow_state_id, result),
        Message::CheckpointInfosLoaded {
            workflow_state_id,
            result,
        } => checkpoints::infos_loaded(app, workflow_state_id, result),
        Message::SnapshotLoaded { checkpoint, result } => snapshot::loaded(app, checkpoint, result),
        Message::HistoryLoaded {
            workflow_state_id,
            result,
        } => detail::history_loaded(app, workflow_state_id, result),
        Message::PinSet {
            checkpoint,
            label,
            result,
        } => checkpoints::pin_set(app, checkpoint, label, result),
        Message::Forked { checkpoint, result } => checkpoints::forked(app, checkpoint, result),
        Message::Pruned {
            policy,
            dry_run,
            result,
        } => popups::prune::pruned(app, policy, dry_run, result),
        Message::DiffLoaded { from, to, result } => diff::loaded(app, from, to, result),
        Message::RollbackPlanned { checkpoint, result } => {
            popups::rollback::planned(app, checkpoint, result);
        }
        Message::RolledBack(result) => popups::rollback::rolled_back(app, result),
        Message::Fatal(err) => {
            app.fatal = Some(err);
            app.quit = true;
        }
    }
}

/// A key: Ctrl-C quits; an open popup takes every other key; then the keys of every
/// screen; then the screen on top's own.
fn on_key(app: &mut App, key: KeyEvent) {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.quit = true;
        return;
    }
    // The operator has seen it.
    app.write_error = None;
    if let Some(popup) = app.popup.take() {
        popups::on_key(app, popup, key);
        return;
    }
    app.notice = None;
    match key.code {
        KeyCode::Char('?') => {
            app.popup = Some(Popup::Help { scroll: 0 });
            return;
        }
        // On the workflows screen Esc never quits (Esc Esc out of a popup must not end
        // the session): it clears a filter, and says how to quit when there is none.
        KeyCode::Esc if app.screens.len() == 1 => {
            app.clear_a_filter();
            return;
        }
        KeyCode::Char('q') | KeyCode::Esc => {
            app.back();
            return;
        }
        KeyCode::Char('r') => {
            // The operator asked: read everything again, changed or not.
            app.refresh(Refresh::Full);
            return;
        }
        KeyCode::Char('P') => {
            popups::prune::preview(app);
            return;
        }
        _ => {}
    }
    match app.screen() {
        Screen::Workflows => workflows::on_key(app, key),
        Screen::Detail => detail::on_key(app, key),
        Screen::Checkpoints => checkpoints::on_key(app, key),
        Screen::Snapshot => snapshot::on_key(app, key),
        Screen::Diff => diff::on_key(app, key),
    }
}
