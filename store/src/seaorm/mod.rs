//! The one `StateStore` implementation. It runs on anything SeaORM executes statements
//! on: the store's pooled connection, a transaction the store began, or a transaction the
//! application began (see `transaction.rs`).

mod bases;
mod checkpoint_writes;
pub(crate) mod convert;
mod history;
mod listing;
mod open;
mod pruner;
mod queries;
mod recording;
mod rendered;
pub(crate) mod replicas;
mod steps;
mod transaction;

use crate::error::{ConfigProblem, ErrorKind, Field, InputProblem};
use checkpoint_writes::{Alongside, Shared, already_stored, write_checkpoint};

pub use open::CLOCK_OFFSET_WARNING;
pub use pruner::Pruner;
pub(crate) use queries::status_in;
use recording::*;
pub use transaction::{StoreTransaction, TransactionScope};

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tracing::{Span, instrument, warn};
use uuid::Uuid;

use crate::backend::{self, AnyBackend, Postgres, Sqlite, diagnosed};
use crate::config::StoreOptions;
use crate::error::{Result, StateStoreError};
use crate::history::{
    CheckpointInfo, CheckpointUsage, Lineage, PruneReport, RetentionPolicy, WorkflowBundle,
};
use crate::model::{
    ActiveWorkflows, Checkpoint, Claim, ClaimReport, Lease, Recovery, RecoveryReport,
    SaveCondition, SkippedWorkflow, StateCursor, StatePage, StepState, StepWrite, Versioned,
    WorkflowState, WorkflowStatus,
};
use crate::store::StateStore;
use crate::validate;

/// The state store, on whichever database its connection points at.
///
/// `B` only records which constructor made it ([`PostgresStateStore`],
/// [`SqliteStateStore`], or [`AnyBackend`] for the builder and existing connections); the
/// code that runs is the same. Cloning is cheap and shares the pool.
pub struct SeaOrmStateStore<B = AnyBackend> {
    db: DatabaseConnection,
    options: Arc<StoreOptions>,
    /// The base snapshot each workflow's next checkpoints are stored against.
    bases: Arc<bases::Bases>,
    /// The database's clock minus this machine's, read when the store opened.
    clock_offset_at_open: Option<chrono::Duration>,
    backend: PhantomData<fn() -> B>,
}

pub(crate) mod sealed {
    use std::sync::Arc;

    use crate::backend::Db;
    use crate::config::StoreOptions;

    /// What every store type is underneath: a connection or transaction, and the options.
    pub trait Scoped: Send + Sync {
        /// The connection or transaction statements run on.
        type Conn: Db + Send + Sync;
        /// It.
        fn conn(&self) -> &Self::Conn;
        /// The store's options.
        fn options(&self) -> &Arc<StoreOptions>;
        /// The base snapshots the store's checkpoints are stored against.
        fn bases(&self) -> &super::bases::Bases;
        /// Where calls must take turns and a call that did not finish must stop later
        /// calls and the commit (a [`StoreTransaction`](super::StoreTransaction)).
        fn guard(&self) -> Option<&super::transaction::CallGuard> {
            None
        }
    }
}

impl<B> sealed::Scoped for SeaOrmStateStore<B> {
    type Conn = DatabaseConnection;
    fn conn(&self) -> &DatabaseConnection {
        &self.db
    }
    fn options(&self) -> &Arc<StoreOptions> {
        &self.options
    }
    fn bases(&self) -> &bases::Bases {
        &self.bases
    }
}

/// A store on PostgreSQL, for production.
pub type PostgresStateStore = SeaOrmStateStore<Postgres>;

/// A store on SQLite (a file, or `:memory:`), for development, tests and single nodes.
pub type SqliteStateStore = SeaOrmStateStore<Sqlite>;

impl<B> Clone for SeaOrmStateStore<B> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            options: self.options.clone(),
            bases: self.bases.clone(),
            clock_offset_at_open: self.clock_offset_at_open,
            backend: PhantomData,
        }
    }
}

impl<B> fmt::Debug for SeaOrmStateStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeaOrmStateStore")
            .field("backend", &self.db.get_database_backend())
            .field("options", &self.options)
            .finish()
    }
}

