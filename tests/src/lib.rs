//! The harness of the backend suite: opens an isolated store on each backend, and
//! instantiates every test body once per backend with [`backend_tests!`].
//!
//! - SQLite `:memory:`: a private in-memory database per store.
//! - SQLite file: a database file in a fresh temporary folder, removed afterwards.
//! - Postgres: a fresh schema per test in the database at `TEST_DATABASE_URL`
//!   (default [`DEFAULT_TEST_DATABASE_URL`]), dropped afterwards. An unreachable
//!   Postgres fails the test; it is never skipped.

mod cluster;
pub mod corrupt;
pub mod upgrade_fixture;

pub use cluster::Cluster;

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use llm_orchestrator_state::{
    SeaOrmStateStore, StateStoreBuilder, StepState, StepStatus, WorkflowState, redact,
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database};
use serde_json::Value;

/// The Postgres database the suite uses when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite `:memory:`.
    SqliteMemory,
    /// A SQLite file in a temporary folder.
    SqliteFile,
    /// A fresh schema in the Postgres database at `TEST_DATABASE_URL`.
    Postgres,
}

impl Backend {
    /// Every backend the suite runs on.
    pub const ALL: [Backend; 3] = [Self::SqliteMemory, Self::SqliteFile, Self::Postgres];

    /// Whether the data outlives the store (everything but `:memory:`).
    pub fn is_persistent(self) -> bool {
        self != Self::SqliteMemory
    }
}

/// The Postgres URL the suite connects to.
pub fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// `TEST_DATABASE_URL` taken apart, to reach the same server another way (through a
/// [`forwarder`], with another password or database).
#[derive(Debug, Clone)]
pub struct Configured {
    /// `postgres` or `postgresql`.
    pub scheme: String,
    /// `user[:password]`, if the URL has one.
    pub user_info: Option<String>,
    /// `host[:port]`.
    pub server: String,
    /// The database and query, after the first `/`.
    pub path: String,
}

impl Configured {
    /// The same URL with the server at `127.0.0.1:port` (a [`forwarder`]'s port).
    pub fn through(&self, port: u16) -> String {
        let user = self
            .user_info
            .as_ref()
            .map(|info| format!("{info}@"))
            .unwrap_or_default();
        format!("{}://{user}127.0.0.1:{port}/{}", self.scheme, self.path)
    }
}

/// [`test_database_url`] taken apart.
pub fn configured() -> Configured {
    let url = test_database_url();
    let (scheme, rest) = url.split_once("://").expect("TEST_DATABASE_URL is a URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user_info, server) = match authority.rsplit_once('@') {
        Some((user_info, server)) => (Some(user_info.to_owned()), server),
        None => (None, authority),
    };
    Configured {
        scheme: scheme.to_owned(),
        user_info,
        server: server.to_owned(),
        path: path.to_owned(),
    }
}

