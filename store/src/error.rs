//! The one error type of the store, and the one place database errors are classified.

use std::fmt;

use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// What went wrong, in terms a caller can act on.
///
/// Every payload is an [`ErrorDetail`]: a human-readable message with any password
/// already removed, which reads like a `String` (`println!("{msg}")`, `msg.contains(..)`,
/// `msg == "..."`), and the error's [`ErrorKind`]. Match on [`kind`](Self::kind) to act
/// on what happened without reading the message:
///
/// ```
/// use llm_orchestrator_state::{Entity, ErrorKind, SqliteStateStore, StateStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStateStore::new(":memory:").await?;
/// let err = store.load_workflow_state(&uuid::Uuid::nil()).await.unwrap_err();
/// match err.kind() {
///     ErrorKind::NotFound(Entity::Workflow) => println!("no such workflow: {err}"),
///     ErrorKind::ConnectionFailed | ErrorKind::TimedOut => println!("retry later: {err}"),
///     kind => println!("{kind}: {err}"),
/// }
/// assert_eq!(err.kind(), ErrorKind::NotFound(Entity::Workflow));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateStoreError {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(ErrorDetail),
    /// A value could not be turned into JSON or back (a corrupt row).
    #[error("serialization error: {0}")]
    Serialization(ErrorDetail),
    /// No workflow, step or checkpoint with that id.
    #[error("not found: {0}")]
    NotFound(ErrorDetail),
    /// Stored data is not a valid state (an unknown status).
    #[error("invalid state: {0}")]
    InvalidState(ErrorDetail),
    /// The caller's input was refused before anything was written (too long, empty, NUL).
    #[error("invalid input: {0}")]
    InvalidInput(ErrorDetail),
    /// Another writer changed the data first; reload and try again.
    #[error("conflict: {0}")]
    Conflict(ErrorDetail),
    /// The database could not be reached, or the connection broke.
    #[error("connection error: {0}")]
    Connection(ErrorDetail),
    /// The call did not finish within the store's
    /// [`call_timeout`](crate::StoreOptions::call_timeout): the database did not answer in
    /// time (a frozen or overloaded server, a network that drops packets). A write that
    /// timed out may or may not have been committed: reload before doing it again.
    #[error("timed out: {0}")]
    Timeout(ErrorDetail),
    /// A write on a store opened read-only, or to a SQLite database this process cannot
    /// write (a read-only file, folder or mount).
    #[error("read-only: {0}")]
    ReadOnly(ErrorDetail),
    /// The store was configured wrongly (malformed URL, missing folder).
    #[error("configuration error: {0}")]
    Configuration(ErrorDetail),
    /// A [`StoreTransaction`](crate::StoreTransaction) that can no longer commit: one of
    /// its calls was cancelled midway, or the database ended the transaction under it. It
    /// takes no more calls; roll it back and run the work again.
    #[error("transaction aborted: {0}")]
    Aborted(ErrorDetail),
    /// Anything else.
    #[error("{0}")]
    Other(ErrorDetail),
}

/// What happened, as a caller matches it without parsing a message, after
/// [`std::io::ErrorKind`]: see [`StateStoreError::kind`].
///
/// Each kind belongs to one [`StateStoreError`] variant (see [`StateStoreError::new`]);
/// a variant can hold several kinds (`Conflict` holds a version conflict, a lease held by
/// another owner, a duplicate id, ...). More kinds may come: match with a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The database could not be reached, refused the connection, or the connection broke
    /// (`Connection`). A write may or may not have been applied.
    ConnectionFailed,
    /// The call did not finish within the store's `call_timeout`, or the server ended a
    /// statement at its `statement_timeout` (`Timeout`). A write may or may not have been
    /// applied.
    TimedOut,
    /// The pool gave no connection in time: every connection stayed in use (`Connection`).
    /// Nothing was sent to the database.
    PoolExhausted,
    /// The stored workflow is not at the version the write expected: another writer
    /// saved first (`Conflict`). Reload and try again.
    VersionConflict,
    /// Another owner holds a live lease on the workflow, so only a write under that lease
    /// may change it (`Conflict`).
    LeaseHeld,
    /// The caller's lease is gone: it ran out and was taken over or released, so its token
    /// is stale (`Conflict`).
    LeaseLost,
    /// A concurrent transaction held a lock the call needed past the lock timeout, or won
    /// a race with it (a serialization failure, a deadlock) (`Conflict`). Trying again may
    /// succeed.
    Busy,
    /// Something with that id is stored already (`Conflict`).
    AlreadyExists(Entity),
    /// Nothing with that id is stored (`NotFound`).
    NotFound(Entity),
    /// The caller's input was refused before anything was written (`InvalidInput`).
    InvalidInput {
        /// What was refused.
        field: Field,
        /// Why.
        problem: InputProblem,
    },
    /// A write on a store opened read-only, or to a SQLite database that cannot be
    /// written (`ReadOnly`).
    ReadOnly,
    /// The store was configured wrongly (`Configuration`).
    Configuration(ConfigProblem),
    /// The database has none of the store's tables, or not all: a wrong database, path or
    /// Postgres schema, or one never migrated (`Configuration` when a read-only store
    /// opens it; `Database` when a statement meets a table that is not there).
    NotMigrated,
    /// Stored data the store cannot read back: a row that is not the JSON or the state it
    /// should be (`Serialization`, `InvalidState`).
    CorruptData,
    /// A [`StoreTransaction`](crate::StoreTransaction) that can no longer commit
    /// (`Aborted`).
    Aborted,
    /// The database refused or failed a statement for another reason (`Database`).
    Database,
    /// Anything else (`Other`).
    Other,
}