/// Runs a store call's `body` with `conn` bound to the store's connection or transaction;
/// inside a transaction on Postgres, in a savepoint of it, so that a write the database
/// refuses (a checkpoint of an unknown workflow, a duplicate id) or a read it gives up on
/// (a lock or statement time-out) is undone alone and the transaction goes on, as on
/// SQLite, instead of being aborted and then silently rolled back by its `COMMIT` (see
/// `backend::failure_aborts_transaction`).
///
/// A call dropped before it finished (a timeout around it), or whose savepoint could not
/// be taken or ended, marks a transaction that asks for it ([`sealed::Scoped::guard`]):
/// sqlx may have ended the transaction, or left half of the call in it, so it takes no
/// more calls. So does a call on SQLite whose error made SQLite roll the whole
/// transaction back (a full disk, an I/O error, an interrupt): its error is then
/// `Aborted`, saying why, also in a transaction the application owns.
///
/// Written `|conn, atomic|`, the body also learns whether `conn` is such a savepoint,
/// which makes the call all or nothing by itself (see `backend::all_or_nothing!`).
macro_rules! contained {
    ($scope:expr, |$conn:ident| $body:block) => {
        contained!($scope, |$conn, _atomic| $body)
    };
    ($scope:expr, |$conn:ident, $atomic:ident| $body:block) => {{
        let scope = $scope;
        let guard = scope.guard();
        // One call at a time on a transaction: savepoints are named by depth, so two
        // overlapping calls would release or roll back each other's.
        let _turn = match guard {
            Some(guard) => Some(guard.turn().await),
            None => None,
        };
        let mut unfinished = Unfinished::watch(guard);
        let (result, clean) = match unfinished.refused() {
            Some(err) => (Err(err), true),
            None => {
                let outer = scope.conn();
                if backend::failure_aborts_transaction(outer) {
                    match backend::begin(outer, sea_orm::TransactionOptions::default()).await {
                        Ok(savepoint) => {
                            let result = async {
                                let $conn = &savepoint;
                                let $atomic = true;
                                $body
                            }
                            .await;
                            backend::end_savepoint(savepoint, result).await
                        }
                        Err(err) => (Err(StateStoreError::from(err)), false),
                    }
                } else {
                    let result = async {
                        let $conn = outer;
                        let $atomic = false;
                        $body
                    }
                    .await;
                    match result {
                        Err(err) if !backend::transaction_survived(outer).await => {
                            (Err(transaction::ended_by_database(&err)), false)
                        }
                        result => (result, true),
                    }
                }
            }
        };
        if clean {
            unfinished.finish();
        }
        result
    }};
}
pub(crate) use contained;

/// Watches one store call on a transaction that must know when a call was dropped before
/// it finished, or its savepoint could not be taken or ended (see [`contained!`]).
struct Unfinished<'a>(Option<&'a transaction::CallGuard>);

impl<'a> Unfinished<'a> {
    fn watch(guard: Option<&'a transaction::CallGuard>) -> Self {
        Self(guard)
    }

    /// The error for a call on a transaction that can no longer commit.
    fn refused(&self) -> Option<StateStoreError> {
        self.0
            .filter(|guard| guard.is_aborted())
            .map(|_| transaction::aborted_error())
    }

    /// The call finished and left the transaction as it should: nothing to mark.
    fn finish(&mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(guard) = self.0 {
            guard.abort();
        }
    }
}

/// `ReadOnly` for a write on a store opened read-only.
fn writable(options: &StoreOptions, operation: &str) -> Result<()> {
    if options.read_only {
        Err(StateStoreError::new(
            ErrorKind::ReadOnly,
            format!("{operation} refused: the store was opened read-only"),
        ))
    } else {
        Ok(())
    }
}

/// Workflows a read left out because their rows do not read back, logged as warnings and
/// handed to the caller.
fn reported(skipped: Vec<(Uuid, StateStoreError)>) -> Vec<SkippedWorkflow> {
    skipped
        .into_iter()
        .map(|(id, error)| {
            warn!(workflow_state_id = %id, error = %error, "skipped an unreadable workflow state");
            SkippedWorkflow { id, error }
        })
        .collect()
}

fn record_rows(rows: u64) {
    Span::current().record("rows", rows);
}

