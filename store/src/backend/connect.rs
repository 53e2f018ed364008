//! Opening a database: parsing the target, the pool and its settings, making the schema
//! and migrating it safely when several processes start at once, and the checks a store
//! makes of a database before it serves calls.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, SqlxPostgresConnector,
    SqlxSqliteConnector, Statement, TransactionOptions,
};

use super::*;
use crate::config::StoreOptions;
use crate::error::{ConfigProblem, ErrorKind, Result, StateStoreError, redact, redact_url};

/// How long SQLite waits for another process's write lock before `SQLITE_BUSY`.
pub(super) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Postgres connections idle longer than this are pinged before use, so a server restart
/// costs no failed operation.
pub(super) const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(15);
/// Advisory lock key that serializes migrations across processes on one Postgres database.
pub(super) const MIGRATION_LOCK_KEY: i64 = 0x6c6c_6d5f_7374_6174; // "llm_stat"

/// SQLite's "database is locked" (`SQLITE_BUSY`, and its extended codes).
pub(super) fn is_sqlite_busy(err: &sqlx::Error) -> bool {
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
pub(super) fn cannot_write_folder(err: &sqlx::Error) -> bool {
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
pub(super) async fn readable(
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
pub(super) async fn ensure_schema(
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
pub(super) async fn under_migration_lock(db: &DatabaseConnection) -> Result<DatabaseTransaction> {
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
pub(super) fn whole_millis(duration: Duration) -> u128 {
    duration.as_nanos().div_ceil(1_000_000).max(1)
}

/// Whether the Postgres database has a schema of this name (as written).
pub(super) async fn schema_exists(conn: &impl ConnectionTrait, schema: &str) -> Result<bool> {
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
pub(super) async fn tune_sockets(host: &str, port: u16) {
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
pub(super) fn sqlite_pool_options(
    options: &StoreOptions,
    sqlite: &SqliteConnectOptions,
) -> SqlitePoolOptions {
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
pub(super) async fn settle_sqlite(
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

/// Where a Postgres server is over TCP (`None` for a Unix socket): what a TCP connect
/// probes to say why it cannot be reached, and what Nagle's algorithm is turned off for.
pub(super) fn tcp_address(options: &PgConnectOptions) -> Option<(String, u16)> {
    options
        .get_socket()
        .is_none()
        .then(|| (options.get_host().to_owned(), options.get_port()))
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