/// A TCP forwarder from `listener`'s port to `target`, for a server that goes away:
/// aborting its task closes the port and every connection through it.
pub fn forwarder(listener: tokio::net::TcpListener, target: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut links = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            links.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

/// Where a test database lives.
#[derive(Debug)]
enum Location {
    Memory,
    File {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

/// An isolated, empty database on one backend, removed when dropped: a SQLite file in a
/// fresh temporary folder, a fresh Postgres schema, or (for `:memory:`) nothing at all,
/// since every in-memory store is its own database.
#[derive(Debug)]
pub struct TestDatabase {
    /// The backend it is on.
    pub backend: Backend,
    location: Location,
    /// Whether a store reached the database, so there may be a schema to drop.
    reached: AtomicBool,
}

impl TestDatabase {
    /// A fresh database on `backend`; Postgres at `TEST_DATABASE_URL`.
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::SqliteMemory => Self {
                backend,
                location: Location::Memory,
                reached: AtomicBool::new(false),
            },
            Backend::SqliteFile => {
                let dir = tempfile::tempdir().expect("creating a temporary folder for SQLite");
                Self {
                    backend,
                    location: Location::File {
                        path: dir.path().join("state.db"),
                        _dir: dir,
                    },
                    reached: AtomicBool::new(false),
                }
            }
            Backend::Postgres => Self::postgres_at(&test_database_url()),
        }
    }

    /// A fresh schema name in the Postgres database at `url` (created on first connect).
    pub fn postgres_at(url: &str) -> Self {
        Self {
            backend: Backend::Postgres,
            location: Location::Postgres {
                url: url.to_owned(),
                schema: format!("t_{}", uuid::Uuid::new_v4().simple()),
            },
            reached: AtomicBool::new(false),
        }
    }

    /// A builder for a store on this database. For `:memory:` every store built is a
    /// database of its own.
    pub fn builder(&self) -> StateStoreBuilder {
        match &self.location {
            Location::Memory => StateStoreBuilder::new(":memory:"),
            Location::File { path, .. } => StateStoreBuilder::new(path.display().to_string()),
            // Small pools: many tests run at once against one server with ~100 connections.
            Location::Postgres { url, schema } => StateStoreBuilder::new(url)
                .postgres_schema(schema)
                .min_connections(1)
                .max_connections(8)
                .connect_timeout(Duration::from_secs(10)),
        }
    }

    /// Creates the Postgres schema now (a no-op on SQLite), for tests about stores that
    /// find an existing, empty schema.
    pub async fn create_postgres_schema(&self) {
        if let Location::Postgres { url, schema } = &self.location {
            let db = Database::connect(url.as_str())
                .await
                .unwrap_or_else(|err| panic!("connecting to {}: {err}", redact(url)));
            db.execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
                .await
                .expect("creating the test schema");
            self.reached.store(true, Ordering::SeqCst);
            db.close().await.expect("closing the connection");
        }
    }

    /// A plain SeaORM connection to this database, with no store and no migrations, for a
    /// test that sets the schema up itself: the SQLite file (created if missing), or the
    /// Postgres schema (created now) as the connection's `search_path`. For `:memory:` a new
    /// private database on a pool of one connection that never closes: hand it to
    /// [`SeaOrmStateStore::from_connection`], no other connection can see it.
    pub async fn connect_raw(&self) -> sea_orm::DatabaseConnection {
        let mut options = match &self.location {
            Location::Memory => {
                let mut options = ConnectOptions::new("sqlite::memory:");
                options
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
                options
            }
            Location::File { path, .. } => {
                ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()))
            }
            Location::Postgres { url, schema } => {
                self.create_postgres_schema().await;
                let mut options = ConnectOptions::new(url.as_str());
                options.set_schema_search_path(schema.as_str());
                options
            }
        };
        options.max_connections(1).sqlx_logging(false);
        Database::connect(options).await.unwrap_or_else(|err| {
            panic!("connecting to the {:?} test database: {err}", self.backend)
        })
    }

    /// Connects a store with the builder `configure` makes of [`TestDatabase::builder`].
    /// Panics if the database cannot be reached: a missing Postgres fails the suite, it is
    /// never skipped.
    pub async fn connect(
        &self,
        configure: impl FnOnce(StateStoreBuilder) -> StateStoreBuilder,
    ) -> SeaOrmStateStore {
        match configure(self.builder()).connect().await {
            Ok(store) => {
                self.reached.store(true, Ordering::SeqCst);
                store
            }
            Err(err) => match &self.location {
                Location::Postgres { url, .. } => panic!(
                    "cannot open the Postgres test database at {} (set TEST_DATABASE_URL, or \
                     start the server: pg_ctlcluster --skip-systemctl-redirect <version> <name> \
                     start, for the cluster pg_lsclusters lists on port 5432): {err}",
                    redact(url)
                ),
                _ => panic!("cannot open the {:?} test store: {err}", self.backend),
            },
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Location::Postgres { url, schema } = &self.location else {
            return;
        };
        if !self.reached.load(Ordering::SeqCst) {
            return;
        }
        // Drop runs inside the test's runtime, which cannot be blocked on; a helper thread
        // with its own runtime drops the schema. Best effort: a leftover schema harms no one.
        let (url, schema) = (url.clone(), schema.clone());
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut options = ConnectOptions::new(url.as_str());
                options
                    .max_connections(1)
                    .connect_timeout(Duration::from_secs(5))
                    .acquire_timeout(Duration::from_secs(5))
                    .sqlx_logging(false);
                let drop_schema = async {
                    let db = Database::connect(options).await.ok()?;
                    db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await
                        .ok()?;
                    db.close().await.ok()
                };
                tokio::time::timeout(Duration::from_secs(30), drop_schema)
                    .await
                    .ok()
                    .flatten()
            })
        });
        let _ = dropper.join();
    }
}

