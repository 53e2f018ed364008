//! Statements for history: checkpoint metadata, pins, usage, pruning by policy, forks
//! and lineage, export and import.

use crate::error::{Entity, ErrorKind, Field, InputProblem};
use chrono::{DateTime, Utc};
use entity::{checkpoints, workflow_states};
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, SqlErr,
};
use uuid::Uuid;

use super::{convert, queries};
use crate::backend::{self, Db, Write};
use crate::error::{Result, StateStoreError};
use crate::history::{
    BundledCheckpoint, CheckpointInfo, CheckpointUsage, ForkOrigin, Lineage, PruneReport,
    RetentionPolicy, WorkflowBundle,
};
use crate::model::{Checkpoint, WorkflowState, WorkflowStatus, now};

/// `CAST(<sql> AS BIGINT)`: sums and counts decode as i64 on both databases.
fn bigint(sql: &str) -> SimpleExpr {
    Expr::cust(format!("CAST({sql} AS BIGINT)"))
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The columns of a checkpoint row but the snapshot, its timestamp as text (see
/// `backend::time_as_text`).
type InfoRow = (
    Uuid,
    Uuid,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
);

/// Checkpoint rows without their snapshots: the columns of a [`CheckpointInfo`].
fn infos(backend: sea_orm::DbBackend) -> sea_orm::Select<checkpoints::Entity> {
    use checkpoints::Column as K;
    let timestamp = Expr::col((checkpoints::Entity, K::Timestamp));
    checkpoints::Entity::find()
        .select_only()
        .columns([K::Id, K::WorkflowStateId, K::StepId])
        .column_as(
            crate::backend::time_as_text(backend, timestamp),
            "timestamp",
        )
        .columns([K::SizeBytes, K::PinnedLabel, K::WorkflowStatus])
}

/// The info of a row; `Serialization` when its timestamp is not one the store reads.
fn to_info(
    (id, workflow_state_id, step_id, timestamp, size, pinned, status): InfoRow,
) -> Result<CheckpointInfo> {
    Ok(CheckpointInfo {
        timestamp: convert::stored_time("timestamp", &timestamp)
            .map_err(|err| convert::in_checkpoint(id, err))?,
        id,
        workflow_state_id,
        step_id,
        size_bytes: to_u64(size),
        pinned,
        workflow_status: status.and_then(|status| status.parse().ok()),
    })
}

/// A page of a workflow's checkpoints without their snapshots, newest first; one whose
/// row holds a value the store cannot read is an error in its place.
pub(crate) async fn list_infos<C: ConnectionTrait>(
    conn: &C,
    workflow_state_id: Uuid,
    limit: u64,
    offset: u64,
) -> Result<Vec<Result<CheckpointInfo>>> {
    use checkpoints::Column as K;
    let rows: Vec<InfoRow> = infos(conn.get_database_backend())
        .filter(K::WorkflowStateId.eq(workflow_state_id))
        .order_by_desc(K::Timestamp)
        .order_by_desc(K::Id)
        .limit(queries::sql_count(limit))
        .offset(queries::sql_count(offset))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(to_info).collect())
}

/// One checkpoint without its snapshot; `NotFound` if there is none.
pub(crate) async fn info<C: ConnectionTrait>(
    conn: &C,
    checkpoint_id: Uuid,
) -> Result<CheckpointInfo> {
    use checkpoints::Column as K;
    let row: Option<InfoRow> = infos(conn.get_database_backend())
        .filter(K::Id.eq(checkpoint_id))
        .into_tuple()
        .one(conn)
        .await?;
    row.map(to_info).ok_or_else(|| {
        StateStoreError::not_found(Entity::Checkpoint, format!("checkpoint {checkpoint_id}"))
    })?
}

/// A workflow's checkpoint count, bytes and pins, in one query.
pub(crate) async fn usage<C: ConnectionTrait>(
    conn: &C,
    workflow_state_id: Uuid,
) -> Result<CheckpointUsage> {
    use checkpoints::Column as K;
    let row: Option<(i64, i64, i64)> = checkpoints::Entity::find()
        .select_only()
        .column_as(bigint("count(*)"), "count")
        .column_as(bigint("coalesce(sum(size_bytes), 0)"), "bytes")
        .column_as(bigint("count(pinned_label)"), "pinned")
        .filter(K::WorkflowStateId.eq(workflow_state_id))
        .into_tuple()
        .one(conn)
        .await?;
    let (count, bytes, pinned) = row.unwrap_or_default();
    Ok(CheckpointUsage {
        count: to_u64(count),
        bytes: to_u64(bytes),
        pinned: to_u64(pinned),
    })
}

/// Sets or clears a checkpoint's pin; `NotFound` for an unknown checkpoint.
pub(crate) async fn set_pin<C: Db>(
    conn: &C,
    checkpoint_id: Uuid,
    label: Option<&str>,
) -> Result<()> {
    use checkpoints::Column as K;
    let update = Query::update()
        .table(checkpoints::Entity)
        .value(K::PinnedLabel, label.map(str::to_owned))
        .and_where(K::Id.eq(checkpoint_id))
        .to_owned();
    let updated = backend::retrying(conn, || conn.execute(&update)).await?;
    if updated.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StateStoreError::not_found(
            Entity::Checkpoint,
            format!("checkpoint {checkpoint_id}"),
        ))
    }
}

