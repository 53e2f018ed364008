//! One commit per step on every backend: `record_step`, automatic checkpoints, store
//! transactions, and the store's writes inside the application's own SeaORM transaction.

use backend_suite::{Backend, TestStore, backend_tests, open, open_with, step, workflow};
use llm_orchestrator_state::sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait,
};
use llm_orchestrator_state::{
    AutoCheckpoint, Checkpoint, SeaOrmStateStore, StateStore, StateStoreError, StepState,
    StepStatus, WorkflowState,
};
use serde_json::json;

backend_tests!(
    record_step_saves_state_and_checkpoint_together,
    record_step_applies_retention,
    record_step_with_bad_input_stores_nothing_and_keeps_the_state,
    record_step_of_an_unsaved_workflow_creates_it,
    auto_checkpoint_every_save,
    auto_checkpoint_every_n_steps,
    store_transaction_commits_everything_at_once,
    store_transaction_rollback_and_drop_leave_nothing,
    store_transaction_error_inside_leaves_nothing,
    the_same_checkpoint_twice_in_a_transaction_is_a_conflict,
    a_refused_write_in_a_store_transaction_is_undone_alone,
    a_refused_write_in_an_application_transaction_is_undone_alone,
    application_transaction_commits_its_rows_and_the_state_together,
    application_transaction_rollback_leaves_neither,
    a_store_transaction_with_a_cancelled_call_commits_nothing,
    overlapping_calls_on_one_store_transaction_take_turns,
);

// Only Postgres aborts a transaction on a failed statement, and only its reads can be
// made to fail on demand (a lock time-out) inside the store's own write transaction.
backend_suite::backend_tests_for!(mod postgres_reads = Postgres:
    a_read_that_times_out_in_a_store_transaction_is_undone_alone,
    a_read_that_times_out_in_an_application_transaction_is_undone_alone,
    a_store_transaction_its_own_statement_aborted_does_not_report_a_commit,
);

fn finished(step_id: &str, n: i64) -> StepState {
    let mut step = StepState::new(step_id);
    step.mark_running();
    step.mark_completed(json!({ "n": n }));
    step
}

async fn record_step_saves_state_and_checkpoint_together(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-record");
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();

    let checkpoint = store
        .record_step(&mut state, finished("retrieve", 1))
        .await
        .unwrap();
    assert_eq!(checkpoint.step_id, "retrieve");
    assert_eq!(checkpoint.workflow_state_id, state.id);
    assert_eq!(state.step("retrieve").unwrap().outputs, json!({"n": 1}));
    // What was saved is the state the caller now holds, and the checkpoint holds it too.
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(checkpoint.state().unwrap(), state);
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(checkpoint)
    );

    let second = store
        .record_step(&mut state, finished("prompt", 2))
        .await
        .unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(state.steps.len(), 2);
    let restored = store.restore_from_checkpoint(&second.id).await.unwrap();
    assert_eq!(restored, state);
}

async fn record_step_applies_retention(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(Some(2))).await;
    let mut state = workflow("wf-record-retention");
    for n in 0..5 {
        store
            .record_step(&mut state, finished(&format!("step-{n}"), n))
            .await
            .unwrap();
    }
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    let kept: Vec<_> = kept.iter().map(|c| c.step_id.as_str()).collect();
    assert_eq!(kept, ["step-4", "step-3"]);
}

async fn record_step_with_bad_input_stores_nothing_and_keeps_the_state(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-record-bad");
    store
        .record_step(&mut state, finished("ok", 1))
        .await
        .unwrap();
    let before = state.clone();

    let mut bad = finished("bad", 2);
    bad.outputs = json!({"text": "nul \u{0} inside"});
    let err = store.record_step(&mut state, bad).await.unwrap_err();
    assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err}");
    let err = store
        .record_step(&mut state, finished(&"x".repeat(256), 3))
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err}");

    assert_eq!(
        state, before,
        "a refused step must not change the caller's state"
    );
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), before);
    assert_eq!(
        store
            .list_checkpoints(&state.id, 100, 0)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn record_step_of_an_unsaved_workflow_creates_it(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-record-new");
    let checkpoint = store
        .record_step(&mut state, finished("a", 1))
        .await
        .unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(checkpoint)
    );
}

