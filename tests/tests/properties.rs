//! Round trips on every backend: what you save is what you load, exactly, for arbitrary
//! unicode, nested JSON, microsecond timestamps, optional fields and step sets; and a
//! checkpoint's snapshot restores to exactly the state it was taken of.
//!
//! `PROPTEST_CASES` changes the number of cases (default 32 per test and backend).

use std::collections::HashMap;

use backend_suite::{Backend, TestStore, backend_sync_tests, open, open_with};
use chrono::{DateTime, Utc};
use llm_orchestrator_state::{
    Checkpoint, StateStore, StepState, StepStatus, WorkflowState, WorkflowStatus,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};
use uuid::Uuid;

backend_sync_tests!(
    saved_states_load_back_exactly,
    checkpoints_restore_exactly,
    active_workflows_list_back_exactly,
    checkpoint_snapshots_round_trip_exactly,
    load_by_workflow_id_returns_the_latest_run,
    steps_stored_as_changes_load_back_exactly,
);

/// Any character but NUL (which no backend accepts in text).
fn non_nul_char() -> impl Strategy<Value = char> {
    any::<char>().prop_filter("NUL is refused by design", |c| *c != '\0')
}

/// Strings of `min..=max` characters (not bytes), no NUL.
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(non_nul_char(), min..=max).prop_map(String::from_iter)
}

/// Instants from year 1 to 9999 with microsecond precision, the precision the store keeps.
fn timestamp() -> impl Strategy<Value = DateTime<Utc>> {
    let first = -62_135_596_800_i64; // 0001-01-01T00:00:00Z
    let last = 253_402_300_799_i64; // 9999-12-31T23:59:59Z
    prop_oneof![
        // Mostly near now, where real data lives; sometimes anywhere in the range.
        3 => (1_600_000_000_i64..2_000_000_000, 0_u32..1_000_000),
        1 => (first..=last, 0_u32..1_000_000),
    ]
    .prop_map(|(seconds, micros)| {
        DateTime::from_timestamp(seconds, micros * 1000).expect("in chrono's range")
    })
}

/// Floats that every backend keeps as floats. Whole numbers of 1e16 and more are left
/// to `whole_floats_stay_floats` (workflows.rs), which checks them one by one.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e15..1e15_f64,
        any::<f64>().prop_filter("finite and not a large whole number", |x| {
            x.is_finite() && !(x.fract() == 0.0 && x.abs() >= 1e16)
        }),
    ]
}

/// JSON documents a few levels deep with every kind of value.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float().prop_map(Value::from),
        text(0, 24).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(0, 12), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn step_status() -> impl Strategy<Value = StepStatus> {
    prop::sample::select(StepStatus::ALL.to_vec())
}

fn step_state() -> impl Strategy<Value = StepState> {
    (
        text(1, 255),
        step_status(),
        prop::option::of(timestamp()),
        prop::option::of(timestamp()),
        json_value(),
        prop::option::of(text(0, 64)),
        any::<i32>(),
    )
        .prop_map(
            |(step_id, status, started_at, completed_at, outputs, error, retry_count)| StepState {
                step_id,
                status,
                started_at,
                completed_at,
                outputs,
                error,
                retry_count,
            },
        )
}

fn workflow_state() -> impl Strategy<Value = WorkflowState> {
    (
        (
            any::<u128>(),
            text(1, 255),
            text(1, 255),
            prop::sample::select(WorkflowStatus::ALL.to_vec()),
            prop::option::of(text(0, 255)),
        ),
        (
            timestamp(),
            timestamp(),
            prop::option::of(timestamp()),
            json_value(),
            prop::option::of(text(0, 200)),
            prop::collection::vec(step_state(), 0..5),
        ),
    )
        .prop_map(
            |(
                (id, workflow_id, workflow_name, status, user_id),
                (started_at, updated_at, completed_at, context, error, steps),
            )| WorkflowState {
                id: Uuid::from_u128(id),
                workflow_id,
                workflow_name,
                status,
                user_id,
                started_at,
                updated_at,
                completed_at,
                context,
                error,
                steps: steps
                    .into_iter()
                    .map(|step| (step.step_id.clone(), step))
                    .collect::<HashMap<_, _>>(),
            },
        )
}