/// Conditions of a prune: finished workflows to delete, and (other) checkpoints to delete.
struct PruneScope {
    workflows: Option<Condition>,
    checkpoints: Option<SimpleExpr>,
}

fn prune_scope(policy: &RetentionPolicy, now: DateTime<Utc>) -> Result<PruneScope> {
    use checkpoints::Column as K;
    use workflow_states::Column as W;
    let before = |age: std::time::Duration| {
        chrono::Duration::from_std(age)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .ok_or_else(|| {
                StateStoreError::invalid_input(
                    Field::Retention,
                    InputProblem::TooLong,
                    format!("age {age:?} is too long"),
                )
            })
    };

    let workflows = match policy.delete_finished_older_than {
        None => None,
        Some(age) => Some(
            Condition::all()
                .add(queries::status_in(&[
                    WorkflowStatus::Completed,
                    WorkflowStatus::Failed,
                ]))
                .add(W::UpdatedAt.lt(before(age)?.fixed_offset())),
        ),
    };

    if policy.keep_last.is_none() && policy.keep_younger_than.is_none() {
        return Ok(PruneScope {
            workflows,
            checkpoints: None,
        });
    }
    let mut condition = Expr::col((checkpoints::Entity, K::PinnedLabel))
        .is_null()
        .and(queries::not_what_recovery_resumes_from());
    if let Some(keep) = policy.keep_last {
        // Unpinned checkpoints of the same workflow that are newer than this one.
        let newer_count = queries::newer_checkpoints(Expr::cust("count(*)"))
            .and_where(Expr::col((Alias::new("newer"), K::PinnedLabel)).is_null())
            .to_owned();
        condition = condition
            .and(Expr::SubQuery(None, Box::new(newer_count.into())).gte(queries::sql_count(keep)));
    }
    if let Some(age) = policy.keep_younger_than {
        condition = condition
            .and(Expr::col((checkpoints::Entity, K::Timestamp)).lt(before(age)?.fixed_offset()));
    }
    Ok(PruneScope {
        workflows,
        checkpoints: Some(condition),
    })
}