/// A store on an isolated database, cleaned up when dropped. Derefs to the store.
#[derive(Debug)]
pub struct TestStore {
    /// The store under test.
    pub store: SeaOrmStateStore,
    /// The backend it runs on.
    pub backend: Backend,
    database: TestDatabase,
}

impl Deref for TestStore {
    type Target = SeaOrmStateStore;

    fn deref(&self) -> &SeaOrmStateStore {
        &self.store
    }
}

impl TestStore {
    /// The Postgres URL and schema the store is in, for a tool that opens the same
    /// tables (`None` on SQLite).
    pub fn postgres_location(&self) -> Option<(&str, &str)> {
        match &self.database.location {
            Location::Postgres { url, schema } => Some((url, schema)),
            _ => None,
        }
    }

    /// The SQLite file the store is in (`None` for `:memory:` and Postgres), for a tool
    /// that opens the same file.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self.database.location {
            Location::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// A builder for another store on the same database (same file, same Postgres
    /// schema), or `None` for `:memory:`, whose database no other store can see.
    pub fn builder_for_same_database(&self) -> Option<StateStoreBuilder> {
        match self.database.location {
            Location::Memory => None,
            _ => Some(self.database.builder()),
        }
    }

    /// Opens another store on the same database with default options (see
    /// [`TestStore::builder_for_same_database`]).
    pub async fn reopen(&self) -> Option<SeaOrmStateStore> {
        let builder = self.builder_for_same_database()?;
        Some(
            builder
                .connect()
                .await
                .unwrap_or_else(|err| panic!("reopening the {:?} test store: {err}", self.backend)),
        )
    }
}

/// Opens an isolated store on `backend` with default options.
pub async fn open(backend: Backend) -> TestStore {
    open_with(backend, |builder| builder).await
}

/// Opens an isolated store on `backend`, letting `configure` change the builder's options
/// (for example `checkpoint_retention`). Panics if the database cannot be reached.
pub async fn open_with(
    backend: Backend,
    configure: impl FnOnce(StateStoreBuilder) -> StateStoreBuilder,
) -> TestStore {
    open_on(TestDatabase::new(backend), configure).await
}

/// Opens a store in a fresh schema of the Postgres database at `url` (see
/// [`TestDatabase::connect`] for what happens when the server cannot be reached).
pub async fn open_postgres_at(
    url: &str,
    configure: impl FnOnce(StateStoreBuilder) -> StateStoreBuilder,
) -> TestStore {
    open_on(TestDatabase::postgres_at(url), configure).await
}

async fn open_on(
    database: TestDatabase,
    configure: impl FnOnce(StateStoreBuilder) -> StateStoreBuilder,
) -> TestStore {
    let store = database.connect(configure).await;
    TestStore {
        store,
        backend: database.backend,
        database,
    }
}

/// A fixed instant `seconds` after 2026-01-01T00:00:00Z plus `micros` microseconds: the
/// precision the store keeps, so it loads back equal.
pub fn at(seconds: i64, micros: u32) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid base date");
    base + chrono::Duration::seconds(seconds) + chrono::Duration::microseconds(micros.into())
}

/// A pending workflow state with a context naming it.
pub fn workflow(workflow_id: &str) -> WorkflowState {
    WorkflowState::new(
        workflow_id,
        format!("{workflow_id} name"),
        Some("user-1".to_owned()),
        serde_json::json!({ "inputs": { "workflow": workflow_id } }),
    )
}

