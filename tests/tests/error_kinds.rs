//! Every failure a user meets carries the `ErrorKind` that says what happened, so a
//! caller matches `err.kind()` instead of reading the message: an unknown id (and of
//! what), refused input (which field, why), a version conflict, a lease another owner
//! holds or one we lost, a write on a read-only store, a database without the store's
//! tables, a bad URL, a server that does not answer or a pool whose connections are all
//! held.

use std::time::Duration;

use backend_suite::{Backend, TestDatabase, open, open_with, step, workflow};
use llm_orchestrator_state::{
    Checkpoint, ConfigProblem, Entity, ErrorKind, Field, InputProblem, SaveCondition, StateStore,
    StateStoreBuilder, StateStoreError, StepStatus,
};
use serde_json::json;
use uuid::Uuid;

backend_suite::backend_tests!(
    unknown_ids_are_not_found_with_their_entity,
    ids_stored_already_exist_with_their_entity,
    refused_input_names_its_field_and_problem,
    a_stale_version_is_a_version_conflict,
    a_lease_held_by_another_is_lease_held_and_a_stale_one_lease_lost,
    a_database_without_the_store_s_tables_is_not_migrated,
    a_store_whose_connections_are_all_held_is_pool_exhausted,
);

// Only a database another store can open can be opened read-only beside a writer, or
// have locks another store holds.
backend_suite::backend_tests_for!(mod shared_sqlite_file = SqliteFile:
    a_write_on_a_read_only_store_is_read_only,
    a_lock_held_past_the_wait_is_busy_or_timed_out,
);
backend_suite::backend_tests_for!(mod only_postgres = Postgres:
    a_write_on_a_read_only_store_is_read_only,
    a_lock_held_past_the_wait_is_busy_or_timed_out,
    a_missing_postgres_schema_is_a_configuration_error_saying_so,
);

fn input(field: Field, problem: InputProblem) -> ErrorKind {
    ErrorKind::InvalidInput { field, problem }
}

async fn unknown_ids_are_not_found_with_their_entity(backend: Backend) {
    let store = open(backend).await;
    let unknown = Uuid::from_u128(0xdead);
    let workflow_kind = ErrorKind::NotFound(Entity::Workflow);
    let checkpoint_kind = ErrorKind::NotFound(Entity::Checkpoint);

    let err = store.load_workflow_state(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), workflow_kind, "{err}");
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err:?}");
    let err = store
        .load_workflow_state_by_workflow_id("no-such-run")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), workflow_kind, "{err}");
    let err = store.lineage(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), workflow_kind, "{err}");

    let err = store.get_checkpoint(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), checkpoint_kind, "{err}");
    let err = store.restore_from_checkpoint(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), checkpoint_kind, "{err}");
    let err = store.pin_checkpoint(&unknown, "keep").await.unwrap_err();
    assert_eq!(err.kind(), checkpoint_kind, "{err}");

    // A checkpoint of a workflow that is not stored: the workflow is what is missing.
    let orphan = workflow("wf-orphan");
    let checkpoint = Checkpoint::of(&orphan, "start").unwrap();
    let err = store.create_checkpoint(&checkpoint).await.unwrap_err();
    assert_eq!(err.kind(), workflow_kind, "{err}");
}

async fn ids_stored_already_exist_with_their_entity(backend: Backend) {
    let store = open(backend).await;
    let state = workflow("wf-twice");
    store.save_workflow_state(&state).await.unwrap();
    let err = store
        .save_workflow_state_if(&state, &SaveCondition::Version(0))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists(Entity::Workflow),
        "{err}"
    );
    assert!(err.is_transient(), "a Conflict, as it always was");

    let checkpoint = Checkpoint::of(&state, "start").unwrap();
    store.create_checkpoint(&checkpoint).await.unwrap();
    let mut again = checkpoint.clone();
    again.step_id = "other".into();
    let err = store.create_checkpoint(&again).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists(Entity::Checkpoint),
        "{err}"
    );
}

