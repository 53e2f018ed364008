//! Opening the database: which URL, whether to migrate, read-only checks.

use std::path::PathBuf;
use std::time::Duration;

use llm_orchestrator_state::admin::WorkflowSummary;
use llm_orchestrator_state::sea_orm::DatabaseConnection;
use llm_orchestrator_state::{
    AnyBackend, CLOCK_OFFSET_WARNING, ConfigProblem, ErrorKind, SeaOrmStateStore, StateStore,
    StateStoreBuilder, WorkflowState, redact_url,
};
use migration::{Migrator, MigratorTrait};
use uuid::Uuid;

use crate::error::{AdminError, Result};

/// The store the admin tool works on.
pub type Store = SeaOrmStateStore<AnyBackend>;

/// "Now" by the clock that leases run by, the database's (see
/// [`SeaOrmStateStore::clock_offset`]): measured once when wfadmin opens the database, and
/// added wherever wfadmin sets a stored time against now ("lease expires in 2m",
/// "expired 3m ago"). This machine's clock off by minutes would otherwise call a live
/// lease expired, or a stuck workflow live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    /// The database's clock minus this machine's (zero on SQLite).
    pub offset: chrono::Duration,
}

impl Clock {
    /// This machine's clock off by `offset` from the database's (tests; see [`Clock::of`]).
    #[cfg(test)]
    pub fn with_offset(offset: chrono::Duration) -> Self {
        Self { offset }
    }

    /// The database's clock as the store read it when it opened (on Postgres, three quick
    /// round trips then; SQLite's is this machine's). A failed reading leaves this
    /// machine's clock: it only costs accuracy.
    pub fn of(store: &Store) -> Self {
        match store.clock_offset_at_open() {
            Some(offset) => Self { offset },
            None => {
                tracing::debug!("the database's clock could not be read; using this machine's");
                Self::default()
            }
        }
    }

    /// Now, by the database's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        llm_orchestrator_state::now() + self.offset
    }

    /// What the operator should know when the clocks differ by more than
    /// [`CLOCK_OFFSET_WARNING`]: "this machine's clock is 5m00s ahead of the database's;
    /// lease times are counted by the database's clock". Stored times (started, updated)
    /// are as each replica's clock stamped them.
    pub fn warning(&self) -> Option<String> {
        Some(format!(
            "{}; lease times are counted by the database's clock",
            self.apart()?
        ))
    }

    /// The first half of [`Clock::warning`], for the UI's status bar: "this machine's
    /// clock is 5m00s ahead of the database's".
    pub fn apart(&self) -> Option<String> {
        let apart = self.offset.abs();
        if apart.to_std().ok()? <= CLOCK_OFFSET_WARNING {
            return None;
        }
        let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        Some(format!(
            "this machine's clock is {} {} the database's",
            crate::format::duration(Some(epoch), Some(epoch + apart)),
            if self.offset < chrono::Duration::zero() {
                "ahead of"
            } else {
                "behind"
            }
        ))
    }
}

/// Closes the pool before exiting. On SQLite the last connection to close folds the
/// write-ahead log into the database file and removes the `-wal` file: without it the
/// file alone (what an operator copies or mails) would lack the latest commits. Bounded,
/// since a UI task may still hold a connection.
pub async fn close(store: Store) {
    const CLOSING: std::time::Duration = std::time::Duration::from_secs(2);
    match tokio::time::timeout(CLOSING, store.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(error = %err, "closing the database"),
        Err(_) => tracing::debug!("closing the database took over {CLOSING:?}; exiting anyway"),
    }
}

/// The SQLite file a target names, if it names one (not Postgres, not memory).
pub fn sqlite_file(target: &str) -> Option<PathBuf> {
    // A target the store refuses is `None` here: connecting says why, password hidden.
    llm_orchestrator_state::sqlite_file(target).ok().flatten()
}

/// Which database to open, and how.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The database URL or SQLite path.
    pub url: &'a str,
    /// Refuse every write.
    pub read_only: bool,
    /// The Postgres schema the tables are in, when not the connection's default (the
    /// application's `StateStoreBuilder::postgres_schema`).
    pub postgres_schema: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// `url`, writable, in the default schema.
    #[cfg(test)]
    pub fn new(url: &'a str) -> Self {
        Self {
            url,
            read_only: false,
            postgres_schema: None,
        }
    }

    /// Whether the database is SQLite in memory (`:memory:`), whose data is gone when
    /// the command ends.
    pub fn in_memory(&self) -> bool {
        self.url.contains(":memory:")
    }

    /// The database as shown to the operator: its URL without the password, and the
    /// schema when one is set.
    pub fn shown(&self) -> String {
        match self.postgres_schema {
            Some(schema) => format!("{} schema {schema}", redact_url(self.url)),
            None => redact_url(self.url),
        }
    }
}