#[async_trait]
impl<T: sealed::Scoped> StateStore for T {
    #[instrument(name = "save_workflow_state", skip_all, err,
        fields(workflow_state_id = %state.id, workflow_id = %state.workflow_id, rows))]
    async fn save_workflow_state(&self, state: &WorkflowState) -> Result<()> {
        diagnosed(self, async {
            writable(self.options(), "save_workflow_state")?;
            validate::workflow_state(state, self.options().max_json_bytes)?;
            let checkpoint = match auto_checkpoint_step(state, self.options().auto_checkpoint) {
                None => None,
                Some(step_id) => {
                    let checkpoint = Checkpoint::of(state, step_id)?;
                    let size = validate::checkpoint(&checkpoint, self.options().max_json_bytes)?;
                    Some((checkpoint, size))
                }
            };
            let saved = contained!(self, |conn, atomic| {
                let rows = match &checkpoint {
                    None => queries::save_state(conn, state).await?,
                    Some((checkpoint, size)) => {
                        write_checkpoint(
                            conn,
                            atomic,
                            Shared::of(self),
                            Alongside::Save(state),
                            checkpoint,
                            *size,
                        )
                        .await?
                        .rows
                    }
                };
                record_rows(rows);
                Ok(())
            });
            explained(self, saved, state.id).await
        })
        .await
    }

    #[instrument(name = "record_step", skip_all, err,
        fields(workflow_state_id = %state.id, step_id = %step.step_id, rows))]
    async fn record_step(&self, state: &mut WorkflowState, step: StepState) -> Result<Checkpoint> {
        diagnosed(self, async {
            writable(self.options(), "record_step")?;
            let recorded = record(self, state, step, &StepWrite::new()).await?;
            *state = recorded.state;
            Ok(recorded.checkpoint)
        })
        .await
    }

    #[instrument(name = "load_workflow_state", skip_all, err, fields(workflow_state_id = %id))]
    async fn load_workflow_state(&self, id: &Uuid) -> Result<WorkflowState> {
        diagnosed(self, async {
            contained!(self, |conn| { queries::load_state(conn, *id).await })
        })
        .await
    }

    #[instrument(name = "load_workflow_state_by_workflow_id", skip_all, err,
        fields(workflow_id = %workflow_id))]
    async fn load_workflow_state_by_workflow_id(&self, workflow_id: &str) -> Result<WorkflowState> {
        diagnosed(self, async {
            validate::text(Field::WorkflowId, "workflow_id", workflow_id)?;
            contained!(self, |conn| {
                queries::load_state_by_workflow_id(conn, workflow_id).await
            })
        })
        .await
    }

    #[instrument(name = "list_active_workflows", skip_all, err, fields(rows))]
    async fn list_active_workflows(&self) -> Result<Vec<WorkflowState>> {
        Ok(self.list_active_workflows_report().await?.workflows)
    }

    #[instrument(name = "list_active_workflows_report", skip_all, err, fields(rows))]
    async fn list_active_workflows_report(&self) -> Result<ActiveWorkflows> {
        diagnosed(self, async {
            let (workflows, skipped) = contained!(self, |conn| {
                listing::list_by_status(conn, &WorkflowStatus::ACTIVE).await
            })?;
            record_rows(workflows.len() as u64);
            Ok(ActiveWorkflows {
                workflows,
                skipped: reported(skipped),
            })
        })
        .await
    }

    #[instrument(
        name = "list_active_workflows_page",
        skip_all,
        err,
        fields(limit, rows)
    )]
    async fn list_active_workflows_page(
        &self,
        after: Option<&StateCursor>,
        limit: u64,
    ) -> Result<StatePage> {
        diagnosed(self, async {
            let after = after.map(|cursor| (cursor.updated_at, cursor.id));
            let page = contained!(self, |conn| {
                listing::list_page(conn, &WorkflowStatus::ACTIVE, after, Some(limit)).await
            })?;
            record_rows(page.states.len() as u64);
            // A full page may have more after it; the cursor is the last row read, converted
            // or not, so an unreadable row is not read again.
            let read = (page.states.len() + page.skipped.len()) as u64;
            let next = page
                .last
                .filter(|_| limit > 0 && read >= limit)
                .map(|(updated_at, id)| StateCursor { updated_at, id });
            Ok(StatePage {
                workflows: page.states,
                next,
                skipped: reported(page.skipped),
            })
        })
        .await
    }

    #[instrument(name = "create_checkpoint", skip_all, err,
        fields(checkpoint_id = %checkpoint.id, workflow_state_id = %checkpoint.workflow_state_id, rows))]
    async fn create_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        diagnosed(self, async {
            writable(self.options(), "create_checkpoint")?;
            // Any JSON within the limits: only what turns it into a workflow state
            // (restore, rollback, fork, recovery) needs it to be one.
            let size = validate::checkpoint(checkpoint, self.options().max_json_bytes)?;
            let written = contained!(self, |conn, atomic| {
                let written = write_checkpoint(
                    conn,
                    atomic,
                    Shared::of(self),
                    Alongside::Nothing,
                    checkpoint,
                    size,
                )
                .await;
                let rows = match written {
                    Err(StateStoreError::Conflict(_))
                        if !backend::Db::in_transaction(conn)
                            && already_stored(conn, checkpoint).await =>
                    {
                        0
                    }
                    written => written?.rows,
                };
                record_rows(rows);
                Ok(())
            });
            let workflow = checkpoint.workflow_state_id;
            explained(self, written, workflow).await
        })
        .await
    }

    #[instrument(name = "get_checkpoint", skip_all, err, fields(checkpoint_id = %checkpoint_id))]
    async fn get_checkpoint(&self, checkpoint_id: &Uuid) -> Result<Checkpoint> {
        diagnosed(self, async {
            contained!(self, |conn| {
                queries::checkpoint(conn, *checkpoint_id).await
            })
        })
        .await
    }

    #[instrument(name = "get_latest_checkpoint", skip_all, err,
        fields(workflow_state_id = %workflow_state_id))]
    async fn get_latest_checkpoint(&self, workflow_state_id: &Uuid) -> Result<Option<Checkpoint>> {
        diagnosed(self, async {
            contained!(self, |conn| {
                queries::latest_checkpoint(conn, *workflow_state_id).await
            })
        })
        .await
    }

    #[instrument(name = "list_checkpoints", skip_all, err,
        fields(workflow_state_id = %workflow_state_id, rows))]
    async fn list_checkpoints(
        &self,
        workflow_state_id: &Uuid,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Checkpoint>> {
        diagnosed(self, async {
            let page = contained!(self, |conn| {
                queries::list_checkpoints(conn, *workflow_state_id, limit, offset).await
            })?;
            let page = readable(page, "skipped an unreadable checkpoint");
            record_rows(page.len() as u64);
            Ok(page)
        })
        .await
    }

    #[instrument(name = "restore_from_checkpoint", skip_all, err, fields(checkpoint_id = %checkpoint_id))]
    async fn restore_from_checkpoint(&self, checkpoint_id: &Uuid) -> Result<WorkflowState> {
        diagnosed(self, async {
            let (_, state) = contained!(self, |conn| {
                queries::checkpoint_state(conn, *checkpoint_id).await
            })?;
            Ok(state)
        })
        .await
    }

    #[instrument(name = "rollback_to_checkpoint", skip_all, err,
        fields(checkpoint_id = %checkpoint_id, rows))]
    async fn rollback_to_checkpoint(&self, checkpoint_id: &Uuid) -> Result<WorkflowState> {
        rollback(self, checkpoint_id, LeaseRule::Respect).await
    }

    #[instrument(name = "delete_old_states", skip_all, err, fields(older_than = %older_than, rows))]
    async fn delete_old_states(&self, older_than: DateTime<Utc>) -> Result<u64> {
        diagnosed(self, async {
            writable(self.options(), "delete_old_states")?;
            contained!(self, |conn| {
                let deleted = queries::delete_finished_before(conn, older_than).await?;
                record_rows(deleted);
                Ok(deleted)
            })
        })
        .await
    }

    #[instrument(name = "cleanup_old_checkpoints", skip_all, err,
        fields(workflow_state_id = %workflow_state_id, keep, rows))]
    async fn cleanup_old_checkpoints(&self, workflow_state_id: &Uuid, keep: usize) -> Result<u64> {
        diagnosed(self, async {
            writable(self.options(), "cleanup_old_checkpoints")?;
            contained!(self, |conn| {
                Span::current().record("keep", keep);
                let deleted = queries::cleanup_checkpoints(conn, *workflow_state_id, keep).await?;
                bases::collect(conn, Some(*workflow_state_id)).await;
                record_rows(deleted);
                Ok(deleted)
            })
        })
        .await
    }

    #[instrument(name = "health_check", skip_all, err)]
    async fn health_check(&self) -> Result<()> {
        // A server that is down: say whether it refuses connections or never answers.
        let checked = diagnosed(self, async {
            Ok(self.conn().execute_unprepared("SELECT 1").await.map(drop)?)
        });
        checked.await.map_err(|err| match err {
            StateStoreError::Connection(msg) => StateStoreError::Connection(msg),
            other => StateStoreError::new(ErrorKind::ConnectionFailed, other.to_string()),
        })
    }

    #[instrument(name = "load_workflow_state_versioned", skip_all, err, fields(workflow_state_id = %id))]
    async fn load_workflow_state_versioned(&self, id: &Uuid) -> Result<Versioned<WorkflowState>> {
        diagnosed(self, async {
            contained!(self, |conn| { replicas::load_versioned(conn, *id).await })
        })
        .await
    }

    #[instrument(name = "save_workflow_state_if", skip_all, err,
        fields(workflow_state_id = %state.id, workflow_id = %state.workflow_id))]
    async fn save_workflow_state_if(
        &self,
        state: &WorkflowState,
        condition: &SaveCondition,
    ) -> Result<i64> {
        diagnosed(self, async {
            writable(self.options(), "save_workflow_state_if")?;
            validate::workflow_state(state, self.options().max_json_bytes)?;
            contained!(self, |conn, atomic| {
                replicas::save_if(conn, atomic, state, condition).await
            })
        })
        .await
    }

    #[instrument(name = "record_step_if", skip_all, err,
        fields(workflow_state_id = %state.id, step_id = %step.step_id, rows))]
    async fn record_step_if(
        &self,
        state: &mut WorkflowState,
        step: StepState,
        condition: &SaveCondition,
    ) -> Result<(Checkpoint, i64)> {
        let write = StepWrite::new().only_if(condition.clone());
        self.record_step_with(state, step, &write).await
    }

    #[instrument(name = "record_step_with", skip_all, err,
        fields(workflow_state_id = %state.id, step_id = %step.step_id, rows))]
    async fn record_step_with(
        &self,
        state: &mut WorkflowState,
        step: StepState,
        write: &StepWrite,
    ) -> Result<(Checkpoint, i64)> {
        diagnosed(self, async {
            writable(self.options(), "record_step_with")?;
            let recorded = record(self, state, step, write).await?;
            let version = recorded.version.ok_or_else(|| {
                StateStoreError::invalid_state("the step's write gave no version back".to_owned())
            })?;
            *state = recorded.state;
            Ok((recorded.checkpoint, version))
        })
        .await
    }

    #[instrument(name = "claim_workflows", skip_all, err, fields(owner = %owner, limit, rows))]
    async fn claim_workflows(
        &self,
        owner: &str,
        lease_duration: Duration,
        limit: u64,
    ) -> Result<Vec<Claim>> {
        let report = self.claim_workflows_report(owner, lease_duration, limit);
        Ok(report.await?.claimed)
    }

    #[instrument(name = "claim_workflows_report", skip_all, err,
        fields(owner = %owner, limit, rows))]
    async fn claim_workflows_report(
        &self,
        owner: &str,
        lease_duration: Duration,
        limit: u64,
    ) -> Result<ClaimReport> {
        diagnosed(self, async {
            writable(self.options(), "claim_workflows")?;
            validate::id(Field::Owner, "owner", owner)?;
            let lease_for = lease_length(lease_duration)?;
            let (claimed, skipped) = contained!(self, |conn, atomic| {
                replicas::claim(conn, atomic, owner, lease_for, limit).await
            })?;
            record_rows(claimed.len() as u64);
            Ok(ClaimReport {
                claimed,
                skipped: reported(skipped),
            })
        })
        .await
    }

    #[instrument(name = "renew_lease", skip_all, err,
        fields(workflow_state_id = %lease.workflow_state_id, owner = %lease.owner))]
    async fn renew_lease(&self, lease: &Lease, lease_duration: Duration) -> Result<Lease> {
        diagnosed(self, async {
            writable(self.options(), "renew_lease")?;
            let lease_for = lease_length(lease_duration)?;
            contained!(self, |conn| {
                replicas::renew(conn, lease, lease_for).await
            })
        })
        .await
    }

    #[instrument(name = "release_lease", skip_all, err,
        fields(workflow_state_id = %lease.workflow_state_id, owner = %lease.owner))]
    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        diagnosed(self, async {
            writable(self.options(), "release_lease")?;
            contained!(self, |conn| { replicas::release(conn, lease).await })
        })
        .await
    }

    #[instrument(name = "recover_workflows", skip_all, err, fields(owner = %owner, rows))]
    async fn recover_workflows(
        &self,
        owner: &str,
        lease_duration: Duration,
        limit: u64,
    ) -> Result<Vec<Recovery>> {
        let report = self.recover_workflows_report(owner, lease_duration, limit);
        Ok(report.await?.recovered)
    }

    #[instrument(name = "recover_workflows_report", skip_all, err, fields(owner = %owner, rows))]
    async fn recover_workflows_report(
        &self,
        owner: &str,
        lease_duration: Duration,
        limit: u64,
    ) -> Result<RecoveryReport> {
        diagnosed(self, async {
            writable(self.options(), "recover_workflows")?;
            validate::id(Field::Owner, "owner", owner)?;
            let lease_for = lease_length(lease_duration)?;
            let (recovered, skipped) = contained!(self, |conn, atomic| {
                replicas::recover(conn, atomic, owner, lease_for, limit).await
            })?;
            record_rows(recovered.len() as u64);
            Ok(RecoveryReport {
                recovered,
                skipped: reported(skipped),
            })
        })
        .await
    }

    #[instrument(name = "list_checkpoint_infos", skip_all, err,
        fields(workflow_state_id = %workflow_state_id, rows))]
    async fn list_checkpoint_infos(
        &self,
        workflow_state_id: &Uuid,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<CheckpointInfo>> {
        diagnosed(self, async {
            let page = contained!(self, |conn| {
                history::list_infos(conn, *workflow_state_id, limit, offset).await
            })?;
            let page = readable(page, "skipped an unreadable checkpoint");
            record_rows(page.len() as u64);
            Ok(page)
        })
        .await
    }

    #[instrument(name = "checkpoint_info", skip_all, err,
        fields(checkpoint_id = %checkpoint_id))]
    async fn checkpoint_info(&self, checkpoint_id: &Uuid) -> Result<CheckpointInfo> {
        diagnosed(self, async {
            contained!(self, |conn| { history::info(conn, *checkpoint_id).await })
        })
        .await
    }

    #[instrument(name = "checkpoint_usage", skip_all, err,
        fields(workflow_state_id = %workflow_state_id))]
    async fn checkpoint_usage(&self, workflow_state_id: &Uuid) -> Result<CheckpointUsage> {
        diagnosed(self, async {
            contained!(self, |conn| {
                history::usage(conn, *workflow_state_id).await
            })
        })
        .await
    }

    #[instrument(name = "pin_checkpoint", skip_all, err, fields(checkpoint_id = %checkpoint_id))]
    async fn pin_checkpoint(&self, checkpoint_id: &Uuid, label: &str) -> Result<()> {
        diagnosed(self, async {
            writable(self.options(), "pin_checkpoint")?;
            validate::id(Field::PinLabel, "pin label", label)?;
            contained!(self, |conn| {
                history::set_pin(conn, *checkpoint_id, Some(label)).await
            })
        })
        .await
    }

    #[instrument(name = "unpin_checkpoint", skip_all, err, fields(checkpoint_id = %checkpoint_id))]
    async fn unpin_checkpoint(&self, checkpoint_id: &Uuid) -> Result<()> {
        diagnosed(self, async {
            writable(self.options(), "unpin_checkpoint")?;
            contained!(self, |conn| {
                history::set_pin(conn, *checkpoint_id, None).await
            })
        })
        .await
    }

    #[instrument(name = "prune", skip_all, err, fields(dry_run, rows))]
    async fn prune(&self, policy: &RetentionPolicy, dry_run: bool) -> Result<PruneReport> {
        diagnosed(self, async {
            if !dry_run {
                writable(self.options(), "prune")?;
            }
            contained!(self, |conn| {
                let report = history::prune(conn, policy, dry_run).await?;
                record_rows(report.workflows + report.checkpoints);
                Ok(report)
            })
        })
        .await
    }

    #[instrument(name = "fork_from_checkpoint", skip_all, err,
        fields(checkpoint_id = %checkpoint_id, workflow_id = %new_workflow_id))]
    async fn fork_from_checkpoint(
        &self,
        checkpoint_id: &Uuid,
        new_workflow_id: &str,
    ) -> Result<WorkflowState> {
        diagnosed(self, async {
            writable(self.options(), "fork_from_checkpoint")?;
            validate::id(Field::WorkflowId, "workflow_id", new_workflow_id)?;
            contained!(self, |conn| {
                history::fork(
                    conn,
                    *checkpoint_id,
                    new_workflow_id,
                    self.options().max_json_bytes,
                )
                .await
            })
        })
        .await
    }

    #[instrument(name = "lineage", skip_all, err, fields(workflow_state_id = %workflow_state_id))]
    async fn lineage(&self, workflow_state_id: &Uuid) -> Result<Lineage> {
        diagnosed(self, async {
            contained!(self, |conn| {
                history::lineage(conn, *workflow_state_id).await
            })
        })
        .await
    }

    #[instrument(name = "export_workflow", skip_all, err,
        fields(workflow_state_id = %workflow_state_id))]
    async fn export_workflow(&self, workflow_state_id: &Uuid) -> Result<WorkflowBundle> {
        diagnosed(self, async {
            contained!(self, |conn| {
                history::export(conn, *workflow_state_id).await
            })
        })
        .await
    }

    #[instrument(name = "import_workflow", skip_all, err,
        fields(workflow_state_id = %bundle.workflow.id, new_ids))]
    async fn import_workflow(
        &self,
        bundle: &WorkflowBundle,
        new_ids: bool,
    ) -> Result<WorkflowState> {
        diagnosed(self, async {
            writable(self.options(), "import_workflow")?;
            contained!(self, |conn| {
                history::import(conn, bundle, new_ids, self.options().max_json_bytes).await
            })
        })
        .await
    }
}