/// What an error is about: which entity was not found or exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A workflow state (a run), by its store id or its orchestrator's `workflow_id`.
    Workflow,
    /// A step of a workflow.
    Step,
    /// A checkpoint.
    Checkpoint,
    /// A lease.
    Lease,
    /// Something else, or not said (an error built from a message alone).
    Other,
}

/// Which part of the caller's input was refused (see [`ErrorKind::InvalidInput`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `WorkflowState::workflow_id` (also a fork's new one).
    WorkflowId,
    /// `WorkflowState::workflow_name`.
    WorkflowName,
    /// `WorkflowState::user_id`.
    UserId,
    /// `WorkflowState::error`.
    Error,
    /// `WorkflowState::context`.
    Context,
    /// A time of a workflow state: `started_at`, `updated_at` or `completed_at`.
    Time,
    /// `WorkflowState::steps` as a whole (how many, under which keys).
    Steps,
    /// A step's `step_id` (also a checkpoint's).
    StepId,
    /// A step's `started_at` or `completed_at`.
    StepTime,
    /// A step's `error`.
    StepError,
    /// A step's `outputs`.
    StepOutputs,
    /// A checkpoint as a whole: of another workflow, or beyond the workflow's limit.
    Checkpoint,
    /// A checkpoint's `timestamp`.
    CheckpointTime,
    /// A checkpoint's `snapshot`.
    Snapshot,
    /// A lease's owner.
    Owner,
    /// A lease given for another workflow, or for too long.
    Lease,
    /// A checkpoint's pin label.
    PinLabel,
    /// An age or duration of a retention policy.
    Retention,
    /// A [`WorkflowBundle`](crate::WorkflowBundle) being imported.
    Bundle,
    /// Something else, or not said (an error built from a message alone).
    Other,
}

/// Why the caller's input was refused (see [`ErrorKind::InvalidInput`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputProblem {
    /// Empty where a value is required.
    Empty,
    /// Longer than allowed (an id of more than 255 characters, a duration too long).
    TooLong,
    /// Holds a NUL character, which Postgres cannot store.
    ContainsNul,
    /// JSON nested deeper than the store reads back.
    TooDeep,
    /// JSON larger than the store's limit, or more steps or checkpoint bytes than allowed.
    TooLarge,
    /// A time outside the years 1 to 9999 (UTC).
    OutOfRange,
    /// Not JSON the store can write.
    BadJson,
    /// A snapshot that is not a workflow state.
    NotAWorkflowState,
    /// Of another workflow than the one it is used with.
    OtherWorkflow,
    /// Parts that disagree (a step stored under another key than its `step_id`).
    Mismatch,
    /// A format this version does not read.
    Unsupported,
    /// Something else, or not said (an error built from a message alone).
    Other,
}

/// What is wrong with the store's configuration (see [`ErrorKind::Configuration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// A database URL or path that cannot be parsed or is not taken (malformed, an
    /// in-memory or temporary SQLite database asked for in a way the store refuses).
    InvalidTarget,
    /// A Postgres URL given to the SQLite store or the other way round, or a call only
    /// the other backend has.
    WrongBackend,
    /// The database does not exist: a SQLite file or its folder, or a Postgres database.
    DatabaseMissing,
    /// The Postgres schema named (`postgres_schema`) does not exist and is not created.
    PostgresSchemaMissing,
    /// The server refused to log in: an unknown user or a wrong password.
    LoginRefused,
    /// A SQLite database this process cannot open as asked (its file or folder cannot be
    /// written).
    Inaccessible,
    /// A setting of the builder or [`StoreOptions`](crate::StoreOptions) that cannot
    /// work (zero connections, a bad schema name, an option that does not apply).
    InvalidOption,
    /// Something else, or not said (an error built from a message alone).
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectionFailed => f.write_str("connection failed"),
            Self::TimedOut => f.write_str("timed out"),
            Self::PoolExhausted => f.write_str("no pooled connection in time"),
            Self::VersionConflict => f.write_str("version conflict"),
            Self::LeaseHeld => f.write_str("leased to another owner"),
            Self::LeaseLost => f.write_str("lease lost"),
            Self::Busy => f.write_str("busy with a concurrent write"),
            Self::AlreadyExists(entity) => write!(f, "{entity} already exists"),
            Self::NotFound(entity) => write!(f, "{entity} not found"),
            Self::InvalidInput { field, problem } => write!(f, "invalid {field}: {problem}"),
            Self::ReadOnly => f.write_str("read-only"),
            Self::Configuration(problem) => write!(f, "configuration: {problem}"),
            Self::NotMigrated => f.write_str("the store's tables are missing"),
            Self::CorruptData => f.write_str("corrupt data"),
            Self::Aborted => f.write_str("transaction aborted"),
            Self::Database => f.write_str("database error"),
            Self::Other => f.write_str("other error"),
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Workflow => "workflow",
            Self::Step => "step",
            Self::Checkpoint => "checkpoint",
            Self::Lease => "lease",
            Self::Other => "record",
        })
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WorkflowId => "workflow_id",
            Self::WorkflowName => "workflow_name",
            Self::UserId => "user_id",
            Self::Error => "error",
            Self::Context => "context",
            Self::Time => "time",
            Self::Steps => "steps",
            Self::StepId => "step_id",
            Self::StepTime => "step time",
            Self::StepError => "step error",
            Self::StepOutputs => "step outputs",
            Self::Checkpoint => "checkpoint",
            Self::CheckpointTime => "checkpoint timestamp",
            Self::Snapshot => "snapshot",
            Self::Owner => "owner",
            Self::Lease => "lease",
            Self::PinLabel => "pin label",
            Self::Retention => "retention policy",
            Self::Bundle => "bundle",
            Self::Other => "input",
        })
    }
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty",
            Self::TooLong => "too long",
            Self::ContainsNul => "contains NUL",
            Self::TooDeep => "nested too deep",
            Self::TooLarge => "too large",
            Self::OutOfRange => "out of range",
            Self::BadJson => "not valid JSON",
            Self::NotAWorkflowState => "not a workflow state",
            Self::OtherWorkflow => "of another workflow",
            Self::Mismatch => "inconsistent",
            Self::Unsupported => "unsupported",
            Self::Other => "refused",
        })
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidTarget => "invalid database URL or path",
            Self::WrongBackend => "wrong database backend",
            Self::DatabaseMissing => "database missing",
            Self::PostgresSchemaMissing => "Postgres schema missing",
            Self::LoginRefused => "login refused",
            Self::Inaccessible => "database not accessible",
            Self::InvalidOption => "invalid option",
            Self::Other => "invalid configuration",
        })
    }
}

