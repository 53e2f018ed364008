//! Statements for several replicas on one database: versioned (conditional) saves,
//! recovery leases with fencing tokens, and recovery in one call.

use crate::error::{Entity, ErrorKind, Field, InputProblem};
use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, Utc};
use entity::{checkpoints, workflow_states};
use sea_orm::sea_query::{Expr, ExprTrait as _, LockBehavior, LockType, Order, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect,
    SqlErr,
};
use uuid::Uuid;

use super::convert;
use super::queries;
use crate::backend::{self, Db};
use crate::error::{Result, StateStoreError};
use crate::model::{
    Checkpoint, Claim, Lease, Recovery, SaveCondition, WorkflowState, WorkflowStatus,
};

pub(crate) use super::queries::load_versioned;

/// Saves `state` only if `condition` holds, all or nothing (in a transaction of its own
/// unless `atomic`: see `backend::all_or_nothing!`); returns the new version. A condition
/// that does not hold is `Conflict`, with nothing changed.
pub(crate) async fn save_if<C: Db>(
    conn: &C,
    atomic: bool,
    state: &WorkflowState,
    condition: &SaveCondition,
) -> Result<i64> {
    backend::all_or_nothing!(conn, atomic, backend::begin_conditional, |txn| {
        let version = update_if(txn, state, condition).await?;
        backend::write_all(txn, queries::step_writes(state)).await?;
        Ok(version)
    })
}

/// The first half of [`save_if`], on a connection that already makes the whole save all
/// or nothing: the workflow row written if `condition` holds (`Conflict` if not), and its
/// new version. The caller writes the steps next, in the same transaction.
pub(crate) async fn update_if<C: Db>(
    txn: &C,
    state: &WorkflowState,
    condition: &SaveCondition,
) -> Result<i64> {
    use workflow_states::Column as W;
    let version = match condition {
        SaveCondition::Version(0) => {
            workflow_states::Entity::insert(convert::workflow_row(state))
                .exec_without_returning(txn)
                .await
                .map_err(|err| match err.sql_err() {
                    Some(SqlErr::UniqueConstraintViolation(_)) => StateStoreError::new(
                        ErrorKind::AlreadyExists(Entity::Workflow),
                        format!("workflow state {} already exists", state.id),
                    ),
                    _ => err.into(),
                })?;
            1
        }
        SaveCondition::Version(expected) => {
            // A version is not a lease: while another replica holds a live one, only a
            // write under it goes through.
            let unleased = Condition::all()
                .add(W::Version.eq(*expected))
                .add(lease_live(txn.get_database_backend()).not());
            match update_row_if(txn, state, unleased).await {
                Ok(()) => expected + 1,
                Err(StateStoreError::NotFound(_)) => {
                    return Err(match live_lease(txn, state.id).await? {
                        Some(holder) => holder.conflict(state.id),
                        None => StateStoreError::new(
                            ErrorKind::VersionConflict,
                            format!("workflow state {} is not at version {expected}", state.id),
                        ),
                    });
                }
                Err(err) => return Err(err),
            }
        }
        SaveCondition::Lease(lease) => {
            check_lease_target(state, lease)?;
            let held = Condition::all()
                .add(W::LeaseOwner.eq(lease.owner.as_str()))
                .add(W::LeaseToken.eq(lease.token));
            update_row_if(txn, state, held)
                .await
                .map_err(|err| lost_lease_or(err, lease))?;
            stored_version(txn, state.id).await?
        }
    };
    Ok(version)
}

/// `err`, or a `Conflict` saying `lease` is lost when its condition simply did not hold.
fn lost_lease_or(err: StateStoreError, lease: &Lease) -> StateStoreError {
    match err {
        StateStoreError::NotFound(_) => {
            StateStoreError::new(ErrorKind::LeaseLost, lease_lost(lease))
        }
        other => other,
    }
}

