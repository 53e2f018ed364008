//! The statements that write and read checkpoints: a checkpoint with its retention in
//! one batch, pages of a workflow's checkpoints, one by id, and the state one holds.

use crate::error::{Entity, ErrorKind};
use entity::{checkpoints, workflow_states};
use sea_orm::sea_query::{Expr, ExprTrait as _, Query, SelectStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    Order, QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, SqlErr,
};
use uuid::Uuid;

use crate::backend::{self, Db, Write, Written};
use crate::error::{Result, StateStoreError};
use crate::model::{Checkpoint, WorkflowState};
use crate::seaorm::bases::Form;
use crate::seaorm::convert;
use crate::seaorm::rendered::Rendered;

use super::*;

/// Inserts a checkpoint of an existing workflow and, with a retention of `keep`, leaves
/// the workflow with its `keep` newest checkpoints (by timestamp, then id) counting the
/// new one: atomically, and in one round trip on Postgres.
///
/// Both statements are written so they do not need to see each other's effect (a
/// Postgres batch runs them on one snapshot): the insert happens only if fewer than
/// `keep` existing checkpoints are newer than the new one, and the delete counts the new
/// one in explicitly.
///
/// The workflow's guard goes first (see [`guard_write`]): a checkpoint the caller files
/// is refused while a live lease holds the workflow (recovery would resume from it).
/// Its snapshot may be any JSON: what turns it into a workflow state checks it then
/// (see [`checkpoint_state`]).
pub(crate) async fn insert_checkpoint<C: Db>(
    conn: &C,
    filing: Filing<'_>,
    retention: Option<usize>,
) -> Result<Written> {
    let backend = conn.get_database_backend();
    let guard = guard_write(backend, filing.checkpoint.workflow_state_id);
    with_checkpoint(conn, vec![guard], filing, retention).await
}

/// A new checkpoint, how it is stored and its size (bytes of its snapshot's JSON text).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filing<'a> {
    /// The checkpoint, with its full snapshot.
    pub(crate) checkpoint: &'a Checkpoint,
    /// Its size.
    pub(crate) size_bytes: u64,
    /// Whole, in a new base, or as a patch (see [`crate::seaorm::bases`]).
    pub(crate) form: &'a Form,
}

/// The writes of a new checkpoint: its new base if it has one, then its row, with
/// retention when `retention` keeps a number of checkpoints.
pub(super) fn checkpoint_writes(filing: Filing<'_>, retention: Option<usize>) -> Vec<Write> {
    let mut writes: Vec<Write> = filing
        .form
        .base_write(filing.checkpoint)
        .into_iter()
        .collect();
    match retention {
        None => {
            let mut row = convert::checkpoint_row(filing.checkpoint, filing.size_bytes);
            let (snapshot, base_id) = filing.form.row_values(filing.checkpoint);
            row.snapshot = Set(snapshot);
            row.base_id = Set(base_id);
            writes.push(Write::Insert(checkpoints::Entity::insert(row).into_query()));
        }
        Some(keep) => writes.extend(retained_checkpoint_writes(filing, sql_count(keep))),
    }
    writes
}