async fn auto_checkpoint_every_save(backend: Backend) {
    let store = open_with(backend, |b| b.auto_checkpoint(AutoCheckpoint::EverySave)).await;
    let mut state = workflow("wf-auto");
    store.save_workflow_state(&state).await.unwrap();
    let first = store
        .get_latest_checkpoint(&state.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.state().unwrap(), state);

    state.mark_running();
    state.upsert_step(finished("fetch", 1));
    store.save_workflow_state(&state).await.unwrap();
    let latest = store
        .get_latest_checkpoint(&state.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.step_id, "fetch");
    assert_eq!(latest.state().unwrap(), state);
    assert_eq!(
        store
            .list_checkpoints(&state.id, 100, 0)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn auto_checkpoint_every_n_steps(backend: Backend) {
    let store = open_with(backend, |b| {
        b.auto_checkpoint(AutoCheckpoint::EveryNSteps(2))
    })
    .await;
    let mut state = workflow("wf-auto-n");
    state.upsert_step(step("pending", StepStatus::Pending, json!(null)));
    store.save_workflow_state(&state).await.unwrap();
    assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);

    state.upsert_step(finished("one", 1));
    store.save_workflow_state(&state).await.unwrap();
    assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);

    state.upsert_step(finished("two", 2));
    store.save_workflow_state(&state).await.unwrap();
    let latest = store
        .get_latest_checkpoint(&state.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.step_id, "two");
    assert_eq!(latest.state().unwrap(), state);
}

/// Another store on the same database, to read as a separate connection would; `None`
/// for `:memory:` (no other connection can see it).
async fn other_reader(store: &TestStore) -> Option<llm_orchestrator_state::SeaOrmStateStore> {
    store.reopen().await
}

async fn store_transaction_commits_everything_at_once(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-tx");
    state.upsert_step(finished("a", 1));
    let checkpoint = Checkpoint::of(&state, "a").unwrap();

    let tx = store.begin().await.unwrap();
    tx.save_workflow_state(&state).await.unwrap();
    tx.create_checkpoint(&checkpoint).await.unwrap();
    // Reads inside the transaction see its writes.
    assert_eq!(tx.load_workflow_state(&state.id).await.unwrap(), state);
    if backend == Backend::Postgres {
        // Another connection sees nothing until the commit. (SQLite's single writer
        // would make this reader wait for the write lock instead.)
        let reader = other_reader(&store).await.unwrap();
        assert!(matches!(
            reader.load_workflow_state(&state.id).await,
            Err(StateStoreError::NotFound(_))
        ));
    }
    tx.commit().await.unwrap();

    let reader = other_reader(&store).await;
    for view in [Some(store.store.clone()), reader].into_iter().flatten() {
        assert_eq!(view.load_workflow_state(&state.id).await.unwrap(), state);
        assert_eq!(
            view.get_latest_checkpoint(&state.id).await.unwrap(),
            Some(checkpoint.clone())
        );
    }
}

async fn store_transaction_rollback_and_drop_leave_nothing(backend: Backend) {
    let store = open(backend).await;
    let kept = workflow("wf-kept");
    store.save_workflow_state(&kept).await.unwrap();

    for explicit_rollback in [true, false] {
        let mut changed = kept.clone();
        changed.mark_failed("should not stick");
        let fresh = workflow("wf-gone");
        let tx = store.begin().await.unwrap();
        tx.save_workflow_state(&changed).await.unwrap();
        tx.save_workflow_state(&fresh).await.unwrap();
        tx.create_checkpoint(&Checkpoint::of(&fresh, "x").unwrap())
            .await
            .unwrap();
        if explicit_rollback {
            tx.rollback().await.unwrap();
        } else {
            drop(tx);
        }
        assert_eq!(store.load_workflow_state(&kept.id).await.unwrap(), kept);
        assert!(matches!(
            store.load_workflow_state(&fresh.id).await,
            Err(StateStoreError::NotFound(_))
        ));
        assert_eq!(store.get_latest_checkpoint(&fresh.id).await.unwrap(), None);
    }
}

async fn store_transaction_error_inside_leaves_nothing(backend: Backend) {
    let store = open(backend).await;
    let state = workflow("wf-tx-error");
    let tx = store.begin().await.unwrap();
    tx.save_workflow_state(&state).await.unwrap();
    // A checkpoint of a workflow that does not exist fails inside the transaction.
    let err = tx
        .create_checkpoint(&orphan_checkpoint())
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err}");
    // The caller gives up on the transaction: nothing of it remains.
    drop(tx);
    assert!(matches!(
        store.load_workflow_state(&state.id).await,
        Err(StateStoreError::NotFound(_))
    ));
}