/// A runner with the suite's case count and no regression files (the cases depend on the
/// backend, which the file name could not say).
fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(32);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// One runtime and one store per property; every case uses fresh ids.
fn runtime_and_store(backend: Backend) -> (tokio::runtime::Runtime, TestStore) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let store = runtime.block_on(open(backend));
    (runtime, store)
}

fn saved_states_load_back_exactly(backend: Backend) {
    let (runtime, store) = runtime_and_store(backend);
    let result = runner().run(&(workflow_state(), workflow_state()), |(first, second)| {
        // The second is a later save of the same run: every field and step may change.
        let second = WorkflowState {
            id: first.id,
            ..second
        };
        runtime.block_on(async {
            store.save_workflow_state(&first).await.unwrap();
            prop_assert_eq!(store.load_workflow_state(&first.id).await.unwrap(), first);
            store.save_workflow_state(&second).await.unwrap();
            prop_assert_eq!(store.load_workflow_state(&second.id).await.unwrap(), second);
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn checkpoints_restore_exactly(backend: Backend) {
    let (runtime, store) = runtime_and_store(backend);
    let strategy = (workflow_state(), text(1, 255), timestamp());
    let result = runner().run(&strategy, |(state, step_id, taken_at)| {
        runtime.block_on(async {
            store.save_workflow_state(&state).await.unwrap();
            let mut checkpoint = Checkpoint::of(&state, step_id).unwrap();
            checkpoint.timestamp = taken_at;
            store.create_checkpoint(&checkpoint).await.unwrap();

            prop_assert_eq!(
                store.get_latest_checkpoint(&state.id).await.unwrap(),
                Some(checkpoint.clone())
            );
            prop_assert_eq!(
                store.restore_from_checkpoint(&checkpoint.id).await.unwrap(),
                state.clone()
            );

            let rolled_back = store.rollback_to_checkpoint(&checkpoint.id).await.unwrap();
            prop_assert_eq!(
                &store.load_workflow_state(&state.id).await.unwrap(),
                &rolled_back
            );
            prop_assert_eq!(
                WorkflowState {
                    updated_at: state.updated_at,
                    ..rolled_back
                },
                state
            );
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn active_workflows_list_back_exactly(backend: Backend) {
    let (runtime, store) = runtime_and_store(backend);
    // A fresh store per case would be slow; instead each case finishes its workflows, so
    // the active list holds exactly the case's own.
    let strategy = prop::collection::vec(workflow_state(), 0..4);
    let result = runner().run(&strategy, |states| {
        runtime.block_on(async {
            for state in &states {
                store.save_workflow_state(state).await.unwrap();
            }
            let listed = store.list_active_workflows().await.unwrap();
            // Most recently updated first, over the whole range of years.
            for pair in listed.windows(2) {
                prop_assert!(
                    pair[0].updated_at >= pair[1].updated_at,
                    "{} listed before {}",
                    pair[0].updated_at,
                    pair[1].updated_at
                );
            }
            let mut expected: Vec<_> = states.iter().filter(|s| s.is_active()).cloned().collect();
            prop_assert_eq!(listed.len(), expected.len());
            for state in &listed {
                let position = expected.iter().position(|e| e.id == state.id);
                prop_assert!(position.is_some(), "unexpected {:?}", state.id);
                prop_assert_eq!(state, &expected.remove(position.unwrap()));
            }
            for mut state in states {
                state.status = WorkflowStatus::Completed;
                store.save_workflow_state(&state).await.unwrap();
            }
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn checkpoint_snapshots_round_trip_exactly(backend: Backend) {
    let (runtime, store) = runtime_and_store(backend);
    let owner = workflow_state();
    let result = runner().run(
        &(
            owner,
            prop::collection::vec((text(1, 255), timestamp(), json_value()), 1..4),
        ),
        |(state, checkpoints)| {
            runtime.block_on(async {
                store.save_workflow_state(&state).await.unwrap();
                // Any JSON is stored as given, whatever it holds: as the snapshot itself,
                // or inside a state of the workflow.
                let mut created = Vec::new();
                for (n, (step_id, timestamp, json)) in checkpoints.into_iter().enumerate() {
                    let snapshot = if n % 2 == 0 {
                        json
                    } else {
                        let mut snapshot_state = state.clone();
                        snapshot_state.context = json;
                        serde_json::to_value(&snapshot_state).unwrap()
                    };
                    let checkpoint = Checkpoint {
                        id: Uuid::from_u128(state.id.as_u128() ^ (n as u128 + 1)),
                        workflow_state_id: state.id,
                        step_id,
                        timestamp,
                        snapshot,
                    };
                    store.create_checkpoint(&checkpoint).await.unwrap();
                    created.push(checkpoint);
                }
                let mut listed = store.list_checkpoints(&state.id, 10, 0).await.unwrap();
                prop_assert_eq!(listed.len(), created.len());
                listed.sort_by_key(|c| c.id);
                created.sort_by_key(|c| c.id);
                prop_assert_eq!(listed, created);
                Ok(())
            })
        },
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn load_by_workflow_id_returns_the_latest_run(backend: Backend) {
    let (runtime, store) = runtime_and_store(backend);
    let strategy = (
        text(1, 200),
        prop::collection::vec((workflow_state(), timestamp()), 1..5),
    );
    let result = runner().run(&strategy, |(name, runs)| {
        // Unique per case, so earlier cases' runs cannot interfere.
        let workflow_id = format!("{name}-{}", Uuid::new_v4().simple());
        let runs: Vec<WorkflowState> = runs
            .into_iter()
            .map(|(state, updated_at)| WorkflowState {
                workflow_id: workflow_id.clone(),
                updated_at,
                ..state
            })
            .collect();
        runtime.block_on(async {
            for run in &runs {
                store.save_workflow_state(run).await.unwrap();
            }
            let loaded = store
                .load_workflow_state_by_workflow_id(&workflow_id)
                .await
                .unwrap();
            let latest = runs.iter().map(|run| run.updated_at).max().unwrap();
            prop_assert_eq!(loaded.updated_at, latest);
            prop_assert!(runs.contains(&loaded), "not one of the saved runs");
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// Steps whose contexts are any JSON, recorded on a store that keeps a full snapshot
/// every 3 checkpoints: the workflow (its context stored as a change from a base) and
/// every checkpoint (a change from its base) load back exactly.
fn steps_stored_as_changes_load_back_exactly(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let store = runtime.block_on(open_with(backend, |builder| {
        builder.full_snapshot_every(3).checkpoint_retention(None)
    }));
    // Over the size under which snapshots are stored whole.
    let padding = "p".repeat(1100);
    let result = runner().run(
        &(workflow_state(), prop::collection::vec(json_value(), 2..7)),
        |(mut state, contexts)| {
            runtime.block_on(async {
                store.save_workflow_state(&state).await.unwrap();
                let mut taken = Vec::new();
                for (n, value) in contexts.into_iter().enumerate() {
                    state.context = serde_json::json!({ "padding": padding, "value": value });
                    let step = StepState::new(format!("change-{n}"));
                    taken.push(store.record_step(&mut state, step).await.unwrap());
                    prop_assert_eq!(&store.load_workflow_state(&state.id).await.unwrap(), &state);
                }
                for checkpoint in &taken {
                    prop_assert_eq!(
                        &store.get_checkpoint(&checkpoint.id).await.unwrap(),
                        checkpoint
                    );
                }
                Ok(())
            })
        },
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
