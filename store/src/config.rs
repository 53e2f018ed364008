//! Store options and the builder that connects a store.

use crate::error::ConfigProblem;
use std::fmt;
use std::time::Duration;

use crate::backend::{self, AnyBackend};
use crate::error::{Result, redact_url};
use crate::seaorm::SeaOrmStateStore;

/// How a store connects and behaves. Build one with [`StateStoreBuilder`], or pass it to
/// [`SeaOrmStateStore::from_connection`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Connections the Postgres pool keeps open (default 5). SQLite uses one connection.
    pub min_connections: u32,
    /// Most connections the Postgres pool opens (default 20).
    pub max_connections: u32,
    /// How long the first connection may take before `Connection` (default 10 s).
    pub connect_timeout: Duration,
    /// How long an operation waits for a pooled connection before `Connection` (default 5 s).
    pub acquire_timeout: Duration,
    /// Checkpoints kept per workflow, applied inside `create_checkpoint`'s transaction
    /// (default `Some(10)`; `None` keeps all).
    pub checkpoint_retention: Option<usize>,
    /// Apply pending migrations when the store starts (default true).
    pub run_migrations: bool,
    /// Postgres schema to use instead of the connection's default `search_path`.
    pub postgres_schema: Option<String>,
    /// Create `postgres_schema` when it does not exist (default true). Off, a missing
    /// schema is a `Configuration` error at connect: for schemas an administrator
    /// manages, or a tool that must not create one for a mistyped name.
    pub create_postgres_schema: bool,
    /// How the store's Postgres sessions name themselves in `pg_stat_activity`
    /// (default `llm-orchestrator-state`).
    pub application_name: String,
    /// Whether `save_workflow_state` also takes a checkpoint, in the same transaction
    /// (default [`AutoCheckpoint::Off`]).
    pub auto_checkpoint: AutoCheckpoint,
    /// Largest JSON document accepted, in bytes of JSON text: a context, one step's
    /// outputs, or a checkpoint's snapshot (default 64 MiB). Larger ones are refused with
    /// `InvalidInput` before anything is written: huge rows make recovery slow for every
    /// workflow, not just their own.
    pub max_json_bytes: usize,
    /// A `tracing` warning for a checkpoint snapshot larger than this (default none).
    pub warn_json_bytes: Option<usize>,
    /// Most bytes of checkpoints one workflow may hold, after retention; a checkpoint that
    /// would go past it is refused with `InvalidInput` (default none).
    pub max_workflow_checkpoint_bytes: Option<u64>,
    /// A `tracing` warning when a workflow's checkpoints total more than this (default
    /// none).
    pub warn_workflow_checkpoint_bytes: Option<u64>,
    /// How hard SQLite files make each commit durable (default [`SqliteSync::Full`]).
    pub sqlite_sync: SqliteSync,
    /// Refuse every write, in the store and in the database session (Postgres
    /// `default_transaction_read_only`, SQLite opened read-only); no migrations run.
    /// For inspection tools such as the admin UI's `--read-only`.
    pub read_only: bool,
    /// How long a statement waits for a row or table another transaction holds before
    /// giving up with `Conflict` (nothing written). `None` (the default) keeps each
    /// database's own: Postgres waits as long as it takes, SQLite 5 s. On Postgres this
    /// is the sessions' `lock_timeout`; on SQLite the busy timeout. For tools that must
    /// answer (an admin restoring a workflow a stuck replica holds in a transaction),
    /// not for workers, whose fenced writes may rightly wait on each other. Replicas
    /// starting together still wait for each other's migrations however long they take.
    pub lock_timeout: Option<Duration>,
    /// The longest one store call may take, waiting for a pooled connection included,
    /// before it ends with [`Timeout`](crate::StateStoreError::Timeout) (default
    /// [`DEFAULT_CALL_TIMEOUT`]; `None`: no limit). It bounds a call on a server that
    /// stopped answering (frozen, or behind a network that drops packets), which no error
    /// would end otherwise. On the store's own Postgres pool it is also the sessions'
    /// `statement_timeout`, so the server stops working on a statement the caller gave up
    /// on; and the store's Postgres sockets send TCP keepalives, so a connection to a host
    /// that went away is found dead. A call that timed out may or may not have been
    /// committed: reload before doing it again.
    pub call_timeout: Option<Duration>,
    /// How checkpoints are stored (default [`DEFAULT_FULL_SNAPSHOT_EVERY`]): at most this
    /// many of a workflow's checkpoints share one full snapshot (their *base*); each of
    /// them stores only what differs from it (an RFC 6902 JSON Patch). Reading any
    /// checkpoint reads two rows, its own and its base's; a step writes what it changed,
    /// not a copy of the whole state, and a full snapshot once every this many
    /// checkpoints (sooner when the changes grow to half the state). `1` stores every
    /// checkpoint whole. Reads return the same full snapshots either way.
    pub full_snapshot_every: u32,
}