async fn the_same_checkpoint_twice_in_a_transaction_is_a_conflict(backend: Backend) {
    let store = open(backend).await;
    let state = workflow("wf-tx-twice");
    store.save_workflow_state(&state).await.unwrap();
    let checkpoint = Checkpoint::of(&state, "start").unwrap();
    let tx = store.begin().await.unwrap();
    tx.create_checkpoint(&checkpoint).await.unwrap();
    // Outside a transaction this repeat would be taken for a retry and succeed; inside
    // one the caller wrote it twice, and every backend says so alike.
    let err = tx.create_checkpoint(&checkpoint).await.unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err}");
    drop(tx);
    assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);
}

/// A checkpoint of a workflow that was never saved: the database refuses it.
fn orphan_checkpoint() -> Checkpoint {
    Checkpoint::of(&workflow("wf-never-saved"), "x").unwrap()
}

async fn a_refused_write_in_a_store_transaction_is_undone_alone(backend: Backend) {
    let store = open(backend).await;
    let first = workflow("wf-tx-first");
    let second = workflow("wf-tx-second");
    let tx = store.begin().await.unwrap();
    tx.save_workflow_state(&first).await.unwrap();
    let err = tx
        .create_checkpoint(&orphan_checkpoint())
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err}");
    // The caller handles the error and goes on: the transaction still works (on
    // Postgres it would otherwise refuse every statement and roll back on commit).
    tx.save_workflow_state(&second).await.unwrap();
    let checkpoint = Checkpoint::of(&second, "start").unwrap();
    tx.create_checkpoint(&checkpoint).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(store.load_workflow_state(&first.id).await.unwrap(), first);
    assert_eq!(store.load_workflow_state(&second.id).await.unwrap(), second);
    assert_eq!(
        store.get_latest_checkpoint(&second.id).await.unwrap(),
        Some(checkpoint)
    );
}

async fn a_refused_write_in_an_application_transaction_is_undone_alone(backend: Backend) {
    let store = open(backend).await;
    store
        .connection()
        .execute_unprepared(INVOICES)
        .await
        .unwrap();
    let mut state = workflow("wf-invoice-refused");
    let txn = store.connection().begin().await.unwrap();
    txn.execute_unprepared("INSERT INTO invoices (number, amount) VALUES (1, 10)")
        .await
        .unwrap();
    let err = store
        .within(&txn)
        .create_checkpoint(&orphan_checkpoint())
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err}");
    txn.execute_unprepared("INSERT INTO invoices (number, amount) VALUES (2, 20)")
        .await
        .unwrap();
    let checkpoint = store
        .within(&txn)
        .record_step(&mut state, finished("bill", 2))
        .await
        .unwrap();
    txn.commit().await.unwrap();

    assert_eq!(invoice_numbers(store.connection()).await, [1, 2]);
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(checkpoint)
    );
}

/// Another connection holds `workflow_states` locked against readers until the returned
/// transaction ends.
async fn lock_out_readers(store: &TestStore) -> (SeaOrmStateStore, DatabaseTransaction) {
    let other = store.reopen().await.expect("a Postgres test store");
    let blocker = other.connection().begin().await.unwrap();
    blocker
        .execute_unprepared("LOCK TABLE workflow_states IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    (other, blocker)
}

async fn a_read_that_times_out_in_a_store_transaction_is_undone_alone(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-read-timeout");
    store.save_workflow_state(&state).await.unwrap();

    let tx = store.begin().await.unwrap();
    tx.transaction()
        .execute_unprepared("SET LOCAL lock_timeout = '200ms'")
        .await
        .unwrap();
    let (_other, blocker) = lock_out_readers(&store).await;
    let err = tx.load_workflow_state(&state.id).await.unwrap_err();
    // Another writer held the lock past the time-out: worth trying again.
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");
    assert!(
        err.is_transient() && err.to_string().contains("55P03"),
        "{err}"
    );
    blocker.rollback().await.unwrap();
    // The caller handles the error and goes on: the transaction still works and its
    // commit stores what came after (without the savepoint around the read, Postgres
    // would refuse the step and turn the commit into a silent rollback).
    let checkpoint = tx
        .record_step(&mut state, finished("after-timeout", 1))
        .await
        .unwrap();
    assert_eq!(tx.load_workflow_state(&state.id).await.unwrap(), state);
    tx.commit().await.unwrap();

    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(checkpoint)
    );
}

