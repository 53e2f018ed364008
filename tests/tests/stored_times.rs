//! Timestamps the database holds but the store cannot read (Postgres takes years up to
//! 294276 and `infinity`; a SQLite file may hold any text) make every read that meets
//! them a typed error for that one row, never a panic, and the other rows are still
//! served. Times outside what both databases keep are refused on write, and what is
//! saved loads back equal on both, at microseconds.

use std::time::Duration;

use backend_suite::{Backend, at, backend_tests, execute_sql, open, step, workflow};
use llm_orchestrator_state::admin::WorkflowQuery;
use llm_orchestrator_state::{
    Checkpoint, SeaOrmStateStore, StateStore, StateStoreError, StepStatus, WorkflowState,
};
use serde_json::json;

/// A column holding a timestamp, and the statement that puts an unreadable one there
/// for the workflow state `{}`.
struct Column {
    name: &'static str,
    /// Whether the workflow's own state (row or steps) no longer reads.
    in_state: bool,
    /// Whether its checkpoints no longer read.
    in_checkpoint: bool,
    sql: &'static str,
}

/// Every timestamp column, each set (`$T` below) to a value the store cannot read.
const COLUMNS: [Column; 7] = [
    Column {
        name: "workflow started_at",
        in_state: true,
        in_checkpoint: false,
        sql: "UPDATE workflow_states SET started_at = $T WHERE id = {}",
    },
    Column {
        name: "workflow updated_at",
        in_state: true,
        in_checkpoint: false,
        sql: "UPDATE workflow_states SET updated_at = $T WHERE id = {}",
    },
    Column {
        name: "workflow completed_at",
        in_state: true,
        in_checkpoint: false,
        sql: "UPDATE workflow_states SET completed_at = $T WHERE id = {}",
    },
    Column {
        name: "lease_expires_at",
        in_state: true,
        in_checkpoint: false,
        sql: "UPDATE workflow_states SET lease_owner = 'gone', lease_expires_at = $T \
              WHERE id = {}",
    },
    Column {
        name: "step started_at",
        in_state: true,
        in_checkpoint: false,
        sql: "UPDATE step_states SET started_at = $T WHERE workflow_state_id = {}",
    },
    Column {
        name: "step completed_at",
        in_state: true,
        in_checkpoint: false,
        sql: "UPDATE step_states SET completed_at = $T WHERE workflow_state_id = {}",
    },
    Column {
        name: "checkpoint timestamp",
        in_state: false,
        in_checkpoint: true,
        sql: "UPDATE checkpoints SET timestamp = $T WHERE workflow_state_id = {}",
    },
];

/// Values the database takes and the store cannot read.
fn unreadable_times(backend: Backend) -> Vec<&'static str> {
    match backend {
        Backend::Postgres => vec![
            "'290000-01-01 00:00:00+00'",
            "'infinity'",
            "'0044-03-15 00:00:00+00 BC'",
        ],
        _ => vec!["'290000-01-01T00:00:00+00:00'", "'not a time'", "12"],
    }
}

/// An error a caller can act on: the row is damaged, nothing else is.
fn assert_row_error<T: std::fmt::Debug>(what: &str, result: Result<T, StateStoreError>) {
    match result {
        Err(StateStoreError::Serialization(_) | StateStoreError::InvalidState(_)) => {}
        other => panic!("{what}: expected a typed row error, got {other:?}"),
    }
}

/// A running workflow with a completed step and its checkpoint.
async fn running_with_step(store: &SeaOrmStateStore, id: &str) -> (WorkflowState, Checkpoint) {
    let mut state = workflow(id);
    state.mark_running();
    state.completed_at = Some(at(5, 0));
    let mut done = step("retrieve", StepStatus::Running, json!({ "n": 1 }));
    done.mark_completed(json!({ "documents": 3 }));
    let checkpoint = store.record_step(&mut state, done).await.unwrap();
    (state, checkpoint)
}