/// A step in `status` with `outputs`, everything else as new.
pub fn step(step_id: &str, status: StepStatus, outputs: Value) -> StepState {
    StepState {
        status,
        outputs,
        ..StepState::new(step_id)
    }
}

/// Builds a `serde_json::Value` of nested one-element arrays, `depth` levels deep.
///
/// Dropping a very deep value recurses once per level; callers keep deep values alive or
/// `std::mem::forget` them.
pub fn nested_json(depth: usize) -> Value {
    let mut value = Value::from(1);
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

/// Instantiates `async fn name(backend: Backend)` test bodies as `#[tokio::test]`s in the
/// modules `sqlite_memory`, `sqlite_file` and `postgres`:
///
/// ```ignore
/// async fn saves(backend: Backend) { /* ... */ }
/// backend_suite::backend_tests!(
///     saves,
///     #[ignore = "bug: ..."] fails_everywhere,
///     fails_on_postgres => postgres #[ignore = "bug: ..."],
///     fails_on_files => sqlite_file #[ignore = "bug: ..."],
/// );
/// ```
///
/// Attributes before a name apply to all three instances; `=> backend #[...]` adds one
/// to that backend's instance only (in the order sqlite_memory, sqlite_file, postgres).
#[macro_export]
macro_rules! backend_tests {
    ($(
        $(#[$meta:meta])* $name:ident
        $(=> sqlite_memory #[$memory:meta])?
        $(=> sqlite_file #[$file:meta])?
        $(=> postgres #[$pg:meta])?
    ),* $(,)?) => {
        $crate::backend_tests_for!(
            mod sqlite_memory = SqliteMemory: $($(#[$meta])* $(#[$memory])? $name),*
        );
        $crate::backend_tests_for!(
            mod sqlite_file = SqliteFile: $($(#[$meta])* $(#[$file])? $name),*
        );
        $crate::backend_tests_for!(mod postgres = Postgres: $($(#[$meta])* $(#[$pg])? $name),*);
    };
}

/// Instantiates test bodies on one backend, in a module of the given name:
/// `backend_tests_for!(mod postgres_bugs = Postgres: #[ignore = "bug: ..."] name)`.
#[macro_export]
macro_rules! backend_tests_for {
    (mod $module:ident = $backend:ident: $($(#[$meta:meta])* $name:ident),* $(,)?) => {
        mod $module {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::$backend).await
                }
            )*
        }
    };
}

/// Like [`backend_tests!`] for plain `fn name(backend: Backend)` bodies that make their
/// own runtime (property tests).
#[macro_export]
macro_rules! backend_sync_tests {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        $crate::backend_sync_tests_for!(mod sqlite_memory = SqliteMemory: $($(#[$meta])* $name),*);
        $crate::backend_sync_tests_for!(mod sqlite_file = SqliteFile: $($(#[$meta])* $name),*);
        $crate::backend_sync_tests_for!(mod postgres = Postgres: $($(#[$meta])* $name),*);
    };
}

/// Like [`backend_tests_for!`] for plain `fn name(backend: Backend)` bodies.
#[macro_export]
macro_rules! backend_sync_tests_for {
    (mod $module:ident = $backend:ident: $($(#[$meta:meta])* $name:ident),* $(,)?) => {
        mod $module {
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    super::$name($crate::Backend::$backend)
                }
            )*
        }
    };
}

/// The step ids stored for a workflow state, sorted, read with plain SQL so the test sees
/// the rows themselves and not what the store chooses to return.
pub async fn stored_step_ids(
    store: &SeaOrmStateStore,
    workflow_state_id: uuid::Uuid,
) -> Vec<String> {
    let rows = query_by_workflow(
        store,
        "SELECT step_id FROM step_states WHERE workflow_state_id = {} ORDER BY step_id",
        workflow_state_id,
    )
    .await;
    rows.iter()
        .map(|row| {
            row.try_get::<String>("", "step_id")
                .expect("a step_id column")
        })
        .collect()
}

/// One text column of the rows a plain SQL query about a workflow state returns (`{}` in
/// `sql_with_placeholder` is its id), in the query's order.
pub async fn stored_texts(
    store: &SeaOrmStateStore,
    sql_with_placeholder: &str,
    column: &str,
    workflow_state_id: uuid::Uuid,
) -> Vec<String> {
    query_by_workflow(store, sql_with_placeholder, workflow_state_id)
        .await
        .iter()
        .map(|row| {
            row.try_get::<String>("", column)
                .unwrap_or_else(|err| panic!("column {column}: {err}"))
        })
        .collect()
}

/// How many checkpoint rows are stored for a workflow state, counted with plain SQL.
pub async fn stored_checkpoint_count(
    store: &SeaOrmStateStore,
    workflow_state_id: uuid::Uuid,
) -> usize {
    query_by_workflow(
        store,
        "SELECT id FROM checkpoints WHERE workflow_state_id = {}",
        workflow_state_id,
    )
    .await
    .len()
}

async fn query_by_workflow(
    store: &SeaOrmStateStore,
    sql_with_placeholder: &str,
    workflow_state_id: uuid::Uuid,
) -> Vec<sea_orm::QueryResult> {
    let db = store.connection();
    let backend = db.get_database_backend();
    let placeholder = match backend {
        sea_orm::DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = sql_with_placeholder.replace("{}", placeholder);
    db.query_all_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        sql,
        [workflow_state_id.into()],
    ))
    .await
    .expect("a plain SQL query on the test database")
}

/// Runs a plain SQL statement about one workflow state (`{}` is its id), to set up rows
/// the store itself would never write. Returns the rows affected.
pub async fn execute_sql(
    store: &SeaOrmStateStore,
    sql_with_placeholder: &str,
    workflow_state_id: uuid::Uuid,
) -> u64 {
    let db = store.connection();
    let backend = db.get_database_backend();
    let placeholder = match backend {
        sea_orm::DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = sql_with_placeholder.replace("{}", placeholder);
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        sql,
        [workflow_state_id.into()],
    ))
    .await
    .expect("a plain SQL statement on the test database")
    .rows_affected()
}

/// Installs a trigger that makes the database itself refuse writes to `table`: inserts and
/// updates whose `step_id` is `boom`, or (with `on_delete`) every delete. For checking
/// that a write that fails half-way leaves nothing behind.
pub async fn install_failing_trigger(store: &SeaOrmStateStore, table: &str, on_delete: bool) {
    let db = store.connection();
    let statements: Vec<String> = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let (event, condition) = if on_delete {
                ("DELETE", "TRUE".to_owned())
            } else {
                ("INSERT OR UPDATE", "NEW.step_id = 'boom'".to_owned())
            };
            vec![
                format!(
                    "CREATE FUNCTION refuse_{table}() RETURNS trigger AS $$ BEGIN \
                     IF {condition} THEN RAISE EXCEPTION 'refused by test trigger'; END IF; \
                     RETURN COALESCE(NEW, OLD); END $$ LANGUAGE plpgsql"
                ),
                format!(
                    "CREATE TRIGGER refuse_{table} BEFORE {event} ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION refuse_{table}()"
                ),
            ]
        }
        _ => {
            if on_delete {
                vec![format!(
                    "CREATE TRIGGER refuse_{table}_delete BEFORE DELETE ON {table} \
                     BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
                )]
            } else {
                ["INSERT", "UPDATE"]
                    .iter()
                    .map(|event| {
                        format!(
                            "CREATE TRIGGER refuse_{table}_{event} BEFORE {event} ON {table} \
                             WHEN NEW.step_id = 'boom' \
                             BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
                        )
                    })
                    .collect()
            }
        }
    };
    for statement in statements {
        db.execute_unprepared(&statement)
            .await
            .unwrap_or_else(|err| panic!("installing a test trigger: {err}"));
    }
}
