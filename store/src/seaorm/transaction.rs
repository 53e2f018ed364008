//! Store operations inside a transaction: one the store begins for the caller
//! ([`StoreTransaction`]), or one the application began itself with SeaORM
//! ([`TransactionScope`]), so its own rows and the workflow state commit together.

use crate::error::ErrorKind;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{DatabaseExecutor, DatabaseTransaction};

use super::SeaOrmStateStore;
use super::bases::Bases;
use super::sealed::Scoped;
use crate::backend;
use crate::config::StoreOptions;
use crate::error::{Result, StateStoreError};

/// A transaction the store began: every [`StateStore`](crate::StateStore) operation on it
/// takes effect together on [`commit`](Self::commit), or not at all on
/// [`rollback`](Self::rollback), an error, or drop.
///
/// ```
/// use llm_orchestrator_state::{Checkpoint, SqliteStateStore, StateStore, WorkflowState};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStateStore::new(":memory:").await?;
/// let state = WorkflowState::new("wf-1", "Demo", None, serde_json::json!({}));
///
/// let tx = store.begin().await?;
/// tx.save_workflow_state(&state).await?;
/// tx.create_checkpoint(&Checkpoint::of(&state, "start")?).await?;
/// tx.rollback().await?; // neither the state nor the checkpoint was stored
/// assert!(store.load_workflow_state(&state.id).await.is_err());
/// # Ok(())
/// # }
/// ```
///
/// A write the database refuses on the way (`NotFound`, `Conflict`), or a read it gives up
/// on (a lock or statement time-out), is undone on its own and the transaction goes on, on
/// every backend; on Postgres each call runs in a savepoint for this. The exception: on
/// SQLite a full disk, an I/O error or an interrupt may roll the whole transaction back;
/// that call's error is then [`Aborted`](StateStoreError::Aborted), and so are the calls
/// after it and the commit.
///
/// On SQLite the store has one connection, which the transaction holds until it ends:
/// use the transaction, not the store, until then.
pub struct StoreTransaction {
    txn: DatabaseTransaction,
    options: Arc<StoreOptions>,
    bases: Arc<Bases>,
    /// Calls take turns, and one that did not finish stops the rest.
    guard: CallGuard,
}

/// What a [`StoreTransaction`] keeps about its calls: they take turns (savepoints are
/// named by depth, so overlapping calls would end each other's), and once one did not
/// finish as it should the transaction is aborted.
#[derive(Default)]
pub struct CallGuard {
    turns: tokio::sync::Mutex<()>,
    aborted: AtomicBool,
}

impl CallGuard {
    /// Waits for the calls before this one.
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turns.lock().await
    }

    /// Whether a call did not finish as it should.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// A call did not finish as it should.
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
    }
}

/// The store's operations inside a transaction the application owns (and commits or
/// rolls back itself), for writing its own entities and the workflow state in one commit.
///
/// ```
/// use llm_orchestrator_state::{SqliteStateStore, StateStore, WorkflowState};
/// use llm_orchestrator_state::sea_orm::{ConnectionTrait, TransactionTrait};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStateStore::new(":memory:").await?;
/// let state = WorkflowState::new("wf-1", "Demo", None, serde_json::json!({}));
///
/// let txn = store.connection().begin().await?;
/// txn.execute_unprepared("CREATE TABLE invoices (id INTEGER PRIMARY KEY)").await?;
/// txn.execute_unprepared("INSERT INTO invoices VALUES (1)").await?; // the application's write
/// store.within(&txn).save_workflow_state(&state).await?; // the store's write
/// txn.commit().await?; // both, or neither
/// # Ok(())
/// # }
/// ```
pub struct TransactionScope<'c> {
    txn: DatabaseExecutor<'c>,
    options: Arc<StoreOptions>,
    bases: Arc<Bases>,
}

impl<B> SeaOrmStateStore<B> {
    /// Begins a write transaction for a group of store operations.
    pub async fn begin(&self) -> Result<StoreTransaction> {
        let txn = backend::diagnosed(self, async { Ok(backend::begin_write(&self.db).await?) });
        Ok(StoreTransaction {
            txn: txn.await?,
            options: self.options.clone(),
            bases: self.bases.clone(),
            guard: CallGuard::default(),
        })
    }

