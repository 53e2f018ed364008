//! The store's statements, written once over any SeaORM connection or transaction.
//!
//! Each function takes `&impl ConnectionTrait`, so the caller decides the transaction;
//! nothing here begins or commits.

use chrono::{DateTime, Utc};
use entity::{checkpoints, step_states, workflow_states};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    SqlErr,
};
use uuid::Uuid;

use super::convert;
use crate::error::{Result, StateStoreError};
use crate::model::{Checkpoint, WorkflowState, WorkflowStatus, now};

fn status_names(statuses: &[WorkflowStatus]) -> Vec<&'static str> {
    statuses.iter().map(|status| status.as_str()).collect()
}

/// Upserts the workflow row, upserts all steps in one statement and deletes steps that
/// are gone. Returns the rows written and deleted.
pub(crate) async fn save_state<C: ConnectionTrait>(conn: &C, state: &WorkflowState) -> Result<u64> {
    use step_states::Column as S;
    use workflow_states::Column as W;

    let mut rows = workflow_states::Entity::insert(convert::workflow_row(state))
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
                    W::Context,
                    W::Error,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;

    rows += step_states::Entity::insert_many(convert::step_rows(state))
        .on_conflict(
            OnConflict::columns([S::WorkflowStateId, S::StepId])
                .update_columns([
                    S::Status,
                    S::StartedAt,
                    S::CompletedAt,
                    S::Outputs,
                    S::Error,
                    S::RetryCount,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;

    let mut gone = step_states::Entity::delete_many().filter(S::WorkflowStateId.eq(state.id));
    if !state.steps.is_empty() {
        gone = gone.filter(S::StepId.is_not_in(state.steps.keys().map(String::as_str)));
    }
    rows += gone.exec(conn).await?.rows_affected;
    Ok(rows)
}

/// The workflow with this id and its steps.
pub(crate) async fn load_state<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<WorkflowState> {
    let row = workflow_states::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| StateStoreError::NotFound(format!("workflow state {id}")))?;
    let steps = step_states::Entity::find()
        .filter(step_states::Column::WorkflowStateId.eq(id))
        .all(conn)
        .await?;
    convert::workflow_from_rows(row, steps)
}

/// The most recently updated run of a workflow id, with its steps.
pub(crate) async fn load_state_by_workflow_id<C: ConnectionTrait>(
    conn: &C,
    workflow_id: &str,
) -> Result<WorkflowState> {
    use workflow_states::Column as W;
    let row = workflow_states::Entity::find()
        .filter(W::WorkflowId.eq(workflow_id))
        .order_by_desc(W::UpdatedAt)
        .order_by_desc(W::Id)
        .one(conn)
        .await?
        .ok_or_else(|| StateStoreError::NotFound(format!("workflow {workflow_id:?}")))?;
    let steps = step_states::Entity::find()
        .filter(step_states::Column::WorkflowStateId.eq(row.id))
        .all(conn)
        .await?;
    convert::workflow_from_rows(row, steps)
}

/// Every workflow in one of `statuses`, newest update first, with steps: two queries
/// whatever the count. Rows that fail to convert come back apart, with their error.
pub(crate) async fn list_by_status<C: ConnectionTrait>(
    conn: &C,
    statuses: &[WorkflowStatus],
) -> Result<(Vec<WorkflowState>, Vec<(Uuid, StateStoreError)>)> {
    use workflow_states::Column as W;
    let names = status_names(statuses);
    let rows = workflow_states::Entity::find()
        .filter(W::Status.is_in(names.clone()))
        .order_by_desc(W::UpdatedAt)
        .order_by_desc(W::Id)
        .all(conn)
        .await?;
    let ids = Query::select()
        .column(W::Id)
        .from(workflow_states::Entity)
        .and_where(W::Status.is_in(names))
        .to_owned();
    let steps = step_states::Entity::find()
        .filter(step_states::Column::WorkflowStateId.in_subquery(ids))
        .all(conn)
        .await?;
    Ok(convert::workflows_from_rows(rows, steps))
}

/// Inserts a checkpoint of an existing workflow, then keeps only the newest `retention`.
pub(crate) async fn insert_checkpoint<C: ConnectionTrait>(
    conn: &C,
    checkpoint: &Checkpoint,
    retention: Option<usize>,
) -> Result<u64> {
    let mut rows = checkpoints::Entity::insert(convert::checkpoint_row(checkpoint))
        .exec_without_returning(conn)
        .await
        .map_err(|err| checkpoint_insert_error(err, checkpoint))?;
    if let Some(keep) = retention {
        rows += cleanup_checkpoints(conn, checkpoint.workflow_state_id, keep).await?;
    }
    Ok(rows)
}

fn checkpoint_insert_error(err: DbErr, checkpoint: &Checkpoint) -> StateStoreError {
    match err.sql_err() {
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => StateStoreError::NotFound(format!(
            "workflow state {} (checkpoint {} refers to it)",
            checkpoint.workflow_state_id, checkpoint.id
        )),
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            StateStoreError::Conflict(format!("checkpoint {} already exists", checkpoint.id))
        }
        _ => err.into(),
    }
}

/// Deletes all but the newest `keep` checkpoints of a workflow, in one statement.
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
        .order_by(K::Timestamp, Order::Desc)
        .order_by(K::Id, Order::Desc)
        .limit(u64::try_from(keep).unwrap_or(u64::MAX))
        .to_owned();
    Ok(checkpoints::Entity::delete_many()
        .filter(K::WorkflowStateId.eq(workflow_state_id))
        .filter(K::Id.not_in_subquery(newest))
        .exec(conn)
        .await?
        .rows_affected)
}