/// The payload of every [`StateStoreError`] variant: its message (password removed) and
/// its [`ErrorKind`].
///
/// It reads as the message: it displays as it, derefs to `str` and compares with
/// strings, and a `String` or `&str` turns into one (`StateStoreError::Other("...".into())`),
/// with no kind of its own: [`StateStoreError::kind`] then gives the variant's usual
/// kind. Two details are equal when their messages are.
#[derive(Clone)]
pub struct ErrorDetail {
    message: String,
    kind: Option<ErrorKind>,
}

impl ErrorDetail {
    /// A detail of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: Some(kind),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The kind it was made with; `None` for one made from a message alone.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.kind
    }

    /// The message, owned.
    pub fn into_message(self) -> String {
        self.message
    }

    /// The same kind, with its message rewritten by `reword` (what is wrong, said with
    /// more context).
    pub(crate) fn reworded(self, reword: impl FnOnce(&str) -> String) -> Self {
        Self {
            message: reword(&self.message),
            kind: self.kind,
        }
    }
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// As the message alone, the way a `String` payload printed.
impl fmt::Debug for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}

impl std::ops::Deref for ErrorDetail {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl AsRef<str> for ErrorDetail {
    fn as_ref(&self) -> &str {
        &self.message
    }
}

impl PartialEq for ErrorDetail {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for ErrorDetail {}

impl std::hash::Hash for ErrorDetail {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.message.hash(state);
    }
}

impl PartialEq<str> for ErrorDetail {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

impl PartialEq<&str> for ErrorDetail {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}

impl PartialEq<String> for ErrorDetail {
    fn eq(&self, other: &String) -> bool {
        &self.message == other
    }
}

impl PartialEq<ErrorDetail> for str {
    fn eq(&self, other: &ErrorDetail) -> bool {
        self == other.message
    }
}

impl PartialEq<ErrorDetail> for &str {
    fn eq(&self, other: &ErrorDetail) -> bool {
        *self == other.message
    }
}

impl PartialEq<ErrorDetail> for String {
    fn eq(&self, other: &ErrorDetail) -> bool {
        *self == other.message
    }
}

impl From<String> for ErrorDetail {
    fn from(message: String) -> Self {
        Self {
            message,
            kind: None,
        }
    }
}

impl From<&str> for ErrorDetail {
    fn from(message: &str) -> Self {
        Self::from(message.to_owned())
    }
}

impl From<ErrorDetail> for String {
    fn from(detail: ErrorDetail) -> Self {
        detail.message
    }
}

/// Shorthand for results of store operations.
pub type Result<T, E = StateStoreError> = std::result::Result<T, E>;

impl From<serde_json::Error> for StateStoreError {
    fn from(err: serde_json::Error) -> Self {
        Self::new(ErrorKind::CorruptData, err.to_string())
    }
}

impl From<DbErr> for StateStoreError {
    fn from(err: DbErr) -> Self {
        classify(&err)
    }
}

impl StateStoreError {
    /// An error of `kind` saying `message`, in the variant that kind belongs to:
    /// `Connection` for [`ConnectionFailed`](ErrorKind::ConnectionFailed) and
    /// [`PoolExhausted`](ErrorKind::PoolExhausted); `Timeout` for
    /// [`TimedOut`](ErrorKind::TimedOut); `Conflict` for
    /// [`VersionConflict`](ErrorKind::VersionConflict), [`LeaseHeld`](ErrorKind::LeaseHeld),
    /// [`LeaseLost`](ErrorKind::LeaseLost), [`Busy`](ErrorKind::Busy) and
    /// [`AlreadyExists`](ErrorKind::AlreadyExists); `Configuration` for
    /// [`Configuration`](ErrorKind::Configuration) and
    /// [`NotMigrated`](ErrorKind::NotMigrated); `Serialization` for
    /// [`CorruptData`](ErrorKind::CorruptData); the variant of the same name for the others.
    ///
    /// ```
    /// use llm_orchestrator_state::{Entity, ErrorKind, StateStoreError};
    /// let err = StateStoreError::new(ErrorKind::NotFound(Entity::Checkpoint), "checkpoint 7");
    /// assert!(matches!(&err, StateStoreError::NotFound(msg) if msg == "checkpoint 7"));
    /// assert_eq!(err.kind(), ErrorKind::NotFound(Entity::Checkpoint));
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let detail = ErrorDetail::new(kind, message);
        match kind {
            ErrorKind::ConnectionFailed | ErrorKind::PoolExhausted => Self::Connection(detail),
            ErrorKind::TimedOut => Self::Timeout(detail),
            ErrorKind::VersionConflict
            | ErrorKind::LeaseHeld
            | ErrorKind::LeaseLost
            | ErrorKind::Busy
            | ErrorKind::AlreadyExists(_) => Self::Conflict(detail),
            ErrorKind::NotFound(_) => Self::NotFound(detail),
            ErrorKind::InvalidInput { .. } => Self::InvalidInput(detail),
            ErrorKind::ReadOnly => Self::ReadOnly(detail),
            ErrorKind::Configuration(_) | ErrorKind::NotMigrated => Self::Configuration(detail),
            ErrorKind::CorruptData => Self::Serialization(detail),
            ErrorKind::Aborted => Self::Aborted(detail),
            ErrorKind::Database => Self::Database(detail),
            ErrorKind::Other => Self::Other(detail),
        }
    }

