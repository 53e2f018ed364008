//! SQLite after an error that made it roll a whole transaction back by itself (a full
//! disk, an I/O error, an interrupt, a trigger's `RAISE(ROLLBACK)`): every call that
//! returns `Ok` afterwards is committed, other connections can write the file, and a
//! `StoreTransaction` that SQLite ended under a call says so instead of committing
//! nothing or half.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use backend_suite::{Backend, TestStore, step, workflow};
use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
use llm_orchestrator_state::{
    Checkpoint, StateStore, StateStoreBuilder, StateStoreError, StepStatus, WorkflowState,
};
use serde_json::json;

/// A step whose outputs take some room, so a few of them fill a page or more.
fn bulky_step(n: usize) -> llm_orchestrator_state::StepState {
    step(
        &format!("step-{n}"),
        StepStatus::Completed,
        json!({ "n": n, "text": "x".repeat(3000) }),
    )
}

/// A store that keeps every checkpoint, so each acknowledged one can be looked for.
async fn open(backend: Backend) -> TestStore {
    backend_suite::open_with(backend, |builder| builder.checkpoint_retention(None)).await
}

/// One number a SQLite pragma reads back.
async fn pragma(store: &TestStore, name: &str) -> i64 {
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            format!("PRAGMA {name}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

async fn execute(store: &TestStore, sql: &str) {
    store
        .connection()
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// Makes SQLite itself roll back the whole transaction of any write of the step `boom`,
/// and refuse (undoing only that statement) any write of the step `refused`.
async fn install_rollback_trigger(store: &TestStore) {
    for event in ["INSERT", "UPDATE"] {
        execute(
            store,
            &format!(
                "CREATE TRIGGER rollback_on_{event} BEFORE {event} ON step_states \
                 WHEN NEW.step_id = 'boom' \
                 BEGIN SELECT RAISE(ROLLBACK, 'rolled back by test trigger'); END"
            ),
        )
        .await;
        execute(
            store,
            &format!(
                "CREATE TRIGGER abort_on_{event} BEFORE {event} ON step_states \
                 WHEN NEW.step_id = 'refused' \
                 BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
            ),
        )
        .await;
    }
}

/// A write the database refuses, undoing only its own statement, as most errors do (a
/// duplicate id, a constraint): the kind of error that, after SQLite had rolled a
/// transaction back by itself, used to leave the store's connection inside a transaction
/// that nothing would commit.
async fn refuse_a_step(store: &TestStore, state: &WorkflowState) {
    let err = store
        .record_step(
            &mut state.clone(),
            step("refused", StepStatus::Completed, json!({})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("refused by test trigger"),
        "{err:?}"
    );
}

/// The store's one connection holds no transaction: a plain `BEGIN` on it works (it
/// fails inside a transaction), and is rolled back.
async fn assert_outside_a_transaction(store: &TestStore) {
    let begun = store.connection().execute_unprepared("BEGIN").await;
    assert!(
        begun.is_ok(),
        "the store's connection is still inside a transaction: {begun:?}"
    );
    execute(store, "ROLLBACK").await;
}

/// Every acknowledged checkpoint is committed: another store on the file (SQLite file) sees
/// them all and can write while this one stays open, and so does a store opened after
/// this one closed. On `:memory:` (no other store sees it) the store's connection is out
/// of any transaction and holds them.
async fn assert_all_committed(
    store: TestStore,
    state: &WorkflowState,
    acknowledged: &[Checkpoint],
) {
    assert_outside_a_transaction(&store).await;
    for checkpoint in acknowledged {
        assert_eq!(
            &store.get_checkpoint(&checkpoint.id).await.unwrap(),
            checkpoint
        );
    }
    let Some(builder) = store.builder_for_same_database() else {
        return;
    };
    let other = builder
        .lock_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    for checkpoint in acknowledged {
        assert_eq!(
            &other.get_checkpoint(&checkpoint.id).await.unwrap(),
            checkpoint,
            "acknowledged but not committed"
        );
    }
    // The write lock is free.
    let mut theirs = workflow("wf-other-writer");
    other.save_workflow_state(&theirs).await.unwrap();
    other.record_step(&mut theirs, bulky_step(0)).await.unwrap();
    other.close().await.unwrap();
    store.store.clone().close().await.unwrap();
    let reopened = store.reopen().await.unwrap();
    assert_eq!(
        &reopened.load_workflow_state(&state.id).await.unwrap(),
        state
    );
    for checkpoint in acknowledged {
        assert_eq!(
            &reopened.get_checkpoint(&checkpoint.id).await.unwrap(),
            checkpoint
        );
    }
}

/// The database fills up (`SQLITE_FULL`, through `max_page_count`), the application
/// keeps writing (and meets other errors), space is freed, it writes on: what was
/// acknowledged is committed.
async fn acknowledged_writes_survive_a_full_database(backend: Backend) {
    let store = open(backend).await;
    install_rollback_trigger(&store).await;
    let mut state = workflow("wf-full");
    store.save_workflow_state(&state).await.unwrap();
    let pages = pragma(&store, "page_count").await;
    execute(&store, &format!("PRAGMA max_page_count = {}", pages + 8)).await;
    let mut acknowledged = Vec::new();
    let mut full = 0;
    for n in 0..120 {
        match store.record_step(&mut state, bulky_step(n)).await {
            Ok(checkpoint) => acknowledged.push(checkpoint),
            Err(err) => {
                assert!(err.to_string().contains("full"), "{err:?}");
                full += 1;
                refuse_a_step(&store, &state).await;
            }
        }
    }
    assert!(full > 0, "the database never filled up");
    // Space is freed; the application writes on.
    execute(&store, "PRAGMA max_page_count = 1073741823").await;
    for n in 120..130 {
        acknowledged.push(store.record_step(&mut state, bulky_step(n)).await.unwrap());
    }
    assert_all_committed(store, &state, &acknowledged).await;
}

/// A trigger makes SQLite roll back the whole transaction of one write (as a full disk,
/// an I/O error or an interrupt may), another refuses a write as most errors do: the
/// calls fail, and every call after them that returns `Ok` is committed.
async fn acknowledged_writes_survive_a_transaction_sqlite_rolled_back(backend: Backend) {
    let store = open(backend).await;
    install_rollback_trigger(&store).await;
    let mut state = workflow("wf-rolled-back");
    store.save_workflow_state(&state).await.unwrap();
    let mut acknowledged = Vec::new();
    for n in 0..6 {
        acknowledged.push(store.record_step(&mut state, bulky_step(n)).await.unwrap());
        let before = state.clone();
        let err = store
            .record_step(&mut state, step("boom", StepStatus::Completed, json!({})))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("rolled back by test trigger"),
            "{err:?}"
        );
        assert_eq!(
            state, before,
            "a refused step is not applied to the caller's state"
        );
        refuse_a_step(&store, &state).await;
    }
    assert_all_committed(store, &state, &acknowledged).await;
}

/// SQLite interrupts a statement (`SQLITE_INTERRUPT`, here through a progress handler
/// that fires once, at a different point of a write each time), which rolls back the
/// whole transaction when it lands inside one: every call that returns `Ok` is committed.
async fn acknowledged_writes_survive_an_interrupt(backend: Backend) {
    let store = open(backend).await;
    install_rollback_trigger(&store).await;
    let mut state = workflow("wf-interrupted");
    store.save_workflow_state(&state).await.unwrap();
    // Counts SQLite's progress callbacks down; the one that reaches zero interrupts.
    let countdown = Arc::new(AtomicI64::new(-1));
    {
        let pool = store.connection().get_sqlite_connection_pool();
        let mut conn = pool.acquire().await.unwrap();
        let countdown = countdown.clone();
        conn.lock_handle()
            .await
            .unwrap()
            .set_progress_handler(1, move || countdown.fetch_sub(1, Ordering::AcqRel) != 0);
    }
    let mut acknowledged = Vec::new();
    let mut interrupted = 0;
    for (n, after) in [1, 5, 10, 20, 40, 60, 80, 120, 160, 240, 320, 480]
        .into_iter()
        .enumerate()
    {
        countdown.store(after, Ordering::Release);
        match store.record_step(&mut state, bulky_step(n)).await {
            Ok(checkpoint) => acknowledged.push(checkpoint),
            Err(err) => {
                assert!(err.to_string().contains("interrupt"), "{err:?}");
                interrupted += 1;
            }
        }
        countdown.store(-1, Ordering::Release);
        refuse_a_step(&store, &state).await;
        acknowledged.push(
            store
                .record_step(&mut state, bulky_step(100 + n))
                .await
                .unwrap(),
        );
    }
    assert!(interrupted > 0, "no write was interrupted");
    assert_all_committed(store, &state, &acknowledged).await;
}

/// Inside a `StoreTransaction`, a call whose error made SQLite roll the whole transaction
/// back is `Aborted`, and so are the calls after it and the commit: none of them is
/// written, alone or together. Before, the calls after it each committed on their own.
async fn a_store_transaction_sqlite_rolled_back_is_aborted(backend: Backend) {
    let store = open(backend).await;
    install_rollback_trigger(&store).await;
    let kept = workflow("wf-kept");
    store.save_workflow_state(&kept).await.unwrap();

    let tx = store.begin().await.unwrap();
    let mut first = workflow("wf-in-transaction");
    tx.save_workflow_state(&first).await.unwrap();
    let err = tx
        .record_step(&mut first, step("boom", StepStatus::Completed, json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
    assert!(
        err.to_string().contains("rolled back by test trigger"),
        "{err}"
    );
    let after = workflow("wf-after-the-error");
    let err = tx.save_workflow_state(&after).await.unwrap_err();
    assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
    let err = tx.commit().await.unwrap_err();
    assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
    for state in [&first, &after] {
        let err = store.load_workflow_state(&state.id).await.unwrap_err();
        assert!(matches!(err, StateStoreError::NotFound(_)), "{err:?}");
    }

    // Rolled back instead of committed: the same, and the store goes on.
    let tx = store.begin().await.unwrap();
    let mut second = workflow("wf-rolled-back-by-caller");
    tx.save_workflow_state(&second).await.unwrap();
    let err = tx
        .record_step(&mut second, step("boom", StepStatus::Completed, json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
    tx.rollback().await.unwrap();
    let mut state = kept.clone();
    let checkpoint = store.record_step(&mut state, bulky_step(1)).await.unwrap();
    assert_all_committed(store, &state, &[checkpoint]).await;
}

/// A call in the application's own transaction (`within`) whose error made SQLite roll
/// that transaction back says so (`Aborted`), so the application does not go on writing
/// rows that would each commit on their own.
async fn a_call_within_a_transaction_sqlite_rolled_back_is_aborted(backend: Backend) {
    use llm_orchestrator_state::sea_orm::TransactionTrait;
    let store = open(backend).await;
    install_rollback_trigger(&store).await;
    let txn = store.connection().begin().await.unwrap();
    let mut state = workflow("wf-within");
    store
        .within(&txn)
        .save_workflow_state(&state)
        .await
        .unwrap();
    let err = store
        .within(&txn)
        .record_step(&mut state, step("boom", StepStatus::Completed, json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Aborted(_)), "{err:?}");
    drop(txn);
    let err = store.load_workflow_state(&state.id).await.unwrap_err();
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err:?}");
    let mut kept = workflow("wf-after");
    store.save_workflow_state(&kept).await.unwrap();
    let checkpoint = store.record_step(&mut kept, bulky_step(1)).await.unwrap();
    assert_all_committed(store, &kept, &[checkpoint]).await;
}

backend_suite::backend_tests_for!(
    mod sqlite_memory = SqliteMemory:
    acknowledged_writes_survive_a_full_database,
    acknowledged_writes_survive_a_transaction_sqlite_rolled_back,
    acknowledged_writes_survive_an_interrupt,
    a_store_transaction_sqlite_rolled_back_is_aborted,
    a_call_within_a_transaction_sqlite_rolled_back_is_aborted,
);
backend_suite::backend_tests_for!(
    mod sqlite_file = SqliteFile:
    acknowledged_writes_survive_a_full_database,
    acknowledged_writes_survive_a_transaction_sqlite_rolled_back,
    acknowledged_writes_survive_an_interrupt,
    a_store_transaction_sqlite_rolled_back_is_aborted,
    a_call_within_a_transaction_sqlite_rolled_back_is_aborted,
);

/// Another process writes a SQLite file under a file-size limit (`ulimit -f`, signal
/// SIGXFSZ ignored), so SQLite's writes to the file and its write-ahead log start failing
/// with an I/O error part-way, as on a disk that filled up: while it is still running,
/// this process can write the file (no transaction left open holding the lock), and once
/// it exited every step it saw acknowledged is stored.
#[tokio::test]
async fn a_process_whose_writes_fail_with_io_errors_loses_no_acknowledged_step() {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limited.db");
    let target = path.display().to_string();
    // The tables exist before the limit applies.
    StateStoreBuilder::new(target.clone())
        .connect()
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let limit_kib = std::fs::metadata(&path).unwrap().len() / 1024 + 256;
    let script = format!(
        "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$1\" 200",
        // `ulimit -f` counts 512-byte blocks in a POSIX shell.
        limit_kib * 2
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_limited_writer"))
        .arg(&target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start limited_writer");
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "done" {
            break;
        }
        match line.split_once(' ') {
            Some(("ack", id)) => acknowledged.push(id.parse::<uuid::Uuid>().unwrap()),
            Some(("err", err)) => failed.push(err.to_owned()),
            _ => panic!("unexpected line from limited_writer: {line}"),
        }
    }
    assert!(!failed.is_empty(), "the file-size limit was never reached");
    assert!(!acknowledged.is_empty(), "no write succeeded");

    // The writer is still running: its file is not locked by a transaction left open.
    let other = StateStoreBuilder::new(target.clone())
        .lock_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let outcome = other.save_workflow_state(&workflow("wf-beside")).await;
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    child.wait().unwrap();
    outcome.unwrap_or_else(|err| panic!("writing beside the limited writer: {err}"));
    other.close().await.unwrap();

    let reopened = StateStoreBuilder::new(target).connect().await.unwrap();
    let lost: Vec<_> = lost_checkpoints(&reopened, &acknowledged).await;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged steps lost (failed calls: {failed:?})",
        lost.len(),
        acknowledged.len()
    );
}

/// The checkpoints of `ids` the store does not hold.
async fn lost_checkpoints(
    store: &llm_orchestrator_state::SeaOrmStateStore,
    ids: &[uuid::Uuid],
) -> Vec<uuid::Uuid> {
    let mut lost = Vec::new();
    for id in ids {
        if store.get_checkpoint(id).await.is_err() {
            lost.push(*id);
        }
    }
    lost
}
