//! The store's statements, written once over any SeaORM connection or transaction.
//!
//! Each function takes the connection or transaction to run on, so the caller decides
//! the transaction. Batches of writes go through `backend::write_all`, which makes them
//! atomic in the fewest round trips.

use crate::error::Entity;
use chrono::{DateTime, Utc};
use entity::{checkpoint_bases, checkpoints, step_states, workflow_states};
use sea_orm::sea_query::{
    Alias, BinOper, Expr, ExprTrait as _, Func, InsertStatement, IntoIden, OnConflict, Query,
    SelectStatement, SimpleExpr,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ColumnType, Condition, ConnectionTrait, DbBackend, EntityTrait,
    FromQueryResult, IdenStatic as _, Iterable as _, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select, Statement,
};
use serde_json::Value;
use uuid::Uuid;

use super::convert;
use super::rendered::Rendered;
use crate::backend::{self, Db, Write, Written};
use crate::error::{Result, StateStoreError};
use crate::model::{Checkpoint, WorkflowState, WorkflowStatus, now};

mod checkpoint_rows;

pub(crate) use checkpoint_rows::*;

/// `SELECT <what> FROM checkpoints AS newer` where `newer` is a checkpoint of the same
/// workflow as the outer query's `checkpoints` row and newer than it: a later timestamp,
/// or the same one and a greater id (the order every listing and "latest" use).
pub(crate) fn newer_checkpoints(what: SimpleExpr) -> sea_orm::sea_query::SelectStatement {
    use checkpoints::Column as K;
    let newer = Alias::new("newer");
    let col = |column: K| Expr::col((checkpoints::Entity, column));
    let newer_col = |column: K| Expr::col((newer.clone(), column));
    Query::select()
        .expr(what)
        .from_as(checkpoints::Entity, newer.clone())
        .and_where(newer_col(K::WorkflowStateId).eq(col(K::WorkflowStateId)))
        .and_where(
            newer_col(K::Timestamp)
                .gt(col(K::Timestamp))
                .or(newer_col(K::Timestamp)
                    .eq(col(K::Timestamp))
                    .and(newer_col(K::Id).gt(col(K::Id)))),
        )
        .to_owned()
}

/// A checkpoint that is not the newest of an active (pending, running or paused)
/// workflow: that one is what recovery would resume it from, so no rule deletes it (an
/// age rule alone would otherwise take every checkpoint of a workflow paused for long).
pub(crate) fn not_what_recovery_resumes_from() -> SimpleExpr {
    use checkpoints::Column as K;
    use workflow_states::Column as W;
    let has_newer = newer_checkpoints(Expr::val(1));
    let active = Query::select()
        .column(W::Id)
        .from(workflow_states::Entity)
        .and_where(status_in(&WorkflowStatus::ACTIVE))
        .to_owned();
    Expr::col((checkpoints::Entity, K::WorkflowStateId))
        .not_in_subquery(active)
        .or(Expr::exists(has_newer))
}

/// A count for LIMIT/OFFSET: SQL takes a signed 64-bit integer, so larger is "all".
pub(crate) fn sql_count(count: impl TryInto<i64>) -> u64 {
    count
        .try_into()
        .map_or(i64::MAX, |count: i64| Ord::max(count, 0)) as u64
}

pub(crate) fn status_names(statuses: &[WorkflowStatus]) -> Vec<&'static str> {
    statuses.iter().map(|status| status.as_str()).collect()
}

/// `SELECT` of every column of `E`, under its own name, with its timestamps as text
/// (`backend::time_as_text`) and its JSON as text (`backend::json_as_text`): decoded into a row type of `convert`, where each row's
/// times are parsed on their own, so no stored value fails or panics a whole read.
pub(crate) fn find_readable<E: EntityTrait>(backend: DbBackend) -> Select<E> {
    let mut select = E::find().select_only();
    for column in E::Column::iter() {
        select = match column.def().get_column_type() {
            ColumnType::TimestampWithTimeZone | ColumnType::Timestamp => {
                let stored = Expr::col((E::default(), column));
                select.column_as(backend::time_as_text(backend, stored), column.as_str())
            }
            ColumnType::Json | ColumnType::JsonBinary => {
                let stored = Expr::col((E::default(), column));
                select.column_as(backend::json_as_text(backend, stored), column.as_str())
            }
            _ => select.column(column),
        };
    }
    select
}