    /// `NotFound` of `entity`.
    pub(crate) fn not_found(entity: Entity, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound(entity), message)
    }

    /// `InvalidInput`: `field` refused for `problem`.
    pub(crate) fn invalid_input(
        field: Field,
        problem: InputProblem,
        message: impl Into<String>,
    ) -> Self {
        Self::new(ErrorKind::InvalidInput { field, problem }, message)
    }

    /// `Configuration` for `problem`.
    pub(crate) fn configuration(problem: ConfigProblem, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Configuration(problem), message)
    }

    /// `Serialization`: stored data that is not what it should be.
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CorruptData, message)
    }

    /// `InvalidState`: stored data that is not a valid state.
    pub(crate) fn invalid_state(message: impl Into<String>) -> Self {
        Self::InvalidState(ErrorDetail::new(ErrorKind::CorruptData, message))
    }

    /// The payload: the message and the kind it was made with.
    pub fn detail(&self) -> &ErrorDetail {
        match self {
            Self::Database(detail)
            | Self::Serialization(detail)
            | Self::NotFound(detail)
            | Self::InvalidState(detail)
            | Self::InvalidInput(detail)
            | Self::Conflict(detail)
            | Self::Connection(detail)
            | Self::Timeout(detail)
            | Self::ReadOnly(detail)
            | Self::Configuration(detail)
            | Self::Aborted(detail)
            | Self::Other(detail) => detail,
        }
    }

    /// The message, without the variant's prefix (`"workflow state ..."` of
    /// `"not found: workflow state ..."`).
    pub fn message(&self) -> &str {
        self.detail().message()
    }

    /// What happened, to match on instead of the message. An error the store made carries
    /// the precise kind; one made from a message alone
    /// (`StateStoreError::NotFound("...".into())`) has its variant's usual kind:
    /// `NotFound(Entity::Other)`, `InvalidInput { field: Field::Other, problem:
    /// InputProblem::Other }`, `VersionConflict` for `Conflict`, `ConnectionFailed`,
    /// `TimedOut`, `ReadOnly`, `Configuration(ConfigProblem::Other)`, `CorruptData` for
    /// `Serialization` and `InvalidState`, `Aborted`, `Database`, `Other`.
    pub fn kind(&self) -> ErrorKind {
        let usual = match self {
            Self::Database(_) => ErrorKind::Database,
            Self::Serialization(_) | Self::InvalidState(_) => ErrorKind::CorruptData,
            Self::NotFound(_) => ErrorKind::NotFound(Entity::Other),
            Self::InvalidInput(_) => ErrorKind::InvalidInput {
                field: Field::Other,
                problem: InputProblem::Other,
            },
            Self::Conflict(_) => ErrorKind::VersionConflict,
            Self::Connection(_) => ErrorKind::ConnectionFailed,
            Self::Timeout(_) => ErrorKind::TimedOut,
            Self::ReadOnly(_) => ErrorKind::ReadOnly,
            Self::Configuration(_) => ErrorKind::Configuration(ConfigProblem::Other),
            Self::Aborted(_) => ErrorKind::Aborted,
            Self::Other(_) => ErrorKind::Other,
        };
        self.detail().kind().unwrap_or(usual)
    }

    /// True when retrying later may succeed: the connection failed, the call timed out,
    /// the pool had no connection, or a concurrent writer came first (every kind of a
    /// `Conflict`: a version conflict, a lease, a lock, a duplicate id).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::ConnectionFailed
                | ErrorKind::TimedOut
                | ErrorKind::PoolExhausted
                | ErrorKind::VersionConflict
                | ErrorKind::LeaseHeld
                | ErrorKind::LeaseLost
                | ErrorKind::Busy
                | ErrorKind::AlreadyExists(_)
        )
    }

    /// True for stored data the store cannot read back ([`ErrorKind::CorruptData`]:
    /// `Serialization`, `InvalidState`): a corrupt row, which the database itself serves
    /// fine. A read of many rows reports such a row apart (see
    /// [`SkippedWorkflow`](crate::SkippedWorkflow)) and goes on with the others; any other
    /// error fails the read as a whole.
    pub fn is_unreadable_data(&self) -> bool {
        self.kind() == ErrorKind::CorruptData
    }

    /// True for the pool giving no connection in time, before anyone said why (see
    /// `backend::diagnosed`, which replaces it with why on Postgres).
    pub(crate) fn is_pool_timeout(&self) -> bool {
        matches!(self, Self::Connection(message) if message == POOL_TIMED_OUT)
    }

    /// True for a write its workflow's guard refused (see `queries::guard_write`), before
    /// the store said why (see `seaorm::explain_refusal`).
    pub(crate) fn is_guard_refusal(&self) -> bool {
        matches!(self, Self::Conflict(message) if message == GUARD_REFUSED)
    }

    /// True for a checkpoint stored as a patch whose base was deleted before the write
    /// committed (see `seaorm::bases`): the store writes it again with a base of its own.
    pub(crate) fn is_base_gone(&self) -> bool {
        matches!(self, Self::Conflict(message) if message == BASE_GONE)
    }

    /// `Conflict` for a checkpoint patch whose base is gone (see [`Self::is_base_gone`]).
    pub(crate) fn base_gone() -> Self {
        Self::new(ErrorKind::Busy, BASE_GONE)
    }

    /// True for a step write refused because the caller's copy of the workflow is not the
    /// stored one any more (see `queries::stale_copy_guard`): the store then records the
    /// step again from the stored workflow, and the caller never sees this error.
    pub(crate) fn is_stale_copy(&self) -> bool {
        matches!(self, Self::Conflict(message) if message == STALE_COPY)
    }

    /// True for a write the database ended because a concurrent one changed what it read
    /// (a Postgres serialization failure or deadlock), inside a transaction where the
    /// store could not simply run it again.
    pub(crate) fn is_lost_race(&self) -> bool {
        matches!(self, Self::Conflict(message) if message.starts_with(LOST_RACE))
    }
}
/// How a serialization failure or a deadlock starts its `Conflict` message.
const LOST_RACE: &str = "lost a race with a concurrent write; trying again may succeed";

