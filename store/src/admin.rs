//! Read queries for admin tools (the `wfadmin` terminal UI and CLI): pages of workflow
//! summaries with step and checkpoint counts, counts per status, a workflow's current
//! version, and what a prune would delete.
//!
//! Every method runs a fixed number of statements whatever the number of rows: a page
//! is one query for the workflows and one `GROUP BY` query each for their step and
//! checkpoint counts (one per 10,000 workflows, so a page of 100,000 stays under every
//! database's cap on bind parameters).

use crate::error::Entity;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::{checkpoints, step_states, workflow_states};
use sea_orm::sea_query::{Asterisk, Cond, Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, FromQueryResult, Order, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use uuid::Uuid;

use crate::backend::{IDS_PER_STATEMENT, diagnosed, time_as_text};
use crate::error::{Result, StateStoreError};
use crate::model::{StepStatus, WorkflowStatus};
use crate::seaorm::convert::stored_time;
use crate::seaorm::replicas::lease_expired;
use crate::seaorm::{SeaOrmStateStore, status_in};

/// One row of the workflows table: the workflow's fields without its context, with how
/// many of its steps are done and how many checkpoints it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowSummary {
    /// The store's id for this run.
    pub id: Uuid,
    /// The orchestrator's id for the workflow.
    pub workflow_id: String,
    /// The human-readable name.
    pub workflow_name: String,
    /// Where the workflow is in its lifecycle.
    pub status: WorkflowStatus,
    /// Who started it, if known.
    pub user_id: Option<String>,
    /// When the run was created.
    pub started_at: DateTime<Utc>,
    /// When the state last changed.
    pub updated_at: DateTime<Utc>,
    /// When the run finished, if it did.
    pub completed_at: Option<DateTime<Utc>>,
    /// The error that failed the workflow, if any.
    pub error: Option<String>,
    /// Steps that are completed or skipped.
    pub steps_done: u64,
    /// All steps the workflow has recorded.
    pub steps_total: u64,
    /// Checkpoints stored for the workflow.
    pub checkpoint_count: u64,
    /// Who last claimed the workflow for recovery ([`claim_workflows`]), if anyone has.
    ///
    /// [`claim_workflows`]: crate::StateStore::claim_workflows
    pub lease_owner: Option<String>,
    /// When that claim runs out or ran out: an active workflow whose lease has expired
    /// lost its owner (a crashed replica) and waits for `recover_workflows`.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Whether that lease had run out when the row was read, by the clock leases run by
    /// (the Postgres server's: a tool on a machine whose clock is off still knows).
    pub lease_expired: bool,
}

/// The column a workflow page is sorted by (after "active first", when asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WorkflowSort {
    /// Last change (the default).
    #[default]
    UpdatedAt,
    /// Creation time.
    StartedAt,
    /// The orchestrator's workflow id.
    WorkflowId,
    /// The workflow's name.
    WorkflowName,
    /// The status name.
    Status,
}

impl WorkflowSort {
    /// Every sort column, in the order a UI cycles through them.
    pub const ALL: [WorkflowSort; 5] = [
        Self::UpdatedAt,
        Self::StartedAt,
        Self::WorkflowId,
        Self::WorkflowName,
        Self::Status,
    ];

    /// A short lowercase name (`"updated"`, `"workflow_id"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdatedAt => "updated",
            Self::StartedAt => "started",
            Self::WorkflowId => "workflow_id",
            Self::WorkflowName => "name",
            Self::Status => "status",
        }
    }

    fn column(self) -> workflow_states::Column {
        use workflow_states::Column as W;
        match self {
            Self::UpdatedAt => W::UpdatedAt,
            Self::StartedAt => W::StartedAt,
            Self::WorkflowId => W::WorkflowId,
            Self::WorkflowName => W::WorkflowName,
            Self::Status => W::Status,
        }
    }

    fn key_of(self, row: &WorkflowSummary) -> SortValue {
        match self {
            Self::UpdatedAt => SortValue::Time(row.updated_at),
            Self::StartedAt => SortValue::Time(row.started_at),
            Self::WorkflowId => SortValue::Text(row.workflow_id.clone()),
            Self::WorkflowName => SortValue::Text(row.workflow_name.clone()),
            Self::Status => SortValue::Text(row.status.as_str().to_owned()),
        }
    }
}