/// [`find_readable`] for checkpoints, with each row's base snapshot (`base`, as text)
/// beside it: what rebuilds the snapshot of a checkpoint stored as a patch (see
/// [`super::bases`]).
pub(crate) fn readable_checkpoints(backend: DbBackend) -> Select<checkpoints::Entity> {
    let base = Expr::col((checkpoint_bases::Entity, checkpoint_bases::Column::Snapshot));
    find_readable::<checkpoints::Entity>(backend)
        .left_join(checkpoint_bases::Entity)
        .column_as(backend::json_as_text(backend, base), "base")
}

/// [`find_readable`] for workflows, with the snapshot of the base a row's context is a
/// patch from (`context_base`, as text), when it is one (see [`super::bases`]).
pub(crate) fn readable_workflows(backend: DbBackend) -> Select<workflow_states::Entity> {
    use checkpoint_bases::Column as B;
    let base = Alias::new("context_base");
    let mut select = find_readable::<workflow_states::Entity>(backend).column_as(
        backend::json_as_text(backend, Expr::col((base.clone(), B::Snapshot))),
        "context_base",
    );
    QueryTrait::query(&mut select).join_as(
        sea_orm::JoinType::LeftJoin,
        checkpoint_bases::Entity,
        base.clone(),
        Expr::col((base, B::Id)).equals((
            workflow_states::Entity,
            workflow_states::Column::ContextBaseId,
        )),
    );
    select
}

/// The workflow's stored status is one of `statuses`, in any case: a row written by hand
/// or by another tool as `RUNNING` is running, as [`WorkflowStatus`]'s parsing reads it.
pub(crate) fn status_in(statuses: &[WorkflowStatus]) -> SimpleExpr {
    let status = Expr::col((workflow_states::Entity, workflow_states::Column::Status));
    SimpleExpr::from(Func::lower(status)).is_in(status_names(statuses))
}

/// Upserts the workflow row, upserts all steps in one statement and deletes steps that
/// are gone, atomically. Returns the rows written and deleted.
pub(crate) async fn save_state<C: Db>(conn: &C, state: &WorkflowState) -> Result<u64> {
    let writes = save_writes(conn.get_database_backend(), state);
    Ok(backend::write_all(conn, writes).await?)
}

/// Saves a state and creates a checkpoint of it (with retention), atomically: one
/// round trip on Postgres.
pub(crate) async fn save_state_and_checkpoint<C: Db>(
    conn: &C,
    state: &WorkflowState,
    filing: Filing<'_>,
    retention: Option<usize>,
) -> Result<Written> {
    let writes = save_writes(conn.get_database_backend(), state);
    with_checkpoint(conn, writes, filing, retention).await
}

/// A step recorded from a copy of the workflow that must still be the stored one (see
/// [`step_record_writes`]), under `guard`, and its checkpoint (with retention), in one
/// batch: one round trip on Postgres.
pub(crate) async fn step_and_checkpoint<C: Db>(
    conn: &C,
    guard: Write,
    copy: CopyOf<'_>,
    next: &WorkflowState,
    filing: Filing<'_>,
    retention: Option<usize>,
) -> Result<Written> {
    let context = filing.form.context_row(&next.context);
    let writes = step_record_writes(guard, copy, next, context);
    with_checkpoint(conn, writes, filing, retention).await
}

/// One step of `state` and a checkpoint (with its retention), in one batch: the rest of
/// a conditional step write once its update of the workflow row went through.
pub(crate) async fn one_step_and_checkpoint<C: Db>(
    conn: &C,
    state: &WorkflowState,
    step_id: &str,
    filing: Filing<'_>,
    retention: Option<usize>,
) -> Result<Written> {
    let writes = state
        .steps
        .get(step_id)
        .map(|step| one_step_write(state.id, step))
        .into_iter()
        .collect();
    with_checkpoint(conn, writes, filing, retention).await
}