/// Every public read, with one workflow's timestamp column holding each unreadable value.
async fn no_read_panics_on_a_stored_time(backend: Backend) {
    let store = open(backend).await;
    let (healthy, healthy_checkpoint) = running_with_step(&store, "healthy").await;
    for column in &COLUMNS {
        for value in unreadable_times(backend) {
            let case = format!("{} = {value}", column.name);
            let (damaged, checkpoint) = running_with_step(&store, &format!("damaged {case}")).await;
            let sql = column.sql.replace("$T", value);
            assert!(execute_sql(&store, &sql, damaged.id).await > 0, "{case}");

            // Reads of the damaged workflow: a typed error where they meet the value.
            let loaded = store.load_workflow_state(&damaged.id).await;
            let versioned = store.load_workflow_state_versioned(&damaged.id).await;
            let by_name = store
                .load_workflow_state_by_workflow_id(&damaged.workflow_id)
                .await;
            if column.in_state {
                assert_row_error(&format!("load, {case}"), loaded);
                assert_row_error(&format!("load versioned, {case}"), versioned);
                assert_row_error(&format!("load by workflow_id, {case}"), by_name);
            } else {
                assert_eq!(loaded.unwrap(), damaged, "{case}");
                assert!(versioned.is_ok() && by_name.is_ok(), "{case}");
            }
            let latest = store.get_latest_checkpoint(&damaged.id).await;
            let one = store.get_checkpoint(&checkpoint.id).await;
            let info = store.checkpoint_info(&checkpoint.id).await;
            let restored = store.restore_from_checkpoint(&checkpoint.id).await;
            if column.in_checkpoint {
                assert_row_error(&format!("latest checkpoint, {case}"), latest);
                assert_row_error(&format!("get checkpoint, {case}"), one);
                assert_row_error(&format!("checkpoint info, {case}"), info);
                assert_row_error(&format!("restore, {case}"), restored);
            } else {
                assert_eq!(latest.unwrap(), Some(checkpoint.clone()), "{case}");
                assert!(one.is_ok() && info.is_ok() && restored.is_ok(), "{case}");
            }
            // Listings of its checkpoints leave out only what does not read.
            let listed = store.list_checkpoints(&damaged.id, 10, 0).await.unwrap();
            let infos = store.list_checkpoint_infos(&damaged.id, 10, 0).await;
            assert_eq!(listed.len(), usize::from(!column.in_checkpoint), "{case}");
            assert_eq!(
                infos.unwrap().len(),
                usize::from(!column.in_checkpoint),
                "{case}"
            );
            assert_row_error(
                &format!("export, {case}"),
                store.export_workflow(&damaged.id).await,
            );

            // Everything else is still served.
            assert_eq!(
                store.load_workflow_state(&healthy.id).await.unwrap(),
                healthy
            );
            assert_eq!(
                store.get_latest_checkpoint(&healthy.id).await.unwrap(),
                Some(healthy_checkpoint.clone())
            );
            assert!(store.export_workflow(&healthy.id).await.is_ok(), "{case}");
            let active = store.list_active_workflows().await.unwrap();
            assert!(active.contains(&healthy), "{case}");
            assert_eq!(
                active.iter().any(|state| state.id == damaged.id),
                !column.in_state,
                "{case}"
            );
            let page = store.list_active_workflows_page(None, 100).await.unwrap();
            assert!(page.workflows.contains(&healthy), "{case}");
            assert!(store.workflow_summary(&healthy.id).await.is_ok(), "{case}");
            let summaries = store.workflow_page(&WorkflowQuery::default()).await;
            if column.in_state && !column.name.starts_with("step") {
                assert_row_error(&format!("workflow page, {case}"), summaries);
            } else {
                assert!(summaries.is_ok(), "{case}: {summaries:?}");
            }

            // Claims and recovery take the healthy workflow and leave the damaged one
            // unclaimed (or claimed, when only its checkpoint is damaged).
            let claimed = store
                .claim_workflows("claimer", Duration::from_secs(60), 100)
                .await
                .unwrap();
            assert!(claimed.iter().any(|c| c.state.id == healthy.id), "{case}");
            // A lease that ran out (a time before now, as the database compares them) is
            // taken over, its expiry replaced: the row reads again.
            if column.name != "lease_expires_at" {
                assert_eq!(
                    claimed.iter().any(|c| c.state.id == damaged.id),
                    !column.in_state,
                    "{case}"
                );
            }
            for claim in &claimed {
                store.release_lease(&claim.lease).await.unwrap();
            }
            let recovered = store
                .recover_workflows("recoverer", Duration::from_secs(60), 100)
                .await
                .unwrap();
            assert!(recovered.iter().any(|r| r.state == healthy), "{case}");
            for recovery in &recovered {
                if recovery.state.id == damaged.id && column.in_checkpoint {
                    // Resumed from its stored state: its newest checkpoint does not read.
                    assert_eq!(recovery.checkpoint, None, "{case}");
                }
                store.release_lease(&recovery.lease).await.unwrap();
            }

            // Steps and checkpoints cascade: the next case starts from the healthy one.
            execute_sql(
                &store,
                "DELETE FROM workflow_states WHERE id = {}",
                damaged.id,
            )
            .await;
        }
    }
}