/// A schema named for a SQLite database is a mistake worth saying.
fn refuse_schema_on_sqlite(target: &Target<'_>) -> Result<()> {
    let sqlite = sqlite_file(target.url).is_some() || target.url.contains(":memory:");
    if target.postgres_schema.is_some() && sqlite {
        return Err(AdminError::already_redacted(format!(
            "--postgres-schema (or WFADMIN_POSTGRES_SCHEMA) is for a Postgres database; {} \
             is SQLite",
            redact_url(target.url)
        )));
    }
    Ok(())
}

/// The database at `target` has none of the store's tables: which, and what to run.
fn no_tables(target: &Target<'_>) -> AdminError {
    let postgres = sqlite_file(target.url).is_none() && !target.url.contains(":memory:");
    AdminError::already_redacted(format!(
        "no workflow tables in {}{}; run `wfadmin migrate`{} to create them",
        target.shown(),
        if postgres && target.postgres_schema.is_none() {
            " (a schema other than public? pass --postgres-schema)"
        } else {
            ""
        },
        if target.read_only {
            " without --read-only"
        } else {
            ""
        }
    ))
}

/// Whether `err` is the store's refusal to open a database without its tables read-only
/// ([`ErrorKind::NotMigrated`]).
fn tables_missing(err: &AdminError) -> bool {
    err.kind() == Some(ErrorKind::NotMigrated)
}

/// Whether `err` is something else than the store's "the Postgres schema ... does not
/// exist" (see `StateStoreBuilder::create_postgres_schema`).
fn schema_found(err: &AdminError) -> bool {
    err.kind()
        != Some(ErrorKind::Configuration(
            ConfigProblem::PostgresSchemaMissing,
        ))
}

/// The `--postgres-schema` named is not in the database: said in wfadmin's words (the
/// store's "create_postgres_schema is off" is the builder's setting, not something an
/// operator can act on), with what creates it.
fn no_schema(target: &Target<'_>, schema: &str) -> AdminError {
    AdminError::already_redacted(format!(
        "the Postgres schema {schema:?} does not exist in {}; check the name, or create it \
         with `wfadmin --postgres-schema {schema} migrate`{}",
        redact_url(target.url),
        if target.read_only {
            " without --read-only"
        } else {
            ""
        }
    ))
}

/// Connects without migrating; creates the Postgres schema when missing only if
/// `create_schema`. In read-only mode a missing SQLite file is an error rather than a new
/// empty database.
pub async fn connect(target: &Target<'_>, create_schema: bool) -> Result<Store> {
    let (url, read_only) = (target.url, target.read_only);
    refuse_schema_on_sqlite(target)?;
    if read_only
        && let Some(file) = sqlite_file(url)
        && !file.exists()
    {
        return Err(AdminError::new(format!(
            "no database at {} (read-only mode does not create one)",
            file.display()
        )));
    }
    // Read-only is enforced by the store and by the database session itself (SQLite
    // opened read-only, Postgres default_transaction_read_only), not only by this tool.
    let mut builder = StateStoreBuilder::new(url);
    if let Some(schema) = target.postgres_schema {
        builder = builder
            .postgres_schema(schema)
            .create_postgres_schema(create_schema);
    }
    Ok(builder
        .read_only(read_only)
        .run_migrations(false)
        .checkpoint_retention(None)
        .min_connections(1)
        .max_connections(4)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .lock_timeout(LOCK_TIMEOUT)
        .connect()
        .await?)
}