/// What a checkpoint stored as a patch reports when its base was deleted under it.
const BASE_GONE: &str = "the base snapshot this checkpoint was stored against was deleted \
     concurrently; storing it again may succeed";

/// What a step write from a stale copy reports until the store has recorded it from the
/// stored workflow instead.
const STALE_COPY: &str = "the stored workflow changed since this copy of it was read";

/// What a write refused by its workflow's guard reports until the store has read why: a
/// live lease holds the workflow, or the write's condition does not hold.
const GUARD_REFUSED: &str = "the workflow refused the write: a live lease holds it, or the \
     write's condition does not hold";

/// A guard's refusal: it sets a NOT NULL column of `workflow_states` to NULL (Postgres
/// SQLSTATE 23502, SQLite's SQLITE_CONSTRAINT_NOTNULL, 1299), so the database undoes the
/// whole statement or batch. `lease_token` for the lease and identity guard, `version` for
/// the stale-copy guard.
fn refused_by_guard_on(db_err: &dyn sea_orm::sqlx::error::DatabaseError, column: &str) -> bool {
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
const POOL_TIMED_OUT: &str = "pool timed out: no connection within the acquire timeout: all were in use or none \
     could be opened";

/// Sorts a SeaORM error into the variant a caller can act on.
fn classify(err: &DbErr) -> StateStoreError {
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
const SQLITE_READONLY: i32 = 8;

fn classify_sqlx(sqlx_err: &sea_orm::sqlx::Error, err: &DbErr, message: String) -> StateStoreError {
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

/// Longest piece of a caller's text (an id, a name, a key) that an error message or an
/// admin tool's output quotes, in characters: a 10 MB id must not come back whole inside
/// every error about it.
pub const ECHO_CHARS: usize = 200;

/// `text` as an error or an admin tool quotes it: whole when it has at most
/// [`ECHO_CHARS`] characters, else its first [`ECHO_CHARS`] (cut between characters) and
/// how long the whole was.
///
/// ```
/// use llm_orchestrator_state::{ECHO_CHARS, echo};
/// assert_eq!(echo("order-1042"), "order-1042");
/// let long = "é".repeat(1_000);
/// assert_eq!(echo(&long), format!("{}… (2000 bytes)", "é".repeat(ECHO_CHARS)));
/// ```
pub fn echo(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(ECHO_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()).into(),
    }
}

/// Removes passwords from a text that may contain a connection URL or a `password=` pair.
///
/// A URL's user information runs to the last `@` before the next whitespace, so a
/// password with an unencoded `/`, `?` or `#` is masked too (a later `@` in the same word
/// masks more than needed, never less). For a connection target on its own, where even a
/// space may be part of the password, use [`redact_url`].
///
/// ```
/// use llm_orchestrator_state::redact;
/// assert_eq!(
///     redact("failed: postgres://app:s3cret@db:5432/prod"),
///     "failed: postgres://app:***@db:5432/prod"
/// );
/// assert_eq!(redact("host=db password=s3cret user=app"), "host=db password=*** user=app");
/// assert_eq!(redact("postgres://app:s3/c?r#t@db/prod"), "postgres://app:***@db/prod");
/// ```
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let word_end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        out.push_str(&mask_user_info(&tail[..word_end]));
        rest = &tail[word_end..];
    }
    out.push_str(rest);
    redact_pairs(&out)
}

