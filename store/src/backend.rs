//! The few things Postgres and SQLite do differently, in one place: how to connect, how
//! to migrate safely when several processes start at once, and how to open transactions.
//!
//! Everything else in the store is one SeaORM code path for both databases.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    IsolationLevel, SqlxPostgresConnector, SqlxSqliteConnector, TransactionOptions,
    TransactionTrait,
};

use crate::config::StoreOptions;
use crate::error::{Result, StateStoreError, redact};

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

/// Where a store's data lives, parsed from what the user wrote.
enum Target {
    Postgres(Box<PgConnectOptions>),
    Sqlite(Box<SqliteConnectOptions>),
}

fn parse_target(target: &str) -> Result<Target> {
    let config_err = |why: String| StateStoreError::Configuration(redact(&why));
    let trimmed = target.trim();
    if trimmed.is_empty() {
        return Err(config_err("empty database URL or path".into()));
    }
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        url::Url::parse(trimmed)
            .map_err(|err| config_err(format!("malformed Postgres URL {trimmed}: {err}")))?;
        let options = PgConnectOptions::from_str(trimmed)
            .map_err(|err| config_err(format!("malformed Postgres URL {trimmed}: {err}")))?;
        return Ok(Target::Postgres(Box::new(options)));
    }
    if matches!(
        trimmed,
        ":memory:" | "sqlite::memory:" | "sqlite://:memory:"
    ) {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|err| config_err(err.to_string()))?;
        return Ok(Target::Sqlite(Box::new(options)));
    }
    if trimmed.starts_with("sqlite:") {
        let mut options = SqliteConnectOptions::from_str(trimmed)
            .map_err(|err| config_err(format!("malformed SQLite URL {trimmed}: {err}")))?;
        if !trimmed.contains("mode=") {
            options = options.create_if_missing(true);
        }
        check_parent_folder(options.get_filename())?;
        return Ok(Target::Sqlite(Box::new(options)));
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(config_err(format!(
            "unsupported database URL scheme {scheme:?}: use postgres://, sqlite:// or a file path"
        )));
    }
    check_parent_folder(Path::new(trimmed))?;
    Ok(Target::Sqlite(Box::new(
        SqliteConnectOptions::new()
            .filename(trimmed)
            .create_if_missing(true),
    )))
}

fn check_parent_folder(file: &Path) -> Result<()> {
    match file.parent() {
        Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => {
            Err(StateStoreError::Configuration(format!(
                "the folder {} of SQLite database {} does not exist",
                folder.display(),
                file.display()
            )))
        }
        _ => Ok(()),
    }
}

fn valid_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && schema.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(StateStoreError::Configuration(format!(
            "invalid Postgres schema name {schema:?}: use letters, digits and _ (at most 63)"
        )))
    }
}

/// Opens the connection pool for `target` with the right settings for its database.
pub(crate) async fn connect(target: &str, options: &StoreOptions) -> Result<DatabaseConnection> {
    let shown = redact(target);
    let connect_err = |err: sqlx::Error| {
        StateStoreError::Connection(redact(&format!("cannot connect to {shown}: {err}")))
    };
    let pending = async {
        match parse_target(target)? {
            Target::Postgres(pg) => {
                let mut pg = *pg;
                if let Some(schema) = &options.postgres_schema {
                    valid_schema_name(schema)?;
                    pg = pg.options([("search_path", schema.as_str())]);
                }
                let pool = PgPoolOptions::new()
                    .min_connections(options.min_connections.min(options.max_connections))
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_WHEN_IDLE_FOR {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(pg)
                    .await
                    .map_err(connect_err)?;
                let db = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
                if let Some(schema) = &options.postgres_schema {
                    db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                        .await?;
                }
                Ok(db)
            }
            Target::Sqlite(sqlite) => {
                let sqlite = sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true);
                // One connection, kept for the store's lifetime: SQLite has one writer
                // anyway, a queue in the pool beats SQLITE_BUSY retries, and an in-memory
                // database lives exactly as long as its last connection.
                let pool = SqlitePoolOptions::new()
                    .min_connections(1)
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(false)
                    .connect_with(sqlite)
                    .await
                    .map_err(connect_err)?;
                Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
            }
        }
    };
    match tokio::time::timeout(options.connect_timeout, pending).await {
        Ok(result) => result,
        Err(_) => Err(StateStoreError::Connection(format!(
            "cannot connect to {shown}: no answer within {:?}",
            options.connect_timeout
        ))),
    }
}

/// Applies pending migrations. On Postgres an advisory lock makes replicas that start
/// together migrate one after the other instead of racing on `CREATE TABLE`.
pub(crate) async fn migrate(db: &DatabaseConnection) -> Result<()> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))
            .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await?;
        }
        _ => Migrator::up(db, None).await?,
    }
    Ok(())
}

/// Begins a transaction that will write. SQLite takes the write lock up front
/// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of failing when a
/// reader upgrades.
pub(crate) async fn begin_write<C>(db: &C) -> Result<DatabaseTransaction>
where
    C: TransactionTrait<Transaction = DatabaseTransaction> + ConnectionTrait,
{
    let options = match db.get_database_backend() {
        DbBackend::Sqlite => TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        },
        _ => TransactionOptions::default(),
    };
    Ok(db.begin_with_options(options).await?)
}

/// Begins a read-only transaction whose statements all see one snapshot, so a workflow
/// and its steps are never read from two different saves.
pub(crate) async fn begin_read<C>(db: &C) -> Result<DatabaseTransaction>
where
    C: TransactionTrait<Transaction = DatabaseTransaction> + ConnectionTrait,
{
    Ok(match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
        }
        // A SQLite read transaction sees one snapshot of the database already.
        _ => db.begin().await?,
    })
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
        assert!(valid_schema_name("t_1").is_ok());
        assert!(valid_schema_name("a\"; drop").is_err());
    }
}
