//! The one place a database error becomes a variant and a kind, and the store's own
//! markers for refusals it explains before a caller sees them.

use sea_orm::{DbErr, RuntimeErr, SqlErr};

use super::*;

/// How a serialization failure or a deadlock starts its `Conflict` message.
pub(super) const LOST_RACE: &str = "lost a race with a concurrent write; trying again may succeed";

/// What a checkpoint stored as a patch reports when its base was deleted under it.
pub(super) const BASE_GONE: &str = "the base snapshot this checkpoint was stored against was deleted \
     concurrently; storing it again may succeed";

/// What a step write from a stale copy reports until the store has recorded it from the
/// stored workflow instead.
pub(super) const STALE_COPY: &str = "the stored workflow changed since this copy of it was read";

/// What a write refused by its workflow's guard reports until the store has read why: a
/// live lease holds the workflow, or the write's condition does not hold.
pub(super) const GUARD_REFUSED: &str = "the workflow refused the write: a live lease holds it, or the \
     write's condition does not hold";

/// A guard's refusal: it sets a NOT NULL column of `workflow_states` to NULL (Postgres
/// SQLSTATE 23502, SQLite's SQLITE_CONSTRAINT_NOTNULL, 1299), so the database undoes the
/// whole statement or batch. `lease_token` for the lease and identity guard, `version` for
/// the stale-copy guard.
pub(super) fn refused_by_guard_on(
    db_err: &dyn sea_orm::sqlx::error::DatabaseError,
    column: &str,
) -> bool {
    use sea_orm::sqlx::postgres::PgDatabaseError;
    match db_err.try_downcast_ref::<PgDatabaseError>() {
        Some(pg) => {
            pg.code() == "23502"
                && pg.table() == Some("workflow_states")
                && pg.column() == Some(column)
        }
        None => {
            db_err.code().as_deref() == Some("1299")
                && db_err
                    .message()
                    .strip_suffix(column)
                    .is_some_and(|rest| rest.ends_with("workflow_states."))
        }
    }
}

/// What a pool that gave no connection within its acquire timeout reports: every
/// connection was in use, or none could be opened. Every pool time-out message starts
/// with "pool timed out", which a caller counting them can match.
pub(super) const POOL_TIMED_OUT: &str = "pool timed out: no connection within the acquire timeout: all were in use or none \
     could be opened";

/// Sorts a SeaORM error into the variant a caller can act on.
pub(super) fn classify(err: &DbErr) -> StateStoreError {
    let message = match err {
        DbErr::Conn(RuntimeErr::SqlxError(sqlx_err))
        | DbErr::Exec(RuntimeErr::SqlxError(sqlx_err))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx_err)) => redact(&describe_sqlx(sqlx_err)),
        _ => redact(&err.to_string()),
    };
    match err {
        DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout) => {
            StateStoreError::new(ErrorKind::PoolExhausted, POOL_TIMED_OUT)
        }
        DbErr::Conn(RuntimeErr::SqlxError(sqlx_err)) if refused_login(sqlx_err) => {
            StateStoreError::configuration(login_problem(sqlx_err), message)
        }
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            StateStoreError::new(ErrorKind::ConnectionFailed, message)
        }
        DbErr::RecordNotFound(_) => StateStoreError::not_found(Entity::Other, message),
        DbErr::Json(_) | DbErr::Type(_) | DbErr::TryIntoErr { .. } => {
            StateStoreError::corrupt(message)
        }
        DbErr::Exec(RuntimeErr::SqlxError(sqlx_err))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx_err)) => classify_sqlx(sqlx_err, err, message),
        _ => StateStoreError::new(ErrorKind::Database, message),
    }
}

/// SQLite's primary result code for a write to a database that cannot be written.
pub(super) const SQLITE_READONLY: i32 = 8;