/// How long a write waits for a workflow another session holds (a replica inside a
/// transaction, a stuck `psql`) before it says so: an operator gets an answer, not a
/// restore that hangs without a word.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Names of applied and pending migrations, without creating anything.
pub async fn migration_status(db: &DatabaseConnection) -> Result<(Vec<String>, Vec<String>)> {
    let applied = Migrator::get_applied_migrations_read_only(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let pending = Migrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Ok((applied, pending))
}

/// Applies pending migrations (on Postgres under the store's advisory lock).
pub async fn migrate(store: &Store) -> Result<()> {
    let mut options = store.options().clone();
    options.run_migrations = true;
    // The pool already searches the schema; `from_connection` takes none for a pool.
    options.postgres_schema = None;
    options.lock_timeout = None;
    SeaOrmStateStore::from_connection(store.connection().clone(), options).await?;
    Ok(())
}

/// Connects to a database that has the store's tables, creating nothing: a SQLite file
/// that does not exist, or a database (or schema) without the tables, is an error that
/// says so. A mistyped path or a forgotten `--postgres-schema` must not read as "no
/// workflows", nor leave an empty database or a second set of tables behind. (An
/// in-memory SQLite database, which nothing keeps, gets its tables.) One with pending
/// migrations is refused with advice to run `migrate`.
pub async fn open(target: &Target<'_>) -> Result<Store> {
    open_with(target, false, false).await
}

/// Like [`open`], but a SQLite file that does not exist is created and a database
/// without the store's tables gets them: for the commands that are about putting
/// workflows in (`demo`, `import`). A missing Postgres schema is created too only if
/// `create_schema` (`demo`, like `migrate`).
pub async fn open_or_create(target: &Target<'_>, create_schema: bool) -> Result<Store> {
    let create = !target.read_only;
    open_with(target, create, create && create_schema).await
}

/// The SQLite file `target` names does not exist: said so, with what creates it.
fn no_sqlite_file(target: &Target<'_>, file: &std::path::Path) -> AdminError {
    AdminError::new(format!(
        "SQLite database {} does not exist (a typo? `wfadmin migrate` creates it{})",
        file.display(),
        if target.read_only {
            ", without --read-only"
        } else {
            ""
        }
    ))
}

/// Connects to the database as it is, creating nothing: no SQLite file, no Postgres
/// schema, no tables (`migrate status`, which only reports). A missing file or schema is
/// an error that says so; a database without the tables opens (every migration is
/// pending).
pub async fn connect_existing(target: &Target<'_>) -> Result<Store> {
    if let Some(file) = sqlite_file(target.url)
        && !file.exists()
    {
        refuse_schema_on_sqlite(target)?;
        return Err(no_sqlite_file(target, &file));
    }
    match (connect(target, false).await, target.postgres_schema) {
        (Err(err), _) if target.read_only && tables_missing(&err) => Err(no_tables(target)),
        (Err(err), Some(schema)) if !schema_found(&err) => Err(no_schema(target, schema)),
        (result, _) => result,
    }
}

async fn open_with(target: &Target<'_>, create: bool, create_schema: bool) -> Result<Store> {
    if !create
        && let Some(file) = sqlite_file(target.url)
        && !file.exists()
    {
        refuse_schema_on_sqlite(target)?;
        return Err(no_sqlite_file(target, &file));
    }
    // The schema is created here only for `demo`: elsewhere a typo would leave an empty
    // schema behind, or put an imported workflow where nobody looks. (`connect` refuses a
    // schema on SQLite, the store an invalid name.)
    let store = match (connect(target, create_schema).await, target.postgres_schema) {
        // A read-only store refuses a database without its tables itself; say what to
        // run, as for a writable one below.
        (Err(err), _) if target.read_only && tables_missing(&err) => {
            return Err(no_tables(target));
        }
        (Err(err), Some(schema)) if !schema_found(&err) => {
            return Err(no_schema(target, schema));
        }
        (result, _) => result?,
    };
    let (applied, pending) = migration_status(store.connection()).await?;
    let may_create = (create || target.in_memory()) && !target.read_only;
    if applied.is_empty() && !may_create {
        return Err(no_tables(target));
    } else if applied.is_empty() {
        tracing::info!(database = %target.shown(), "new database: creating the schema");
        migrate(&store).await?;
    } else if !pending.is_empty() {
        return Err(AdminError::already_redacted(format!(
            "the database {} needs migrations {}; run `wfadmin migrate`",
            target.shown(),
            pending.join(", ")
        )));
    }
    Ok(store)
}

/// The workflow a user named: a store uuid, else an orchestrator workflow_id (its most
/// recent run).
pub async fn find_workflow(store: &Store, key: &str) -> Result<WorkflowState> {
    if let Ok(id) = Uuid::parse_str(key) {
        match store.load_workflow_state(&id).await {
            Ok(state) => return Ok(state),
            Err(llm_orchestrator_state::StateStoreError::NotFound(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    store
        .load_workflow_state_by_workflow_id(key)
        .await
        .map_err(|err| match err {
            llm_orchestrator_state::StateStoreError::NotFound(_) => AdminError::new(format!(
                "no workflow with id or workflow_id {:?}",
                llm_orchestrator_state::echo(key)
            )),
            other => other.into(),
        })
}

/// The list row of the workflow a user named, as [`find_workflow`] finds it, without
/// reading its context or steps: it serves a workflow whose stored JSON cannot be read,
/// which an operator lists the checkpoints of to repair it.
pub async fn find_workflow_summary(store: &Store, key: &str) -> Result<WorkflowSummary> {
    if let Ok(id) = Uuid::parse_str(key) {
        match store.workflow_summary(&id).await {
            Ok(row) => return Ok(row),
            Err(llm_orchestrator_state::StateStoreError::NotFound(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let id = store.latest_run(key).await.map_err(|err| match err {
        llm_orchestrator_state::StateStoreError::NotFound(_) => {
            AdminError::new(format!("no workflow with id or workflow_id {key:?}"))
        }
        other => other.into(),
    })?;
    Ok(store.workflow_summary(&id).await?)
}

/// A checkpoint uuid from user input.
pub fn parse_uuid(what: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        AdminError::new(format!(
            "{what} {:?} is not a uuid",
            llm_orchestrator_state::echo(text)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_s_refusals_are_told_apart_by_kind_not_text() {
        let store = |kind| {
            AdminError::from(llm_orchestrator_state::StateStoreError::new(
                kind,
                "whatever it says",
            ))
        };
        assert!(tables_missing(&store(ErrorKind::NotMigrated)));
        assert!(!tables_missing(&AdminError::new(
            "the database has none of the store's tables"
        )));
        assert!(!schema_found(&store(ErrorKind::Configuration(
            ConfigProblem::PostgresSchemaMissing
        ))));
        assert!(schema_found(&store(ErrorKind::Configuration(
            ConfigProblem::DatabaseMissing
        ))));
        assert!(schema_found(&AdminError::new(
            "the Postgres schema \"x\" does not exist in y"
        )));
    }

    #[tokio::test]
    async fn a_read_only_connection_is_refused_writes_by_sqlite_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro.db");
        let target = path.to_str().unwrap();
        let writable = open_or_create(&Target::new(target), false).await.unwrap();
        let state = WorkflowState::new("wf", "name", None, serde_json::json!({}));
        writable.save_workflow_state(&state).await.unwrap();
        writable.close().await.unwrap();

        let store = open(&Target {
            read_only: true,
            ..Target::new(target)
        })
        .await
        .unwrap();
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
        assert!(matches!(
            store.save_workflow_state(&state).await,
            Err(llm_orchestrator_state::StateStoreError::ReadOnly(_))
        ));
        // Past the store, SQLite itself refuses: the file was opened read-only.
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        assert!(
            store
                .connection()
                .execute_unprepared("DELETE FROM workflow_states")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn only_open_or_create_makes_a_missing_sqlite_file_or_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.db");
        let target = path.to_str().unwrap();
        let err = open(&Target::new(target)).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("SQLite database {target} does not exist")),
            "{err}"
        );
        assert!(!path.exists(), "nothing created");

        // A file that exists but has no tables (another application's, an empty one).
        std::fs::File::create(&path).unwrap();
        let err = open(&Target::new(target)).await.unwrap_err().to_string();
        assert_eq!(
            err,
            format!("no workflow tables in {target}; run `wfadmin migrate` to create them")
        );
        // Still none: the first attempt made none.
        let again = open(&Target::new(target)).await.unwrap_err().to_string();
        assert_eq!(again, err);

        open_or_create(&Target::new(target), false).await.unwrap();
        open(&Target::new(target)).await.unwrap();
    }

    #[test]
    fn a_clock_apart_from_the_database_s_by_more_than_a_second_is_said_so() {
        let clock = |ms| Clock::with_offset(chrono::Duration::milliseconds(ms));
        assert_eq!(Clock::default().warning(), None);
        assert_eq!(clock(1_000).warning(), None);
        assert_eq!(clock(-900).warning(), None);
        // The database's clock behind: this machine's is ahead.
        assert_eq!(
            clock(-300_000).warning().unwrap(),
            "this machine's clock is 5m00s ahead of the database's; lease times are counted \
             by the database's clock"
        );
        assert_eq!(
            clock(1_500).warning().unwrap(),
            "this machine's clock is 1.5s behind the database's; lease times are counted by \
             the database's clock"
        );
        let skewed = clock(-300_000).now();
        let ours = llm_orchestrator_state::now();
        assert!(
            (ours - skewed - chrono::Duration::minutes(5)).abs() < chrono::Duration::seconds(5)
        );
    }

    #[tokio::test]
    async fn a_sqlite_database_runs_by_this_machine_s_clock() {
        let store = open(&Target::new("sqlite::memory:")).await.unwrap();
        assert_eq!(Clock::of(&store), Clock::default());
    }

    #[test]
    fn sqlite_files_are_recognised() {
        assert_eq!(sqlite_file("./w.db"), Some(PathBuf::from("./w.db")));
        assert_eq!(
            sqlite_file("sqlite://data/w.db?mode=rwc"),
            Some(PathBuf::from("data/w.db"))
        );
        assert_eq!(sqlite_file("sqlite:w.db"), Some(PathBuf::from("w.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u:p@h/db"), None);
        assert_eq!(sqlite_file("mysql://h/db"), None);
    }
}