/// The workflow as it was stored at `updated_at`, when a checkpoint of exactly that
/// state is still stored (a step's checkpoint is taken at its state's `updated_at`, an
/// automatic one at that time or later): what a caller's copy read then started from.
pub(crate) async fn state_at<C: Db>(
    conn: &C,
    workflow_state_id: Uuid,
    updated_at: DateTime<Utc>,
) -> Result<Option<WorkflowState>> {
    use checkpoints::Column as K;
    let rows = readable_checkpoints(conn.get_database_backend())
        .filter(K::WorkflowStateId.eq(workflow_state_id))
        .filter(K::Timestamp.gte(convert::to_db(updated_at)))
        .order_by_asc(K::Timestamp)
        .limit(4)
        .into_model::<convert::CheckpointRow>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| convert::checkpoint_from_row(row).ok())
        .filter_map(|checkpoint| snapshot_state(&checkpoint).ok())
        .find(|state| state.updated_at == updated_at))
}

/// `writes`, then a checkpoint's (with its retention), in one batch.
async fn with_checkpoint<C: Db>(
    conn: &C,
    mut writes: Vec<Write>,
    filing: Filing<'_>,
    retention: Option<usize>,
) -> Result<Written> {
    writes.extend(checkpoint_writes(filing, retention));
    backend::write_all_versioned(conn, writes)
        .await
        .map_err(|err| checkpoint_insert_error(err, filing))
}

/// The writes of a save: the workflow's guard (a plain save is refused while a live
/// lease holds the workflow), the workflow row, its steps, and the deletion of steps that
/// are gone.
fn save_writes(backend: DbBackend, state: &WorkflowState) -> Vec<Write> {
    let mut writes = vec![
        guard_write(backend, state.id),
        Write::Insert(workflow_upsert(state)),
    ];
    writes.extend(step_writes(state));
    writes
}

/// The upsert of the workflow row of `state`: every column but the lease, its context
/// kept as stored when unchanged, its version one more.
fn workflow_upsert(state: &WorkflowState) -> InsertStatement {
    workflow_upsert_as(state, None)
}

/// [`workflow_upsert`] with the context stored as `context`, a patch from the context of
/// the base it names (see [`Form::context_row`](super::bases::Form::context_row)), or whole when `None`.
fn workflow_upsert_as(state: &WorkflowState, context: Option<(Value, Uuid)>) -> InsertStatement {
    use workflow_states::Column as W;
    let mut row = convert::workflow_row(state);
    if let Some((patch, base)) = context {
        row.context = Set(patch);
        row.context_base_id = Set(Some(base));
    }
    workflow_states::Entity::insert(row)
        .on_conflict(
            OnConflict::column(W::Id)
                .update_columns([
                    W::WorkflowId,
                    W::WorkflowName,
                    W::Status,
                    W::UserId,
                    W::StartedAt,
                    W::UpdatedAt,
                    W::CompletedAt,
                    W::Error,
                    W::ContextBaseId,
                ])
                .value(
                    W::Context,
                    unless_unchanged(workflow_states::Entity, W::Context),
                )
                .value(
                    W::Version,
                    Expr::col((workflow_states::Entity, W::Version)).add(1),
                )
                .to_owned(),
        )
        .into_query()
}

/// What a caller's copy of a workflow holds, when a step is recorded from it: the stored
/// workflow must not have moved past it (see [`stale_copy_guard`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyOf<'a> {
    /// The copy's `updated_at` before the step: every store write moves the stored one
    /// on, and every change the caller makes to its copy moves the copy's.
    pub(crate) updated_at: DateTime<Utc>,
    /// How many steps the copy holds besides the one recorded.
    pub(crate) other_steps: usize,
    /// The latest time among those steps (completed, else started).
    pub(crate) last_step_at: Option<DateTime<Utc>>,
    /// The step recorded.
    pub(crate) step_id: &'a str,
}

