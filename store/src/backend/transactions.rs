//! Transactions as each database needs them: write transactions that take the write lock
//! first on SQLite, savepoints, and what a failure inside a transaction leaves behind.

use sea_orm::sqlx::{self};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, TransactionOptions,
    TransactionTrait,
};
use tracing::Instrument as _;

use crate::error::Result;

/// Whether the transaction `db` is still open after one of its statements failed: after
/// some errors (see [`settle_sqlite`](super::connect::settle_sqlite)) SQLite rolls the whole transaction back, and the
/// statements after it would each commit on their own. Always true outside a transaction
/// and on Postgres, where the store's savepoints keep a failed call from ending the
/// transaction (see [`failure_aborts_transaction`]). A SQLite transaction that is gone
/// is left as SQLite left it, with nothing open.
pub(crate) async fn transaction_survived<C: Db>(db: &C) -> bool {
    /// SQLite's generic error, which `BEGIN` inside a transaction gives.
    const SQLITE_ERROR: &str = "1";
    if !db.in_transaction() || db.get_database_backend() != DbBackend::Sqlite {
        return true;
    }
    match db.execute_unprepared("BEGIN").await {
        // "cannot start a transaction within a transaction": it is still open.
        Err(DbErr::Exec(sea_orm::RuntimeErr::SqlxError(err)))
            if matches!(err.as_ref(), sqlx::Error::Database(db_err)
                if db_err.code().as_deref() == Some(SQLITE_ERROR)) =>
        {
            true
        }
        Ok(_) => {
            // The transaction was gone: undo the one just begun.
            if let Err(err) = db.execute_unprepared("ROLLBACK").await {
                tracing::debug!(error = %err, "rolling back a probe transaction");
            }
            false
        }
        Err(err) => {
            tracing::debug!(error = %err, "cannot tell whether the transaction is open");
            false
        }
    }
}

/// Whether a statement the database refuses ends the transaction it runs in: on Postgres,
/// inside a transaction (the caller's or the store's), every later statement fails and
/// `COMMIT` answers with a rollback that sqlx reports as success. SQLite mostly undoes
/// only the failed statement (when it ended the whole transaction instead,
/// [`transaction_survived`] tells), and outside a transaction there is nothing to lose.
pub(crate) fn failure_aborts_transaction<C: Db>(db: &C) -> bool {
    db.in_transaction() && db.get_database_backend() == DbBackend::Postgres
}

/// Ends a savepoint taken by the store around one call: released when the call succeeded,
/// rolled back to when it failed (the call's error is what the caller sees). The flag says
/// whether the savepoint ended as it should; when it did not, the transaction around it is
/// in an unknown state (sqlx may have ended it).
pub(crate) async fn end_savepoint<T>(
    savepoint: DatabaseTransaction,
    result: Result<T>,
) -> (Result<T>, bool) {
    match result {
        Ok(value) => match savepoint.commit().await {
            Ok(()) => (Ok(value), true),
            Err(err) => (Err(err.into()), false),
        },
        Err(err) => match savepoint.rollback().await {
            Ok(()) => (Err(err), true),
            Err(rollback) => {
                tracing::warn!(error = %rollback, "rolling back to a savepoint failed");
                (Err(err), false)
            }
        },
    }
}

/// Begins a transaction that will write. SQLite takes the write lock up front
/// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of failing when a
/// reader upgrades.
pub(crate) async fn begin_write<C: Db>(db: &C) -> Result<DatabaseTransaction, DbErr> {
    let options = match db.get_database_backend() {
        DbBackend::Sqlite => TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        },
        _ => TransactionOptions::default(),
    };
    begin(db, options).await
}

/// Begins a transaction on `db` with `options`: every transaction the store begins goes
/// through here.
///
/// On a Postgres pool the `BEGIN` runs in a task of its own, so that it always finishes.
/// sqlx 0.9 counts a transaction as open only once the server has answered `BEGIN`, so a
/// caller cancelled while waiting for that answer (a `tokio::time::timeout` around a
/// store call, an aborted heartbeat task) used to put the connection back in the pool
/// inside a transaction nobody owned: the next calls on that connection ran in it, were
/// acknowledged, and were then rolled back. Now the task completes the `BEGIN` and, when
/// nobody is waiting for the transaction any more, drops it, which rolls it back before
/// the connection is reused (a caller that gave up still costs the pool that round trip).
/// SQLite's driver undoes a cancelled `BEGIN` itself; a savepoint inside a transaction is
/// the caller's transaction to roll back (see `StoreTransaction`).
pub(crate) async fn begin<C: Db>(
    db: &C,
    options: TransactionOptions,
) -> Result<DatabaseTransaction, DbErr> {
    match db.pool() {
        Some(pool) if pool.get_database_backend() == DbBackend::Postgres => {
            let pool = pool.clone();
            let begun = tokio::spawn(
                async move { pool.begin_with_options(options).await }.in_current_span(),
            );
            match begun.await {
                Ok(begun) => begun,
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => Err(DbErr::Custom(format!("beginning a transaction: {err}"))),
            }
        }
        _ => db.begin_with_options(options).await,
    }
}