/// Counts (and unless `dry_run` deletes) what `policy` prunes, in one transaction, so the
/// report is exactly what was deleted.
pub(crate) async fn prune<C: Db>(
    conn: &C,
    policy: &RetentionPolicy,
    dry_run: bool,
) -> Result<PruneReport> {
    use checkpoints::Column as K;
    use workflow_states::Column as W;
    let scope = prune_scope(policy, now())?;
    let txn = if dry_run {
        None
    } else {
        Some(backend::begin_write(conn).await?)
    };
    let mut report = PruneReport {
        dry_run,
        ..PruneReport::default()
    };

    let doomed_ids = |condition: Condition| {
        Query::select()
            .column(W::Id)
            .from(workflow_states::Entity)
            .cond_where(condition)
            .to_owned()
    };
    let checkpoint_totals = |filter: Condition| {
        checkpoints::Entity::find()
            .select_only()
            .column_as(bigint("count(*)"), "count")
            .column_as(bigint("coalesce(sum(size_bytes), 0)"), "bytes")
            .filter(filter)
            .into_tuple::<(i64, i64)>()
    };

    // Checkpoints the rules let go, outside the workflows that go whole.
    let mut loose = Condition::all();
    if let Some(condition) = &scope.checkpoints {
        loose = loose.add(condition.clone());
        if let Some(workflows) = &scope.workflows {
            loose = loose.add(K::WorkflowStateId.not_in_subquery(doomed_ids(workflows.clone())));
        }
    }

    macro_rules! on {
        ($query:expr) => {
            match &txn {
                Some(txn) => $query.one(txn).await?,
                None => $query.one(conn).await?,
            }
        };
    }

    if let Some(workflows) = &scope.workflows {
        let count: Option<i64> = on!(workflow_states::Entity::find()
            .select_only()
            .column_as(bigint("count(*)"), "count")
            .filter(workflows.clone())
            .into_tuple());
        report.workflows = to_u64(count.unwrap_or(0));
        let (count, bytes) = on!(checkpoint_totals(
            Condition::all().add(K::WorkflowStateId.in_subquery(doomed_ids(workflows.clone())))
        ))
        .unwrap_or_default();
        report.checkpoints += to_u64(count);
        report.bytes += to_u64(bytes);
    }
    if scope.checkpoints.is_some() {
        let (count, bytes) = on!(checkpoint_totals(loose.clone())).unwrap_or_default();
        report.checkpoints += to_u64(count);
        report.bytes += to_u64(bytes);
    }

    if let Some(txn) = txn {
        if scope.checkpoints.is_some() {
            checkpoints::Entity::delete_many()
                .filter(loose)
                .exec(&txn)
                .await?;
        }
        if let Some(workflows) = scope.workflows {
            workflow_states::Entity::delete_many()
                .filter(workflows)
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        // The bases only the deleted checkpoints needed.
        super::bases::collect(conn, None).await;
    }
    Ok(report)
}

/// A new pending workflow from a checkpoint's state, recording where it came from.
pub(crate) async fn fork<C: Db>(
    conn: &C,
    checkpoint_id: Uuid,
    new_workflow_id: &str,
    max_json_bytes: usize,
) -> Result<WorkflowState> {
    let (checkpoint, source) = queries::checkpoint_state(conn, checkpoint_id).await?;
    let created = now();
    let fork = WorkflowState {
        id: Uuid::now_v7(),
        workflow_id: new_workflow_id.to_owned(),
        status: WorkflowStatus::Pending,
        started_at: created,
        updated_at: created,
        completed_at: None,
        error: None,
        ..source
    };
    crate::validate::workflow_state(&fork, max_json_bytes)?;
    let origin = ForkOrigin {
        workflow_state_id: checkpoint.workflow_state_id,
        checkpoint_id,
    };
    insert_new_workflow(conn, &fork, Some(origin), &[]).await?;
    Ok(fork)
}

/// Inserts a workflow that must not exist yet, its steps and its checkpoints, atomically.
async fn insert_new_workflow<C: Db>(
    conn: &C,
    state: &WorkflowState,
    origin: Option<ForkOrigin>,
    checkpoints: &[(Checkpoint, u64, Option<String>)],
) -> Result<()> {
    let mut row = convert::workflow_row(state);
    row.forked_from_workflow_state_id = Set(origin.map(|origin| origin.workflow_state_id));
    row.forked_from_checkpoint_id = Set(origin.map(|origin| origin.checkpoint_id));
    let mut writes = vec![Write::Insert(
        workflow_states::Entity::insert(row).into_query(),
    )];
    writes.extend(queries::step_writes(state));
    for chunk in checkpoints.chunks(500) {
        let rows = chunk.iter().map(|(checkpoint, size, pinned)| {
            let mut row = convert::checkpoint_row(checkpoint, *size);
            row.pinned_label = Set(pinned.clone());
            row
        });
        writes.push(Write::Insert(
            checkpoints::Entity::insert_many(rows.collect::<Vec<_>>()).into_query(),
        ));
    }
    backend::write_all(conn, writes)
        .await
        .map_err(|err| match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => StateStoreError::new(
                ErrorKind::AlreadyExists(Entity::Workflow),
                format!(
                    "workflow state {} (or one of its checkpoints) already exists",
                    state.id
                ),
            ),
            _ => err.into(),
        })?;
    Ok(())
}

