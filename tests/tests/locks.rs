//! Waiting on locks: with `lock_timeout` a call that meets a workflow another transaction
//! holds gives up with `Conflict` and changes nothing; replicas starting together still
//! wait for each other's migrations however short it is.

use std::time::Duration;

use backend_suite::{Backend, TestDatabase, open_with, step, workflow};
use llm_orchestrator_state::sea_orm::{
    ConnectionTrait, Database, DbBackend, Statement, TransactionTrait,
};
use llm_orchestrator_state::{
    SeaOrmStateStore, StateStore, StateStoreBuilder, StateStoreError, StepStatus, StoreOptions,
};
use serde_json::json;

// Only a database another connection can see has locks to meet.
backend_suite::backend_tests_for!(mod sqlite_file = SqliteFile:
    a_call_on_a_workflow_another_transaction_holds_gives_up_at_lock_timeout,
);
backend_suite::backend_tests_for!(mod postgres = Postgres:
    a_call_on_a_workflow_another_transaction_holds_gives_up_at_lock_timeout,
    a_store_starting_while_another_migrates_waits_its_turn_despite_lock_timeout,
);

const LOCK_TIMEOUT: Duration = Duration::from_millis(300);

/// Well above `LOCK_TIMEOUT` and well below what the call waits without it (SQLite's 5 s
/// busy timeout; on Postgres for ever). A limit on an answer, not a measurement.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

async fn a_call_on_a_workflow_another_transaction_holds_gives_up_at_lock_timeout(backend: Backend) {
    let store = open_with(backend, |builder| builder.lock_timeout(LOCK_TIMEOUT)).await;
    let mut state = workflow("wf-held");
    state.mark_running();
    let first = store
        .record_step(
            &mut state,
            step("retrieve", StepStatus::Completed, json!(1)),
        )
        .await
        .unwrap();
    store
        .record_step(&mut state, step("prompt", StepStatus::Completed, json!(2)))
        .await
        .unwrap();
    let checkpoints = store.list_checkpoints(&state.id, 100, 0).await.unwrap();

    // A replica (another store on the same database) is inside a transaction that has
    // written the workflow and not committed.
    let replica = store
        .reopen()
        .await
        .expect("a database another store can open");
    let held = replica.begin().await.unwrap();
    let mut theirs = state.clone();
    theirs.mark_failed("the replica's uncommitted write");
    held.save_workflow_state(&theirs).await.unwrap();

    let mut ours = state.clone();
    let calls = async {
        let rollback = store.rollback_to_checkpoint(&first.id).await;
        let step = store
            .record_step(&mut ours, step("tool", StepStatus::Completed, json!(3)))
            .await;
        (rollback, step)
    };
    let (rollback, recorded) = tokio::time::timeout(ANSWER_WITHIN * 2, calls)
        .await
        .expect("calls on a held workflow answer after lock_timeout instead of waiting");
    for err in [rollback.unwrap_err(), recorded.unwrap_err()] {
        assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");
        assert!(err.is_transient(), "{err}");
        assert!(
            err.to_string()
                .contains("gave up waiting for a lock another transaction holds"),
            "{err}"
        );
    }
    assert_eq!(
        ours, state,
        "a refused record_step leaves the caller's state"
    );

    // Nothing of either call is stored; once the replica lets go, the same calls work.
    held.rollback().await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.list_checkpoints(&state.id, 100, 0).await.unwrap(),
        checkpoints
    );
    let restored = tokio::time::timeout(ANSWER_WITHIN, store.rollback_to_checkpoint(&first.id))
        .await
        .expect("an unheld workflow answers at once")
        .unwrap();
    assert!(restored.step("prompt").is_none(), "{restored:?}");
}

/// The advisory lock the store migrates under (`backend::MIGRATION_LOCK_KEY`).
const MIGRATION_LOCK_KEY: i64 = 0x6c6c_6d5f_7374_6174;

async fn a_store_starting_while_another_migrates_waits_its_turn_despite_lock_timeout(
    backend: Backend,
) {
    let database = TestDatabase::new(backend);
    // Another replica is migrating: it holds the migration lock for longer than our
    // lock_timeout.
    let migrating = Database::connect(backend_suite::test_database_url())
        .await
        .unwrap();
    let txn = migrating.begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    ))
    .await
    .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(LOCK_TIMEOUT * 4).await;
        txn.commit().await.unwrap();
    });

    // A fresh schema: this store creates it and migrates, both under that lock.
    let store = database
        .connect(|builder| builder.lock_timeout(LOCK_TIMEOUT))
        .await;
    release.await.unwrap();
    store.health_check().await.unwrap();
    // Its own calls keep the time-out (reset after the migration lock).
    let shown = store
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('lock_timeout') AS value",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.try_get::<String>("", "value").unwrap(), "300ms");
}

#[tokio::test]
async fn a_lock_timeout_of_zero_is_refused() {
    let err = StateStoreBuilder::new(":memory:")
        .lock_timeout(Duration::ZERO)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(err.to_string().contains("lock_timeout"), "{err}");
}

#[tokio::test]
async fn from_connection_refuses_a_lock_timeout_it_cannot_apply() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    let mut options = StoreOptions::default();
    options.lock_timeout = Some(LOCK_TIMEOUT);
    let err = SeaOrmStateStore::from_connection(db, options)
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(err.to_string().contains("lock_timeout"), "{err}");
}