/// Begins the transaction of a conditional write (a version or a lease to hold). On
/// Postgres at READ COMMITTED when it is a transaction of its own: the condition is then
/// checked on the newest row once its lock is taken, so a concurrent renewal of the same
/// lease (which changes only its expiry) does not fail the write with a serialization
/// error, as it would at the sessions' REPEATABLE READ. The row stays locked until the
/// commit, so the writes after it see everything committed before.
pub(crate) async fn begin_conditional<C: Db>(db: &C) -> Result<DatabaseTransaction, DbErr> {
    if db.get_database_backend() == DbBackend::Postgres && !db.in_transaction() {
        let options = TransactionOptions {
            isolation_level: Some(sea_orm::IsolationLevel::ReadCommitted),
            ..Default::default()
        };
        begin(db, options).await
    } else {
        begin_write(db).await
    }
}

/// Runs `$body` (with `$c` bound to a connection) all or nothing: in a transaction begun
/// with `$begin` and committed when `$body` is `Ok`, unless `$atomic` says `$conn` is
/// already a savepoint taken for this one store call (see `contained!`), which undoes
/// the whole call by itself. A second savepoint there would cost two round trips and
/// undo nothing more.
macro_rules! all_or_nothing {
    ($conn:expr, $atomic:expr, $begin:path, |$c:ident| $body:expr) => {{
        if $atomic {
            let $c = $conn;
            $body
        } else {
            let txn = $begin($conn).await?;
            let result = {
                let $c = &txn;
                $body
            };
            match result {
                Ok(value) => {
                    txn.commit().await?;
                    Ok(value)
                }
                Err(err) => {
                    // Rolled back now, not only when dropped: a dropped transaction's
                    // ROLLBACK waits for the connection's next use, and until then its
                    // row locks (a `FOR UPDATE`, an update before the error) would
                    // stop other writers and make claims skip the rows. If the
                    // rollback itself fails, the drop still ends the transaction.
                    let _ = txn.rollback().await;
                    Err(err)
                }
            }
        }
    }};
}
pub(crate) use all_or_nothing;

/// Begins a read-only transaction whose statements all see one snapshot (Postgres:
/// REPEATABLE READ; a SQLite read transaction is one snapshot already).
pub(crate) async fn begin_read<C: Db>(db: &C) -> Result<DatabaseTransaction, DbErr> {
    let options = match db.get_database_backend() {
        DbBackend::Postgres => TransactionOptions {
            isolation_level: Some(sea_orm::IsolationLevel::RepeatableRead),
            access_mode: Some(sea_orm::AccessMode::ReadOnly),
            ..Default::default()
        },
        _ => TransactionOptions::default(),
    };
    begin(db, options).await
}

/// What the store's statements run on: its own pooled connection, or a transaction.
pub trait Db: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction> {
    /// True inside a transaction, where a failed statement cannot be retried on its own.
    fn in_transaction(&self) -> bool;
    /// The pool statements take a connection from, when not in a transaction.
    fn pool(&self) -> Option<&DatabaseConnection>;
}

impl Db for DatabaseConnection {
    fn in_transaction(&self) -> bool {
        false
    }
    fn pool(&self) -> Option<&DatabaseConnection> {
        Some(self)
    }
}

impl Db for DatabaseTransaction {
    fn in_transaction(&self) -> bool {
        true
    }
    fn pool(&self) -> Option<&DatabaseConnection> {
        None
    }
}

impl Db for sea_orm::DatabaseExecutor<'_> {
    fn in_transaction(&self) -> bool {
        !matches!(self, sea_orm::DatabaseExecutor::Connection(_))
    }
    fn pool(&self) -> Option<&DatabaseConnection> {
        match self {
            sea_orm::DatabaseExecutor::Connection(db) => Some(db),
            _ => None,
        }
    }
}
