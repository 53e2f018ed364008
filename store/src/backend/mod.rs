//! The few things Postgres and SQLite do differently, in one place: how to connect, how
//! to migrate safely when several processes start at once, how to open a write
//! transaction, how to apply a batch of writes atomically in the fewest round trips, and
//! how to aggregate a workflow's steps into JSON so a read is one statement.
//!
//! Everything else in the store is one SeaORM code path for both databases.

use crate::error::{ConfigProblem, ErrorKind};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, Query, SimpleExpr};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqlxPostgresConnector, SqlxSqliteConnector, Statement, TransactionOptions, TransactionTrait,
};
use tracing::Instrument as _;

mod batch;
mod sql;
mod target;

pub(crate) use batch::{
    IDS_PER_STATEMENT, Write, Written, retrying, write_all, write_all_versioned,
};
pub(crate) use sql::{json_as_text, lookup_value, steps_json_column, time_as_text};
pub(crate) use target::is_postgres_target;
pub use target::sqlite_file;
use target::{Target, is_memory_target, parse_target};

use crate::config::StoreOptions;
use crate::error::{Result, StateStoreError, redact, redact_url};

/// Marker for a store built by [`PostgresStateStore::new`](crate::PostgresStateStore).
#[derive(Debug)]
pub enum Postgres {}

/// Marker for a store built by [`SqliteStateStore::new`](crate::SqliteStateStore).
#[derive(Debug)]
pub enum Sqlite {}

/// Marker for a store whose database is chosen at run time (builder, existing connection).
#[derive(Debug)]
pub enum AnyBackend {}

/// How long SQLite waits for another process's write lock before `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Postgres connections idle longer than this are pinged before use, so a server restart
/// costs no failed operation.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(15);
/// Advisory lock key that serializes migrations across processes on one Postgres database.
const MIGRATION_LOCK_KEY: i64 = 0x6c6c_6d5f_7374_6174; // "llm_stat"

/// SQLite's "database is locked" (`SQLITE_BUSY`, and its extended codes).
fn is_sqlite_busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db_err) => db_err
            .code()
            .is_some_and(|code| code == "5" || code.parse::<i32>().is_ok_and(|c| c & 0xff == 5)),
        _ => false,
    }
}

/// Whether SQLite may have failed to open a database because it cannot create its
/// `-wal` and `-shm` files beside it: `SQLITE_READONLY_DIRECTORY` says so for a folder
/// this process may not write; root, whom permissions do not stop, meets a folder made
/// immutable (`chattr +i`) as `SQLITE_CANTOPEN`, which a file it may not read gives too.
fn cannot_write_folder(err: &sqlx::Error) -> bool {
    /// An extended result code.
    const SQLITE_READONLY_DIRECTORY: i32 = 1544;
    /// A primary result code (extended ones keep it in their low byte).
    const SQLITE_CANTOPEN: i32 = 14;
    let code = match err {
        sqlx::Error::Database(db_err) => db_err.code().and_then(|code| code.parse::<i32>().ok()),
        _ => None,
    };
    code.is_some_and(|code| code == SQLITE_READONLY_DIRECTORY || code & 0xff == SQLITE_CANTOPEN)
}

/// A read-only pool that can read the file: SQLite opens the file lazily, so one read
/// tells whether a write-ahead-log database sits in a folder this process cannot write
/// (someone else's database, or a copy in a read-only place). With no `-wal` file
/// there, no process has it open and the last one folded its log into the file, so
/// SQLite reads it as an immutable file. A `-wal` file there may hold commits an
/// immutable read would silently miss, or belong to a process still writing: that is
/// a `Configuration` error. A file this process may not read fails the immutable open
/// too, with SQLite's own words.
async fn readable(
    pool: sqlx::SqlitePool,
    options: &StoreOptions,
    sqlite: &SqliteConnectOptions,
    connect_err: impl Fn(sqlx::Error) -> StateStoreError,
) -> Result<sqlx::SqlitePool> {
    let probe = sqlx::query("SELECT count(*) FROM sqlite_master")
        .fetch_one(&pool)
        .await;
    match probe {
        Err(err) if cannot_write_folder(&err) => {
            pool.close().await;
            let file = sqlite.get_filename();
            let mut wal = file.as_os_str().to_owned();
            wal.push("-wal");
            if std::path::Path::new(&wal).exists() {
                return Err(StateStoreError::configuration(
                    ConfigProblem::Inaccessible,
                    format!(
                        "SQLite database {} cannot be read safely: its folder cannot be written \
                     (SQLite keeps -wal and -shm files there) and a -wal file lies beside it, \
                     which may hold commits not yet in the database or belong to a process \
                     still writing it; copy the database and its -wal file to a folder you \
                     can write",
                        file.display()
                    ),
                ));
            }
            tracing::warn!(
                file = %file.display(),
                "the SQLite database's folder cannot be written; reading the database as an \
                 immutable file, as it was when opened"
            );
            let immutable = sqlite.clone().immutable(true);
            sqlite_pool_options(options, &immutable)
                .connect_with(immutable)
                .await
                .map_err(connect_err)
        }
        _ => Ok(pool),
    }
}