/// A page of a workflow's checkpoints, newest first.
pub(crate) async fn list_checkpoints<C: ConnectionTrait>(
    conn: &C,
    workflow_state_id: Uuid,
    limit: u64,
    offset: u64,
) -> Result<Vec<Checkpoint>> {
    use checkpoints::Column as K;
    Ok(checkpoints::Entity::find()
        .filter(K::WorkflowStateId.eq(workflow_state_id))
        .order_by_desc(K::Timestamp)
        .order_by_desc(K::Id)
        .limit(limit)
        .offset(offset)
        .all(conn)
        .await?
        .into_iter()
        .map(convert::checkpoint_from_row)
        .collect())
}

/// The checkpoint with this id.
pub(crate) async fn checkpoint<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Checkpoint> {
    checkpoints::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(convert::checkpoint_from_row)
        .ok_or_else(|| StateStoreError::NotFound(format!("checkpoint {id}")))
}

/// The state a checkpoint holds, checked to belong to the checkpoint's workflow.
pub(crate) fn snapshot_state(checkpoint: &Checkpoint) -> Result<WorkflowState> {
    let state = checkpoint.state()?;
    if state.id != checkpoint.workflow_state_id {
        return Err(StateStoreError::InvalidState(format!(
            "checkpoint {} belongs to workflow state {} but its snapshot is of {}",
            checkpoint.id, checkpoint.workflow_state_id, state.id
        )));
    }
    Ok(state)
}

/// Writes a checkpoint's state back as the workflow's current state, touched now.
pub(crate) async fn rollback<C: ConnectionTrait>(
    conn: &C,
    checkpoint_id: Uuid,
) -> Result<(WorkflowState, u64)> {
    let checkpoint = checkpoint(conn, checkpoint_id).await?;
    let mut state = snapshot_state(&checkpoint)?;
    crate::validate::workflow_state(&state)?;
    state.updated_at = now();
    let rows = save_state(conn, &state).await?;
    Ok((state, rows))
}

/// Deletes finished workflows last updated before `cutoff`; steps and checkpoints cascade.
pub(crate) async fn delete_finished_before<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64> {
    use workflow_states::Column as W;
    Ok(workflow_states::Entity::delete_many()
        .filter(W::Status.is_in(status_names(&[
            WorkflowStatus::Completed,
            WorkflowStatus::Failed,
        ])))
        .filter(W::UpdatedAt.lt(cutoff.fixed_offset()))
        .exec(conn)
        .await?
        .rows_affected)
}
