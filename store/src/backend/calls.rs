//! Around every call: the store's time-out, and saying why a call found no connection
//! (the pool, the server, the network) instead of a bare time-out.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use super::*;
use crate::error::{ErrorKind, Result, StateStoreError};

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
pub(super) fn timed_out(deadline: Duration) -> StateStoreError {
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
pub(super) fn close_idle_connections(db: &DatabaseConnection) {
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
pub(super) async fn unreachable(
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