/// Makes sure the store's Postgres schema exists: creates it when missing, or, for a
/// read-only store or with `create_postgres_schema` off, says it is missing.
async fn ensure_schema(
    db: &DatabaseConnection,
    schema: &str,
    options: &StoreOptions,
    shown: &str,
) -> Result<()> {
    if options.read_only || !options.create_postgres_schema {
        if schema_exists(db, schema).await? {
            return Ok(());
        }
        let why = if options.read_only {
            "a read-only store does not create it"
        } else {
            "create_postgres_schema is off"
        };
        return Err(StateStoreError::configuration(
            ConfigProblem::PostgresSchemaMissing,
            format!("the Postgres schema {schema:?} does not exist in {shown}; {why}"),
        ));
    }
    // Under the migration lock: replicas creating the schema at once would otherwise
    // race (IF NOT EXISTS is not atomic in Postgres).
    let txn = under_migration_lock(db).await?;
    // Only when missing: even with IF NOT EXISTS, CREATE SCHEMA needs the CREATE
    // privilege on the database, which a role given a schema made for it by an
    // administrator often lacks.
    if !schema_exists(&txn, schema).await? {
        txn.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// A Postgres transaction holding the migration lock (replicas starting together take
/// turns). READ COMMITTED, not the sessions' REPEATABLE READ: its snapshot would be
/// taken before the lock is granted, and the statements after the lock must see what a
/// replica that went first committed while this one waited.
async fn under_migration_lock(db: &DatabaseConnection) -> Result<DatabaseTransaction> {
    let options = TransactionOptions {
        isolation_level: Some(sea_orm::IsolationLevel::ReadCommitted),
        ..Default::default()
    };
    let txn = begin(db, options).await?;
    // However long the replica that went first takes: the sessions' `lock_timeout`
    // (`StoreOptions::lock_timeout`) is for rows, not for waiting a turn to migrate, and
    // their `statement_timeout` (`call_timeout`) is for calls, not for migrations.
    txn.execute_unprepared(&format!(
        "SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0; \
         SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY}); \
         SET LOCAL lock_timeout TO DEFAULT"
    ))
    .await?;
    Ok(txn)
}

/// `duration` in whole milliseconds, at least 1 (Postgres reads 0 as "no limit").
fn whole_millis(duration: Duration) -> u128 {
    duration.as_nanos().div_ceil(1_000_000).max(1)
}

/// Whether the Postgres database has a schema of this name (as written).
async fn schema_exists(conn: &impl ConnectionTrait, schema: &str) -> Result<bool> {
    let found = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 AS found FROM pg_namespace WHERE nspname = $1",
            [schema.into()],
        ))
        .await?;
    Ok(found.is_some())
}

/// Turns Nagle's algorithm off and TCP keepalive on for a new Postgres connection over
/// TCP (see [`crate::nodelay`]). A failure only costs latency or a later detection of a
/// dead server, so it is logged, not returned.
async fn tune_sockets(host: &str, port: u16) {
    match crate::nodelay::tune_sockets(host, port).await {
        Ok(changed) => tracing::trace!(changed, "TCP_NODELAY and keepalive set"),
        Err(err) => tracing::debug!(error = %err, "cannot set TCP_NODELAY and keepalive"),
    }
}