async fn a_read_that_times_out_in_an_application_transaction_is_undone_alone(backend: Backend) {
    let store = open(backend).await;
    store
        .connection()
        .execute_unprepared(INVOICES)
        .await
        .unwrap();
    let mut state = workflow("wf-read-timeout-app");
    store.save_workflow_state(&state).await.unwrap();

    let txn = store.connection().begin().await.unwrap();
    txn.execute_unprepared("SET LOCAL lock_timeout = '200ms'")
        .await
        .unwrap();
    txn.execute_unprepared("INSERT INTO invoices (number, amount) VALUES (7, 70)")
        .await
        .unwrap();
    let (_other, blocker) = lock_out_readers(&store).await;
    let err = store
        .within(&txn)
        .list_active_workflows()
        .await
        .unwrap_err();
    // Another writer held the lock past the time-out: worth trying again.
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");
    assert!(
        err.is_transient() && err.to_string().contains("55P03"),
        "{err}"
    );
    blocker.rollback().await.unwrap();
    txn.execute_unprepared("INSERT INTO invoices (number, amount) VALUES (8, 80)")
        .await
        .unwrap();
    store
        .within(&txn)
        .record_step(&mut state, finished("bill", 8))
        .await
        .unwrap();
    txn.commit().await.unwrap();

    assert_eq!(invoice_numbers(store.connection()).await, [7, 8]);
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

const INVOICES: &str =
    "CREATE TABLE IF NOT EXISTS invoices (number INTEGER PRIMARY KEY, amount INTEGER NOT NULL)";

async fn invoice_numbers(db: &impl ConnectionTrait) -> Vec<i64> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT number FROM invoices ORDER BY number",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| match backend {
            DbBackend::Postgres => i64::from(row.try_get_by_index::<i32>(0).unwrap()),
            _ => row.try_get_by_index::<i64>(0).unwrap(),
        })
        .collect()
}

async fn application_transaction_commits_its_rows_and_the_state_together(backend: Backend) {
    let store = open(backend).await;
    store
        .connection()
        .execute_unprepared(INVOICES)
        .await
        .unwrap();
    let mut state = workflow("wf-invoice");

    let txn = store.connection().begin().await.unwrap();
    txn.execute_unprepared("INSERT INTO invoices (number, amount) VALUES (1042, 99)")
        .await
        .unwrap();
    let checkpoint = store
        .within(&txn)
        .record_step(&mut state, finished("bill", 1042))
        .await
        .unwrap();
    txn.commit().await.unwrap();

    let reader = other_reader(&store).await;
    for view in [Some(store.store.clone()), reader].into_iter().flatten() {
        assert_eq!(invoice_numbers(view.connection()).await, [1042]);
        assert_eq!(view.load_workflow_state(&state.id).await.unwrap(), state);
        assert_eq!(
            view.get_latest_checkpoint(&state.id).await.unwrap(),
            Some(checkpoint.clone())
        );
    }
}

async fn application_transaction_rollback_leaves_neither(backend: Backend) {
    let store = open(backend).await;
    store
        .connection()
        .execute_unprepared(INVOICES)
        .await
        .unwrap();
    let before = workflow("wf-invoice-before");
    store.save_workflow_state(&before).await.unwrap();

    let mut state: WorkflowState = before.clone();
    let txn = store.connection().begin().await.unwrap();
    txn.execute_unprepared("INSERT INTO invoices (number, amount) VALUES (7, 1)")
        .await
        .unwrap();
    store
        .within(&txn)
        .record_step(&mut state, finished("bill", 7))
        .await
        .unwrap();
    txn.rollback().await.unwrap();

    assert!(invoice_numbers(store.connection()).await.is_empty());
    assert_eq!(store.load_workflow_state(&before.id).await.unwrap(), before);
    assert_eq!(store.get_latest_checkpoint(&before.id).await.unwrap(), None);
}

/// `call`'s answer if it has one within `polls` polls (the task yields between them);
/// otherwise `call` is dropped there, cancelled midway.
async fn gave_up_after_polls<T>(call: impl Future<Output = T>, polls: u64) -> Option<T> {
    let mut call = std::pin::pin!(call);
    for _ in 0..polls {
        if let std::task::Poll::Ready(answer) = futures::poll!(call.as_mut()) {
            return Some(answer);
        }
        tokio::task::yield_now().await;
    }
    None
}