/// The value of the sort column in a row, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    /// A timestamp column.
    Time(DateTime<Utc>),
    /// A text column.
    Text(String),
}

impl SortValue {
    fn into_expr(self) -> Expr {
        match self {
            Self::Time(time) => Expr::val(time.fixed_offset()),
            Self::Text(text) => Expr::val(text),
        }
    }
}

/// Where the next page starts: the sort key of the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    /// Whether the last row was active (only used when the query puts active first).
    pub active: bool,
    /// The last row's value of the sort column.
    pub value: SortValue,
    /// The last row's id, which breaks ties.
    pub id: Uuid,
}

/// Which workflows to list, in what order, and which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowQuery {
    /// Only these statuses (empty: all).
    pub statuses: Vec<WorkflowStatus>,
    /// Only pending, running or paused workflows.
    pub active_only: bool,
    /// Only active workflows whose recovery lease has expired: the replica that claimed
    /// them stopped renewing the lease (it crashed or hangs), and they wait for
    /// `recover_workflows`. Expired as of when the page is read.
    pub lease_expired: bool,
    /// Case-insensitive substring of the workflow id, name or user id, or the store id
    /// of a workflow.
    pub text: Option<String>,
    /// The sort column.
    pub sort: WorkflowSort,
    /// Largest first (newest first for times).
    pub descending: bool,
    /// Active workflows before finished ones, each group sorted by `sort`.
    pub active_first: bool,
    /// Start after this row (keyset pagination); `None` for the first page.
    pub after: Option<PageCursor>,
    /// Most rows to return.
    pub limit: u64,
}

impl WorkflowQuery {
    /// Whether the query can list active workflows only (`active_only`, or
    /// `lease_expired`, which only active workflows can be).
    pub fn only_active(&self) -> bool {
        self.active_only || self.lease_expired
    }
}

impl Default for WorkflowQuery {
    fn default() -> Self {
        Self {
            statuses: Vec::new(),
            active_only: false,
            lease_expired: false,
            text: None,
            sort: WorkflowSort::UpdatedAt,
            descending: true,
            active_first: true,
            after: None,
            limit: 100,
        }
    }
}

/// A page of workflow summaries and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowPage {
    /// The rows, in the query's order.
    pub rows: Vec<WorkflowSummary>,
    /// The cursor for the next page, or `None` when this page is the last.
    pub next: Option<PageCursor>,
}

/// How many workflows are stored per status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Count per status; statuses without workflows are absent.
    pub by_status: BTreeMap<String, u64>,
    /// Active workflows whose recovery lease has expired: stuck until
    /// `recover_workflows` hands them to another replica (see
    /// [`WorkflowQuery::lease_expired`]).
    pub lease_expired: u64,
}

impl StatusCounts {
    /// Workflows with this status.
    pub fn get(&self, status: WorkflowStatus) -> u64 {
        self.by_status.get(status.as_str()).copied().unwrap_or(0)
    }