/// Opens the connection pool for `target` with the right settings for its database.
pub(crate) async fn connect(target: &str, options: &StoreOptions) -> Result<DatabaseConnection> {
    let shown = redact_url(target);
    let connect_err = |err: sqlx::Error| {
        // `shown` is redacted already: redacting it again inside the message would take
        // the `:` after a masked `?password=***` for part of the value.
        let why = redact(&crate::error::describe_sqlx(&err));
        if crate::error::refused_login(&err) {
            // A role, password or database name that is wrong: no retry helps.
            return StateStoreError::configuration(
                crate::error::login_problem(&err),
                format!(
                    "cannot connect to {shown}: {why}; check the user, password and database name"
                ),
            );
        }
        StateStoreError::new(
            ErrorKind::ConnectionFailed,
            format!("cannot connect to {shown}: {why}"),
        )
    };
    let parsed = parse_target(target)?;
    let address = match &parsed {
        Target::Postgres(pg) => tcp_address(pg),
        Target::Sqlite(_) => None,
    };
    let pending = async {
        match parsed {
            Target::Postgres(pg) => {
                let mut pg = *pg;
                pg = pg.application_name(&options.application_name);
                // Single-statement writes rely on this (see `write_all`).
                pg = pg.options([("default_transaction_isolation", "repeatable read")]);
                if options.read_only {
                    pg = pg.options([("default_transaction_read_only", "on")]);
                }
                if let Some(timeout) = options.lock_timeout {
                    pg = pg.options([("lock_timeout", format!("{}ms", whole_millis(timeout)))]);
                }
                // The server gives up on a statement the caller stopped waiting for.
                if let Some(timeout) = options.call_timeout {
                    pg =
                        pg.options([("statement_timeout", format!("{}ms", whole_millis(timeout)))]);
                }
                if let Some(schema) = &options.postgres_schema {
                    crate::validate::postgres_schema_name(schema)?;
                    // Quoted, as CREATE SCHEMA below quotes it: unquoted, Postgres would
                    // look for "tenant" when the schema created is "Tenant".
                    pg = pg.options([("search_path", format!("\"{schema}\""))]);
                }
                let server = address.clone();
                let pool = PgPoolOptions::new()
                    .min_connections(options.min_connections.min(options.max_connections))
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(false)
                    .after_connect(move |_conn, _meta| {
                        let server = server.clone();
                        Box::pin(async move {
                            if let Some((host, port)) = server {
                                tune_sockets(&host, port).await;
                            }
                            Ok(())
                        })
                    })
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_WHEN_IDLE_FOR {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(pg)
                    .await;
                let pool = match pool {
                    Ok(pool) => pool,
                    Err(sqlx::Error::PoolTimedOut) => {
                        return Err(
                            unreachable(&shown, address.as_ref(), options.acquire_timeout).await,
                        );
                    }
                    Err(err) => return Err(connect_err(err)),
                };
                let db = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
                if let Some(schema) = &options.postgres_schema {
                    ensure_schema(&db, schema, options, &shown).await?;
                }
                Ok(db)
            }
            Target::Sqlite(_) if options.postgres_schema.is_some() => {
                Err(StateStoreError::configuration(
                    ConfigProblem::InvalidOption,
                    format!("postgres_schema is for a Postgres database; {shown} is SQLite"),
                ))
            }
            Target::Sqlite(sqlite) => {
                let file = sqlite.get_filename().to_path_buf();
                if options.read_only && !is_memory_target(target) && !file.is_file() {
                    return Err(StateStoreError::configuration(
                        ConfigProblem::DatabaseMissing,
                        format!(
                            "SQLite database {} does not exist (a read-only store does not create it)",
                            file.display()
                        ),
                    ));
                }
                let mut sqlite = sqlite
                    .busy_timeout(options.lock_timeout.unwrap_or(SQLITE_BUSY_TIMEOUT))
                    .foreign_keys(true);
                sqlite = if options.read_only {
                    sqlite.read_only(true).create_if_missing(false)
                } else {
                    sqlite.journal_mode(SqliteJournalMode::Wal).synchronous(
                        match options.sqlite_sync {
                            crate::config::SqliteSync::Full => SqliteSynchronous::Full,
                            crate::config::SqliteSync::Normal => SqliteSynchronous::Normal,
                        },
                    )
                };
                let pool_options = sqlite_pool_options(options, &sqlite);
                // Switching a new file to WAL takes an exclusive lock that SQLite's busy
                // timeout does not wait for: when another process or store opens the same
                // new file at that moment, wait a little and open again (the whole connect
                // stays bounded by `connect_timeout`).
                let mut pause = Duration::from_millis(5);
                loop {
                    match pool_options.clone().connect_with(sqlite.clone()).await {
                        Ok(pool) if options.read_only => {
                            let pool = readable(pool, options, &sqlite, connect_err).await?;
                            return Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool));
                        }
                        Ok(pool) => return Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)),
                        Err(err) if is_sqlite_busy(&err) => {
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_millis(200));
                        }
                        Err(err)
                            if !options.read_only
                                && cannot_write_folder(&err)
                                && file.is_file() =>
                        {
                            return Err(StateStoreError::configuration(
                                ConfigProblem::Inaccessible,
                                format!(
                                    "SQLite database {} cannot be opened for writing ({}): this \
                                 process must be able to read and write it and to write its \
                                 folder, where SQLite keeps its -wal and -shm files; to \
                                 inspect it, open it read-only (read_only, wfadmin \
                                 --read-only) or copy it to a folder you can write",
                                    file.display(),
                                    crate::error::describe_sqlx(&err)
                                ),
                            ));
                        }
                        Err(err) => return Err(connect_err(err)),
                    }
                }
            }
        }
    };
    match tokio::time::timeout(options.connect_timeout, pending).await {
        Ok(result) => result,
        Err(_) => Err(unreachable(&shown, address.as_ref(), options.connect_timeout).await),
    }
}

