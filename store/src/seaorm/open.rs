//! Opening a store: the constructors, and what a store checks and reads of its database
//! when it opens.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tracing::{Instrument as _, warn};
use uuid::Uuid;

use crate::backend::{self, AnyBackend, Postgres, Sqlite, diagnosed};
use crate::config::{StateStoreBuilder, StoreOptions};
use crate::error::{Result, StateStoreError};
use crate::model::WorkflowState;

use super::*;

impl SeaOrmStateStore<AnyBackend> {
    /// A builder for a store at `target` (Postgres URL, SQLite URL or path, `:memory:`).
    pub fn builder(target: impl Into<String>) -> StateStoreBuilder {
        StateStoreBuilder::new(target)
    }

    /// A store over a connection the application already has, for applications that use
    /// SeaORM themselves. Applies the migrations if `options.run_migrations`; pool settings
    /// in `options` are ignored (the connection's own apply), and `postgres_schema` and
    /// `lock_timeout` are refused (`Configuration`): set `search_path` or `lock_timeout`
    /// (SQLite: the busy timeout) in the connection's own options.
    ///
    /// On Postgres the store's one-statement writes rely on REPEATABLE READ sessions, which
    /// the store's own pool has. Under READ COMMITTED (the server's default, logged as a
    /// warning here) two concurrent plain saves of one workflow can mix their steps: open
    /// the connection with `default_transaction_isolation` set to `repeatable read`, or
    /// save under a lease or version (`save_workflow_state_if`).
    pub async fn from_connection(db: DatabaseConnection, options: StoreOptions) -> Result<Self> {
        options.check()?;
        if options.postgres_schema.is_some() {
            return Err(StateStoreError::configuration(
                ConfigProblem::InvalidOption,
                "postgres_schema applies to the store's own pool; for a connection you opened, \
                 set search_path in its options",
            ));
        }
        if options.lock_timeout.is_some() {
            return Err(StateStoreError::configuration(
                ConfigProblem::InvalidOption,
                "lock_timeout applies to the store's own pool; for a connection you opened, \
                 set lock_timeout (SQLite: busy_timeout) in its options",
            ));
        }
        backend::check_session_isolation(&db).await?;
        Self::over_pool(db, options).await
    }

    /// The same store as a [`PostgresStateStore`], for code written against that type
    /// (a store from the builder, with options); `Configuration` if it is on SQLite.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), llm_orchestrator_state::StateStoreError> {
    /// use llm_orchestrator_state::StateStoreBuilder;
    /// let store = StateStoreBuilder::new(":memory:").checkpoint_retention(Some(3)).connect().await?;
    /// assert!(store.clone().into_postgres().is_err());
    /// let sqlite = store.into_sqlite()?; // a SqliteStateStore
    /// # Ok(()) }
    /// ```
    pub fn into_postgres(self) -> Result<PostgresStateStore> {
        match self.db.get_database_backend() {
            sea_orm::DbBackend::Postgres => Ok(self.retag()),
            _ => Err(StateStoreError::configuration(
                ConfigProblem::WrongBackend,
                "this store is on SQLite, not Postgres",
            )),
        }
    }

    /// The same store as a [`SqliteStateStore`]; `Configuration` if it is on Postgres.
    pub fn into_sqlite(self) -> Result<SqliteStateStore> {
        match self.db.get_database_backend() {
            sea_orm::DbBackend::Sqlite => Ok(self.retag()),
            _ => Err(StateStoreError::configuration(
                ConfigProblem::WrongBackend,
                "this store is on Postgres, not SQLite",
            )),
        }
    }