impl<'a> CopyOf<'a> {
    /// What `copy` is, before `step_id` is recorded into it.
    pub(crate) fn new(copy: &WorkflowState, step_id: &'a str) -> Self {
        let others = || copy.steps.values().filter(|step| step.step_id != step_id);
        Self {
            updated_at: copy.updated_at,
            other_steps: others().count(),
            last_step_at: others()
                .filter_map(|step| step.completed_at.or(step.started_at))
                .max(),
            step_id,
        }
    }
}

/// The writes of a step recorded from a copy of the workflow that is the stored one:
/// `guard` (the workflow's lease guard, or the guard of the write's condition), the
/// copy's guard (a stored row that moved on since refuses it), the workflow row of `next`
/// (the copy with the step; the batch gives back its new version) and that one step.
/// Other steps are neither rewritten nor deleted.
pub(crate) fn step_record_writes(
    guard: Write,
    copy: CopyOf<'_>,
    next: &WorkflowState,
    context: Option<(Value, Uuid)>,
) -> Vec<Write> {
    let mut writes = vec![
        guard,
        stale_copy_guard(next.id, copy),
        Write::Versioned(workflow_upsert_as(next, context)),
    ];
    if let Some(step) = next.steps.get(copy.step_id) {
        writes.push(one_step_write(next.id, step));
    }
    writes
}

/// The guard of a write under `condition`, in place of [`guard_write`]: an update that
/// matches nothing while the condition holds, and refuses the batch (as
/// [`guard_write`] does) when it does not: the stored version is another, or a live
/// lease holds the workflow (for `Version`); another owner or token holds it (for
/// `Lease`). `None` for `Version(0)`, a workflow that must not exist yet, which no
/// update can check.
pub(crate) fn condition_guard(
    backend: DbBackend,
    workflow_state_id: Uuid,
    condition: &crate::model::SaveCondition,
) -> Option<Write> {
    use crate::model::SaveCondition;
    use workflow_states::Column as W;
    let holds = match condition {
        SaveCondition::Version(0) => return None,
        SaveCondition::Version(expected) => Condition::all()
            .add(W::Version.eq(*expected))
            .add(super::replicas::lease_live(backend).not()),
        SaveCondition::Lease(lease) => Condition::all()
            .add(W::LeaseOwner.eq(lease.owner.as_str()))
            .add(W::LeaseToken.eq(lease.token)),
    };
    // Refused unless the condition is true: NULL (no lease owner, say) is not true,
    // so `NOT holds` alone, NULL too, would let the write through.
    let refused =
        SimpleExpr::from(Func::coalesce([SimpleExpr::from(holds), Expr::val(false)])).not();
    Some(Write::Update(
        Query::update()
            .table(workflow_states::Entity)
            .value(W::LeaseToken, Option::<i64>::None)
            .and_where(W::Id.eq(workflow_state_id))
            .and_where(refused)
            .to_owned(),
    ))
}

/// The upsert of one step's row.
pub(crate) fn one_step_write(workflow_state_id: Uuid, step: &crate::model::StepState) -> Write {
    use step_states::Column as S;
    Write::Insert(
        step_states::Entity::insert(convert::step_row(workflow_state_id, step))
            .on_conflict(
                OnConflict::columns([S::WorkflowStateId, S::StepId])
                    .update_columns([
                        S::Status,
                        S::StartedAt,
                        S::CompletedAt,
                        S::Error,
                        S::RetryCount,
                    ])
                    .value(
                        S::Outputs,
                        unless_unchanged(step_states::Entity, S::Outputs),
                    )
                    .to_owned(),
            )
            .into_query(),
    )
}