/// The pool of a SQLite store, whose connections open with `sqlite`.
///
/// One connection, kept for the store's lifetime: SQLite has one writer anyway, a queue
/// in the pool beats SQLITE_BUSY retries, and an in-memory database lives exactly as
/// long as its last connection. Every use of it ends with [`settle_sqlite`].
fn sqlite_pool_options(options: &StoreOptions, sqlite: &SqliteConnectOptions) -> SqlitePoolOptions {
    let sqlite = sqlite.clone();
    SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false)
        .after_release(move |conn, _meta| {
            let sqlite = sqlite.clone();
            Box::pin(async move { settle_sqlite(conn, &sqlite).await.map(|()| true) })
        })
}

/// Hands a SQLite connection back to the pool outside any transaction, as every use
/// expects it (run when a use ends, before the next can begin).
///
/// After `SQLITE_FULL`, an I/O error, `SQLITE_NOMEM`, `SQLITE_BUSY` or an interrupt inside
/// a transaction, SQLite may roll the whole transaction back by itself. The driver then
/// still counts it open (its own `ROLLBACK` fails: "no transaction is active") and
/// begins the next transaction as a savepoint, which a failed call's rollback leaves
/// open: every later write would be acknowledged and then lost, the file locked
/// meanwhile. So a connection the driver still counts in a transaction here is
/// replaced by a new one to the same database, opened with the same `sqlite` options
/// (the old one is rolled back first, then closed; the new one keeps an in-memory
/// database alive meanwhile). If that fails, the error makes the pool close the
/// connection and open another.
async fn settle_sqlite(
    conn: &mut sqlx::SqliteConnection,
    sqlite: &SqliteConnectOptions,
) -> Result<(), sqlx::Error> {
    use sqlx::{ConnectOptions as _, Executor as _};
    if !conn.is_in_transaction() {
        return Ok(());
    }
    // A transaction dropped a moment ago queued its rollback on the connection's worker;
    // a round trip to the worker runs it first.
    conn.ping().await?;
    if !conn.is_in_transaction() {
        return Ok(());
    }
    tracing::warn!(
        "SQLite ended a transaction by itself after an error (disk full, I/O error, \
         interrupt); replacing its connection with a new one"
    );
    // "no transaction is active" when SQLite rolled everything back already.
    let _ = conn.execute("ROLLBACK").await;
    let fresh = sqlite.connect().await?;
    let stale = std::mem::replace(conn, fresh);
    if let Err(err) = sqlx::Connection::close(stale).await {
        tracing::debug!(error = %err, "closing a replaced SQLite connection");
    }
    Ok(())
}

/// Whether the transaction `db` is still open after one of its statements failed: after
/// some errors (see [`settle_sqlite`]) SQLite rolls the whole transaction back, and the
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

/// Where a Postgres server is over TCP (`None` for a Unix socket): what a TCP connect
/// probes to say why it cannot be reached, and what Nagle's algorithm is turned off for.
fn tcp_address(options: &PgConnectOptions) -> Option<(String, u16)> {
    options
        .get_socket()
        .is_none()
        .then(|| (options.get_host().to_owned(), options.get_port()))
}