    /// A store over a pool [`backend::connect`] opened with `options` (schema included).
    pub(crate) async fn over_pool(db: DatabaseConnection, options: StoreOptions) -> Result<Self> {
        if options.run_migrations && !options.read_only {
            backend::migrate(&db).await?;
        } else if options.read_only {
            backend::check_has_tables(&db).await?;
        }
        let clock_offset_at_open = read_clock_offset(&db).await;
        Ok(Self {
            db,
            bases: Arc::new(bases::Bases::new(options.full_snapshot_every)),
            options: Arc::new(options),
            clock_offset_at_open,
            backend: PhantomData,
        })
    }
}

impl<B> SeaOrmStateStore<B> {
    /// The underlying SeaORM connection, to run the application's own queries on it.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The options the store runs with.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    fn retag<T>(self) -> SeaOrmStateStore<T> {
        SeaOrmStateStore {
            db: self.db,
            options: self.options,
            bases: self.bases,
            clock_offset_at_open: self.clock_offset_at_open,
            backend: PhantomData,
        }
    }

    /// How far the clock that leases run by is ahead of this machine's (negative: behind),
    /// measured now. On Postgres that is the server's clock, read with a few
    /// `SELECT statement_timestamp()` round trips (off by at most half the shortest);
    /// on SQLite it is this machine's own, so zero. The store measures it once when it
    /// opens and logs a warning past [`CLOCK_OFFSET_WARNING`]: a replica whose clock is off
    /// by that much dates its checkpoints wrongly, and an admin tool on it counts a
    /// lease's time left wrongly unless it adds this.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), llm_orchestrator_state::StateStoreError> {
    /// let store = llm_orchestrator_state::SqliteStateStore::new(":memory:").await?;
    /// let offset = store.clock_offset().await?;
    /// assert!(offset.is_zero());
    /// let database_now = llm_orchestrator_state::now() + offset;
    /// # let _ = database_now;
    /// # Ok(()) }
    /// ```
    pub async fn clock_offset(&self) -> Result<chrono::Duration> {
        diagnosed(self, async { Ok(backend::clock_offset(&self.db).await?) }).await
    }

    /// [`clock_offset`](Self::clock_offset) as the store read it when it opened, without
    /// a round trip; `None` if that reading failed. A long-running process that cares
    /// about drift since then measures again.
    pub fn clock_offset_at_open(&self) -> Option<chrono::Duration> {
        self.clock_offset_at_open
    }

    /// [`rollback_to_checkpoint`](StateStore::rollback_to_checkpoint) even while another
    /// replica holds a live lease on the workflow, for an operator who decided to: the
    /// lease ends in the same transaction (its holder's next write under it, renewal or
    /// release is refused, as after losing it to another claim) and the workflow can be
    /// claimed again at once. The plain call refuses with `Conflict` naming the holder.
    /// A checkpoint that holds no state of the workflow is `InvalidInput`, as for the
    /// plain call, and the lease stays.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), llm_orchestrator_state::StateStoreError> {
    /// use std::time::Duration;
    /// use llm_orchestrator_state::{SqliteStateStore, StateStore, StepState, WorkflowState};
    /// let store = SqliteStateStore::new(":memory:").await?;
    /// let mut state = WorkflowState::new("wf-1", "Demo", None, serde_json::json!({}));
    /// state.mark_running();
    /// let checkpoint = store.record_step(&mut state, StepState::new("plan")).await?;
    /// store.claim_workflows("replica-1", Duration::from_secs(60), 10).await?;
    /// assert!(store.rollback_to_checkpoint(&checkpoint.id).await.is_err()); // leased
    /// store.rollback_to_checkpoint_overriding_lease(&checkpoint.id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn rollback_to_checkpoint_overriding_lease(
        &self,
        checkpoint_id: &Uuid,
    ) -> Result<WorkflowState> {
        let span = tracing::info_span!(
            "rollback_to_checkpoint_overriding_lease",
            checkpoint_id = %checkpoint_id,
            rows = tracing::field::Empty
        );
        let rolled_back = rollback(self, checkpoint_id, LeaseRule::Override)
            .instrument(span)
            .await;
        if let Ok(state) = &rolled_back {
            tracing::warn!(checkpoint_id = %checkpoint_id, workflow_state_id = %state.id,
                "rolled back overriding any live lease on the workflow; its holder is fenced");
        }
        rolled_back
    }

    /// Forgets which constructor made the store.
    pub fn into_any(self) -> SeaOrmStateStore<AnyBackend> {
        self.retag()
    }

    /// Closes the pool; later calls fail with `Connection`.
    pub async fn close(self) -> Result<()> {
        Ok(self.db.close().await?)
    }
}

