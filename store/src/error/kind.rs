//! What kind of failure an error is: [`ErrorKind`] and the details it names.

use std::fmt;

#[cfg(doc)]
use super::StateStoreError;

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