/// Runs one store call on `scope`: the envelope every public operation goes through.
///
/// - The call ends with `Timeout` once it has taken the store's `call_timeout`, whatever
///   it waits for (a pooled connection, a server that stopped answering). The call's
///   future is dropped there: sqlx then drains or closes its connection before the pool
///   hands it out again, and a `StoreTransaction` whose call was cut refuses to commit.
/// - After a broken connection (`Connection`), the pool's idle Postgres connections are
///   closed: after a server restart every one of them is broken, and each would
///   otherwise fail one later call.
/// - When the pool gave up waiting for a connection to Postgres, the error says why:
///   every connection was in use, or the server cannot be reached and why (sqlx reports
///   only that it timed out, after retrying a refused connection until the acquire
///   timeout). Operations inside a transaction (which holds its connection) are
///   returned as they are.
pub(crate) async fn diagnosed<S: crate::seaorm::sealed::Scoped, T>(
    scope: &S,
    operation: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let db = scope.conn();
    let result = match scope.options().call_timeout {
        Some(deadline) => tokio::time::timeout(deadline, operation)
            .await
            .unwrap_or_else(|_| Err(timed_out(deadline))),
        None => operation.await,
    };
    let pool = match (&result, db.pool()) {
        (Err(err), Some(pool)) if err.is_pool_timeout() => pool,
        (Err(StateStoreError::Connection(_)), Some(pool)) => {
            close_idle_connections(pool);
            return result;
        }
        _ => return result,
    };
    if matches!(
        pool.inner,
        sea_orm::DatabaseConnectionType::SqlxSqlitePoolConnection(_)
    ) {
        let waited = pool
            .get_sqlite_connection_pool()
            .options()
            .get_acquire_timeout();
        // One connection: whoever holds it is this process, most often a transaction.
        return Err(StateStoreError::new(
            ErrorKind::PoolExhausted,
            format!(
                "pool timed out: the store's one SQLite connection stayed in use for {waited:?}; \
             an open StoreTransaction holds it until its commit or rollback (call the \
             transaction, not the store, meanwhile)"
            ),
        ));
    }
    if !matches!(
        pool.inner,
        sea_orm::DatabaseConnectionType::SqlxPostgresPoolConnection(_)
    ) {
        return result;
    }
    let pool = pool.get_postgres_connection_pool();
    let options = pool.connect_options();
    let shown = format!("database {:?}", options.get_database().unwrap_or_default());
    let (max, waited) = (
        pool.options().get_max_connections(),
        pool.options().get_acquire_timeout(),
    );
    if pool.size() >= max {
        // A busy pool, not a server that went away: the server would answer a probe.
        return Err(StateStoreError::new(
            ErrorKind::PoolExhausted,
            format!(
                "pool timed out: all {max} connections to {shown} stayed in use for {waited:?}; \
             allow more (max_connections) or hold them for less time"
            ),
        ));
    }
    let address = tcp_address(&options);
    Err(unreachable(&shown, address.as_ref(), waited).await)
}

/// The error for a call that did not finish within the store's `call_timeout`.
fn timed_out(deadline: Duration) -> StateStoreError {
    StateStoreError::new(
        ErrorKind::TimedOut,
        format!(
            "the call did not finish within {deadline:?} (call_timeout): the database did not \
         answer in time; a write may or may not have been committed, reload before \
         repeating it"
        ),
    )
}

/// Closes every idle connection of a Postgres pool, after a call found its connection
/// broken: a server restart breaks them all at once, and sqlx would hand each out to
/// one more call that then fails. Connections in use are left to their calls; the pool
/// opens new ones as needed.
fn close_idle_connections(db: &DatabaseConnection) {
    if !matches!(
        db.inner,
        sea_orm::DatabaseConnectionType::SqlxPostgresPoolConnection(_)
    ) {
        return;
    }
    let pool = db.get_postgres_connection_pool();
    let mut idle = Vec::new();
    while let Some(connection) = pool.try_acquire() {
        idle.push(connection);
    }
    if !idle.is_empty() {
        tracing::debug!(
            closed = idle.len(),
            "a connection broke: closing the pool's idle ones"
        );
    }
    for mut connection in idle {
        connection.close_on_drop();
    }
}