fn lease_lost(lease: &Lease) -> String {
    format!(
        "{} no longer holds the lease on workflow state {} (token {})",
        lease.owner, lease.workflow_state_id, lease.token
    )
}

fn check_lease_target(state: &WorkflowState, lease: &Lease) -> Result<()> {
    if state.id == lease.workflow_state_id {
        Ok(())
    } else {
        Err(StateStoreError::invalid_input(
            Field::Lease,
            InputProblem::OtherWorkflow,
            format!(
                "the lease is on workflow state {}, not {}",
                lease.workflow_state_id, state.id
            ),
        ))
    }
}

/// Updates the workflow row (and bumps its version) if `condition` holds; `NotFound`
/// when no row matched.
async fn update_row_if<C: ConnectionTrait>(
    conn: &C,
    state: &WorkflowState,
    condition: impl sea_orm::sea_query::IntoCondition,
) -> Result<()> {
    use workflow_states::Column as W;
    let mut row = convert::workflow_row(state);
    row.id = sea_orm::ActiveValue::NotSet;
    let updated = workflow_states::Entity::update_many()
        .set(row)
        .col_expr(W::Version, Expr::col(W::Version).add(1))
        .filter(W::Id.eq(state.id))
        .filter(condition)
        .exec(conn)
        .await?;
    if updated.rows_affected == 1 {
        Ok(())
    } else {
        Err(StateStoreError::not_found(
            Entity::Workflow,
            format!("workflow state {}", state.id),
        ))
    }
}

async fn stored_version<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<i64> {
    use workflow_states::Column as W;
    let version = workflow_states::Entity::find_by_id(id)
        .select_only()
        .column(W::Version)
        .into_tuple::<i64>()
        .one(conn)
        .await?;
    version
        .ok_or_else(|| StateStoreError::not_found(Entity::Workflow, format!("workflow state {id}")))
}

/// A workflow whose lease was taken and has run out (on the lease clock of `backend`,
/// see `backend::lease_clock`): its owner stopped renewing it, so [`claim`] may take the
/// workflow over. The one definition of "expired" for claims, the admin listing and its
/// counts.
pub(crate) fn lease_expired(backend: DbBackend) -> Condition {
    use workflow_states::Column as W;
    Condition::all().add(W::LeaseOwner.is_not_null()).add(
        Expr::col(W::LeaseExpiresAt).lt(backend::lease_clock(backend, chrono::Duration::zero())),
    )
}

/// A workflow a replica holds: its lease has an owner and has not run out, on the lease
/// clock of `backend`. While it does, only writes under that lease change the workflow
/// (see `queries::guard_write`).
pub(crate) fn lease_live(backend: DbBackend) -> Condition {
    use workflow_states::Column as W;
    Condition::all().add(W::LeaseOwner.is_not_null()).add(
        Expr::col(W::LeaseExpiresAt).gte(backend::lease_clock(backend, chrono::Duration::zero())),
    )
}

/// Who holds a live lease on a workflow, as a refused writer is told.
pub(crate) struct Holder {
    owner: String,
    expires_at: Option<DateTime<Utc>>,
    token: i64,
}