/// A connection target (URL, path or `key=value` string) as the user wrote it, safe to
/// show: the password is masked even when it holds characters a URL should have encoded,
/// spaces included.
///
/// ```
/// use llm_orchestrator_state::redact_url;
/// assert_eq!(redact_url("postgres://app:s3 cr/et@db/prod"), "postgres://app:***@db/prod");
/// assert_eq!(redact_url("postgres://app@db/prod"), "postgres://app@db/prod");
/// assert_eq!(redact_url("host=db password=s3cret"), "host=db password=***");
/// ```
pub fn redact_url(target: &str) -> String {
    match target.find("://") {
        Some(start) => {
            let (head, tail) = target.split_at(start + 3);
            redact_pairs(&format!("{head}{}", mask_user_info(tail)))
        }
        None => redact_pairs(target),
    }
}

/// `user:password@rest` -> `user:***@rest`, taking the last `@` as the end of the user
/// information; unchanged when there is no `@` or no `:` before it.
fn mask_user_info(after_scheme: &str) -> String {
    match after_scheme.rfind('@') {
        Some(at) => match after_scheme[..at].find(':') {
            Some(colon) => format!("{}***{}", &after_scheme[..=colon], &after_scheme[at..]),
            None => after_scheme.to_owned(),
        },
        None => after_scheme.to_owned(),
    }
}

/// `password=secret` (keyword/value connection strings, URL query parameters), with any
/// key that holds "password" in any case, percent-encoded or not (`?pass%77ord=`, which a
/// URL parser decodes to `password`).
fn redact_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find('=') {
        let eq = search + found;
        search = eq + 1;
        // libpq allows spaces around `=`: `password = secret`.
        let key_end = text[..eq].trim_end().len();
        // The key runs back to the character before it, which may be several bytes long.
        let before_key = text[..key_end]
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '%')));
        let key_start = before_key.map_or(0, |(at, c)| at + c.len_utf8());
        // In a URL's query a value ends at `&`; in a keyword/value string only at a space.
        let in_query = matches!(before_key, Some((_, '?' | '&')));
        if !names_a_password(&text[key_start..key_end]) {
            continue;
        }
        let after_eq = text.len() - text[eq + 1..].trim_start().len();
        let value = &text[after_eq..];
        let value_len = match value.strip_prefix('\'') {
            // A quoted value runs to its closing quote (`\'` is a quote inside it).
            Some(quoted) => {
                let mut escaped = false;
                let close = quoted.char_indices().find(|&(_, c)| {
                    let closes = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    closes
                });
                close.map_or(value.len(), |(at, _)| at + 2)
            }
            None => value
                .find(|c: char| (in_query && c == '&') || c.is_whitespace())
                .unwrap_or(value.len()),
        };
        out.push_str(&text[copied..after_eq]);
        out.push_str("***");
        copied = after_eq + value_len;
        search = copied;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether a `key` of a `key=value` pair, percent-decoded, holds "password" in any case.