/// The error for a Postgres server that gave no connection within `waited`, saying why
/// when a plain TCP connect can tell: sqlx retries a refused connection (a server that is
/// starting) until its deadline and then reports only the deadline, which sends an
/// operator looking for a slow server when none is running. `shown` names the target
/// with its password masked.
async fn unreachable(
    shown: &str,
    address: Option<&(String, u16)>,
    waited: Duration,
) -> StateStoreError {
    let why = match address {
        None => format!("no answer within {waited:?}"),
        Some((host, port)) => {
            let probe = tokio::net::TcpStream::connect((host.as_str(), *port));
            // An IPv6 address in brackets, as a URL writes it: `[::1]:5432`.
            let server = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            match tokio::time::timeout(Duration::from_secs(1), probe).await {
                Ok(Ok(_)) => format!(
                    "{server} accepts connections but the server did not finish logging in \
                     within {waited:?}"
                ),
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => format!(
                    "{server} refused the connection for {waited:?}: is PostgreSQL running \
                     there?"
                ),
                Ok(Err(err)) => format!("{server}: {err}"),
                Err(_) => format!("{server} gave no answer within {waited:?}"),
            }
        }
    };
    // `shown` is masked already; masking the message again would take the ": " after a
    // trailing `?password=***` for part of the password.
    StateStoreError::new(
        ErrorKind::ConnectionFailed,
        format!("cannot connect to {shown}: {why}"),
    )
}

/// Applies pending migrations, one process at a time: on Postgres under an advisory
/// lock, on SQLite inside a `BEGIN IMMEDIATE` transaction, so replicas that start
/// together migrate one after the other instead of racing on `CREATE TABLE`.
pub(crate) async fn migrate(db: &DatabaseConnection) -> Result<()> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = under_migration_lock(db).await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await?;
        }
        _ => {
            // SQLite: inside one write transaction (DDL is transactional there), so stores
            // opening a new file at once migrate one after the other, each seeing what the
            // one before committed.
            let txn = begin_write(db).await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await?;
        }
    }
    Ok(())
}

/// `Configuration` when the database has no `workflow_states` table: for a read-only
/// store, which cannot create its tables and whose every call would fail with "no such
/// table" (a mistyped path or database, a forgotten `postgres_schema`). Asked of the
/// table itself, so a database migrated by a newer version opens too.
pub(crate) async fn check_has_tables(db: &DatabaseConnection) -> Result<()> {
    use sea_orm::{EntityTrait, QuerySelect};
    let probe = entity::workflow_states::Entity::find()
        .select_only()
        .column(entity::workflow_states::Column::Id)
        .limit(1)
        .into_tuple::<uuid::Uuid>()
        .all(db)
        .await;
    match probe {
        Ok(_) => Ok(()),
        Err(err) if crate::error::is_undefined_table(&err) => Err(StateStoreError::new(
            ErrorKind::NotMigrated,
            "the database has none of the store's tables (a wrong database or path, or a \
                 Postgres schema other than this one?): a read-only store cannot create them; \
                 open it once without read_only",
        )),
        Err(other) => Err(other.into()),
    }
}

/// Warns when a Postgres connection the application opened runs at an isolation level
/// weaker than REPEATABLE READ, which the store's one-statement writes rely on (see
/// [`write_all`]).
pub(crate) async fn check_session_isolation(db: &DatabaseConnection) -> Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SHOW default_transaction_isolation",
        ))
        .await?;
    let level: Option<String> = row.and_then(|row| row.try_get_by_index(0).ok());
    if let Some(level) = level.filter(|level| level.starts_with("read ")) {
        tracing::warn!(
            isolation = %level,
            "the connection given to the store runs at {level}: two concurrent plain saves \
             of one workflow can mix their steps; set default_transaction_isolation to \
             'repeatable read' in its options, or save under a lease or version"
        );
    }
    Ok(())
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

/// "Now" on the clock leases run by, as SQL, `after` from now. On Postgres the server's
/// clock (`statement_timestamp()`), so replicas whose own clocks disagree still agree on
/// when a lease runs out. On SQLite this machine's clock, bound as a value: processes that
/// share a SQLite file share a machine, and so a clock.
pub(crate) fn lease_clock(backend: DbBackend, after: chrono::Duration) -> SimpleExpr {
    match backend {
        DbBackend::Postgres if after.is_zero() => Expr::cust("statement_timestamp()"),
        DbBackend::Postgres => Expr::cust_with_values(
            "statement_timestamp() + $1 * interval '1 microsecond'",
            [after.num_microseconds().unwrap_or(i64::MAX)],
        ),
        _ => Expr::val((crate::model::now() + after).fixed_offset()),
    }
}