    /// The store's operations inside the application's own transaction `txn` (begun on
    /// [`connection`](Self::connection) or on another connection to the same database).
    /// A store call the database refuses or gives up on is undone on its own (a savepoint
    /// on Postgres), so `txn` stays usable and its own rows are kept.
    ///
    /// Await one call before starting the next on `txn`, and roll `txn` back after
    /// cancelling a call on it: on Postgres the driver may then take the whole transaction
    /// for ended (see docs/usage.md, "The application's rows and the workflow state in one
    /// transaction"), which a [`StoreTransaction`] watches for and this cannot.
    pub fn within<'c>(&self, txn: &'c DatabaseTransaction) -> TransactionScope<'c> {
        TransactionScope {
            txn: DatabaseExecutor::Transaction(txn),
            options: self.options.clone(),
            bases: self.bases.clone(),
        }
    }
}

impl StoreTransaction {
    /// Makes every operation of the transaction visible at once.
    ///
    /// If a call on the transaction was cancelled before it finished (its future dropped,
    /// by a `tokio::time::timeout` for instance), or the database ended the transaction
    /// under a call, nothing is committed: the transaction is rolled back and the error is
    /// [`Aborted`](StateStoreError::Aborted). What such a call left behind is unknown (on
    /// Postgres the driver may even have ended the transaction under it), and after it
    /// every other call on the transaction is refused the same way.
    pub async fn commit(self) -> Result<()> {
        if self.guard.is_aborted() {
            if let Err(err) = self.txn.rollback().await {
                tracing::debug!(error = %err, "rolling back an aborted transaction");
            }
            return Err(aborted_error());
        }
        Ok(self.txn.commit().await?)
    }

    /// Undoes every operation of the transaction.
    pub async fn rollback(self) -> Result<()> {
        let aborted = self.guard.is_aborted();
        match self.txn.rollback().await {
            Ok(()) => Ok(()),
            // The database may have ended the transaction already (see `commit`): what
            // is undone is undone.
            Err(err) if aborted => {
                tracing::debug!(error = %err, "rolling back an aborted transaction");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The SeaORM transaction, to write the application's own rows in it too.
    pub fn transaction(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Scoped for StoreTransaction {
    type Conn = DatabaseTransaction;
    fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }
    fn options(&self) -> &Arc<StoreOptions> {
        &self.options
    }
    fn bases(&self) -> &Bases {
        &self.bases
    }
    fn guard(&self) -> Option<&CallGuard> {
        Some(&self.guard)
    }
}

/// What a [`StoreTransaction`] answers once one of its calls did not finish as it should.
pub(crate) fn aborted_error() -> StateStoreError {
    StateStoreError::new(
        ErrorKind::Aborted,
        "a call in this StoreTransaction was cancelled before it finished (its future was \
         dropped, by a timeout for instance), or the database ended the transaction under \
         it, so what the transaction holds is unknown: it takes no more calls and does not \
         commit; roll it back and run the work again",
    )
}

/// What a call on a transaction answers when its error made the database roll the whole
/// transaction back (SQLite, after a full disk, an I/O error or an interrupt).
pub(crate) fn ended_by_database(cause: &StateStoreError) -> StateStoreError {
    StateStoreError::new(
        ErrorKind::Aborted,
        format!(
            "the database rolled the whole transaction back after this error: {cause}; nothing \
         of the transaction is stored (statements run in it now would each commit on their \
         own): roll it back and run the work again"
        ),
    )
}

impl<'c> Scoped for TransactionScope<'c> {
    type Conn = DatabaseExecutor<'c>;
    fn conn(&self) -> &DatabaseExecutor<'c> {
        &self.txn
    }
    fn options(&self) -> &Arc<StoreOptions> {
        &self.options
    }
    fn bases(&self) -> &Bases {
        &self.bases
    }
}

impl fmt::Debug for StoreTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreTransaction").finish_non_exhaustive()
    }
}

impl fmt::Debug for TransactionScope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionScope").finish_non_exhaustive()
    }
}