    /// All workflows.
    pub fn total(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// Pending, running and paused workflows.
    pub fn active(&self) -> u64 {
        WorkflowStatus::ACTIVE.iter().map(|s| self.get(*s)).sum()
    }
}

#[derive(Debug, FromQueryResult)]
struct SummaryRow {
    id: Uuid,
    workflow_id: String,
    workflow_name: String,
    status: String,
    user_id: Option<String>,
    // Timestamps as text (see `backend::time_as_text`), parsed per row.
    started_at: String,
    updated_at: String,
    completed_at: Option<String>,
    error: Option<String>,
    lease_owner: Option<String>,
    lease_expires_at: Option<String>,
    lease_expired: i32,
}

impl SummaryRow {
    /// `(started_at, updated_at, completed_at, lease_expires_at)` parsed; `Serialization`,
    /// naming the workflow, for a time the store cannot read.
    #[allow(clippy::type_complexity)]
    fn times(
        &self,
    ) -> Result<(
        DateTime<Utc>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    )> {
        let time = |column: &str, text: &str| {
            stored_time(column, text).map_err(|err| {
                StateStoreError::corrupt(format!("workflow state {}: {err}", self.id))
            })
        };
        let time_opt =
            |column: &str, text: Option<&String>| text.map(|text| time(column, text)).transpose();
        Ok((
            time("started_at", &self.started_at)?,
            time("updated_at", &self.updated_at)?,
            time_opt("completed_at", self.completed_at.as_ref())?,
            time_opt("lease_expires_at", self.lease_expires_at.as_ref())?,
        ))
    }
}

/// 0 for active workflows, 1 for the others.
fn active_rank() -> Expr {
    Expr::case(status_in(&WorkflowStatus::ACTIVE), 0)
        .finally(1)
        .into()
}

/// `%text%` with LIKE's wildcards escaped, lowercased.
fn like_pattern(text: &str) -> LikeExpr {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    LikeExpr::new(pattern).escape('\\')
}

fn lower_like(column: workflow_states::Column, pattern: &LikeExpr) -> Expr {
    Expr::expr(Func::lower(Expr::col(column))).like(pattern.clone())
}

/// Rows after `cursor` within its group: a later sort key, or the same key and a later id.
fn beyond_key(query: &WorkflowQuery, cursor: &PageCursor) -> Cond {
    use workflow_states::Column as W;
    let column = Expr::col(query.sort.column());
    let value = cursor.value.clone().into_expr();
    let (beyond, beyond_id) = if query.descending {
        (
            column.clone().lt(value.clone()),
            Expr::col(W::Id).lt(cursor.id),
        )
    } else {
        (
            column.clone().gt(value.clone()),
            Expr::col(W::Id).gt(cursor.id),
        )
    };
    // `key <= v AND (key < v OR (key = v AND id < i))`: the same rows as without the
    // first term, but the first term lets the database walk an index on the key as a range.
    let at_or_beyond = if query.descending {
        column.clone().lte(value.clone())
    } else {
        column.clone().gte(value.clone())
    };
    Cond::all().add(at_or_beyond).add(
        Cond::any()
            .add(beyond)
            .add(Cond::all().add(column.eq(value)).add(beyond_id)),
    )
}

/// Rows strictly after `cursor` in the order of `query`.
fn after_cursor(query: &WorkflowQuery, cursor: &PageCursor) -> Cond {
    let within_group = beyond_key(query, cursor);
    if query.active_first {
        let rank = i32::from(!cursor.active);
        Cond::any()
            .add(active_rank().gt(rank))
            .add(Cond::all().add(active_rank().eq(rank)).add(within_group))
    } else {
        within_group
    }
}

/// The statuses a query can return.
fn wanted_statuses(query: &WorkflowQuery) -> Vec<WorkflowStatus> {
    WorkflowStatus::ALL
        .into_iter()
        .filter(|s| query.statuses.is_empty() || query.statuses.contains(s))
        .filter(|s| !query.only_active() || s.is_active())
        .collect()
}

/// The workflow columns of a summary, with the query's status, lease and text filters
/// (a lease counts as expired on the lease clock of `backend`).
fn summary_select(query: &WorkflowQuery, backend: DbBackend) -> Select<workflow_states::Entity> {
    use workflow_states::Column as W;
    let mut select = workflow_states::Entity::find().select_only().columns([
        W::Id,
        W::WorkflowId,
        W::WorkflowName,
        W::Status,
        W::UserId,
        W::Error,
        W::LeaseOwner,
    ]);
    for time in [
        W::StartedAt,
        W::UpdatedAt,
        W::CompletedAt,
        W::LeaseExpiresAt,
    ] {
        let stored = Expr::col((workflow_states::Entity, time));
        select = select.column_as(
            time_as_text(backend, stored),
            sea_orm::IdenStatic::as_str(&time),
        );
    }
    let expired: Expr = Expr::case(lease_expired(backend), 1).finally(0).into();
    select = select.expr_as(expired, "lease_expired");
    if !query.statuses.is_empty() {
        select = select.filter(status_in(&query.statuses));
    }
    if query.only_active() {
        select = select.filter(status_in(&WorkflowStatus::ACTIVE));
    }
    if query.lease_expired {
        select = select.filter(lease_expired(backend));
    }
    if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
        let pattern = like_pattern(text);
        let mut matches = Cond::any()
            .add(lower_like(W::WorkflowId, &pattern))
            .add(lower_like(W::WorkflowName, &pattern))
            .add(lower_like(W::UserId, &pattern));
        // An id pasted from a log finds its workflow too.
        if let Ok(id) = Uuid::parse_str(text.trim()) {
            matches = matches.add(W::Id.eq(id));
        }
        select = select.filter(matches);
    }
    select
}