impl SeaOrmStateStore<Postgres> {
    /// Connects to Postgres with `min`/`max` pooled connections (defaults 5 and 20) and
    /// applies the migrations.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), llm_orchestrator_state::StateStoreError> {
    /// use llm_orchestrator_state::PostgresStateStore;
    /// let store = PostgresStateStore::new("postgres://app@localhost/workflows", Some(5), Some(20)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn new(url: &str, min: Option<u32>, max: Option<u32>) -> Result<Self> {
        if !backend::is_postgres_target(url)? {
            return Err(StateStoreError::configuration(
                ConfigProblem::WrongBackend,
                format!(
                    "PostgresStateStore needs a postgres:// URL, not the SQLite database {}",
                    crate::redact_url(url)
                ),
            ));
        }
        let defaults = StoreOptions::default();
        let store = StateStoreBuilder::new(url)
            .min_connections(min.unwrap_or(defaults.min_connections))
            .max_connections(max.unwrap_or(defaults.max_connections))
            .connect()
            .await?;
        Ok(store.retag())
    }
}

impl SeaOrmStateStore<Sqlite> {
    /// Opens (creating if missing) the SQLite database at `path`, or a private in-memory
    /// one for `":memory:"`, and applies the migrations. Files use WAL, so another process
    /// (the admin TUI) can read and write while the orchestrator runs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), llm_orchestrator_state::StateStoreError> {
    /// use llm_orchestrator_state::SqliteStateStore;
    /// let store = SqliteStateStore::new(":memory:").await?;
    /// # Ok(()) }
    /// ```
    pub async fn new(path: &str) -> Result<Self> {
        if backend::is_postgres_target(path)? {
            return Err(StateStoreError::configuration(
                ConfigProblem::WrongBackend,
                format!(
                    "SqliteStateStore needs a SQLite path or sqlite:// URL, not the Postgres \
                 database {}",
                    crate::redact_url(path)
                ),
            ));
        }
        Ok(StateStoreBuilder::new(path).connect().await?.retag())
    }
}

/// How far a replica's clock may be from the database's before the store warns when it
/// opens (see [`SeaOrmStateStore::clock_offset`]).
pub const CLOCK_OFFSET_WARNING: Duration = Duration::from_secs(1);

/// Reads how far the database's clock is from this machine's, and logs a warning when
/// it is more than [`CLOCK_OFFSET_WARNING`]. A failed reading is `None`, logged at debug
/// level only: the store works without it.
async fn read_clock_offset(db: &DatabaseConnection) -> Option<chrono::Duration> {
    let read = backend::clock_offset(db).await;
    match &read {
        Ok(offset)
            if offset
                .abs()
                .to_std()
                .is_ok_and(|off| off > CLOCK_OFFSET_WARNING) =>
        {
            let (how_far, direction) = if *offset > chrono::Duration::zero() {
                (*offset, "behind")
            } else {
                (-*offset, "ahead of")
            };
            warn!(
                offset_ms = offset.num_milliseconds(),
                "this machine's clock runs {} ms {direction} the database's: workflows \
                 and checkpoints saved here are dated by it (leases are not); keep the \
                 clocks in sync (NTP)",
                how_far.num_milliseconds()
            );
        }
        Ok(_) => {}
        Err(err) => tracing::debug!(error = %err, "could not read the database's clock"),
    }
    read.ok()
}