/// The items of a listing that converted; each one that did not (a row holding a value
/// the store cannot read) is logged as a warning with `why`, so it hides no other.
fn readable<T>(items: Vec<Result<T>>, why: &str) -> Vec<T> {
    items
        .into_iter()
        .filter_map(|item| item.map_err(|err| warn!(error = %err, "{why}")).ok())
        .collect()
}

/// What a rollback does about a live lease on its workflow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LeaseRule {
    /// Refuse the rollback (`Conflict` naming the holder), as every plain write.
    Respect,
    /// End the lease (its holder's next fenced write is refused) and roll back.
    Override,
}

/// [`StateStore::rollback_to_checkpoint`], and its form that overrides a live lease.
async fn rollback<S: sealed::Scoped>(
    scope: &S,
    checkpoint_id: &Uuid,
    lease: LeaseRule,
) -> Result<WorkflowState> {
    diagnosed(scope, async {
        writable(scope.options(), "rollback_to_checkpoint")?;
        let mut workflow = None;
        let rolled_back = contained!(scope, |conn, atomic| {
            backend::all_or_nothing!(conn, atomic, backend::begin_write, |txn| {
                let (state, again, size) = queries::rollback(txn, *checkpoint_id).await?;
                workflow = Some(state.id);
                if lease == LeaseRule::Override {
                    replicas::end_lease(txn, state.id).await?;
                }
                let alongside = Alongside::Save(&state);
                let shared = Shared::of(scope);
                let rows = write_checkpoint(txn, true, shared, alongside, &again, size).await?;
                record_rows(rows.rows);
                Ok(state)
            })
        });
        match workflow {
            Some(workflow) => explained(scope, rolled_back, workflow).await,
            None => rolled_back,
        }
    })
    .await
}

/// `result`, or, for a write its workflow's guard refused (see `queries::guard_write`),
/// why: `Conflict` naming the holder of the live lease on `workflow`. Read only after a
/// refusal, so a write that goes through costs nothing more.
async fn explained<S: sealed::Scoped, T>(
    scope: &S,
    result: Result<T>,
    workflow: Uuid,
) -> Result<T> {
    match result {
        Err(err) if err.is_guard_refusal() => {
            let why = contained!(scope, |conn| {
                replicas::why_refused(conn, workflow).await
            });
            Err(why.unwrap_or(err))
        }
        result => result,
    }
}

/// A lease length as the database's time arithmetic wants it; absurd lengths are refused.
fn lease_length(duration: Duration) -> Result<chrono::Duration> {
    chrono::Duration::from_std(duration)
        .ok()
        .filter(|length| *length <= chrono::Duration::days(3650))
        .ok_or_else(|| {
            StateStoreError::invalid_input(
                Field::Lease,
                InputProblem::TooLong,
                format!("lease duration {duration:?} is too long"),
            )
        })
}