fn order_of(query: &WorkflowQuery) -> Order {
    if query.descending {
        Order::Desc
    } else {
        Order::Asc
    }
}

fn to_u64(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

impl<B> SeaOrmStateStore<B> {
    /// Which database the store is on.
    fn backend(&self) -> DbBackend {
        self.connection().get_database_backend()
    }

    /// A page of workflow summaries matching `query`, with step and checkpoint counts: a
    /// fixed number of statements whatever the page size (the rows, by one statement or
    /// one per status; then one `GROUP BY` each for step and checkpoint counts).
    ///
    /// ```
    /// use llm_orchestrator_state::admin::WorkflowQuery;
    /// use llm_orchestrator_state::{SqliteStateStore, StateStore, WorkflowState};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = SqliteStateStore::new(":memory:").await?;
    /// for n in 0..3 {
    ///     let state = WorkflowState::new(format!("wf-{n}"), "Demo", None, serde_json::json!({}));
    ///     store.save_workflow_state(&state).await?;
    /// }
    /// let first = store.workflow_page(&WorkflowQuery { limit: 2, ..Default::default() }).await?;
    /// assert_eq!(first.rows.len(), 2);
    /// let rest = store
    ///     .workflow_page(&WorkflowQuery { limit: 2, after: first.next, ..Default::default() })
    ///     .await?;
    /// assert_eq!(rest.rows.len(), 1);
    /// assert!(rest.next.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn workflow_page(&self, query: &WorkflowQuery) -> Result<WorkflowPage> {
        diagnosed(self, async {
            let rows = if query.sort == WorkflowSort::UpdatedAt {
                self.rows_by_status(query).await?
            } else {
                self.rows_in_one_query(query).await?
            };
            let summaries = self.summaries(rows).await?;
            let next = match summaries.last() {
                Some(last) if summaries.len() as u64 == query.limit => Some(PageCursor {
                    active: last.status.is_active(),
                    value: query.sort.key_of(last),
                    id: last.id,
                }),
                _ => None,
            };
            Ok(WorkflowPage {
                rows: summaries,
                next,
            })
        })
        .await
    }

    /// The workflows list's row of one workflow: its fields without the context, its step
    /// and checkpoint counts and its recovery lease, in three statements that read by
    /// primary key (the page query's text filter would also scan for LIKE matches).
    /// `NotFound` if no workflow has this id.
    ///
    /// ```
    /// use llm_orchestrator_state::{SqliteStateStore, StateStore, StepState, WorkflowState};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = SqliteStateStore::new(":memory:").await?;
    /// let mut state = WorkflowState::new("wf-1", "Demo", None, serde_json::json!({}));
    /// let mut step = StepState::new("retrieve");
    /// step.mark_completed(serde_json::json!({ "documents": 3 }));
    /// store.record_step(&mut state, step).await?;
    /// let row = store.workflow_summary(&state.id).await?;
    /// assert_eq!((row.steps_done, row.steps_total, row.checkpoint_count), (1, 1, 1));
    /// assert_eq!(row.lease_owner, None);
    /// # Ok(())
    /// # }
    /// ```
    #[tracing::instrument(name = "workflow_summary", skip_all, err,
        fields(workflow_state_id = %id))]
    pub async fn workflow_summary(&self, id: &Uuid) -> Result<WorkflowSummary> {
        use workflow_states::Column as W;
        diagnosed(self, async {
            let row = summary_select(&WorkflowQuery::default(), self.backend())
                .filter(W::Id.eq(*id))
                .into_model::<SummaryRow>()
                .one(self.connection())
                .await?
                .ok_or_else(|| {
                    StateStoreError::not_found(Entity::Workflow, format!("workflow state {id}"))
                })?;
            let mut summaries = self.summaries(vec![row]).await?;
            Ok(summaries.remove(0))
        })
        .await
    }

    /// Summaries of these rows, in their order, with their step and checkpoint counts
    /// (one `GROUP BY` query each).
    async fn summaries(&self, rows: Vec<SummaryRow>) -> Result<Vec<WorkflowSummary>> {
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let (steps, checkpoint_counts) = if ids.is_empty() {
            (HashMap::new(), HashMap::new())
        } else {
            (
                self.step_counts(&ids).await?,
                self.checkpoint_counts(&ids).await?,
            )
        };
        let mut summaries = Vec::with_capacity(rows.len());
        for row in rows {
            let (steps_total, steps_done) = steps.get(&row.id).copied().unwrap_or((0, 0));
            let (started_at, updated_at, completed_at, lease_expires_at) = row.times()?;
            summaries.push(WorkflowSummary {
                status: row.status.parse()?,
                id: row.id,
                workflow_id: row.workflow_id,
                workflow_name: row.workflow_name,
                user_id: row.user_id,
                started_at,
                updated_at,
                completed_at,
                error: row.error,
                steps_done,
                steps_total,
                checkpoint_count: checkpoint_counts.get(&row.id).copied().unwrap_or(0),
                lease_owner: row.lease_owner,
                lease_expires_at,
                lease_expired: row.lease_expired != 0,
            });
        }
        Ok(summaries)
    }

    /// One page in one statement, ordered by "active first" and the sort column. The
    /// rank expression cannot use an index, so the database scans the filtered rows.
    async fn rows_in_one_query(&self, query: &WorkflowQuery) -> Result<Vec<SummaryRow>> {
        use workflow_states::Column as W;
        let mut select = summary_select(query, self.backend());
        if let Some(cursor) = &query.after {
            select = select.filter(after_cursor(query, cursor));
        }
        if query.active_first {
            select = select.order_by(active_rank(), Order::Asc);
        }
        Ok(select
            .order_by(query.sort.column(), order_of(query))
            .order_by(W::Id, order_of(query))
            .limit(query.limit)
            .into_model::<SummaryRow>()
            .all(self.connection())
            .await?)
    }

    /// One page sorted by `updated_at`, as one statement per status (at most five), each
    /// a range of the `(status, updated_at)` index, merged here: on 100,000 workflows this
    /// reads a few hundred index entries instead of every row.
    async fn rows_by_status(&self, query: &WorkflowQuery) -> Result<Vec<SummaryRow>> {
        use workflow_states::Column as W;
        let rank = |status: WorkflowStatus| i32::from(query.active_first && !status.is_active());
        let mut rows = Vec::new();
        for status in wanted_statuses(query) {
            let mut select = summary_select(query, self.backend()).filter(status_in(&[status]));
            if let Some(cursor) = &query.after {
                let cursor_rank = i32::from(query.active_first && !cursor.active);
                if query.active_first && rank(status) < cursor_rank {
                    continue; // every row of this status comes before the cursor
                }
                if !query.active_first || rank(status) == cursor_rank {
                    select = select.filter(beyond_key(query, cursor));
                }
            }
            rows.extend(
                select
                    .order_by(W::UpdatedAt, order_of(query))
                    .order_by(W::Id, order_of(query))
                    .limit(query.limit)
                    .into_model::<SummaryRow>()
                    .all(self.connection())
                    .await?,
            );
        }
        let rank_of = |row: &SummaryRow| row.status.parse::<WorkflowStatus>().map_or(1, &rank);
        // A time that does not parse sorts first; its row then fails the page.
        let updated = |row: &SummaryRow| stored_time("updated_at", &row.updated_at).ok();
        rows.sort_by(|a, b| {
            let key = (updated(a), a.id).cmp(&(updated(b), b.id));
            rank_of(a)
                .cmp(&rank_of(b))
                .then(if query.descending { key.reverse() } else { key })
        });
        rows.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok(rows)
    }

    /// `(total, done)` step counts of these workflows, in one `GROUP BY` query (per
    /// `IDS_PER_STATEMENT` workflows).
    async fn step_counts(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, (u64, u64)>> {
        use step_states::Column as S;
        let mut counts = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let done = [StepStatus::Completed.as_str(), StepStatus::Skipped.as_str()];
            let done_case: Expr = Expr::case(S::Status.is_in(done), 1).into();
            let rows: Vec<(Uuid, i64, i64)> = step_states::Entity::find()
                .select_only()
                .column(S::WorkflowStateId)
                .expr(Expr::col(Asterisk).count())
                .expr(done_case.count())
                .filter(S::WorkflowStateId.is_in(chunk.iter().copied()))
                .group_by(S::WorkflowStateId)
                .into_tuple()
                .all(self.connection())
                .await?;
            counts.extend(
                rows.into_iter()
                    .map(|(id, total, done)| (id, (to_u64(total), to_u64(done)))),
            );
        }
        Ok(counts)
    }

    /// Checkpoint counts of these workflows, in one `GROUP BY` query (per
    /// `IDS_PER_STATEMENT` workflows).
    async fn checkpoint_counts(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, u64>> {
        use checkpoints::Column as K;
        let mut counts = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let rows: Vec<(Uuid, i64)> = checkpoints::Entity::find()
                .select_only()
                .column(K::WorkflowStateId)
                .expr(Expr::col(Asterisk).count())
                .filter(K::WorkflowStateId.is_in(chunk.iter().copied()))
                .group_by(K::WorkflowStateId)
                .into_tuple()
                .all(self.connection())
                .await?;
            counts.extend(rows.into_iter().map(|(id, count)| (id, to_u64(count))));
        }
        Ok(counts)
    }

    /// The version a workflow is stored at now (see [`Versioned`](crate::Versioned)): 1
    /// after its first save, one more with every write of it (save, conditional save,
    /// rollback). One statement that reads the `version` column only, never the context
    /// or the steps, so a UI showing a workflow can ask every few seconds whether it
    /// changed and read it in full only when the answer differs from the version it shows.
    /// `NotFound` if no workflow has this id (it was deleted or pruned).
    ///
    /// ```
    /// use llm_orchestrator_state::{SqliteStateStore, StateStore, WorkflowState};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = SqliteStateStore::new(":memory:").await?;
    /// let state = WorkflowState::new("wf-1", "Demo", None, serde_json::json!({}));
    /// store.save_workflow_state(&state).await?;
    /// let shown = store.load_workflow_state_versioned(&state.id).await?;
    /// assert_eq!(store.workflow_version(&state.id).await?, shown.version);
    /// store.save_workflow_state(&state).await?;
    /// assert_eq!(store.workflow_version(&state.id).await?, shown.version + 1);
    /// # Ok(())
    /// # }
    /// ```
    #[tracing::instrument(name = "workflow_version", skip_all, err,
        fields(workflow_state_id = %id))]
    pub async fn workflow_version(&self, id: &Uuid) -> Result<i64> {
        use workflow_states::Column as W;
        let version = workflow_states::Entity::find_by_id(*id)
            .select_only()
            .column(W::Version)
            .into_tuple::<i64>()
            .one(self.connection());
        diagnosed(self, async { Ok(version.await?) })
            .await?
            .ok_or_else(|| {
                StateStoreError::not_found(Entity::Workflow, format!("workflow state {id}"))
            })
    }

    /// The store id of the most recently updated run of `workflow_id`, read from the
    /// `(workflow_id, updated_at)` index without the run's JSON, so a tool finds a run
    /// whose stored context or steps cannot be read (to list its checkpoints, or roll it
    /// back to one). `NotFound` if no run has this `workflow_id`.
    ///
    /// ```
    /// use llm_orchestrator_state::{SqliteStateStore, StateStore, WorkflowState};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = SqliteStateStore::new(":memory:").await?;
    /// let state = WorkflowState::new("wf-1", "Demo", None, serde_json::json!({}));
    /// store.save_workflow_state(&state).await?;
    /// assert_eq!(store.latest_run("wf-1").await?, state.id);
    /// assert!(store.latest_run("wf-2").await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn latest_run(&self, workflow_id: &str) -> Result<Uuid> {
        use workflow_states::Column as W;
        let id = workflow_states::Entity::find()
            .select_only()
            .column(W::Id)
            .filter(W::WorkflowId.eq(workflow_id))
            .order_by_desc(W::UpdatedAt)
            .order_by_desc(W::Id)
            .into_tuple::<Uuid>()
            .one(self.connection());
        diagnosed(self, async { Ok(id.await?) })
            .await?
            .ok_or_else(|| {
                StateStoreError::not_found(Entity::Workflow, format!("workflow {workflow_id:?}"))
            })
    }

    /// How many runs (stored workflow states) have exactly this `workflow_id`: one count
    /// on the `(workflow_id, updated_at)` index. A tool that shows "the" run of a
    /// workflow_id (the most recently updated) can say when there are others.
    pub async fn count_runs(&self, workflow_id: &str) -> Result<u64> {
        use sea_orm::PaginatorTrait as _;
        use workflow_states::Column as W;
        let runs = workflow_states::Entity::find()
            .filter(W::WorkflowId.eq(workflow_id))
            .count(self.connection());
        diagnosed(self, async { Ok(runs.await?) }).await
    }

    /// How many workflows are stored per status, and how many active ones have an
    /// expired lease, in one `GROUP BY` query.
    pub async fn status_counts(&self) -> Result<StatusCounts> {
        use workflow_states::Column as W;
        // Expired leases per status; only the active statuses' count is kept.
        let expired = Expr::case(lease_expired(self.backend()), 1).finally(0);
        // In any case: `RUNNING` is counted as running (see `WorkflowStatus`'s parsing).
        let status: Expr = Func::lower(Expr::col(W::Status)).into();
        let rows = workflow_states::Entity::find()
            .select_only()
            .expr(status.clone())
            .expr(Expr::col(Asterisk).count())
            .expr(Func::sum(expired))
            .group_by(status)
            .into_tuple::<(String, i64, i64)>()
            .all(self.connection());
        let rows = diagnosed(self, async { Ok(rows.await?) }).await?;
        let mut counts = StatusCounts::default();
        for (status, count, expired) in rows {
            let active = status
                .parse::<WorkflowStatus>()
                .is_ok_and(WorkflowStatus::is_active);
            if active {
                counts.lease_expired += to_u64(expired);
            }
            counts.by_status.insert(status, to_u64(count));
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Checkpoint, SqliteStateStore, StateStore, StepState, WorkflowState};
    use serde_json::json;

    async fn seeded() -> SqliteStateStore {
        let store = SqliteStateStore::new(":memory:").await.unwrap();
        let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for n in 0..7_i64 {
            let mut state =
                WorkflowState::new(format!("wf-{n}"), format!("Name {n}"), None, json!({}));
            state.status = WorkflowStatus::ALL[(n % 5) as usize];
            state.updated_at = base + chrono::Duration::minutes(n % 3);
            state.started_at = base;
            for s in 0..n {
                let mut step = StepState::new(format!("s{s}"));
                if s % 2 == 0 {
                    step.status = StepStatus::Completed;
                }
                state.steps.insert(step.step_id.clone(), step);
            }
            store.save_workflow_state(&state).await.unwrap();
            for _ in 0..(n % 4) {
                store
                    .create_checkpoint(&Checkpoint::of(&state, "s0").unwrap())
                    .await
                    .unwrap();
            }
        }
        store
    }

    #[tokio::test]
    async fn pages_cover_every_row_once_in_order() {
        let store = seeded().await;
        for sort in WorkflowSort::ALL {
            for descending in [true, false] {
                for active_first in [true, false] {
                    let mut query = WorkflowQuery {
                        sort,
                        descending,
                        active_first,
                        limit: 100,
                        ..Default::default()
                    };
                    let all = store.workflow_page(&query).await.unwrap().rows;
                    assert_eq!(all.len(), 7);
                    query.limit = 2;
                    let mut paged = Vec::new();
                    loop {
                        let page = store.workflow_page(&query).await.unwrap();
                        paged.extend(page.rows);
                        match page.next {
                            Some(next) => query.after = Some(next),
                            None => break,
                        }
                    }
                    assert_eq!(paged, all, "{sort:?} desc={descending} af={active_first}");
                    if active_first {
                        let first_finished = all.iter().position(|r| !r.status.is_active());
                        let last_active = all.iter().rposition(|r| r.status.is_active());
                        assert!(last_active < first_finished);
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn per_status_pages_match_the_single_query() {
        let store = seeded().await;
        for descending in [true, false] {
            for active_first in [true, false] {
                for (statuses, active_only) in [
                    (vec![], false),
                    (vec![], true),
                    (vec![WorkflowStatus::Pending, WorkflowStatus::Failed], false),
                ] {
                    let mut query = WorkflowQuery {
                        statuses: statuses.clone(),
                        active_only,
                        descending,
                        active_first,
                        limit: 2,
                        ..Default::default()
                    };
                    let mut single = Vec::new();
                    let mut merged = Vec::new();
                    loop {
                        let a = store.rows_in_one_query(&query).await.unwrap();
                        let b = store.rows_by_status(&query).await.unwrap();
                        let ids_a: Vec<Uuid> = a.iter().map(|r| r.id).collect();
                        let ids_b: Vec<Uuid> = b.iter().map(|r| r.id).collect();
                        assert_eq!(ids_a, ids_b, "desc={descending} af={active_first}");
                        single.extend(ids_a);
                        merged.extend(ids_b);
                        let page = store.workflow_page(&query).await.unwrap();
                        match page.next {
                            Some(next) => query.after = Some(next),
                            None => break,
                        }
                    }
                    assert_eq!(single, merged);
                    let expected = store
                        .workflow_page(&WorkflowQuery {
                            limit: 100,
                            after: None,
                            ..query.clone()
                        })
                        .await
                        .unwrap()
                        .rows
                        .len();
                    assert_eq!(merged.len(), expected);
                }
            }
        }
    }

    #[tokio::test]
    async fn counts_steps_checkpoints_and_statuses() {
        let store = seeded().await;
        let page = store
            .workflow_page(&WorkflowQuery {
                text: Some("WF-5".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.rows.len(), 1);
        let row = &page.rows[0];
        assert_eq!(row.workflow_id, "wf-5");
        assert_eq!((row.steps_done, row.steps_total), (3, 5));
        assert_eq!(row.checkpoint_count, 1);

        let active = store
            .workflow_page(&WorkflowQuery {
                active_only: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(active.rows.iter().all(|r| r.status.is_active()));
        assert_eq!(active.rows.len(), 5);

        let counts = store.status_counts().await.unwrap();
        assert_eq!(counts.total(), 7);
        assert_eq!(counts.get(WorkflowStatus::Pending), 2);
        assert_eq!(counts.active(), 5);

        let by_id = store
            .workflow_page(&WorkflowQuery {
                text: Some(format!(" {} ", row.id)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_id.rows.len(), 1);
        assert_eq!(by_id.rows[0].id, row.id);

        let wildcard = store
            .workflow_page(&WorkflowQuery {
                text: Some("%".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(wildcard.rows.is_empty());
    }
}
