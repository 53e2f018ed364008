//! Checkpoints whose snapshot is any JSON, on every backend: the orchestrator's own
//! `{"checkpoint": 3}`, a string, an array, `null`, another workflow's state. They are
//! stored and every read gives them back as written; whatever turns a checkpoint into a
//! workflow state (restore, rollback, fork, recovery) refuses them, or resumes from the
//! stored state, and changes nothing.

use std::time::Duration;

use backend_suite::{Backend, at, backend_tests, open, open_with, step, workflow};
use llm_orchestrator_state::{
    Checkpoint, SeaOrmStateStore, StateStore, StateStoreError, StepStatus, WorkflowState,
    WorkflowStatus,
};
use serde_json::{Value, json};
use uuid::Uuid;

backend_tests!(
    any_json_snapshot_is_stored_and_read_back_as_written,
    export_import_pins_and_retention_keep_any_snapshot_as_written,
    a_snapshot_is_still_held_to_the_limits_the_workflow_and_the_lease,
    restore_rollback_and_fork_refuse_a_checkpoint_holding_no_state_of_the_workflow,
    an_operator_rollback_to_no_state_keeps_the_lease,
    a_refused_rollback_leaves_a_transaction_usable,
    recovery_resumes_from_the_stored_state_when_the_newest_checkpoint_holds_no_state,
);

/// A running workflow with two steps, saved.
async fn saved_workflow(store: &SeaOrmStateStore, workflow_id: &str) -> WorkflowState {
    let mut state = workflow(workflow_id);
    state.mark_running();
    state.upsert_step(step("fetch", StepStatus::Completed, json!({"bytes": 10})));
    state.upsert_step(step("parse", StepStatus::Running, json!(null)));
    store.save_workflow_state(&state).await.unwrap();
    state
}

/// Snapshots that are no state of `state`'s workflow, each with what the refusal of a
/// restore must say about it: JSON of the orchestrator's own, another workflow's state,
/// and this workflow's state under another workflow id, name or user.
fn foreign_snapshots(state: &WorkflowState, stranger: &WorkflowState) -> Vec<(Value, String)> {
    let renamed = |change: &dyn Fn(&mut WorkflowState)| {
        let mut snapshot = state.clone();
        change(&mut snapshot);
        serde_json::to_value(&snapshot).unwrap()
    };
    let not_a_state = "its snapshot is not a workflow state".to_owned();
    vec![
        (json!({"checkpoint": 3}), not_a_state.clone()),
        (json!("step 5 done"), not_a_state.clone()),
        (json!([1, "two", {"three": 3.5}]), not_a_state.clone()),
        (json!(null), not_a_state.clone()),
        (json!(false), not_a_state.clone()),
        (json!({"id": state.id, "status": "running"}), not_a_state),
        (
            serde_json::to_value(stranger).unwrap(),
            format!(
                "its snapshot is the state of workflow state {}",
                stranger.id
            ),
        ),
        (
            renamed(&|s| s.workflow_id = "wf-someone-else".into()),
            "workflow_id \"wf-someone-else\"".to_owned(),
        ),
        (
            renamed(&|s| s.workflow_name = "Another name".into()),
            "workflow_name \"Another name\"".to_owned(),
        ),
        (renamed(&|s| s.user_id = None), "user_id none".to_owned()),
    ]
}

/// `snapshots` filed under `state` as checkpoints a second apart, oldest first.
async fn file_checkpoints(
    store: &SeaOrmStateStore,
    state: &WorkflowState,
    snapshots: impl IntoIterator<Item = Value>,
) -> Vec<Checkpoint> {
    file_checkpoints_from(store, state, 0, snapshots).await
}

/// [`file_checkpoints`], the first taken `first` seconds after the base time.
async fn file_checkpoints_from(
    store: &SeaOrmStateStore,
    state: &WorkflowState,
    first: i64,
    snapshots: impl IntoIterator<Item = Value>,
) -> Vec<Checkpoint> {
    let mut filed = Vec::new();
    for (n, snapshot) in (first..).zip(snapshots) {
        let mut checkpoint = Checkpoint::new(state.id, format!("step-{n}"), snapshot);
        checkpoint.timestamp = at(n, 0);
        store.create_checkpoint(&checkpoint).await.unwrap();
        filed.push(checkpoint);
    }
    filed
}

