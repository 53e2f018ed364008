//! The few things Postgres and SQLite do differently, in one place: how to connect, how
//! to migrate safely when several processes start at once, how to open a write
//! transaction, how to apply a batch of writes atomically in the fewest round trips, and
//! how to aggregate a workflow's steps into JSON so a read is one statement.
//!
//! Everything else in the store is one SeaORM code path for both databases.

mod batch;
mod calls;
mod clock;
mod connect;
mod sql;
mod target;
mod transactions;

pub(crate) use calls::diagnosed;
use calls::*;
pub(crate) use clock::{clock_offset, lease_clock};
use connect::*;
pub(crate) use connect::{check_has_tables, check_session_isolation, connect, migrate};
pub(crate) use transactions::{
    Db, all_or_nothing, begin, begin_conditional, begin_read, begin_write, end_savepoint,
    failure_aborts_transaction, transaction_survived,
};

pub(crate) use batch::{
    IDS_PER_STATEMENT, Write, Written, retrying, write_all, write_all_versioned,
};
pub(crate) use sql::{json_as_text, lookup_value, steps_json_column, time_as_text};
pub(crate) use target::is_postgres_target;
pub use target::sqlite_file;
use target::{Target, is_memory_target, parse_target};

/// Marker for a store built by [`PostgresStateStore::new`](crate::PostgresStateStore).
#[derive(Debug)]
pub enum Postgres {}

/// Marker for a store built by [`SqliteStateStore::new`](crate::SqliteStateStore).
#[derive(Debug)]
pub enum Sqlite {}

/// Marker for a store whose database is chosen at run time (builder, existing connection).
#[derive(Debug)]
pub enum AnyBackend {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StateStoreError;

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