/// Default [`StoreOptions::full_snapshot_every`]: a full snapshot for every 16
/// checkpoints of a workflow.
pub const DEFAULT_FULL_SNAPSHOT_EVERY: u32 = 16;

/// Default [`StoreOptions::call_timeout`]: a minute, far above any call of a healthy
/// store (milliseconds), far below "forever".
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How a SQLite file makes commits durable (its `synchronous` setting, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqliteSync {
    /// Every commit is on disk when it returns (an fsync of the WAL per commit): nothing
    /// acknowledged is lost even on power loss.
    #[default]
    Full,
    /// Commits reach the disk at checkpoints of the WAL: a crash of the process loses
    /// nothing, a power loss or OS crash may lose the last commits (never corrupts the
    /// file). A plain insert took 51 µs instead of 206 µs in BENCHMARKS.md.
    Normal,
}

/// Default [`StoreOptions::max_json_bytes`]: 64 MiB.
pub const DEFAULT_MAX_JSON_BYTES: usize = 64 * 1024 * 1024;

/// When a save takes a checkpoint on its own, in the same transaction as the save.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AutoCheckpoint {
    /// Only explicit `create_checkpoint` and `record_step` calls checkpoint.
    #[default]
    Off,
    /// Every save checkpoints the state it saves.
    EverySave,
    /// A save checkpoints when the number of finished (completed, failed or skipped)
    /// steps is a non-zero multiple of this.
    EveryNSteps(u32),
}

impl StoreOptions {
    /// Refuses settings that cannot be what the caller meant.
    pub(crate) fn check(&self) -> Result<()> {
        if self.max_connections == 0 {
            return Err(crate::StateStoreError::configuration(
                ConfigProblem::InvalidOption,
                "max_connections 0: the pool needs at least one connection",
            ));
        }
        if self.checkpoint_retention == Some(0) {
            return Err(crate::StateStoreError::configuration(
                ConfigProblem::InvalidOption,
                "checkpoint_retention Some(0) would delete each checkpoint as it is taken: \
                 keep at least 1, or None to keep them all",
            ));
        }
        if self.full_snapshot_every == 0 {
            return Err(crate::StateStoreError::configuration(
                ConfigProblem::InvalidOption,
                "full_snapshot_every 0: a checkpoint needs a full snapshot to be read from; \
                 1 stores every checkpoint whole",
            ));
        }
        if self.call_timeout == Some(Duration::ZERO) {
            return Err(crate::StateStoreError::configuration(
                ConfigProblem::InvalidOption,
                "call_timeout 0 would end every call at once: give a duration, or None for \
                 no limit",
            ));
        }
        if self.lock_timeout == Some(Duration::ZERO) {
            return Err(crate::StateStoreError::configuration(
                ConfigProblem::InvalidOption,
                "lock_timeout 0 would refuse every statement that meets a lock: give a \
                 duration, or None for the database's own wait",
            ));
        }
        Ok(())
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            min_connections: 5,
            max_connections: 20,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(5),
            checkpoint_retention: Some(10),
            run_migrations: true,
            postgres_schema: None,
            create_postgres_schema: true,
            application_name: "llm-orchestrator-state".into(),
            auto_checkpoint: AutoCheckpoint::Off,
            max_json_bytes: DEFAULT_MAX_JSON_BYTES,
            warn_json_bytes: None,
            max_workflow_checkpoint_bytes: None,
            warn_workflow_checkpoint_bytes: None,
            sqlite_sync: SqliteSync::Full,
            read_only: false,
            lock_timeout: None,
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
            full_snapshot_every: DEFAULT_FULL_SNAPSHOT_EVERY,
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("min_connections", &self.min_connections)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("checkpoint_retention", &self.checkpoint_retention)
            .field("run_migrations", &self.run_migrations)
            .field("postgres_schema", &self.postgres_schema)
            .field("create_postgres_schema", &self.create_postgres_schema)
            .field("application_name", &self.application_name)
            .field("auto_checkpoint", &self.auto_checkpoint)
            .field("max_json_bytes", &self.max_json_bytes)
            .field("warn_json_bytes", &self.warn_json_bytes)
            .field(
                "max_workflow_checkpoint_bytes",
                &self.max_workflow_checkpoint_bytes,
            )
            .field(
                "warn_workflow_checkpoint_bytes",
                &self.warn_workflow_checkpoint_bytes,
            )
            .field("sqlite_sync", &self.sqlite_sync)
            .field("read_only", &self.read_only)
            .field("lock_timeout", &self.lock_timeout)
            .field("call_timeout", &self.call_timeout)
            .field("full_snapshot_every", &self.full_snapshot_every)
            .finish()
    }
}