fn names_a_password(key: &str) -> bool {
    let decoded = url::form_urlencoded::parse(key.as_bytes())
        .next()
        .map(|(decoded, _)| decoded.to_ascii_lowercase())
        .unwrap_or_default();
    decoded.contains("password")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every kind, for the tests that go through them all.
    const KINDS: [ErrorKind; 17] = [
        ErrorKind::ConnectionFailed,
        ErrorKind::TimedOut,
        ErrorKind::PoolExhausted,
        ErrorKind::VersionConflict,
        ErrorKind::LeaseHeld,
        ErrorKind::LeaseLost,
        ErrorKind::Busy,
        ErrorKind::AlreadyExists(Entity::Checkpoint),
        ErrorKind::NotFound(Entity::Workflow),
        ErrorKind::InvalidInput {
            field: Field::StepId,
            problem: InputProblem::ContainsNul,
        },
        ErrorKind::ReadOnly,
        ErrorKind::Configuration(ConfigProblem::InvalidTarget),
        ErrorKind::NotMigrated,
        ErrorKind::CorruptData,
        ErrorKind::Aborted,
        ErrorKind::Database,
        ErrorKind::Other,
    ];

    #[test]
    fn an_error_keeps_the_kind_it_was_made_with_in_its_variant() {
        for kind in KINDS {
            let err = StateStoreError::new(kind, "what happened");
            assert_eq!(err.kind(), kind, "{err:?}");
            assert_eq!(err.message(), "what happened");
            let variant_ok = match &err {
                StateStoreError::Connection(_) => {
                    matches!(kind, ErrorKind::ConnectionFailed | ErrorKind::PoolExhausted)
                }
                StateStoreError::Timeout(_) => kind == ErrorKind::TimedOut,
                StateStoreError::Conflict(_) => matches!(
                    kind,
                    ErrorKind::VersionConflict
                        | ErrorKind::LeaseHeld
                        | ErrorKind::LeaseLost
                        | ErrorKind::Busy
                        | ErrorKind::AlreadyExists(_)
                ),
                StateStoreError::NotFound(_) => matches!(kind, ErrorKind::NotFound(_)),
                StateStoreError::InvalidInput(_) => {
                    matches!(kind, ErrorKind::InvalidInput { .. })
                }
                StateStoreError::ReadOnly(_) => kind == ErrorKind::ReadOnly,
                StateStoreError::Configuration(_) => {
                    matches!(kind, ErrorKind::Configuration(_) | ErrorKind::NotMigrated)
                }
                StateStoreError::Serialization(_) => kind == ErrorKind::CorruptData,
                StateStoreError::Aborted(_) => kind == ErrorKind::Aborted,
                StateStoreError::Database(_) => kind == ErrorKind::Database,
                StateStoreError::Other(_) => kind == ErrorKind::Other,
                StateStoreError::InvalidState(_) => false,
            };
            assert!(variant_ok, "{kind:?} in {err:?}");
            // Transient exactly as the variants were: connection trouble, a time-out, a
            // conflict of any kind.
            assert_eq!(
                err.is_transient(),
                matches!(
                    err,
                    StateStoreError::Connection(_)
                        | StateStoreError::Conflict(_)
                        | StateStoreError::Timeout(_)
                ),
                "{kind:?}"
            );
            assert_eq!(err.is_unreadable_data(), kind == ErrorKind::CorruptData);
            assert!(!kind.to_string().is_empty());
        }
        let err = StateStoreError::invalid_state("unknown status \"done\"");
        assert_eq!(err.kind(), ErrorKind::CorruptData);
        assert!(err.is_unreadable_data());
    }

    #[test]
    fn an_error_made_from_a_message_alone_has_its_variant_s_usual_kind() {
        let usual = [
            (StateStoreError::Database("x".into()), ErrorKind::Database),
            (
                StateStoreError::Serialization("x".into()),
                ErrorKind::CorruptData,
            ),
            (
                StateStoreError::NotFound("x".into()),
                ErrorKind::NotFound(Entity::Other),
            ),
            (
                StateStoreError::InvalidState("x".into()),
                ErrorKind::CorruptData,
            ),
            (
                StateStoreError::InvalidInput("x".into()),
                ErrorKind::InvalidInput {
                    field: Field::Other,
                    problem: InputProblem::Other,
                },
            ),
            (
                StateStoreError::Conflict("x".into()),
                ErrorKind::VersionConflict,
            ),
            (
                StateStoreError::Connection("x".into()),
                ErrorKind::ConnectionFailed,
            ),
            (StateStoreError::Timeout("x".into()), ErrorKind::TimedOut),
            (StateStoreError::ReadOnly("x".into()), ErrorKind::ReadOnly),
            (
                StateStoreError::Configuration("x".into()),
                ErrorKind::Configuration(ConfigProblem::Other),
            ),
            (StateStoreError::Aborted("x".into()), ErrorKind::Aborted),
            (StateStoreError::Other("x".into()), ErrorKind::Other),
        ];
        for (err, kind) in usual {
            assert_eq!(err.kind(), kind, "{err:?}");
            assert_eq!(err.detail().kind(), None);
        }
    }

    #[test]
    fn a_detail_reads_like_the_string_it_replaced() {
        let err = StateStoreError::new(ErrorKind::NotFound(Entity::Workflow), "workflow wf-1");
        // Display, Debug and equality as with a `String` payload.
        assert_eq!(err.to_string(), "not found: workflow wf-1");
        assert_eq!(format!("{err:?}"), r#"NotFound("workflow wf-1")"#);
        assert_eq!(err, StateStoreError::NotFound("workflow wf-1".into()));
        let StateStoreError::NotFound(msg) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(format!("{msg}"), "workflow wf-1");
        assert!(msg.contains("wf-1") && msg.starts_with("workflow"));
        assert!(*msg == "workflow wf-1" && msg == "workflow wf-1");
        assert_eq!(*msg, String::from("workflow wf-1"));
        assert_eq!(msg.len(), 13);
        let owned: String = msg.clone().into();
        assert_eq!(owned, "workflow wf-1");
        assert_eq!(
            StateStoreError::Other(String::from("x").into()).to_string(),
            "x"
        );
        // A reworded detail keeps its kind.
        let StateStoreError::NotFound(msg) = err else {
            unreachable!()
        };
        let longer = msg.reworded(|why| format!("run 7: {why}"));
        assert_eq!(longer, "run 7: workflow wf-1");
        assert_eq!(longer.kind(), Some(ErrorKind::NotFound(Entity::Workflow)));
    }

    #[test]
    fn database_errors_are_classified_into_kinds() {
        use sea_orm::sqlx::Error as E;
        let sqlx = |err: E| DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(err)));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for (err, kind) in [
            (sqlx(E::PoolTimedOut), ErrorKind::PoolExhausted),
            (
                DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
                ErrorKind::PoolExhausted,
            ),
            (sqlx(E::Io(refused)), ErrorKind::ConnectionFailed),
            (sqlx(E::PoolClosed), ErrorKind::ConnectionFailed),
            (sqlx(E::RowNotFound), ErrorKind::NotFound(Entity::Other)),
            (
                DbErr::RecordNotFound("row".into()),
                ErrorKind::NotFound(Entity::Other),
            ),
            (DbErr::Json("not JSON".into()), ErrorKind::CorruptData),
            (DbErr::Custom("other".into()), ErrorKind::Database),
        ] {
            let classified = StateStoreError::from(err);
            assert_eq!(classified.kind(), kind, "{classified:?}");
        }
        let pool = StateStoreError::from(sqlx(E::PoolTimedOut));
        assert!(pool.is_pool_timeout() && pool.is_transient());
        let json = StateStoreError::from(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(json.kind(), ErrorKind::CorruptData);
    }

    #[test]
    fn refused_input_says_which_field_and_why() {
        use crate::validate;
        let input = |field, problem| ErrorKind::InvalidInput { field, problem };
        let kind = |result: Result<()>| result.unwrap_err().kind();
        assert_eq!(
            kind(validate::id(Field::WorkflowId, "workflow_id", "")),
            input(Field::WorkflowId, InputProblem::Empty)
        );
        assert_eq!(
            kind(validate::id(Field::StepId, "step_id", &"x".repeat(256))),
            input(Field::StepId, InputProblem::TooLong)
        );
        assert_eq!(
            kind(validate::text(Field::Error, "error", "a\0b")),
            input(Field::Error, InputProblem::ContainsNul)
        );
        assert_eq!(
            kind(validate::json(
                Field::Context,
                "context",
                &serde_json::json!({"k\u{0}": 1})
            )),
            input(Field::Context, InputProblem::ContainsNul)
        );
        let mut state = crate::WorkflowState::new("wf", "name", None, serde_json::json!({}));
        state.workflow_name = "n".repeat(300);
        assert_eq!(
            kind(validate::workflow_state(&state, usize::MAX)),
            input(Field::WorkflowName, InputProblem::TooLong)
        );
        state.workflow_name = "name".into();
        state.context = serde_json::json!({"big": "x".repeat(100)});
        assert_eq!(
            kind(validate::workflow_state(&state, 10)),
            input(Field::Context, InputProblem::TooLarge)
        );
        assert_eq!(
            validate::postgres_schema_name("a-b").unwrap_err().kind(),
            ErrorKind::Configuration(ConfigProblem::InvalidOption)
        );
    }

    #[test]
    fn a_bad_target_is_a_configuration_error_of_its_kind() {
        for target in ["", "postgres://u:hunter2@h:notaport/db", "file:x.db"] {
            let err = crate::sqlite_file(target).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::Configuration(ConfigProblem::InvalidTarget),
                "{target:?}: {err}"
            );
        }
    }

    #[test]
    fn redaction_never_panics_whatever_the_text() {
        let pieces = [
            "é", "=", "password", "&", "?", " ", "'", "\\", "ß", "%77", "@", "://", "x", "超",
        ];
        let n = pieces.len();
        for i in 0..n.pow(4) {
            let text: String = (0..4).map(|d| pieces[i / n.pow(d) % n]).collect();
            let shown = redact(&text);
            let _ = redact_url(&text);
            // A value after `password=` never survives.
            if text.ends_with("password=x") {
                assert!(shown.ends_with("password=***"), "{text:?} -> {shown:?}");
            }
        }
    }

    #[test]
    fn redacts_urls_and_pairs() {
        assert_eq!(
            redact("postgresql://user:pa:ss@h/db?sslmode=require&password=x"),
            "postgresql://user:***@h/db?sslmode=require&password=***"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
        assert_eq!(redact("no url at all"), "no url at all");
        assert_eq!(redact("PASSWORD=abc"), "PASSWORD=***");
        assert_eq!(
            redact_url("host = db password = 'hunt er\\'2' user=app"),
            "host = db password = *** user=app"
        );
        assert_eq!(redact("password=hunt;er2 x"), "password=*** x");
        assert_eq!(
            redact("password authentication failed for user app"),
            "password authentication failed for user app"
        );
        for password in ["hunt/er2", "hunt?er2", "hunt#er2", "hunt@er2", "hu:nt"] {
            let url = format!("postgres://u:{password}@127.0.0.1:5432/db?sslmode=disable");
            let shown = format!("malformed URL {url}: invalid port number");
            assert_eq!(
                redact(&shown),
                "malformed URL postgres://u:***@127.0.0.1:5432/db?sslmode=disable: invalid port number"
            );
            assert_eq!(
                redact_url(&url),
                "postgres://u:***@127.0.0.1:5432/db?sslmode=disable"
            );
        }
        assert_eq!(
            redact_url("postgres://u:hunt er2@127.0.0.1/db"),
            "postgres://u:***@127.0.0.1/db"
        );
        // A key a URL parser decodes to `password`, in any case.
        assert_eq!(
            redact("postgres://h/db?pass%77ord=s3cret&sslmode=disable"),
            "postgres://h/db?pass%77ord=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://h/db?%50ASSWORD=s3cret"),
            "postgres://h/db?%50ASSWORD=***"
        );
        assert_eq!(redact("db_password = x y"), "db_password = *** y");
        assert_eq!(redact("a=b c=d"), "a=b c=d");
        // Keys after non-ASCII text, and in a duplicate-key detail.
        assert_eq!(redact("é=1 clé=x"), "é=1 clé=x");
        assert_eq!(
            redact("Key (workflow_id)=(café-order=7) already exists."),
            "Key (workflow_id)=(café-order=7) already exists."
        );
        assert_eq!(
            redact("mot de passeé password=x"),
            "mot de passeé password=***"
        );
        assert_eq!(redact("ßpassword=x"), "ßpassword=***");
        // An `&` ends a value only in a URL's query.
        assert_eq!(redact("password=ab&cd host=x"), "password=*** host=x");
        assert_eq!(
            redact("postgres://h/db?password=ab&sslmode=require"),
            "postgres://h/db?password=***&sslmode=require"
        );
        assert_eq!(redact("=x password="), "=x password=***");
        assert_eq!(
            redact("two: sqlite://a.db postgres://u:p@h/x"),
            "two: sqlite://a.db postgres://u:***@h/x"
        );
    }
}