/// Where a workflow came from and what was forked from it.
pub(crate) async fn lineage<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Lineage> {
    use workflow_states::Column as W;
    let origin: Option<(Option<Uuid>, Option<Uuid>)> = workflow_states::Entity::find_by_id(id)
        .select_only()
        .columns([W::ForkedFromWorkflowStateId, W::ForkedFromCheckpointId])
        .into_tuple()
        .one(conn)
        .await?;
    let Some(origin) = origin else {
        return Err(StateStoreError::not_found(
            Entity::Workflow,
            format!("workflow state {id}"),
        ));
    };
    let forks: Vec<(Uuid, Option<Uuid>)> = workflow_states::Entity::find()
        .select_only()
        .columns([W::Id, W::ForkedFromCheckpointId])
        .filter(W::ForkedFromWorkflowStateId.eq(id))
        .order_by_asc(W::StartedAt)
        .order_by_asc(W::Id)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(Lineage {
        forked_from: match origin {
            (Some(workflow_state_id), Some(checkpoint_id)) => Some(ForkOrigin {
                workflow_state_id,
                checkpoint_id,
            }),
            _ => None,
        },
        forks: forks
            .into_iter()
            .filter_map(|(fork, checkpoint)| Some((fork, checkpoint?)))
            .collect(),
    })
}

/// A workflow with all its checkpoints (pins included) as a bundle.
pub(crate) async fn export<C: Db>(conn: &C, id: Uuid) -> Result<WorkflowBundle> {
    let workflow = queries::load_state(conn, id).await?;
    // A bundle without one of the workflow's checkpoints would lose it on import: an
    // unreadable one fails the export.
    let pins: std::collections::HashMap<Uuid, Option<String>> = list_infos(conn, id, u64::MAX, 0)
        .await?
        .into_iter()
        .map(|info| info.map(|info| (info.id, info.pinned)))
        .collect::<Result<_>>()?;
    let mut checkpoints = Vec::new();
    for checkpoint in queries::list_checkpoints(conn, id, u64::MAX, 0).await? {
        let checkpoint = checkpoint?;
        let pinned = pins.get(&checkpoint.id).cloned().flatten();
        checkpoints.push(BundledCheckpoint { checkpoint, pinned });
    }
    Ok(WorkflowBundle {
        format: WorkflowBundle::FORMAT,
        forked_from: lineage(conn, id).await?.forked_from,
        workflow,
        checkpoints,
    })
}

/// Loads a bundle into this database, keeping its ids or giving the workflow and its
/// checkpoints new ones (snapshots that are states of the workflow are re-pointed at the
/// new workflow id; any other snapshot is stored as it is).
pub(crate) async fn import<C: Db>(
    conn: &C,
    bundle: &WorkflowBundle,
    new_ids: bool,
    max_json_bytes: usize,
) -> Result<WorkflowState> {
    if bundle.format != WorkflowBundle::FORMAT {
        return Err(StateStoreError::invalid_input(
            Field::Bundle,
            InputProblem::Unsupported,
            format!(
                "bundle format {} is not supported (this version reads {})",
                bundle.format,
                WorkflowBundle::FORMAT
            ),
        ));
    }
    let mut state = bundle.workflow.clone();
    if new_ids {
        state.id = Uuid::now_v7();
    }
    crate::validate::workflow_state(&state, max_json_bytes)?;
    let mut checkpoints = Vec::with_capacity(bundle.checkpoints.len());
    for bundled in &bundle.checkpoints {
        let mut checkpoint = bundled.checkpoint.clone();
        if checkpoint.workflow_state_id != bundle.workflow.id {
            return Err(StateStoreError::invalid_input(
                Field::Bundle,
                InputProblem::OtherWorkflow,
                format!(
                    "checkpoint {} of the bundle belongs to another workflow",
                    checkpoint.id
                ),
            ));
        }
        if new_ids {
            // A state of the bundle's workflow becomes one of the copy; any other JSON
            // is the orchestrator's, kept exactly as it is.
            let holds_state = crate::validate::checkpoint_state(
                &checkpoint,
                crate::validate::Identity::of(&bundle.workflow),
            )
            .is_ok();
            checkpoint.id = Uuid::now_v7();
            checkpoint.workflow_state_id = state.id;
            if holds_state && let Some(snapshot_id) = checkpoint.snapshot.get_mut("id") {
                *snapshot_id = serde_json::Value::String(state.id.to_string());
            }
        }
        let size = crate::validate::checkpoint(&checkpoint, max_json_bytes)?;
        checkpoints.push((checkpoint, size, bundled.pinned.clone()));
    }
    insert_new_workflow(conn, &state, bundle.forked_from, &checkpoints).await?;
    Ok(state)
}