/// The snapshot as JSON text: what "as written" means, byte for byte.
fn text(checkpoint: &Checkpoint) -> String {
    serde_json::to_string(&checkpoint.snapshot).unwrap()
}

fn texts(checkpoints: &[Checkpoint]) -> Vec<String> {
    checkpoints.iter().map(text).collect()
}

async fn any_json_snapshot_is_stored_and_read_back_as_written(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let state = saved_workflow(&store, "wf-any").await;
    let stranger = saved_workflow(&store, "wf-stranger").await;
    let snapshots = foreign_snapshots(&state, &stranger)
        .into_iter()
        .map(|(snapshot, _)| snapshot);
    let filed = file_checkpoints(&store, &state, snapshots).await;

    for checkpoint in &filed {
        let read = store.get_checkpoint(&checkpoint.id).await.unwrap();
        assert_eq!(&read, checkpoint);
        assert_eq!(text(&read), text(checkpoint));
    }
    let newest = filed.last().unwrap();
    assert_eq!(
        store
            .get_latest_checkpoint(&state.id)
            .await
            .unwrap()
            .as_ref(),
        Some(newest)
    );
    let mut listed = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    listed.reverse();
    assert_eq!(listed, filed);
    assert_eq!(texts(&listed), texts(&filed));

    // The very same checkpoint again is stored once; another under its id conflicts.
    store.create_checkpoint(&filed[0]).await.unwrap();
    let mut other = filed[0].clone();
    other.snapshot = json!({"checkpoint": 4});
    assert!(matches!(
        store.create_checkpoint(&other).await,
        Err(StateStoreError::Conflict(_))
    ));
    let usage = store.checkpoint_usage(&state.id).await.unwrap();
    assert_eq!(usage.count, filed.len() as u64);
    let bytes: usize = filed.iter().map(|c| text(c).len()).sum();
    assert_eq!(usage.bytes, bytes as u64);

    // The listing without snapshots knows a status only where the JSON has one.
    let infos = store
        .list_checkpoint_infos(&state.id, 100, 0)
        .await
        .unwrap();
    let status_of = |id: Uuid| infos.iter().find(|info| info.id == id).unwrap();
    assert_eq!(status_of(filed[0].id).workflow_status, None);
    assert_eq!(status_of(filed[3].id).workflow_status, None);
    assert_eq!(
        status_of(filed[6].id).workflow_status,
        Some(WorkflowStatus::Running)
    );
    // Neither workflow changed.
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.load_workflow_state(&stranger.id).await.unwrap(),
        stranger
    );
}

async fn export_import_pins_and_retention_keep_any_snapshot_as_written(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(Some(3))).await;
    let state = saved_workflow(&store, "wf-carry").await;
    let stranger = saved_workflow(&store, "wf-carry-stranger").await;
    let own = serde_json::to_value(&state).unwrap();
    let snapshots = [
        json!({"checkpoint": 1}),
        json!("two"),
        own,
        json!([3]),
        serde_json::to_value(&stranger).unwrap(),
        json!(null),
    ];
    let filed = file_checkpoints(&store, &state, snapshots).await;
    // Retention kept the newest three, as written.
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    let newest: Vec<Checkpoint> = filed[3..].iter().rev().cloned().collect();
    assert_eq!(kept, newest);
    assert_eq!(texts(&kept), texts(&newest));

    // Pinned, it outlives retention and reads back unchanged.
    store.pin_checkpoint(&filed[4].id, "theirs").await.unwrap();
    let more = file_checkpoints_from(&store, &state, 10, [json!({"a": 1}), json!({"b": 2})]).await;
    let pinned = store.get_checkpoint(&filed[4].id).await.unwrap();
    assert_eq!(text(&pinned), text(&filed[4]));
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 0).await.unwrap(),
        2
    );
    let left = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    // The pinned one, and the newest, which the running workflow would resume from.
    assert_eq!(left, [more[1].clone(), filed[4].clone()]);

    // Export and import, with the same ids (into a fresh store) or new ones.
    let bundle = store.export_workflow(&state.id).await.unwrap();
    let exported: Vec<Checkpoint> = bundle
        .checkpoints
        .iter()
        .map(|b| b.checkpoint.clone())
        .collect();
    assert_eq!(texts(&exported), texts(&left));
    let elsewhere = open_with(backend, |b| b.checkpoint_retention(None)).await;
    elsewhere.import_workflow(&bundle, false).await.unwrap();
    let imported = elsewhere.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert_eq!(imported, left);
    assert_eq!(texts(&imported), texts(&left));
    let copy = store.import_workflow(&bundle, true).await.unwrap();
    let copied = store.list_checkpoints(&copy.id, 100, 0).await.unwrap();
    assert_eq!(texts(&copied), texts(&left));
}