/// The guard of a step written from a caller's copy of the workflow, next to
/// [`guard_write`]: an update that matches nothing while the stored workflow has not
/// moved past the copy: it was written no later than the copy's `updated_at` (the caller
/// may have changed its copy since it read it, which moves the copy's on), and its other
/// steps are as many as the copy's, the latest of them at the same time. When another
/// write came after the copy (a step that ran in parallel, a save from another copy), it
/// sets `version`, which is NOT NULL, to NULL: the database refuses the batch, and the
/// store records the step again from the stored workflow (see `seaorm::steps`). On
/// Postgres a concurrent commit between the statement's snapshot and its write is a
/// serialization failure, and the statement runs again (see `backend::write_all`), this
/// time refused here.
fn stale_copy_guard(workflow_state_id: Uuid, copy: CopyOf<'_>) -> Write {
    use step_states::Column as S;
    use workflow_states::Column as W;
    let other_steps = |what: SimpleExpr| {
        SimpleExpr::from(
            Query::select()
                .expr(what)
                .from(step_states::Entity)
                .and_where(
                    Expr::col((step_states::Entity, S::WorkflowStateId)).eq(workflow_state_id),
                )
                .and_where(Expr::col((step_states::Entity, S::StepId)).ne(copy.step_id))
                .to_owned(),
        )
    };
    let count = other_steps(Func::count(Expr::col((step_states::Entity, S::StepId))).into());
    let step_time = Func::coalesce([
        Expr::col((step_states::Entity, S::CompletedAt)),
        Expr::col((step_states::Entity, S::StartedAt)),
    ]);
    let last_step_at = other_steps(Func::max(step_time).into());
    let copy_count = i64::try_from(copy.other_steps).unwrap_or(i64::MAX);
    let copy_last = copy.last_step_at.map(convert::to_db);
    let moved_on = Condition::any()
        .add(W::UpdatedAt.gt(convert::to_db(copy.updated_at)))
        .add(count.ne(copy_count))
        .add(last_step_at.binary(BinOper::Custom("IS DISTINCT FROM"), Expr::val(copy_last)));
    Write::Update(
        Query::update()
            .table(workflow_states::Entity)
            .value(W::Version, Option::<i64>::None)
            .and_where(W::Id.eq(workflow_state_id))
            .cond_where(moved_on)
            .to_owned(),
    )
}

/// Locks the workflow row until the transaction ends (Postgres `FOR UPDATE`; a SQLite
/// write transaction holds the whole database already), so that what the transaction
/// reads of the workflow next is what it writes over.
pub(crate) async fn lock_workflow<C: Db>(conn: &C, workflow_state_id: Uuid) -> Result<()> {
    use workflow_states::Column as W;
    workflow_states::Entity::find()
        .select_only()
        .column(W::Id)
        .filter(W::Id.eq(workflow_state_id))
        .lock_exclusive()
        .into_tuple::<Uuid>()
        .one(conn)
        .await?;
    Ok(())
}

/// The guard of a plain write to a workflow, the first write of its batch: an update
/// that matches no row when the write may go ahead, so it costs no round trip and writes
/// nothing. When a live lease holds the workflow (the plain API writes under no lease),
/// it sets `lease_token`, which is NOT NULL, to NULL: the database refuses the statement
/// and the whole batch with it, and the store then reads who holds the lease (see
/// `seaorm::explained`).
pub(crate) fn guard_write(backend: DbBackend, workflow_state_id: Uuid) -> Write {
    use workflow_states::Column as W;
    Write::Update(
        Query::update()
            .table(workflow_states::Entity)
            .value(W::LeaseToken, Option::<i64>::None)
            .and_where(W::Id.eq(workflow_state_id))
            .cond_where(super::replicas::lease_live(backend))
            .to_owned(),
    )
}

/// The value an upsert would write into `column` (`excluded.column`).
fn excluded(column: impl IntoIden) -> SimpleExpr {
    Expr::col((Alias::new("excluded"), column))
}

/// `expr` as text: how two JSON values are compared when "the same" must mean stored
/// the same, since `1.0` and `1` are equal JSON but must not be stored as each other.
fn as_text(expr: SimpleExpr) -> SimpleExpr {
    Func::cast_as(expr, Alias::new("text")).into()
}