/// Times outside the years 1 to 9999 are refused before anything is written, whichever
/// field holds them; nanoseconds are kept as microseconds on both databases.
async fn times_are_refused_outside_the_kept_range_and_kept_at_microseconds(backend: Backend) {
    let store = open(backend).await;
    let far = chrono::DateTime::from_timestamp(300_000_000_000, 0).unwrap(); // year 11476
    let early = chrono::DateTime::from_timestamp(-62_200_000_000, 0).unwrap(); // year 0
    for time in [far, early] {
        let mut state = workflow("far");
        state.started_at = time;
        assert!(
            matches!(
                store.save_workflow_state(&state).await,
                Err(StateStoreError::InvalidInput(_))
            ),
            "started_at {time}"
        );
        let mut state = workflow("far");
        state.completed_at = Some(time);
        assert!(matches!(
            store.save_workflow_state(&state).await,
            Err(StateStoreError::InvalidInput(_))
        ));
        let mut state = workflow("far");
        let mut far_step = step("s", StepStatus::Running, json!(null));
        far_step.started_at = Some(time);
        assert!(matches!(
            store.record_step(&mut state, far_step).await,
            Err(StateStoreError::InvalidInput(_))
        ));
        let state = workflow("far");
        store.save_workflow_state(&state).await.unwrap();
        let mut checkpoint = Checkpoint::of(&state, "s").unwrap();
        checkpoint.timestamp = time;
        assert!(matches!(
            store.create_checkpoint(&checkpoint).await,
            Err(StateStoreError::InvalidInput(_))
        ));
        execute_sql(
            &store,
            "DELETE FROM workflow_states WHERE id = {}",
            state.id,
        )
        .await;
    }

    // Nanoseconds: the same microseconds come back on every backend.
    let mut state = workflow("nanos");
    let nanos = at(1, 0) + chrono::Duration::nanoseconds(123_456_789);
    state.started_at = nanos;
    state.updated_at = nanos;
    store.save_workflow_state(&state).await.unwrap();
    let loaded = store.load_workflow_state(&state.id).await.unwrap();
    let micros = at(1, 123_456);
    assert_eq!((loaded.started_at, loaded.updated_at), (micros, micros));
    let mut checkpoint = Checkpoint::of(&loaded, "s").unwrap();
    checkpoint.timestamp = nanos;
    store.create_checkpoint(&checkpoint).await.unwrap();
    let stored = store.get_checkpoint(&checkpoint.id).await.unwrap();
    assert_eq!(stored.timestamp, micros);
}

backend_tests!(
    no_read_panics_on_a_stored_time,
    times_are_refused_outside_the_kept_range_and_kept_at_microseconds,
);