/// How far the clock leases run by ([`lease_clock`]) is ahead of this machine's;
/// negative when it is behind. On Postgres: the server's `statement_timestamp()` set
/// against the middle of the round trip that read it, the closest of three reads (the
/// shortest round trip bounds the error best). On SQLite it is this machine's own clock:
/// zero, without a query.
pub(crate) async fn clock_offset<C: ConnectionTrait>(db: &C) -> Result<chrono::Duration, DbErr> {
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres {
        return Ok(chrono::Duration::zero());
    }
    let read = Query::select()
        .expr(lease_clock(backend, chrono::Duration::zero()))
        .to_owned();
    let mut best: Option<(chrono::Duration, chrono::Duration)> = None;
    for _ in 0..3 {
        let sent = crate::model::now();
        let row = db.query_one(&read).await?;
        let received = crate::model::now();
        let server: chrono::DateTime<chrono::Utc> = row
            .ok_or_else(|| DbErr::RecordNotFound("the server's clock".into()))?
            .try_get_by_index(0)?;
        let round_trip = received - sent;
        let offset = server - (sent + round_trip / 2);
        if best.is_none_or(|(shortest, _)| round_trip < shortest) {
            best = Some((round_trip, offset));
        }
    }
    Ok(best.map_or_else(chrono::Duration::zero, |(_, offset)| offset))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_or_explain() {
        assert!(matches!(parse_target(":memory:"), Ok(Target::Sqlite(_))));
        assert!(matches!(parse_target("./x.db"), Ok(Target::Sqlite(_))));
        assert!(matches!(
            parse_target("postgresql://u:p@localhost:5432/db?sslmode=require"),
            Ok(Target::Postgres(_))
        ));
        let err = parse_target("mysql://u:hunter2@h/db").err().unwrap();
        assert!(matches!(err, StateStoreError::Configuration(_)));
        assert!(!err.to_string().contains("hunter2"));
        let err = parse_target("postgres://u:hunter2@h:notaport/db")
            .err()
            .unwrap();
        assert!(matches!(err, StateStoreError::Configuration(_)), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(matches!(
            parse_target("/no/such/folder/x.db"),
            Err(StateStoreError::Configuration(_))
        ));
        for key_value in [
            "host=127.0.0.1 user=postgres password=hunter2 dbname=test",
            "dbname=test",
            "Host=db Password=hunter2",
            "host = 127.0.0.1 user = postgres password = hunter2 dbname = test",
        ] {
            let err = parse_target(key_value).err().unwrap();
            assert!(matches!(err, StateStoreError::Configuration(_)), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        assert!(matches!(
            parse_target("./hostname.db"),
            Ok(Target::Sqlite(_))
        ));
        // A Postgres URL missing its `//`, or user:password@host with no scheme at all,
        // is refused with the password hidden, never taken for a file name.
        for broken in [
            "postgres:/app:hunter2@db.internal/prod",
            "postgres:app:hunter2@127.0.0.1",
            "postgresql:app:hun:ter2@127.0.0.1/db",
            "postgres//app:hunter2@127.0.0.1/db",
            "POSTGRES:/app:hunter2@db/x",
            "app:hunter2@db.internal/prod",
            "app:hun@ter2@db/prod",
        ] {
            let err = parse_target(broken).err().unwrap();
            assert!(matches!(err, StateStoreError::Configuration(_)), "{err}");
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("ter2"),
                "{shown}"
            );
            assert!(shown.contains("app:***@"), "{shown}");
        }
        // Schemes in any case; paths that merely hold `:` and `@` stay paths.
        assert!(matches!(
            parse_target("Postgres://u@localhost/db"),
            Ok(Target::Postgres(_))
        ));
        assert!(matches!(
            parse_target("PostgreSQL://u@localhost/db"),
            Ok(Target::Postgres(_))
        ));
        for path in [
            "./a:b@c.db",
            "/tmp/x@y.db",
            "./postgres:x.db",
            "C:\\data@x.db",
        ] {
            assert!(
                !matches!(parse_target(path), Err(StateStoreError::Configuration(ref m)) if m.contains("***")),
                "{path}"
            );
        }
        assert!(crate::validate::postgres_schema_name("t_1").is_ok());
        assert!(crate::validate::postgres_schema_name("a\"; drop").is_err());
    }
}