/// The value an upsert sets a JSON column to: the new one, or the stored one when their
/// text is the same. Postgres then keeps the stored value's TOAST copy instead of
/// compressing and writing it again, so a large context or step output that did not
/// change costs a save almost nothing.
fn unless_unchanged(table: impl IntoIden, column: impl IntoIden + Copy) -> SimpleExpr {
    let stored = Expr::col((table, column));
    Expr::case(
        as_text(stored.clone()).eq(as_text(excluded(column))),
        stored,
    )
    .finally(excluded(column))
    .into()
}

/// The condition under which the step upsert updates a stored step: some column differs.
/// A save rewrites every step of the state, and most are as stored; those rows then get
/// no new version (no WAL, nothing for vacuum), so a save costs what changed, not how
/// many steps the workflow has. JSON is compared as text, like [`unless_unchanged`].
fn step_changed() -> SimpleExpr {
    use step_states::Column as S;
    let stored = |column: S| Expr::col((step_states::Entity, column));
    let distinct = |stored: SimpleExpr, new: SimpleExpr| {
        stored.binary(BinOper::Custom("IS DISTINCT FROM"), new)
    };
    [
        S::Status,
        S::StartedAt,
        S::CompletedAt,
        S::Error,
        S::RetryCount,
    ]
    .into_iter()
    .map(|column| distinct(stored(column), excluded(column)))
    .fold(
        distinct(as_text(stored(S::Outputs)), as_text(excluded(S::Outputs))),
        |any, changed| any.or(changed),
    )
}

/// Step rows per insert statement (8 values each).
const STEPS_PER_INSERT: usize = 1_000;

/// The writes that make the stored steps exactly `state.steps`: one multi-row upsert and
/// one delete of the steps that are gone.
pub(crate) fn step_writes(state: &WorkflowState) -> Vec<Write> {
    use step_states::Column as S;
    let mut writes = Vec::with_capacity(2);
    let mut rows = convert::step_rows(state);
    // Chunks keep each statement under SQLite's 32,766 bind parameters; moved, not
    // cloned, into their statements.
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(STEPS_PER_INSERT));
        let chunk = std::mem::replace(&mut rows, rest);
        writes.push(Write::Insert(
            step_states::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([S::WorkflowStateId, S::StepId])
                        .update_columns([
                            S::Status,
                            S::StartedAt,
                            S::CompletedAt,
                            S::Error,
                            S::RetryCount,
                        ])
                        .value(
                            S::Outputs,
                            unless_unchanged(step_states::Entity, S::Outputs),
                        )
                        .action_and_where(step_changed())
                        .to_owned(),
                )
                .into_query(),
        ));
    }
    let mut gone = step_states::Entity::delete_many().filter(S::WorkflowStateId.eq(state.id));
    if !state.steps.is_empty() {
        gone = gone.filter(S::StepId.is_not_in(state.steps.keys().map(String::as_str)));
    }
    writes.push(Write::Delete(gone.into_query()));
    writes
}

/// A `workflow_states` row with its steps as one JSON array, as text (see
/// [`backend::steps_json_column`]).
#[derive(Debug, FromQueryResult)]
pub(crate) struct WorkflowWithSteps {
    #[sea_orm(nested)]
    pub(crate) row: convert::WorkflowRow,
    steps: Option<String>,
}

/// The workflows matching `filter`, each with its steps, newest update first.
fn workflows_with_steps(backend: DbBackend, filter: Condition) -> SelectStatement {
    use workflow_states::Column as W;
    readable_workflows(backend)
        .filter(filter)
        .column_as(backend::steps_json_column(backend), "steps")
        .order_by_desc(W::UpdatedAt)
        .order_by_desc(W::Id)
        .into_query()
}

/// The workflow with an id, with its steps.
fn workflow_by_id(backend: DbBackend, id: Uuid) -> SelectStatement {
    workflows_with_steps(
        backend,
        Condition::all().add(workflow_states::Column::Id.eq(id)),
    )
}