pub(super) fn classify_sqlx(
    sqlx_err: &sea_orm::sqlx::Error,
    err: &DbErr,
    message: String,
) -> StateStoreError {
    use sea_orm::sqlx::Error as E;
    match sqlx_err {
        E::PoolTimedOut => StateStoreError::new(ErrorKind::PoolExhausted, POOL_TIMED_OUT),
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolClosed
        | E::WorkerCrashed
        | E::Configuration(_) => StateStoreError::new(ErrorKind::ConnectionFailed, message),
        E::RowNotFound => StateStoreError::not_found(Entity::Other, message),
        E::ColumnDecode { .. } | E::Decode(_) => StateStoreError::corrupt(message),
        E::Database(_) if refused_login(sqlx_err) => {
            StateStoreError::configuration(login_problem(sqlx_err), message)
        }
        E::Database(db_err) => {
            let code = db_err.code().unwrap_or_default();
            // SQLSTATE class 08 is "connection exception"; 57P01-57P03 are server
            // shutdowns and restarts; 53300 is "too many connections".
            if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
                return StateStoreError::new(ErrorKind::ConnectionFailed, message);
            }
            // 57014 "canceling statement due to statement timeout": the sessions'
            // `statement_timeout` (`StoreOptions::call_timeout`) ended it on the server.
            if code == "57014" && db_err.message().contains("statement timeout") {
                return StateStoreError::new(ErrorKind::TimedOut, message);
            }
            // 40001 serialization failure, 40P01 deadlock, 55P03 a lock not had within
            // `lock_timeout`; SQLite's BUSY (5) and LOCKED (6), with their extended codes,
            // after its busy timeout: another writer held on, trying again may succeed.
            let sqlite_primary = code.parse::<i32>().ok().map(|code| code & 0xff);
            let is_sqlite = db_err
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some();
            if code == "55P03" || (is_sqlite && matches!(sqlite_primary, Some(5 | 6))) {
                return StateStoreError::new(
                    ErrorKind::Busy,
                    format!("gave up waiting for a lock another transaction holds: {message}"),
                );
            }
            if matches!(code.as_ref(), "40001" | "40P01") {
                return StateStoreError::new(ErrorKind::Busy, format!("{LOST_RACE}: {message}"));
            }
            // SQLite's READONLY (8) and its extended codes: a file, folder or mount this
            // process may not write, or a connection opened read-only.
            if is_sqlite && sqlite_primary == Some(SQLITE_READONLY) {
                return StateStoreError::new(
                    ErrorKind::ReadOnly,
                    format!(
                        "the SQLite database cannot be written (its file or folder is read-only \
                     to this process, or it was opened read-only): {message}"
                    ),
                );
            }
            if refused_by_guard_on(db_err.as_ref(), "lease_token") {
                return StateStoreError::new(ErrorKind::VersionConflict, GUARD_REFUSED);
            }
            if refused_by_guard_on(db_err.as_ref(), "version") {
                return StateStoreError::new(ErrorKind::VersionConflict, STALE_COPY);
            }
            // A table of the store that is not there: not migrated (or a wrong database).
            if is_undefined_table(err) {
                return StateStoreError::Database(ErrorDetail::new(
                    ErrorKind::NotMigrated,
                    message,
                ));
            }
            // SQLite's JSON functions on a corrupted column.
            if db_err.message().contains("malformed JSON") {
                return StateStoreError::corrupt(message);
            }
            match err.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => {
                    StateStoreError::new(ErrorKind::AlreadyExists(Entity::Other), message)
                }
                _ => StateStoreError::new(ErrorKind::Database, message),
            }
        }
        _ => StateStoreError::new(ErrorKind::Database, message),
    }
}

/// Whether the server refused to log in with what the store was configured with: an
/// unknown role or a wrong password (SQLSTATE class 28, "invalid authorization
/// specification"), or a database that does not exist (3D000). Trying again cannot help,
/// so it is a `Configuration` error, not a `Connection` one.
pub(crate) fn refused_login(err: &sea_orm::sqlx::Error) -> bool {
    let sea_orm::sqlx::Error::Database(db_err) = err else {
        return false;
    };
    if db_err
        .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
        .is_none()
    {
        return false;
    }
    let code = db_err.code().unwrap_or_default();
    code.starts_with("28") || code == "3D000"
}

/// What a refused login was refused for (see [`refused_login`]): a database that does not
/// exist (3D000), or the user and password.
pub(crate) fn login_problem(err: &sea_orm::sqlx::Error) -> ConfigProblem {
    match err {
        sea_orm::sqlx::Error::Database(db_err) if db_err.code().as_deref() == Some("3D000") => {
            ConfigProblem::DatabaseMissing
        }
        _ => ConfigProblem::LoginRefused,
    }
}

/// Whether the database said the table named does not exist (Postgres 42P01, SQLite's
/// "no such table").
pub(crate) fn is_undefined_table(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx_err))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx_err))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db_err) = &**sqlx_err else {
        return false;
    };
    db_err.code().as_deref() == Some("42P01") || db_err.message().starts_with("no such table")
}

/// What sqlx said, without the wrappers' prefixes ("Query Error: error returned from
/// database:") and with what a reader can use: the SQLSTATE (or SQLite's code), the key
/// of a unique or foreign-key violation, and Postgres's hint. Postgres's "at line N" (a line of the server's own C
/// source, which sqlx appends) is left out: it reads as a line of the caller's SQL.
pub(crate) fn describe_sqlx(sqlx_err: &sea_orm::sqlx::Error) -> String {
    use sea_orm::sqlx::Error as E;
    use sea_orm::sqlx::postgres::PgDatabaseError;
    let E::Database(db_err) = sqlx_err else {
        return sqlx_err.to_string();
    };
    let Some(pg) = db_err.try_downcast_ref::<PgDatabaseError>() else {
        let code = db_err.code().unwrap_or_default();
        return format!("{} (SQLite code {code})", db_err.message());
    };
    let mut text = format!("{} (SQLSTATE {})", pg.message(), pg.code());
    // The detail of a unique or foreign-key violation names the key; others ("Failing
    // row contains (...)") hold whole rows, prompts and model outputs included, which
    // have no place in an error or a log.
    if let Some(detail) = pg
        .detail()
        .filter(|_| matches!(pg.code(), "23505" | "23503"))
    {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(hint) = pg.hint() {
        text.push_str(" hint: ");
        text.push_str(hint);
    }
    text
}