async fn refused_input_names_its_field_and_problem(backend: Backend) {
    let store = open(backend).await;
    let refused = |mut change: Box<dyn FnMut(&mut llm_orchestrator_state::WorkflowState)>| {
        let mut state = workflow("wf-input");
        change(&mut state);
        state
    };
    let cases: Vec<(llm_orchestrator_state::WorkflowState, ErrorKind)> = vec![
        (
            refused(Box::new(|s| s.workflow_id = "x".repeat(256))),
            input(Field::WorkflowId, InputProblem::TooLong),
        ),
        (
            refused(Box::new(|s| s.workflow_id = String::new())),
            input(Field::WorkflowId, InputProblem::Empty),
        ),
        (
            refused(Box::new(|s| s.workflow_name = "a\0b".into())),
            input(Field::WorkflowName, InputProblem::ContainsNul),
        ),
        (
            refused(Box::new(|s| s.user_id = Some("u".repeat(256)))),
            input(Field::UserId, InputProblem::TooLong),
        ),
        (
            refused(Box::new(|s| s.context = json!({"k": "a\0b"}))),
            input(Field::Context, InputProblem::ContainsNul),
        ),
        (
            refused(Box::new(|s| {
                s.context =
                    backend_suite::nested_json(llm_orchestrator_state::validate::MAX_JSON_DEPTH + 1)
            })),
            input(Field::Context, InputProblem::TooDeep),
        ),
        (
            refused(Box::new(|s| {
                s.upsert_step(step("a\0b", StepStatus::Completed, json!(1)))
            })),
            input(Field::StepId, InputProblem::ContainsNul),
        ),
    ];
    for (state, kind) in cases {
        let err = store.save_workflow_state(&state).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
    }

    let err = store
        .claim_workflows("", Duration::from_secs(60), 1)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        input(Field::Owner, InputProblem::Empty),
        "{err}"
    );

    // A checkpoint whose snapshot is not a workflow state cannot be restored.
    let state = workflow("wf-snapshot");
    store.save_workflow_state(&state).await.unwrap();
    let mut checkpoint = Checkpoint::of(&state, "start").unwrap();
    checkpoint.snapshot = json!({"checkpoint": 3});
    store.create_checkpoint(&checkpoint).await.unwrap();
    let err = store
        .restore_from_checkpoint(&checkpoint.id)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        input(Field::Snapshot, InputProblem::NotAWorkflowState),
        "{err}"
    );
}

async fn a_stale_version_is_a_version_conflict(backend: Backend) {
    let store = open(backend).await;
    let state = workflow("wf-versions");
    let version = store
        .save_workflow_state_if(&state, &SaveCondition::Version(0))
        .await
        .unwrap();
    store
        .save_workflow_state_if(&state, &SaveCondition::Version(version))
        .await
        .unwrap();
    let err = store
        .save_workflow_state_if(&state, &SaveCondition::Version(version))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VersionConflict, "{err}");
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");
    assert!(err.is_transient());
    let mut copy = state.clone();
    let err = store
        .record_step_if(
            &mut copy,
            step("late", StepStatus::Completed, json!(1)),
            &SaveCondition::Version(version),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VersionConflict, "{err}");
}

