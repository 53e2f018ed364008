//! Reads whose SQL is rendered once per database and then reused.

use std::sync::OnceLock;

use sea_orm::sea_query::SelectStatement;
use sea_orm::{DbBackend, Statement, Value};

/// The SQL of a read whose shape never changes, only the values bound to it: rendered
/// from its sea-query statement the first time it runs on each database, then reused.
/// Building the statement and rendering it on every call cost a read more than SQLite
/// takes to answer it.
///
/// `build` makes the statement with any values (they are not kept); a call binds its own,
/// in the order of the statement's placeholders. The unit tests of `queries` check, for
/// each such read, that this gives what building the statement with the call's values
/// gives.
pub(crate) struct Rendered {
    build: fn(DbBackend) -> SelectStatement,
    postgres: OnceLock<String>,
    sqlite: OnceLock<String>,
}

impl Rendered {
    /// A read rendered from what `build` returns.
    pub(crate) const fn new(build: fn(DbBackend) -> SelectStatement) -> Self {
        Self {
            build,
            postgres: OnceLock::new(),
            sqlite: OnceLock::new(),
        }
    }

    /// The SQL on `backend`.
    fn sql(&self, backend: DbBackend) -> &str {
        let rendered = match backend {
            DbBackend::Postgres => &self.postgres,
            _ => &self.sqlite,
        };
        rendered.get_or_init(|| backend.build(&(self.build)(backend)).sql)
    }

    /// The statement on `backend` with `values` bound to its placeholders, in order.
    pub(crate) fn bind<const N: usize>(&self, backend: DbBackend, values: [Value; N]) -> Statement {
        Statement::from_sql_and_values(backend, self.sql(backend), values)
    }

    /// [`bind`](Self::bind), reading at most `limit` rows after the first `offset`, both
    /// written into the SQL as numbers (the statement ends where a `LIMIT` may follow).
    /// Bound as values they would cost every call on SQLite a new parse and plan: SQLite
    /// plans with the value bound to a `LIMIT`, so it prepares such a statement again
    /// once its values are cleared, which the driver does after each run.
    pub(crate) fn page<const N: usize>(
        &self,
        backend: DbBackend,
        values: [Value; N],
        limit: u64,
        offset: u64,
    ) -> Statement {
        // SQL takes a signed 64-bit count.
        let (limit, offset) = (limit.min(i64::MAX as u64), offset.min(i64::MAX as u64));
        let sql = format!("{} LIMIT {limit} OFFSET {offset}", self.sql(backend));
        Statement::from_sql_and_values(backend, sql, values)
    }
}