/// Retention counts and deletes unpinned checkpoints only: a pinned one is kept whatever
/// its age and takes no place among the newest `keep`.
pub(super) fn retained_checkpoint_writes(filing: Filing<'_>, keep: u64) -> Vec<Write> {
    use checkpoints::Column as K;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, UnionType};

    let Filing {
        checkpoint,
        size_bytes,
        form,
    } = filing;
    let (stored, base_id) = form.row_values(checkpoint);
    let workflow = checkpoint.workflow_state_id;
    let (new_time, new_id) = (convert::to_db(checkpoint.timestamp), checkpoint.id);
    let other = Alias::new("other");
    let other_col = |column: K| Expr::col((other.clone(), column));

    // Existing unpinned checkpoints of the workflow newer than the new one.
    let newer_than_new = Query::select()
        .expr(Expr::cust("count(*)"))
        .from_as(checkpoints::Entity, other.clone())
        .and_where(other_col(K::WorkflowStateId).eq(workflow))
        .and_where(other_col(K::PinnedLabel).is_null())
        .and_where(
            other_col(K::Timestamp)
                .gt(new_time)
                .or(other_col(K::Timestamp)
                    .eq(new_time)
                    .and(other_col(K::Id).gt(new_id))),
        )
        .to_owned();
    // Built in place: `to_owned()` would clone the snapshot with the statement.
    let mut values = Query::select();
    values
        .exprs([
            Expr::val(new_id),
            Expr::val(workflow),
            Expr::val(checkpoint.step_id.clone()),
            Expr::val(new_time),
            Expr::val(stored),
            Expr::val(i64::try_from(size_bytes).unwrap_or(i64::MAX)),
            Expr::val(convert::snapshot_status(&checkpoint.snapshot).map(str::to_owned)),
            Expr::val(base_id),
        ])
        .and_where(Expr::SubQuery(None, Box::new(newer_than_new.into())).lt(keep));
    let mut insert = Query::insert();
    insert.into_table(checkpoints::Entity).columns([
        K::Id,
        K::WorkflowStateId,
        K::StepId,
        K::Timestamp,
        K::Snapshot,
        K::SizeBytes,
        K::WorkflowStatus,
        K::BaseId,
    ]);
    insert
        .select_from(values)
        .expect("eight columns, eight values");

    // The newest `keep` unpinned checkpoints among the existing ones and the new one
    // (named by hand, so the delete does not need to see the insert); every other unpinned
    // checkpoint of the workflow goes. One index range scan, not a count per checkpoint.
    let retained = Alias::new("retained");
    let mut candidates = Query::select();
    candidates
        .columns([K::Id, K::Timestamp])
        .from(checkpoints::Entity)
        .and_where(K::WorkflowStateId.eq(workflow))
        .and_where(K::PinnedLabel.is_null())
        .and_where(K::Id.ne(new_id))
        .union(
            UnionType::All,
            Query::select()
                .exprs([Expr::val(new_id), Expr::val(new_time)])
                .to_owned(),
        );
    let newest = Query::select()
        .column((retained.clone(), K::Id))
        .from_subquery(candidates, retained.clone())
        .order_by((retained.clone(), K::Timestamp), Order::Desc)
        .order_by((retained, K::Id), Order::Desc)
        .limit(keep)
        .to_owned();
    let delete = checkpoints::Entity::delete_many()
        .filter(K::WorkflowStateId.eq(workflow))
        .filter(K::PinnedLabel.is_null())
        .filter(K::Id.ne(new_id))
        .filter(K::Id.not_in_subquery(newest))
        .into_query();
    vec![Write::Insert(insert), Write::Delete(delete)]
}