impl Holder {
    /// The `Conflict` a write refused because of this lease reports, naming the holder.
    pub(crate) fn conflict(&self, workflow_state_id: Uuid) -> StateStoreError {
        let until = self
            .expires_at
            .map(|at| {
                format!(
                    " until {}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                )
            })
            .unwrap_or_default();
        StateStoreError::new(
            ErrorKind::LeaseHeld,
            format!(
                "workflow state {workflow_state_id} is leased to {}{until} (token {}): only a \
             write under that lease (SaveCondition::Lease) may change it until the lease \
             runs out or is released",
                crate::error::echo(&self.owner),
                self.token
            ),
        )
    }
}

/// The live lease on a workflow, if one holds it.
pub(crate) async fn live_lease<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Holder>> {
    use workflow_states::Column as W;
    let held: Option<(Option<String>, Option<DateTime<FixedOffset>>, i64)> =
        workflow_states::Entity::find_by_id(id)
            .select_only()
            .columns([W::LeaseOwner, W::LeaseExpiresAt, W::LeaseToken])
            .filter(lease_live(conn.get_database_backend()))
            .into_tuple()
            .one(conn)
            .await?;
    Ok(held.map(|(owner, expires_at, token)| Holder {
        owner: owner.unwrap_or_default(),
        expires_at: expires_at.map(|at| at.with_timezone(&Utc)),
        token,
    }))
}

/// Why the guard of a write to `id` refused it (see `queries::guard_write`): the holder
/// of its live lease (`Conflict`). No lease any more (it ran out since): a `Conflict` to
/// retry.
pub(crate) async fn why_refused<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<StateStoreError> {
    if let Some(holder) = live_lease(conn, id).await? {
        return Ok(holder.conflict(id));
    }
    Ok(StateStoreError::new(
        ErrorKind::VersionConflict,
        format!("workflow state {id} changed while the write was refused; try again"),
    ))
}

/// Ends whatever lease holds a workflow, live or not, for an operator's override: the
/// owner goes and the fencing token moves on, so its holder's writes under it are
/// refused, and the workflow can be claimed at once.
pub(crate) async fn end_lease<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<()> {
    use workflow_states::Column as W;
    let update = no_lease()
        .value(W::LeaseToken, Expr::col(W::LeaseToken).add(1))
        .and_where(W::Id.eq(id))
        .and_where(W::LeaseOwner.is_not_null())
        .to_owned();
    conn.execute(&update).await?;
    Ok(())
}

/// An update of `workflow_states` that leaves a workflow with no lease (no owner, no
/// expiry): what releasing a lease and ending one for an operator share.
fn no_lease() -> sea_orm::sea_query::UpdateStatement {
    use workflow_states::Column as W;
    Query::update()
        .table(workflow_states::Entity)
        .value(W::LeaseOwner, Option::<String>::None)
        .value(
            W::LeaseExpiresAt,
            Option::<DateTime<Utc>>::None.map(|t| t.fixed_offset()),
        )
        .to_owned()
}

/// The `lease_expires_at` an update returned.
fn returned_expiry(row: &sea_orm::QueryResult) -> Result<DateTime<Utc>> {
    let expires_at: DateTime<FixedOffset> = row.try_get("", "lease_expires_at")?;
    Ok(expires_at.with_timezone(&Utc))
}

/// Workflows claimed per round of [`claim`]: each round's statements name at most this
/// many ids, well under either database's cap on bound values.
const CLAIMS_PER_ROUND: u64 = 1_000;

/// What [`claim`] and [`recover`] could not take: claimable workflows whose rows do not
/// read back, with why.
pub(crate) type Unreadable = Vec<(Uuid, StateStoreError)>;

/// Claims up to `limit` active workflows that no live lease holds, oldest update first,
/// in one transaction (`atomic`: `conn` makes the call all or nothing already): a claim
/// that fails takes no lease at all.
///
/// Each round locks the next claimable rows (Postgres skips rows another claimer has
/// locked; SQLite has one writer), reads them, and leases only the ones that read back.
/// A workflow whose row is corrupt is left as it was, unleased (or under its old, expired
/// lease), and reported; the next round claims healthy ones in its place, so `limit`
/// healthy workflows come back whenever there are that many, whatever sorts first.
pub(crate) async fn claim<C: Db>(
    conn: &C,
    atomic: bool,
    owner: &str,
    lease_for: chrono::Duration,
    limit: u64,
) -> Result<(Vec<Claim>, Unreadable)> {
    backend::all_or_nothing!(conn, atomic, backend::begin_conditional, |txn| {
        claim_rounds(txn, owner, lease_for, limit).await
    })
}

async fn claim_rounds<C: Db>(
    txn: &C,
    owner: &str,
    lease_for: chrono::Duration,
    limit: u64,
) -> Result<(Vec<Claim>, Unreadable)> {
    use workflow_states::Column as W;
    let backend = txn.get_database_backend();
    let (mut claims, mut unreadable): (Vec<Claim>, Unreadable) = (Vec::new(), Vec::new());
    loop {
        let wanted = Ord::min(limit - claims.len() as u64, CLAIMS_PER_ROUND);
        if wanted == 0 {
            break;
        }
        let mut claimable = Query::select()
            .column(W::Id)
            .from(workflow_states::Entity)
            .and_where(queries::status_in(&WorkflowStatus::ACTIVE))
            .cond_where(
                Condition::any()
                    .add(W::LeaseOwner.is_null())
                    .add(lease_expired(backend)),
            )
            .order_by(W::UpdatedAt, Order::Asc)
            .order_by(W::Id, Order::Asc)
            .limit(wanted)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        if !unreadable.is_empty() {
            claimable.and_where(W::Id.is_not_in(unreadable.iter().map(|(id, _)| *id)));
        }
        let ids: Vec<Uuid> = txn
            .query_all(&claimable)
            .await?
            .iter()
            .map(|row| row.try_get::<Uuid>("", "id"))
            .collect::<Result<_, _>>()?;
        let (states, bad) = super::listing::read_each(txn, &ids).await?;
        unreadable.extend(bad);
        if !states.is_empty() {
            let update = Query::update()
                .table(workflow_states::Entity)
                .value(W::LeaseOwner, owner)
                .value(W::LeaseExpiresAt, backend::lease_clock(backend, lease_for))
                .value(W::LeaseToken, Expr::col(W::LeaseToken).add(1))
                .and_where(W::Id.is_in(states.iter().map(|state| state.id)))
                .returning(Query::returning().columns([W::Id, W::LeaseToken, W::LeaseExpiresAt]))
                .to_owned();
            let mut leases = HashMap::with_capacity(states.len());
            for row in txn.query_all(&update).await? {
                let id: Uuid = row.try_get("", "id")?;
                let token: i64 = row.try_get("", "lease_token")?;
                leases.insert(id, (token, returned_expiry(&row)?));
            }
            for state in states {
                // Locked by this transaction since it was read, so leased just now.
                let Some((token, expires_at)) = leases.remove(&state.id) else {
                    continue;
                };
                let lease = Lease {
                    workflow_state_id: state.id,
                    owner: owner.to_owned(),
                    token,
                    expires_at,
                };
                claims.push(Claim { state, lease });
            }
        }
        if (ids.len() as u64) < wanted {
            break; // nothing claimable is left
        }
    }
    Ok((claims, unreadable))
}

fn lease_held(lease: &Lease) -> SimpleExpr {
    use workflow_states::Column as W;
    W::Id
        .eq(lease.workflow_state_id)
        .and(W::LeaseOwner.eq(lease.owner.as_str()))
        .and(W::LeaseToken.eq(lease.token))
}

/// Extends a lease the caller still holds; `Conflict` if another owner took it.
pub(crate) async fn renew<C: Db>(
    conn: &C,
    lease: &Lease,
    lease_for: chrono::Duration,
) -> Result<Lease> {
    use workflow_states::Column as W;
    let backend = conn.get_database_backend();
    let update = Query::update()
        .table(workflow_states::Entity)
        .value(W::LeaseExpiresAt, backend::lease_clock(backend, lease_for))
        .and_where(lease_held(lease))
        .returning(Query::returning().column(W::LeaseExpiresAt))
        .to_owned();
    let txn = backend::begin_conditional(conn).await?;
    let renewed = txn.query_one(&update).await?;
    txn.commit().await?;
    match renewed {
        Some(row) => Ok(Lease {
            expires_at: returned_expiry(&row)?,
            ..lease.clone()
        }),
        None => Err(StateStoreError::new(
            ErrorKind::LeaseLost,
            lease_lost(lease),
        )),
    }
}

/// Gives a lease up; false if the caller no longer held it.
pub(crate) async fn release<C: Db>(conn: &C, lease: &Lease) -> Result<bool> {
    let update = no_lease().and_where(lease_held(lease)).to_owned();
    Ok(conditional_update(conn, &update).await? == 1)
}

/// Runs an update whose condition is a lease still held, in a transaction of its own at
/// READ COMMITTED (see `backend::begin_conditional`): a fenced write of the same owner
/// holding the row makes it wait, then the condition is checked on the newest row,
/// instead of failing it with a serialization error that reads as a lost lease.
async fn conditional_update<C: Db>(
    conn: &C,
    update: &sea_orm::sea_query::UpdateStatement,
) -> Result<u64> {
    let txn = backend::begin_conditional(conn).await?;
    let updated = txn.execute(update).await?.rows_affected();
    txn.commit().await?;
    Ok(updated)
}

/// The newest checkpoint of each of `ids` that has one, in one query per
/// `backend::IDS_PER_STATEMENT` ids.
pub(crate) async fn latest_checkpoints<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Checkpoint>> {
    use checkpoints::Column as K;
    let mut latest = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(backend::IDS_PER_STATEMENT) {
        let has_newer = queries::newer_checkpoints(Expr::val(1));
        let rows: Vec<convert::CheckpointRow> =
            queries::readable_checkpoints(conn.get_database_backend())
                .filter(K::WorkflowStateId.is_in(chunk.iter().copied()))
                .filter(Expr::exists(has_newer).not())
                .into_model()
                .all(conn)
                .await?;
        for row in rows {
            let workflow_state_id = row.workflow_state_id;
            match convert::checkpoint_from_row(row) {
                Ok(checkpoint) => {
                    latest.insert(workflow_state_id, checkpoint);
                }
                Err(err) => {
                    tracing::warn!(%workflow_state_id, error = %err,
                        "newest checkpoint unreadable; resuming from the stored state");
                }
            }
        }
    }
    Ok(latest)
}

/// Claims workflows to resume and pairs each with its newest checkpoint and the state to
/// resume from, in one transaction: a fixed number of statements per round of [`claim`].
pub(crate) async fn recover<C: Db>(
    conn: &C,
    atomic: bool,
    owner: &str,
    lease_for: chrono::Duration,
    limit: u64,
) -> Result<(Vec<Recovery>, Unreadable)> {
    backend::all_or_nothing!(conn, atomic, backend::begin_conditional, |txn| {
        let (claims, unreadable) = claim_rounds(txn, owner, lease_for, limit).await?;
        let ids: Vec<Uuid> = claims.iter().map(|claim| claim.state.id).collect();
        let mut latest = latest_checkpoints_each(txn, &ids).await?;
        let recovered = claims
            .into_iter()
            .map(|Claim { state, lease }| {
                let checkpoint = match latest.remove(&state.id) {
                    Some(Ok(checkpoint)) => Some(checkpoint),
                    Some(Err(err)) => {
                        tracing::warn!(workflow_state_id = %state.id, error = %err,
                            "newest checkpoint unreadable; resuming from the stored state");
                        None
                    }
                    None => None,
                };
                // A checkpoint may hold any JSON (the orchestrator's own): one that holds
                // no state of this workflow is handed back as it is, with the stored state
                // to resume from.
                let held = checkpoint.as_ref().map(|checkpoint| {
                    crate::validate::checkpoint_state(
                        checkpoint,
                        crate::validate::Identity::of(&state),
                    )
                });
                let state = match held {
                    Some(Ok(restored)) => restored,
                    Some(Err(err)) => {
                        tracing::debug!(workflow_state_id = %state.id, error = %err,
                            "newest checkpoint holds no state of the workflow; resuming from \
                             the stored state");
                        state
                    }
                    None => state,
                };
                Recovery {
                    state,
                    checkpoint,
                    lease,
                }
            })
            .collect();
        Ok((recovered, unreadable))
    })
}

/// [`latest_checkpoints`] in chunks of [`CLAIMS_PER_ROUND`] ids; when a checkpoint row
/// does not read back (a corrupt snapshot fails the statement as a whole), each of the
/// chunk's workflows is asked alone, and the broken one comes back as its error.
async fn latest_checkpoints_each<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Result<Checkpoint>>> {
    let mut latest = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CLAIMS_PER_ROUND as usize) {
        match latest_checkpoints(conn, chunk).await {
            Ok(found) => latest.extend(found.into_iter().map(|(id, c)| (id, Ok(c)))),
            Err(err) if err.is_unreadable_data() => {
                for id in chunk {
                    match latest_checkpoints(conn, std::slice::from_ref(id)).await {
                        Ok(found) => latest.extend(found.into_iter().map(|(id, c)| (id, Ok(c)))),
                        Err(err) if err.is_unreadable_data() => {
                            latest.insert(*id, Err(err));
                        }
                        Err(err) => return Err(err),
                    }
                }
            }
            Err(err) => return Err(err),
        }
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;
    use sea_orm::ConnectionTrait;
    use serde_json::json;

    use crate::model::test_clock;
    use crate::{StateStore, StateStoreBuilder, WorkflowState};

    /// Replicas whose clocks disagree (a VM resumed from suspend, NTP not running) still
    /// agree on when a lease runs out on Postgres: the server's clock decides. With each
    /// replica's own clock, one running ahead took live leases and one running behind
    /// renewed into the past.
    /// A store on the Postgres test database (`TEST_DATABASE_URL`), in a schema of its
    /// own, opened on this thread (so with its skewed clock), and the schema's name.
    async fn postgres_store() -> (crate::SeaOrmStateStore, String) {
        let url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("t_clock_{}", uuid::Uuid::new_v4().simple());
        let store = StateStoreBuilder::new(url)
            .postgres_schema(schema.clone())
            .min_connections(1)
            .max_connections(2)
            .connect()
            .await
            .expect("the Postgres test database (TEST_DATABASE_URL)");
        (store, schema)
    }

    /// What the store logged at WARN or above while `during` ran, with what it returned.
    async fn warnings_during<T>(during: impl Future<Output = T>) -> (T, String) {
        #[derive(Clone, Default)]
        struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        let value = during.await;
        drop(guard);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (value, text)
    }

    /// A replica whose clock runs 10 minutes ahead of the Postgres server is told so in
    /// its log when it opens the store, and `clock_offset` says by how much, so an admin
    /// tool can count a lease's time left on the server's clock. With the clocks in sync
    /// nothing is logged.
    #[tokio::test(flavor = "current_thread")]
    async fn a_replica_whose_clock_is_off_is_told_when_it_opens_the_store() {
        test_clock::set(TimeDelta::minutes(10));
        let ((ahead, ahead_schema), logged_ahead) = warnings_during(postgres_store()).await;
        let measured_ahead = ahead.clock_offset().await;
        test_clock::set(TimeDelta::zero());
        let ((in_sync, in_sync_schema), logged_in_sync) = warnings_during(postgres_store()).await;
        let measured_in_sync = in_sync.clock_offset().await;
        for schema in [ahead_schema, in_sync_schema] {
            in_sync
                .connection()
                .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .await
                .unwrap();
        }

        let off = (measured_ahead.unwrap() + TimeDelta::minutes(10)).abs();
        assert!(off < TimeDelta::seconds(1), "measured {off} from -10 min");
        let at_open = (ahead.clock_offset_at_open().unwrap() + TimeDelta::minutes(10)).abs();
        assert!(
            at_open < TimeDelta::seconds(1),
            "read {at_open} from -10 min at open"
        );
        assert!(
            logged_ahead.contains("ms ahead of the database's"),
            "{logged_ahead}"
        );
        assert!(measured_in_sync.unwrap().abs() < TimeDelta::seconds(1));
        assert!(!logged_in_sync.contains("clock"), "{logged_in_sync}");
    }

    /// On SQLite the database's clock is this machine's: the offset is zero, skewed or not.
    #[tokio::test(flavor = "current_thread")]
    async fn sqlite_runs_on_this_machines_clock() {
        test_clock::set(TimeDelta::minutes(10));
        let (store, logged) = warnings_during(StateStoreBuilder::new(":memory:").connect()).await;
        let offset = store.unwrap().clock_offset().await;
        test_clock::set(TimeDelta::zero());
        assert_eq!(offset.unwrap(), TimeDelta::zero());
        assert!(!logged.contains("clock"), "{logged}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn leases_run_by_the_postgres_servers_clock() {
        let (store, schema) = postgres_store().await;
        let mut state = WorkflowState::new("wf-clock", "Clock", None, json!({}));
        state.mark_running();
        store.save_workflow_state(&state).await.unwrap();
        let minute = Duration::from_secs(60);
        let claims = store.claim_workflows("steady", minute, 10).await.unwrap();
        assert_eq!(claims.len(), 1);
        let lease = claims[0].lease.clone();

        // A replica whose clock runs 10 minutes ahead: the lease has a minute left.
        test_clock::set(TimeDelta::minutes(10));
        let taken = store.claim_workflows("ahead", minute, 10).await.unwrap();
        let stuck = store.status_counts().await.unwrap().lease_expired;
        // The owner's clock runs 10 minutes behind when it renews: a minute from now on
        // the server's clock, not nine minutes ago.
        test_clock::set(TimeDelta::minutes(-10));
        let renewed = store.renew_lease(&lease, minute).await;
        test_clock::set(TimeDelta::zero());
        let after_renewal = store.claim_workflows("other", minute, 10).await.unwrap();
        store
            .connection()
            .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .unwrap();

        assert!(taken.is_empty(), "a live lease was taken: {taken:?}");
        assert_eq!(stuck, 0, "a live lease was counted as expired");
        let renewed = renewed.unwrap();
        assert!(
            renewed.expires_at > crate::now() + TimeDelta::seconds(30),
            "{renewed:?}"
        );
        assert!(after_renewal.is_empty(), "a renewed lease was taken");
    }

    /// A replica whose clock runs behind takes over a workflow that one running ahead
    /// checkpointed: its checkpoints still come after, so recovery and retention take
    /// the newest for the newest.
    #[tokio::test(flavor = "current_thread")]
    async fn checkpoints_keep_their_order_across_replicas_whose_clocks_disagree() {
        let store = StateStoreBuilder::new(":memory:").connect().await.unwrap();
        let mut state = WorkflowState::new("wf-skew", "Skew", None, json!({}));
        state.mark_running();
        store.save_workflow_state(&state).await.unwrap();

        test_clock::set(TimeDelta::minutes(10));
        let mut ahead = state.clone();
        for id in ["retrieve", "prompt"] {
            let mut step = crate::StepState::new(id);
            step.mark_completed(json!(id));
            store.record_step(&mut ahead, step).await.unwrap();
        }
        test_clock::set(TimeDelta::zero());
        let mut behind = store.load_workflow_state(&state.id).await.unwrap();
        let mut step = crate::StepState::new("tool");
        step.mark_completed(json!("tool"));
        let taken = store.record_step(&mut behind, step).await.unwrap();

        assert_eq!(
            store.get_latest_checkpoint(&state.id).await.unwrap(),
            Some(taken)
        );
        let recovered = store
            .recover_workflows("next", Duration::from_secs(60), 10)
            .await
            .unwrap();
        assert!(recovered[0].state.step("tool").is_some());
    }
}