async fn a_snapshot_is_still_held_to_the_limits_the_workflow_and_the_lease(backend: Backend) {
    let store = open_with(backend, |b| b.max_json_bytes(1_000)).await;
    let state = saved_workflow(&store, "wf-limits").await;
    let refused = [
        json!({"text": "a\u{0}b"}),
        json!({"a\u{0}": 1}),
        json!({"blob": "z".repeat(2_000)}),
        backend_suite::nested_json(200),
    ];
    for snapshot in refused {
        let checkpoint = Checkpoint::new(state.id, "s", snapshot);
        let err = store.create_checkpoint(&checkpoint).await.unwrap_err();
        assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
    }
    let unknown = Checkpoint::new(Uuid::now_v7(), "s", json!({"checkpoint": 3}));
    assert!(matches!(
        store.create_checkpoint(&unknown).await,
        Err(StateStoreError::NotFound(_))
    ));
    assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);

    // Under a live lease, only the lease holder writes.
    store
        .claim_workflows("replica-a", Duration::from_secs(300), 10)
        .await
        .unwrap();
    let err = store
        .create_checkpoint(&Checkpoint::new(state.id, "s", json!({"checkpoint": 3})))
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("replica-a"), "{err}");
    assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);
}

/// Asserts `result` is the refusal of a checkpoint that holds no state of `workflow`,
/// saying `why`.
fn assert_holds_no_state<T: std::fmt::Debug>(result: Result<T, StateStoreError>, why: &str) {
    let err = result.unwrap_err();
    assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("holds no state of workflow state"),
        "{message}"
    );
    assert!(message.contains(why), "{message}");
}

async fn restore_rollback_and_fork_refuse_a_checkpoint_holding_no_state_of_the_workflow(
    backend: Backend,
) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let state = saved_workflow(&store, "wf-refuse").await;
    let stranger = saved_workflow(&store, "wf-refuse-stranger").await;
    let foreign = foreign_snapshots(&state, &stranger);
    let filed = file_checkpoints(&store, &state, foreign.iter().map(|(s, _)| s.clone())).await;
    let before = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    let workflows = store.status_counts().await.unwrap().total();

    for (checkpoint, (_, why)) in filed.iter().zip(&foreign) {
        assert_holds_no_state(store.restore_from_checkpoint(&checkpoint.id).await, why);
        assert_holds_no_state(store.rollback_to_checkpoint(&checkpoint.id).await, why);
        assert_holds_no_state(
            store.fork_from_checkpoint(&checkpoint.id, "wf-fork").await,
            why,
        );
    }

    // Nothing changed: the workflow (not even its version), its checkpoints, the
    // stranger, and no fork was made.
    let after = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    assert_eq!((after.value, after.version), (before.value, before.version));
    let mut listed = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    listed.reverse();
    assert_eq!(listed, filed);
    assert_eq!(
        store.load_workflow_state(&stranger.id).await.unwrap(),
        stranger
    );
    assert_eq!(store.status_counts().await.unwrap().total(), workflows);
    assert!(store.lineage(&state.id).await.unwrap().forks.is_empty());

    // A checkpoint of the workflow's own state, moved on, still restores, rolls back and
    // forks.
    let mut moved_on = state.clone();
    moved_on.mark_paused();
    let own = Checkpoint::of(&moved_on, "parse").unwrap();
    store.create_checkpoint(&own).await.unwrap();
    assert_eq!(
        store.restore_from_checkpoint(&own.id).await.unwrap(),
        moved_on
    );
    let fork = store
        .fork_from_checkpoint(&own.id, "wf-fork")
        .await
        .unwrap();
    assert_eq!(fork.steps, moved_on.steps);
    let rolled_back = store.rollback_to_checkpoint(&own.id).await.unwrap();
    assert_eq!(rolled_back.status, WorkflowStatus::Paused);
}