async fn a_lease_held_by_another_is_lease_held_and_a_stale_one_lease_lost(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-leased");
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    let versioned = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    let claims = store
        .claim_workflows("replica-a", Duration::from_secs(300), 10)
        .await
        .unwrap();
    let [claim] = claims.as_slice() else {
        panic!("one claim expected, got {claims:?}");
    };

    // Another replica's save, by version or with no condition at all.
    let err = store
        .save_workflow_state_if(&state, &SaveCondition::Version(versioned.version + 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseHeld, "{err}");
    let err = store.save_workflow_state(&state).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseHeld, "{err}");

    // A lease whose token is stale: its owner lost the workflow.
    let mut stale = claim.lease.clone();
    stale.token -= 1;
    let err = store
        .renew_lease(&stale, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost, "{err}");
    let err = store
        .save_workflow_state_if(&claim.state, &SaveCondition::Lease(stale.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost, "{err}");
    let mut copy = claim.state.clone();
    let err = store
        .record_step_if(
            &mut copy,
            step("late", StepStatus::Completed, json!(1)),
            &SaveCondition::Lease(stale.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost, "{err}");
    let err = store
        .record_step_if(
            &mut copy,
            step("late", StepStatus::Completed, json!(1)),
            &SaveCondition::Version(versioned.version),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseHeld, "{err}");
    // The holder's own lease still writes.
    store
        .save_workflow_state_if(&claim.state, &SaveCondition::Lease(claim.lease.clone()))
        .await
        .unwrap();
}

async fn a_write_on_a_read_only_store_is_read_only(backend: Backend) {
    let store = open(backend).await;
    let state = workflow("wf-read-only");
    store.save_workflow_state(&state).await.unwrap();
    let read_only = store
        .builder_for_same_database()
        .expect("a database another store can open")
        .read_only(true)
        .connect()
        .await
        .unwrap();
    read_only.load_workflow_state(&state.id).await.unwrap();
    let err = read_only.save_workflow_state(&state).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
    assert!(matches!(err, StateStoreError::ReadOnly(_)), "{err:?}");
}

async fn a_lock_held_past_the_wait_is_busy_or_timed_out(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-locked");
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    // Another store is inside a transaction that wrote the workflow and did not commit.
    let replica = store
        .reopen()
        .await
        .expect("a database another store can open");
    let held = replica.begin().await.unwrap();
    held.save_workflow_state(&state).await.unwrap();

    let wait = Duration::from_millis(300);
    let builder = || {
        store
            .builder_for_same_database()
            .expect("a database another store can open")
            .run_migrations(false)
    };
    // Given up at lock_timeout: the lock is busy, trying again may succeed.
    let patient = builder().lock_timeout(wait).connect().await.unwrap();
    let err = patient.save_workflow_state(&state).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");
    // Ended by call_timeout while waiting.
    let hurried = builder().call_timeout(Some(wait)).connect().await.unwrap();
    let err = hurried.save_workflow_state(&state).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(matches!(err, StateStoreError::Timeout(_)), "{err:?}");
    held.rollback().await.unwrap();
}

async fn a_database_without_the_store_s_tables_is_not_migrated(backend: Backend) {
    // A store that does not migrate, on an empty database: its first statement meets no
    // table.
    let database = TestDatabase::new(backend);
    let store = database
        .connect(|builder| builder.run_migrations(false))
        .await;
    let err = store
        .load_workflow_state(&Uuid::from_u128(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotMigrated, "{err}");
    assert!(matches!(err, StateStoreError::Database(_)), "{err:?}");
    store.close().await.unwrap();

    // A read-only store refuses to open it at all.
    if backend.is_persistent() {
        let err = database
            .builder()
            .read_only(true)
            .connect()
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotMigrated, "{err}");
        assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    }
}

async fn a_store_whose_connections_are_all_held_is_pool_exhausted(backend: Backend) {
    let store = open_with(backend, |builder| {
        builder
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_millis(300))
    })
    .await;
    let state = workflow("wf-pool");
    store.save_workflow_state(&state).await.unwrap();
    // An open transaction holds the pool's one connection.
    let held = store.begin().await.unwrap();
    let err = store.load_workflow_state(&state.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolExhausted, "{err}");
    assert!(matches!(err, StateStoreError::Connection(_)), "{err:?}");
    held.rollback().await.unwrap();
    store.load_workflow_state(&state.id).await.unwrap();
}

async fn a_missing_postgres_schema_is_a_configuration_error_saying_so(backend: Backend) {
    let database = TestDatabase::new(backend);
    let err = database
        .builder()
        .create_postgres_schema(false)
        .connect()
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Configuration(ConfigProblem::PostgresSchemaMissing),
        "{err}"
    );
}

#[tokio::test]
async fn bad_urls_and_missing_folders_are_configuration_errors() {
    for target in [
        "",
        "postgres://u:hunter2@h:notaport/db",
        "sqlite::memory:?mode=memory",
        "file:x.db",
    ] {
        let err = StateStoreBuilder::new(target)
            .connect()
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Configuration(ConfigProblem::InvalidTarget),
            "{target:?}: {err}"
        );
    }
    let err = StateStoreBuilder::new("/no/such/folder/x.db")
        .connect()
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Configuration(ConfigProblem::DatabaseMissing),
        "{err}"
    );
    let err = StateStoreBuilder::new(":memory:")
        .max_connections(0)
        .connect()
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Configuration(ConfigProblem::InvalidOption),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_connection_failure() {
    let err = StateStoreBuilder::new("postgres://postgres@127.0.0.1:1/x")
        .acquire_timeout(Duration::from_secs(1))
        .connect()
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionFailed, "{err}");
    assert!(matches!(err, StateStoreError::Connection(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_login_the_server_refuses_is_a_configuration_error_saying_why() {
    let server = backend_suite::configured();
    let url = |user_info: &str, database: &str| {
        format!(
            "{}://{user_info}@{}/{database}",
            server.scheme, server.server
        )
    };
    let user = server
        .user_info
        .clone()
        .unwrap_or_else(|| "postgres".into());
    let err = StateStoreBuilder::new(url(&user, "no_such_database_for_error_kinds"))
        .connect()
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Configuration(ConfigProblem::DatabaseMissing),
        "{err}"
    );
    let database = server.path.split('?').next().unwrap_or_default().to_owned();
    let err = StateStoreBuilder::new(url("no_such_role_for_error_kinds", &database))
        .connect()
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Configuration(ConfigProblem::LoginRefused),
        "{err}"
    );
}

#[tokio::test]
async fn a_closed_store_is_a_connection_failure() {
    let store = open(Backend::Postgres).await;
    let other = (*store).clone();
    store.store.close().await.unwrap();
    let err = other
        .load_workflow_state(&Uuid::from_u128(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionFailed, "{err}");
}