/// The runs of a workflow id, with their steps, the most recently updated first.
fn runs_of(backend: DbBackend, workflow_id: &str) -> SelectStatement {
    let column = Expr::col((workflow_states::Entity, workflow_states::Column::WorkflowId));
    let filter = column.eq(backend::lookup_value(backend, workflow_id));
    workflows_with_steps(backend, Condition::all().add(filter))
}

static WORKFLOW_BY_ID: Rendered = Rendered::new(|backend| workflow_by_id(backend, Uuid::nil()));
static RUNS_OF: Rendered = Rendered::new(|backend| runs_of(backend, ""));

/// Workflows matching `filter`, each with its steps, in one statement.
pub(crate) async fn select_with_steps<C: Db>(
    conn: &C,
    filter: Condition,
) -> Result<Vec<WorkflowWithSteps>> {
    let select = workflows_with_steps(conn.get_database_backend(), filter);
    let rows = conn.query_all(&select).await?;
    rows.iter()
        .map(|row| Ok(WorkflowWithSteps::from_query_result(row, "")?))
        .collect()
}

/// The one workflow (with its steps) `statement` reads, if any.
async fn one_with_steps<C: Db>(
    conn: &C,
    statement: Statement,
) -> Result<Option<WorkflowWithSteps>> {
    match conn.query_one_raw(statement).await? {
        Some(row) => Ok(Some(WorkflowWithSteps::from_query_result(&row, "")?)),
        None => Ok(None),
    }
}

pub(crate) fn with_steps(found: WorkflowWithSteps) -> Result<WorkflowState> {
    convert::workflow_from_row_and_json(found.row, found.steps.as_deref())
}

/// The workflow with this id and its steps.
pub(crate) async fn load_state<C: Db>(conn: &C, id: Uuid) -> Result<WorkflowState> {
    Ok(load_versioned(conn, id).await?.value)
}

/// The workflow with this id, its steps and its version.
pub(crate) async fn load_versioned<C: Db>(
    conn: &C,
    id: Uuid,
) -> Result<crate::model::Versioned<WorkflowState>> {
    let statement = WORKFLOW_BY_ID.bind(conn.get_database_backend(), [id.into()]);
    let found = one_with_steps(conn, statement).await?.ok_or_else(|| {
        StateStoreError::not_found(Entity::Workflow, format!("workflow state {id}"))
    })?;
    let version = found.row.version;
    Ok(crate::model::Versioned {
        value: with_steps(found)?,
        version,
    })
}

/// The most recently updated run of a workflow id, with its steps.
pub(crate) async fn load_state_by_workflow_id<C: Db>(
    conn: &C,
    workflow_id: &str,
) -> Result<WorkflowState> {
    let statement = RUNS_OF.page(conn.get_database_backend(), [workflow_id.into()], 1, 0);
    let found = one_with_steps(conn, statement).await?.ok_or_else(|| {
        StateStoreError::not_found(
            Entity::Workflow,
            format!("workflow {:?}", crate::error::echo(workflow_id)),
        )
    })?;
    with_steps(found)
}