/// Connects a store to Postgres or SQLite with explicit options.
///
/// The target is a Postgres URL (`postgres://` or `postgresql://`, `?sslmode=require`
/// honoured), a SQLite URL (`sqlite://path.db`, `sqlite::memory:`), a plain file path
/// (created if missing) or `:memory:`.
///
/// ```
/// use std::time::Duration;
/// use llm_orchestrator_state::{StateStore, StateStoreBuilder};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = StateStoreBuilder::new(":memory:")
///     .acquire_timeout(Duration::from_secs(2))
///     .checkpoint_retention(Some(3))
///     .connect()
///     .await?;
/// store.health_check().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct StateStoreBuilder {
    target: String,
    options: StoreOptions,
}

impl fmt::Debug for StateStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStoreBuilder")
            .field("target", &redact_url(&self.target))
            .field("options", &self.options)
            .finish()
    }
}

impl StateStoreBuilder {
    /// A builder for the database at `target` (URL or SQLite path), with default options.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            options: StoreOptions::default(),
        }
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: StoreOptions) -> Self {
        self.options = options;
        self
    }

    /// Connections the Postgres pool keeps open (never more than `max_connections`).
    pub fn min_connections(mut self, count: u32) -> Self {
        self.options.min_connections = count;
        self
    }

    /// Most connections the Postgres pool opens (0 is refused at connect); lowers
    /// `min_connections` to it when that is higher.
    pub fn max_connections(mut self, count: u32) -> Self {
        self.options.max_connections = count;
        self.options.min_connections = self.options.min_connections.min(count);
        self
    }

    /// How long the first connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How long an operation waits for a pooled connection.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.options.acquire_timeout = timeout;
        self
    }

    /// Checkpoints kept per workflow (`None` keeps all; `Some(0)` is refused at connect).
    pub fn checkpoint_retention(mut self, keep: Option<usize>) -> Self {
        self.options.checkpoint_retention = keep;
        self
    }

    /// Whether to apply pending migrations on connect.
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.options.run_migrations = run;
        self
    }

    /// Use this Postgres schema instead of the default search path: its name as written
    /// (capitals included; see [`validate::postgres_schema_name`]), created when missing
    /// (an existing one needs no CREATE privilege on the database).
    ///
    /// [`validate::postgres_schema_name`]: crate::validate::postgres_schema_name
    pub fn postgres_schema(mut self, schema: impl Into<String>) -> Self {
        self.options.postgres_schema = Some(schema.into());
        self
    }

    /// Whether a missing [`postgres_schema`](Self::postgres_schema) is created (the
    /// default) or is a `Configuration` error at connect.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), llm_orchestrator_state::StateStoreError> {
    /// use llm_orchestrator_state::StateStoreBuilder;
    /// // The schema is the administrator's to create: fail fast on a wrong name.
    /// let store = StateStoreBuilder::new("postgres://app@db.internal/prod")
    ///     .postgres_schema("orchestrator")
    ///     .create_postgres_schema(false)
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn create_postgres_schema(mut self, create: bool) -> Self {
        self.options.create_postgres_schema = create;
        self
    }

    /// How the store's Postgres sessions show in `pg_stat_activity`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.options.application_name = name.into();
        self
    }

    /// Whether saves also take a checkpoint (see [`AutoCheckpoint`]).
    pub fn auto_checkpoint(mut self, policy: AutoCheckpoint) -> Self {
        self.options.auto_checkpoint = policy;
        self
    }

    /// Largest JSON document accepted (context, outputs, snapshot), in bytes.
    pub fn max_json_bytes(mut self, bytes: usize) -> Self {
        self.options.max_json_bytes = bytes;
        self
    }

    /// Size budgets for checkpoints: a warning threshold for one snapshot, and a warning
    /// threshold and a hard limit for a workflow's total (see [`StoreOptions`]).
    pub fn checkpoint_budgets(
        mut self,
        warn_snapshot_bytes: Option<usize>,
        warn_workflow_bytes: Option<u64>,
        max_workflow_bytes: Option<u64>,
    ) -> Self {
        self.options.warn_json_bytes = warn_snapshot_bytes;
        self.options.warn_workflow_checkpoint_bytes = warn_workflow_bytes;
        self.options.max_workflow_checkpoint_bytes = max_workflow_bytes;
        self
    }

    /// How hard SQLite files make each commit durable.
    pub fn sqlite_sync(mut self, sync: SqliteSync) -> Self {
        self.options.sqlite_sync = sync;
        self
    }

    /// Refuse every write (the database session is read-only too); no migrations run.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.options.read_only = read_only;
        self
    }

    /// How long a statement waits for a lock another transaction holds before
    /// `Conflict` (see [`StoreOptions::lock_timeout`]; zero is refused at connect).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), llm_orchestrator_state::StateStoreError> {
    /// use std::time::Duration;
    /// use llm_orchestrator_state::StateStoreBuilder;
    /// // An admin tool: say "held by someone else" after 5 s rather than hang.
    /// let store = StateStoreBuilder::new("postgres://admin@db.internal/prod")
    ///     .lock_timeout(Duration::from_secs(5))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.lock_timeout = Some(timeout);
        self
    }

    /// The longest one call may take before `Timeout` (see
    /// [`StoreOptions::call_timeout`]; `None` for no limit, zero is refused at connect).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), llm_orchestrator_state::StateStoreError> {
    /// use std::time::Duration;
    /// use llm_orchestrator_state::StateStoreBuilder;
    /// // A worker that must not wait long on a server that stopped answering.
    /// let store = StateStoreBuilder::new("postgres://app@db.internal/prod")
    ///     .call_timeout(Some(Duration::from_secs(10)))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.call_timeout = timeout;
        self
    }

    /// At most this many checkpoints of a workflow per full snapshot (see
    /// [`StoreOptions::full_snapshot_every`]; 1 stores every checkpoint whole, zero is
    /// refused at connect).
    pub fn full_snapshot_every(mut self, every: u32) -> Self {
        self.options.full_snapshot_every = every;
        self
    }

    /// Connects, applies migrations if asked, and returns the store.
    pub async fn connect(self) -> Result<SeaOrmStateStore<AnyBackend>> {
        self.options.check()?;
        let db = backend::connect(&self.target, &self.options).await?;
        SeaOrmStateStore::over_pool(db, self.options).await
    }
}
