//! The one error type of the store, and the one place database errors are classified.

use sea_orm::DbErr;

mod classify;
mod detail;
mod kind;
mod redact;

use classify::*;
pub(crate) use classify::{describe_sqlx, is_undefined_table, login_problem, refused_login};
pub use detail::ErrorDetail;
pub use kind::{ConfigProblem, Entity, ErrorKind, Field, InputProblem};
pub use redact::{ECHO_CHARS, echo, redact, redact_url};

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

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::RuntimeErr;

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