async fn a_store_transaction_with_a_cancelled_call_commits_nothing(backend: Backend) {
    let store = open(backend).await;
    let first = workflow("wf-cancel-first");
    let mut cancelled = 0;
    for attempt in 0..300u64 {
        let tx = store.begin().await.unwrap();
        tx.save_workflow_state(&first).await.unwrap();
        let second = workflow(&format!("wf-cancel-{attempt}"));
        // Given up on at every point of the call, sooner or later: after 1 to 10 polls
        // (each a turn for the database to move on), or after 0 to 1,000 µs. The timer
        // alone cut nothing in some runs under load (its resolution is 1 ms).
        let saved = if attempt % 2 == 0 {
            gave_up_after_polls(tx.save_workflow_state(&second), attempt / 2 % 10 + 1).await
        } else {
            let patience = std::time::Duration::from_micros(attempt / 2 % 50 * 20);
            tokio::time::timeout(patience, tx.save_workflow_state(&second))
                .await
                .ok()
        };
        if saved.is_some() {
            tx.rollback().await.unwrap();
            continue;
        }
        cancelled += 1;
        // What the cancelled call left is unknown: the transaction takes no more calls
        // and its commit stores nothing, not even what came before the cancelled call.
        let err = tx.load_workflow_state(&first.id).await.unwrap_err();
        assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
        let err = tx.commit().await.unwrap_err();
        assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
        assert!(err.to_string().contains("cancelled"), "{err}");
        for id in [first.id, second.id] {
            assert!(
                matches!(
                    store.load_workflow_state(&id).await,
                    Err(StateStoreError::NotFound(_))
                ),
                "attempt {attempt}: part of a transaction with a cancelled call was committed"
            );
        }
    }
    assert!(cancelled > 0, "no call was cancelled in 300 attempts");
    // The store itself is unharmed.
    let tx = store.begin().await.unwrap();
    tx.save_workflow_state(&first).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.load_workflow_state(&first.id).await.unwrap(), first);
}

async fn overlapping_calls_on_one_store_transaction_take_turns(backend: Backend) {
    let store = open(backend).await;
    let tx = store.begin().await.unwrap();
    let mut kept = Vec::new();
    for n in 0..20 {
        let state = workflow(&format!("wf-overlap-{n}"));
        // A refused write beside a good one and a read, all polled together: the refused
        // one's undo must not take the good one with it.
        let orphan = orphan_checkpoint();
        let (saved, refused, read) = futures::join!(
            tx.save_workflow_state(&state),
            tx.create_checkpoint(&orphan),
            tx.load_workflow_state(&state.id),
        );
        assert!(
            matches!(refused, Err(StateStoreError::NotFound(_))),
            "{refused:?}"
        );
        saved.unwrap();
        assert!(
            matches!(read, Ok(_) | Err(StateStoreError::NotFound(_))),
            "{read:?}"
        );
        kept.push(state);
    }
    tx.commit().await.unwrap();
    for state in kept {
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    }

    // Overlapping calls given up on together, at every point: no panic, and the
    // transaction is then refused as aborted (or, when nothing was cut, commits).
    for attempt in 0..200u64 {
        let tx = store.begin().await.unwrap();
        let first = workflow(&format!("wf-overlap-cut-{attempt}"));
        let second = workflow(&format!("wf-overlap-cut-{attempt}-b"));
        let patience = std::time::Duration::from_micros(attempt % 50 * 30);
        let both = async {
            futures::join!(
                tx.save_workflow_state(&first),
                tx.load_workflow_state(&second.id),
                tx.save_workflow_state(&second),
            )
        };
        match tokio::time::timeout(patience, both).await {
            Ok(_) => tx.commit().await.unwrap(),
            Err(_) => {
                let err = tx.commit().await.unwrap_err();
                assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
            }
        }
    }
}

/// The application's own failed statement in a `StoreTransaction` (through
/// `transaction()`) aborts it on Postgres: the store's next call cannot take its savepoint,
/// and the commit must then say that nothing was committed instead of answering `Ok`.
async fn a_store_transaction_its_own_statement_aborted_does_not_report_a_commit(backend: Backend) {
    let store = open(backend).await;
    let first = workflow("wf-own-failure-first");
    let second = workflow("wf-own-failure-second");
    let tx = store.begin().await.unwrap();
    tx.save_workflow_state(&first).await.unwrap();
    tx.transaction()
        .execute_unprepared("SELECT 1 / 0")
        .await
        .unwrap_err();
    let err = tx.save_workflow_state(&second).await.unwrap_err();
    assert!(!matches!(err, StateStoreError::NotFound(_)), "{err:?}");
    let err = tx.commit().await.unwrap_err();
    assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
    for id in [first.id, second.id] {
        assert!(matches!(
            store.load_workflow_state(&id).await,
            Err(StateStoreError::NotFound(_))
        ));
    }
}