async fn an_operator_rollback_to_no_state_keeps_the_lease(backend: Backend) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-override").await;
    let filed = file_checkpoints(&store, &state, [json!({"checkpoint": 3})]).await;
    let claims = store
        .claim_workflows("replica-a", Duration::from_secs(300), 10)
        .await
        .unwrap();
    let lease = claims[0].lease.clone();

    assert_holds_no_state(
        store
            .rollback_to_checkpoint_overriding_lease(&filed[0].id)
            .await,
        "its snapshot is not a workflow state",
    );
    // The lease is as it was: its holder renews it, nobody else can claim.
    store
        .renew_lease(&lease, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(
        store
            .claim_workflows("replica-b", Duration::from_secs(300), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

/// A rollback refused inside a transaction is undone alone (a savepoint on Postgres): the
/// transaction goes on and commits what else it wrote.
async fn a_refused_rollback_leaves_a_transaction_usable(backend: Backend) {
    let store = open(backend).await;
    let mut state = saved_workflow(&store, "wf-tx").await;
    let filed = file_checkpoints(&store, &state, [json!(["not", "a", "state"])]).await;

    let tx = store.begin().await.unwrap();
    tx.create_checkpoint(&Checkpoint::new(
        state.id,
        "in-tx",
        json!({"checkpoint": 9}),
    ))
    .await
    .unwrap();
    assert_holds_no_state(
        tx.rollback_to_checkpoint(&filed[0].id).await,
        "not a workflow state",
    );
    state.mark_paused();
    tx.save_workflow_state(&state).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    let latest = store
        .get_latest_checkpoint(&state.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.snapshot, json!({"checkpoint": 9}));
}

async fn recovery_resumes_from_the_stored_state_when_the_newest_checkpoint_holds_no_state(
    backend: Backend,
) {
    let store = open(backend).await;
    // Its newest checkpoint is the orchestrator's own JSON, after one of its state.
    let own_json = saved_workflow(&store, "wf-own-json").await;
    let mut earlier = own_json.clone();
    earlier.steps.remove("parse");
    let filed = file_checkpoints(
        &store,
        &own_json,
        [
            serde_json::to_value(&earlier).unwrap(),
            json!({"checkpoint": 3}),
        ],
    )
    .await;
    let own_json_newest = filed[1].clone();
    // Its newest checkpoint is another workflow's state.
    let holds_stranger = saved_workflow(&store, "wf-holds-stranger").await;
    let stranger = workflow("wf-pending-stranger");
    store.save_workflow_state(&stranger).await.unwrap();
    let stranger_newest = file_checkpoints(
        &store,
        &holds_stranger,
        [serde_json::to_value(&stranger).unwrap()],
    )
    .await
    .remove(0);
    // A workflow checkpointed as usual.
    let mut usual = saved_workflow(&store, "wf-usual").await;
    let usual_checkpoint = Checkpoint::of(&usual, "parse").unwrap();
    store.create_checkpoint(&usual_checkpoint).await.unwrap();
    usual.mark_paused();
    store.save_workflow_state(&usual).await.unwrap();

    let mut active = store.list_active_workflows().await.unwrap();
    active.sort_by_key(|state| state.workflow_id.clone());
    let mut expected = vec![
        own_json.clone(),
        holds_stranger.clone(),
        stranger.clone(),
        usual.clone(),
    ];
    expected.sort_by_key(|state| state.workflow_id.clone());
    assert_eq!(active, expected);

    let report = store
        .recover_workflows_report("restarted", Duration::from_secs(300), 100)
        .await
        .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.recovered.len(), 4);
    for recovery in &report.recovered {
        let (state, checkpoint) = (&recovery.state, recovery.checkpoint.as_ref());
        if state.id == own_json.id {
            // The stored state, and the checkpoint as written for the orchestrator.
            assert_eq!(state, &own_json);
            assert_eq!(checkpoint, Some(&own_json_newest));
            assert_eq!(text(checkpoint.unwrap()), text(&own_json_newest));
        } else if state.id == holds_stranger.id {
            assert_eq!(state, &holds_stranger);
            assert_eq!(checkpoint, Some(&stranger_newest));
        } else if state.id == usual.id {
            let resumed = usual_checkpoint.state().unwrap();
            assert_eq!(state, &resumed, "resumes from the checkpoint");
            assert_eq!(checkpoint, Some(&usual_checkpoint));
        } else {
            assert_eq!(state, &stranger);
            assert_eq!(checkpoint, None);
        }
        assert_eq!(recovery.lease.owner, "restarted");
    }
}