/// What rolling back to a checkpoint writes: the checkpoint's state as the workflow's
/// current state, and a new checkpoint of that state (after the same step) that sorts
/// after every checkpoint the workflow has, with its size. Recovery resumes from the
/// newest checkpoint, so without the new one it would resume from the newest taken
/// before the rollback and undo it.
///
/// The checkpoint rolled back to is read `FOR SHARE` (Postgres): a prune or retention
/// delete of it waits until the rollback has committed, so the target of a running
/// rollback is never deleted under it. (SQLite has one writer, which gives the same.)
/// Its snapshot must be a state of the workflow as stored (`InvalidInput` otherwise, see
/// [`checkpoint_state_locked`]), whose row is read `FOR UPDATE` so it stays so until the
/// commit.
pub(crate) async fn rollback<C: Db>(
    conn: &C,
    checkpoint_id: Uuid,
) -> Result<(WorkflowState, Checkpoint, u64)> {
    use checkpoints::Column as K;
    let backend = conn.get_database_backend();
    let mut select = readable_checkpoints(backend).filter(K::Id.eq(checkpoint_id));
    // The checkpoint's row only: Postgres locks no row of an outer join's optional side
    // (its base, which the checkpoint's foreign key keeps while the row stands).
    QueryTrait::query(&mut select)
        .lock_with_tables(sea_orm::sea_query::LockType::Share, [checkpoints::Entity]);
    let checkpoint = select
        .into_model::<convert::CheckpointRow>()
        .one(conn)
        .await?
        .map(convert::checkpoint_from_row)
        .ok_or_else(|| {
            StateStoreError::not_found(Entity::Checkpoint, format!("checkpoint {checkpoint_id}"))
        })??;
    // Locked: the save below rewrites the row as the state checked against it.
    let mut state = checkpoint_state_locked(conn, &checkpoint).await?;
    crate::validate::workflow_state(&state, usize::MAX).map_err(|err| match err {
        StateStoreError::InvalidInput(why) => StateStoreError::InvalidInput(why.reworded(|why| {
            format!(
                "checkpoint {} holds no state of workflow state {} that can be stored: {why}",
                checkpoint.id, state.id
            )
        })),
        other => other,
    })?;
    let newest = Expr::col((checkpoints::Entity, K::Timestamp)).max();
    let newest: Option<String> = checkpoints::Entity::find()
        .select_only()
        .column_as(backend::time_as_text(backend, newest), "newest")
        .filter(K::WorkflowStateId.eq(state.id))
        .into_tuple()
        .one(conn)
        .await?
        .flatten();
    // After the newest even when it came from a replica whose clock runs ahead.
    let at = match newest {
        Some(newest) => Ord::max(
            now(),
            convert::stored_time("newest checkpoint timestamp", &newest)?
                + chrono::TimeDelta::microseconds(1),
        ),
        None => now(),
    };
    crate::validate::time(
        crate::error::Field::CheckpointTime,
        "the rolled-back checkpoint's timestamp",
        at,
    )?;
    state.updated_at = at;
    let mut again = Checkpoint::of(&state, checkpoint.step_id.clone())?;
    again.timestamp = at;
    let size = crate::validate::checkpoint(&again, usize::MAX)?;
    Ok((state, again, size))
}

/// Deletes finished workflows last updated before `cutoff`; steps and checkpoints cascade.
pub(crate) async fn delete_finished_before<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64> {
    use workflow_states::Column as W;
    Ok(workflow_states::Entity::delete_many()
        .filter(status_in(&[
            WorkflowStatus::Completed,
            WorkflowStatus::Failed,
        ]))
        .filter(W::UpdatedAt.lt(cutoff.fixed_offset()))
        .exec(conn)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each read rendered once gives, with a call's values, the SQL and values that
    /// building it with those values gives; a page adds its limit and offset as numbers.
    #[test]
    fn reads_rendered_once_bind_what_building_them_would() {
        let id = Uuid::new_v4();
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            assert_eq!(
                CHECKPOINT_BY_ID.bind(backend, [id.into()]),
                backend.build(&checkpoint_by_id(backend, id))
            );
            assert_eq!(
                WORKFLOW_BY_ID.bind(backend, [id.into()]),
                backend.build(&workflow_by_id(backend, id))
            );
            let built = backend.build(&checkpoints_of(backend, id));
            let page = CHECKPOINTS_OF.page(backend, [id.into()], 10, 20);
            assert_eq!(page.sql, format!("{} LIMIT 10 OFFSET 20", built.sql));
            assert_eq!(page.values, built.values);
            let all = CHECKPOINTS_OF.page(backend, [id.into()], u64::MAX, 0);
            assert!(all.sql.ends_with(&format!(" LIMIT {} OFFSET 0", i64::MAX)));
            let built = backend.build(&runs_of(backend, "wf-1"));
            let page = RUNS_OF.page(backend, ["wf-1".into()], 1, 0);
            assert_eq!(page.sql, format!("{} LIMIT 1 OFFSET 0", built.sql));
            assert_eq!(page.values, built.values);
        }
    }
}