/// What a failed checkpoint write means: a foreign key refused a patch whose base was
/// deleted under it (see [`StateStoreError::is_base_gone`]), or a checkpoint of a
/// workflow that is not stored; a duplicate id.
pub(super) fn checkpoint_insert_error(err: DbErr, filing: Filing<'_>) -> StateStoreError {
    let checkpoint = filing.checkpoint;
    match err.sql_err() {
        Some(SqlErr::ForeignKeyConstraintViolation(_)) if filing.form.is_patch() => {
            StateStoreError::base_gone()
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => StateStoreError::not_found(
            Entity::Workflow,
            format!(
                "workflow state {} (checkpoint {} refers to it)",
                checkpoint.workflow_state_id, checkpoint.id
            ),
        ),
        Some(SqlErr::UniqueConstraintViolation(_)) => StateStoreError::new(
            ErrorKind::AlreadyExists(Entity::Checkpoint),
            format!("checkpoint {} already exists", checkpoint.id),
        ),
        _ => err.into(),
    }
}

/// Deletes all but the newest `keep` unpinned checkpoints of a workflow (pinned ones
/// stay, and so does the newest of an active workflow, even with `keep` 0), in one
/// statement.
pub(crate) async fn cleanup_checkpoints<C: ConnectionTrait>(
    conn: &C,
    workflow_state_id: Uuid,
    keep: usize,
) -> Result<u64> {
    use checkpoints::Column as K;
    let newest = Query::select()
        .column(K::Id)
        .from(checkpoints::Entity)
        .and_where(K::WorkflowStateId.eq(workflow_state_id))
        .and_where(K::PinnedLabel.is_null())
        .order_by(K::Timestamp, Order::Desc)
        .order_by(K::Id, Order::Desc)
        .limit(sql_count(keep))
        .to_owned();
    Ok(checkpoints::Entity::delete_many()
        .filter(K::WorkflowStateId.eq(workflow_state_id))
        .filter(K::PinnedLabel.is_null())
        .filter(K::Id.not_in_subquery(newest))
        .filter(not_what_recovery_resumes_from())
        .exec(conn)
        .await?
        .rows_affected)
}

/// A workflow's checkpoints, newest first.
pub(super) fn checkpoints_of(backend: DbBackend, workflow_state_id: Uuid) -> SelectStatement {
    use checkpoints::Column as K;
    let workflow = Expr::col((checkpoints::Entity, K::WorkflowStateId));
    readable_checkpoints(backend)
        .filter(workflow.eq(backend::lookup_value(backend, workflow_state_id)))
        .order_by_desc(K::Timestamp)
        .order_by_desc(K::Id)
        .into_query()
}

/// The checkpoint with an id.
pub(super) fn checkpoint_by_id(backend: DbBackend, id: Uuid) -> SelectStatement {
    readable_checkpoints(backend)
        .filter(checkpoints::Column::Id.eq(id))
        .into_query()
}

pub(super) static CHECKPOINTS_OF: Rendered =
    Rendered::new(|backend| checkpoints_of(backend, Uuid::nil()));
pub(super) static CHECKPOINT_BY_ID: Rendered =
    Rendered::new(|backend| checkpoint_by_id(backend, Uuid::nil()));

/// A checkpoint from a row of [`find_readable`]; an error for its row only.
pub(super) fn checkpoint_from(row: &QueryResult) -> Result<Checkpoint> {
    convert::checkpoint_from_row(convert::CheckpointRow::from_query_result(row, "")?)
}

/// A page of a workflow's checkpoints, newest first.
///
/// Each checkpoint comes as it converted: one whose row holds a value the store cannot
/// read is an error in its place, and the others are still served.
pub(crate) async fn list_checkpoints<C: ConnectionTrait>(
    conn: &C,
    workflow_state_id: Uuid,
    limit: u64,
    offset: u64,
) -> Result<Vec<Result<Checkpoint>>> {
    let backend = conn.get_database_backend();
    let statement = CHECKPOINTS_OF.page(backend, [workflow_state_id.into()], limit, offset);
    let rows = conn.query_all_raw(statement).await?;
    let mut last_base = None;
    Ok(rows
        .iter()
        .map(|row| {
            let row = convert::CheckpointRow::from_query_result(row, "")?;
            convert::checkpoint_from_row_with(row, &mut last_base)
        })
        .collect())
}

/// The newest checkpoint of a workflow, if it has any.
pub(crate) async fn latest_checkpoint<C: ConnectionTrait>(
    conn: &C,
    workflow_state_id: Uuid,
) -> Result<Option<Checkpoint>> {
    let backend = conn.get_database_backend();
    let statement = CHECKPOINTS_OF.page(backend, [workflow_state_id.into()], 1, 0);
    conn.query_one_raw(statement)
        .await?
        .map(|row| checkpoint_from(&row))
        .transpose()
}

/// The state a checkpoint holds, when it is a state of the workflow it is filed under
/// (its id); else `InvalidInput` saying why (see `validate::snapshot_state`).
pub(crate) fn snapshot_state(checkpoint: &Checkpoint) -> Result<WorkflowState> {
    crate::validate::snapshot_state(checkpoint)
}

/// The checkpoint with this id.
pub(crate) async fn checkpoint<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Checkpoint> {
    let statement = CHECKPOINT_BY_ID.bind(conn.get_database_backend(), [id.into()]);
    match conn.query_one_raw(statement).await? {
        Some(row) => checkpoint_from(&row),
        None => Err(StateStoreError::not_found(
            Entity::Checkpoint,
            format!("checkpoint {id}"),
        )),
    }
}

/// The checkpoint with this id and who its workflow is, in one query: what restoring
/// or forking it checks its snapshot against (see [`checkpoint_state`]).
pub(super) async fn checkpoint_of_workflow<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<(Checkpoint, StoredIdentity)> {
    use workflow_states::Column as W;
    let workflow = |column: W| Expr::col((workflow_states::Entity, column));
    let row = readable_checkpoints(conn.get_database_backend())
        .inner_join(workflow_states::Entity)
        .column_as(workflow(W::WorkflowId), "workflow_id")
        .column_as(workflow(W::WorkflowName), "workflow_name")
        .column_as(workflow(W::UserId), "user_id")
        .filter(checkpoints::Column::Id.eq(id))
        .into_model::<convert::CheckpointOfWorkflowRow>()
        .one(conn)
        .await?
        .ok_or_else(|| {
            StateStoreError::not_found(Entity::Checkpoint, format!("checkpoint {id}"))
        })?;
    let (checkpoint, (id, workflow_id, workflow_name, user_id)) = row.split();
    let identity = StoredIdentity {
        id,
        workflow_id,
        workflow_name,
        user_id,
    };
    Ok((convert::checkpoint_from_row(checkpoint)?, identity))
}

/// Who the stored workflow `id` is (its workflow id, name and user), its row locked for
/// the rest of the transaction (Postgres), so that what is checked against it stays true
/// until the commit; `NotFound` if there is none.
pub(super) async fn locked_identity<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<StoredIdentity> {
    use workflow_states::Column as W;
    let row: Option<(String, String, Option<String>)> = workflow_states::Entity::find_by_id(id)
        .select_only()
        .columns([W::WorkflowId, W::WorkflowName, W::UserId])
        .lock_exclusive()
        .into_tuple()
        .one(conn)
        .await?;
    let (workflow_id, workflow_name, user_id) = row.ok_or_else(|| {
        StateStoreError::not_found(Entity::Workflow, format!("workflow state {id}"))
    })?;
    Ok(StoredIdentity {
        id,
        workflow_id,
        workflow_name,
        user_id,
    })
}

/// A stored workflow's identity, owned.
pub(crate) struct StoredIdentity {
    id: Uuid,
    workflow_id: String,
    workflow_name: String,
    user_id: Option<String>,
}

impl StoredIdentity {
    /// As the checks in `validate` take it.
    pub(crate) fn borrowed(&self) -> crate::validate::Identity<'_> {
        crate::validate::Identity {
            id: self.id,
            workflow_id: &self.workflow_id,
            workflow_name: &self.workflow_name,
            user_id: self.user_id.as_deref(),
        }
    }
}

/// The state `checkpoint` holds, checked to be a state of its workflow as stored now
/// (see [`crate::validate::checkpoint_state`]), whose row stays locked, as checked, until
/// the commit (see [`locked_identity`]).
pub(crate) async fn checkpoint_state_locked<C: ConnectionTrait>(
    conn: &C,
    checkpoint: &Checkpoint,
) -> Result<WorkflowState> {
    let workflow = locked_identity(conn, checkpoint.workflow_state_id).await?;
    crate::validate::checkpoint_state(checkpoint, workflow.borrowed())
}

/// The state the checkpoint with this id holds, checked to be a state of its workflow as
/// stored now (see [`crate::validate::checkpoint_state`]), read in one query, with the
/// checkpoint.
pub(crate) async fn checkpoint_state<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<(Checkpoint, WorkflowState)> {
    let (checkpoint, workflow) = checkpoint_of_workflow(conn, id).await?;
    let state = crate::validate::checkpoint_state(&checkpoint, workflow.borrowed())?;
    Ok((checkpoint, state))
}
