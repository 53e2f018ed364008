//! Checkpoints on every backend: creating and listing them, retention and cleanup,
//! restore and rollback, and deleting old workflows with everything that hangs off them.

use backend_suite::{
    Backend, at, backend_tests, backend_tests_for, install_failing_trigger, nested_json, open,
    open_with, step, stored_checkpoint_count, stored_step_ids, workflow,
};
use llm_orchestrator_state::sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait,
};
use llm_orchestrator_state::{
    Checkpoint, SeaOrmStateStore, StateStore, StateStoreError, StepState, StepStatus,
    WorkflowState, WorkflowStatus,
};
use serde_json::json;
use uuid::Uuid;

backend_tests!(
    latest_and_listed_checkpoints_are_newest_first,
    no_checkpoints_means_none_and_empty_pages,
    checkpoint_of_a_missing_workflow_is_not_found,
    the_same_checkpoint_again_is_stored_once_another_with_its_id_conflicts,
    bad_checkpoint_input_is_refused,
    every_saveable_state_can_be_checkpointed,
    default_retention_keeps_the_newest_ten,
    configured_retention_keeps_that_many,
    no_retention_keeps_every_checkpoint,
    retention_applies_per_workflow,
    retention_holds_when_checkpoints_arrive_at_once,
    a_checkpoint_whose_retention_fails_is_not_stored,
    a_rollback_the_database_refuses_half_way_changes_nothing,
    cleanup_old_checkpoints_keeps_the_newest,
    retention_keeps_the_newest_even_when_a_checkpoint_arrives_late,
    retention_breaks_timestamp_ties_by_id_like_the_listing,
    huge_limits_offsets_and_keeps_are_not_a_panic,
    restore_returns_the_snapshot_and_changes_nothing,
    restore_or_rollback_of_unknown_checkpoint_is_not_found,
    rollback_makes_the_snapshot_the_stored_state,
    recovery_after_a_rollback_resumes_from_the_rolled_back_state,
    a_snapshot_of_something_else_is_stored_as_written,
    snapshot_of_something_else_is_refused_on_restore_and_rollback,
    a_snapshot_of_the_workflow_under_another_identity_is_stored_but_not_rolled_back_to,
    delete_old_states_deletes_only_old_finished_workflows,
    delete_old_states_cascades_to_steps_and_checkpoints,
    a_delete_the_database_refuses_half_way_deletes_nothing,
);
backend_tests_for!(mod postgres_only = Postgres:
    large_json_is_compressed_with_lz4_when_the_server_has_it,
    an_unchanged_context_or_output_is_not_written_again,
    a_save_writes_only_the_steps_that_changed,
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

/// A checkpoint of `state` after `step_id`, taken `seconds` after the base time.
fn checkpoint_at(state: &WorkflowState, step_id: &str, seconds: i64) -> Checkpoint {
    let mut checkpoint = Checkpoint::of(state, step_id).unwrap();
    checkpoint.timestamp = at(seconds, 0);
    checkpoint
}

/// Creates `count` checkpoints of `state`, a second apart, oldest first; returns them.
async fn create_checkpoints(
    store: &SeaOrmStateStore,
    state: &WorkflowState,
    count: i64,
) -> Vec<Checkpoint> {
    let mut created = Vec::new();
    for n in 0..count {
        let checkpoint = checkpoint_at(state, &format!("step-{n}"), n);
        store.create_checkpoint(&checkpoint).await.unwrap();
        created.push(checkpoint);
    }
    created
}

fn newest_first(mut checkpoints: Vec<Checkpoint>) -> Vec<Checkpoint> {
    checkpoints.reverse();
    checkpoints
}

async fn latest_and_listed_checkpoints_are_newest_first(backend: Backend) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-list").await;
    let other = saved_workflow(&store, "wf-list-other").await;

    // Created out of order: the timestamp decides, not the order of creation.
    let second = checkpoint_at(&state, "b", 20);
    let third = checkpoint_at(&state, "c", 30);
    let first = checkpoint_at(&state, "a", 10);
    for checkpoint in [&second, &third, &first] {
        store.create_checkpoint(checkpoint).await.unwrap();
    }
    store
        .create_checkpoint(&checkpoint_at(&other, "z", 99))
        .await
        .unwrap();

    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(third.clone())
    );
    let all = vec![third.clone(), second.clone(), first.clone()];
    assert_eq!(store.list_checkpoints(&state.id, 10, 0).await.unwrap(), all);
    assert_eq!(store.list_checkpoints(&state.id, 3, 0).await.unwrap(), all);
    assert_eq!(
        store.list_checkpoints(&state.id, 2, 0).await.unwrap(),
        [third.clone(), second.clone()]
    );
    assert_eq!(
        store.list_checkpoints(&state.id, 2, 1).await.unwrap(),
        [second.clone(), first.clone()]
    );
    assert_eq!(
        store.list_checkpoints(&state.id, 10, 2).await.unwrap(),
        std::slice::from_ref(&first)
    );
    assert!(
        store
            .list_checkpoints(&state.id, 10, 3)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_checkpoints(&state.id, 0, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_checkpoints(&state.id, u64::MAX, 0)
            .await
            .unwrap(),
        all
    );

    // Checkpoints in the same microsecond are still in a stable, complete order.
    let tied: Vec<_> = (0..3)
        .map(|n| checkpoint_at(&other, &format!("tie-{n}"), 50))
        .collect();
    for checkpoint in &tied {
        store.create_checkpoint(checkpoint).await.unwrap();
    }
    let page_one = store.list_checkpoints(&other.id, 2, 0).await.unwrap();
    let page_two = store.list_checkpoints(&other.id, 2, 2).await.unwrap();
    let mut seen: Vec<Uuid> = page_one.iter().chain(&page_two).map(|c| c.id).collect();
    assert_eq!(page_one[0].step_id, "z");
    seen.sort();
    let mut expected: Vec<Uuid> = tied.iter().map(|c| c.id).collect();
    expected.push(page_one[0].id);
    expected.sort();
    assert_eq!(seen, expected, "paging skipped or repeated a checkpoint");
}

async fn no_checkpoints_means_none_and_empty_pages(backend: Backend) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-none").await;
    assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);
    assert!(
        store
            .list_checkpoints(&state.id, 10, 0)
            .await
            .unwrap()
            .is_empty()
    );

    let unknown = Uuid::new_v4();
    assert_eq!(store.get_latest_checkpoint(&unknown).await.unwrap(), None);
    assert!(
        store
            .list_checkpoints(&unknown, 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.cleanup_old_checkpoints(&unknown, 0).await.unwrap(), 0);
}

async fn checkpoint_of_a_missing_workflow_is_not_found(backend: Backend) {
    let store = open(backend).await;
    let never_saved = workflow("wf-ghost");
    let checkpoint = Checkpoint::of(&never_saved, "s").unwrap();
    let err = store.create_checkpoint(&checkpoint).await.unwrap_err();
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        store.get_latest_checkpoint(&never_saved.id).await.unwrap(),
        None
    );
    assert!(matches!(
        store.restore_from_checkpoint(&checkpoint.id).await,
        Err(StateStoreError::NotFound(_))
    ));

    // Once the workflow exists, the same checkpoint goes in.
    store.save_workflow_state(&never_saved).await.unwrap();
    store.create_checkpoint(&checkpoint).await.unwrap();
    assert_eq!(
        store.get_latest_checkpoint(&never_saved.id).await.unwrap(),
        Some(checkpoint)
    );
}

/// The snapshot of `state` with `context` in it.
fn snapshot_with_context(state: &WorkflowState, context: serde_json::Value) -> serde_json::Value {
    let mut state = state.clone();
    state.context = context;
    serde_json::to_value(&state).unwrap()
}

async fn the_same_checkpoint_again_is_stored_once_another_with_its_id_conflicts(backend: Backend) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-dup").await;
    let mut original = checkpoint_at(&state, "first", 1);
    original.snapshot = snapshot_with_context(
        &state,
        json!({"n": 1.5, "text": "é", "nested": {"b": [1, 2], "a": null}}),
    );
    store.create_checkpoint(&original).await.unwrap();
    // A retry of the same checkpoint (its first answer lost) succeeds and adds nothing,
    // also when jsonb keeps a number otherwise than serde_json wrote it.
    store.create_checkpoint(&original).await.unwrap();
    let other = saved_workflow(&store, "wf-dup-big").await;
    let mut big = checkpoint_at(&other, "big", 3);
    big.snapshot = snapshot_with_context(&other, json!({"n": 1e19}));
    store.create_checkpoint(&big).await.unwrap();
    store.create_checkpoint(&big).await.unwrap();
    assert_eq!(
        store
            .list_checkpoints(&other.id, 10, 0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.list_checkpoints(&state.id, 10, 0).await.unwrap(),
        [original.clone()]
    );

    let mut other_snapshot = original.clone();
    other_snapshot.snapshot["n"] = json!(2.5);
    let err = store.create_checkpoint(&other_snapshot).await.unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");

    let mut again = checkpoint_at(&state, "second", 2);
    again.id = original.id;
    let err = store.create_checkpoint(&again).await.unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.list_checkpoints(&state.id, 10, 0).await.unwrap(),
        [original]
    );
}

async fn bad_checkpoint_input_is_refused(backend: Backend) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-bad-checkpoint").await;
    let cases: Vec<(&str, Checkpoint)> = vec![
        ("empty step_id", Checkpoint::new(state.id, "", json!({}))),
        (
            "256-char step_id",
            Checkpoint::new(state.id, "s".repeat(256), json!({})),
        ),
        (
            "NUL in step_id",
            Checkpoint::new(state.id, "s\0", json!({})),
        ),
        (
            "NUL in a snapshot string",
            Checkpoint::new(state.id, "s", json!({"a": "\u{0}"})),
        ),
        (
            "NUL in a snapshot key",
            Checkpoint::new(state.id, "s", json!({"\u{0}": 1})),
        ),
    ];
    for (what, checkpoint) in cases {
        match store.create_checkpoint(&checkpoint).await {
            Err(StateStoreError::InvalidInput(_)) => {}
            other => panic!("{what}: expected InvalidInput, got {other:?}"),
        }
    }
    let deep = Checkpoint::new(state.id, "deep", nested_json(10_000));
    let result = store.create_checkpoint(&deep).await;
    // Dropping a 10,000-deep value recurses once per level: leak it instead.
    std::mem::forget(deep);
    assert!(
        matches!(result, Err(StateStoreError::InvalidInput(_))),
        "10,000-deep snapshot: {result:?}"
    );

    assert!(
        store
            .list_checkpoints(&state.id, 100, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(stored_checkpoint_count(&store, state.id).await, 0);
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

async fn every_saveable_state_can_be_checkpointed(backend: Backend) {
    let store = open(backend).await;
    // JSON as deep as a save accepts (100 levels), in the context and in a step's outputs.
    let mut state = saved_workflow(&store, "wf-deepest").await;
    state.context = nested_json(100);
    state.upsert_step(step("deep", StepStatus::Completed, nested_json(100)));
    store.save_workflow_state(&state).await.unwrap();

    // Wrapped in a snapshot, the same JSON sits a few levels deeper: a checkpoint of a
    // state the store accepted must still go in and come back, or recovery breaks.
    let checkpoint = Checkpoint::of(&state, "deep").unwrap();
    store.create_checkpoint(&checkpoint).await.unwrap();
    assert_eq!(
        store.restore_from_checkpoint(&checkpoint.id).await.unwrap(),
        state
    );
}

async fn default_retention_keeps_the_newest_ten(backend: Backend) {
    let store = open(backend).await;
    assert_eq!(store.options().checkpoint_retention, Some(10));
    let state = saved_workflow(&store, "wf-retention").await;
    let created = create_checkpoints(&store, &state, 13).await;

    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert_eq!(kept, newest_first(created[3..].to_vec()));
    assert_eq!(stored_checkpoint_count(&store, state.id).await, 10);
    for dropped in &created[..3] {
        assert!(matches!(
            store.restore_from_checkpoint(&dropped.id).await,
            Err(StateStoreError::NotFound(_))
        ));
    }
}

async fn configured_retention_keeps_that_many(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(Some(3))).await;
    let state = saved_workflow(&store, "wf-keep-3").await;
    let created = create_checkpoints(&store, &state, 5).await;
    assert_eq!(
        store.list_checkpoints(&state.id, 100, 0).await.unwrap(),
        newest_first(created[2..].to_vec())
    );

    let one = open_with(backend, |b| b.checkpoint_retention(Some(1))).await;
    let state = saved_workflow(&one, "wf-keep-1").await;
    let created = create_checkpoints(&one, &state, 4).await;
    assert_eq!(
        one.list_checkpoints(&state.id, 100, 0).await.unwrap(),
        [created[3].clone()]
    );
}

async fn retention_keeps_the_newest_even_when_a_checkpoint_arrives_late(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(Some(3))).await;
    let state = saved_workflow(&store, "wf-late").await;
    let created = create_checkpoints(&store, &state, 3).await;

    // A checkpoint stamped before all the others (a slow worker, a clock behind): it is
    // the oldest, so keeping the newest three leaves the same three as before.
    let late = checkpoint_at(&state, "late", -100);
    store.create_checkpoint(&late).await.unwrap();
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert_eq!(kept, newest_first(created.clone()));
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(created[2].clone())
    );
    // Retention and cleanup agree on what "newest" means.
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 3).await.unwrap(),
        0
    );
}

async fn retention_breaks_timestamp_ties_by_id_like_the_listing(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(Some(2))).await;
    let state = saved_workflow(&store, "wf-ties").await;
    // Four checkpoints stamped with the same microsecond: the larger id is the newer, as
    // in `list_checkpoints`. They arrive in an order that is neither: the ids decide.
    let mut tied: Vec<Checkpoint> = (0..4)
        .map(|n| checkpoint_at(&state, &format!("tie-{n}"), 7))
        .collect();
    tied.sort_by_key(|checkpoint| checkpoint.id);
    for index in [1, 3, 0, 2] {
        store.create_checkpoint(&tied[index]).await.unwrap();
    }
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert_eq!(kept, vec![tied[3].clone(), tied[2].clone()]);
}

async fn huge_limits_offsets_and_keeps_are_not_a_panic(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let state = saved_workflow(&store, "wf-huge").await;
    let created = create_checkpoints(&store, &state, 3).await;
    // "Everything" is a natural way to ask for all checkpoints.
    assert_eq!(
        store
            .list_checkpoints(&state.id, u64::MAX, 0)
            .await
            .unwrap(),
        newest_first(created.clone())
    );
    assert!(
        store
            .list_checkpoints(&state.id, 10, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .cleanup_old_checkpoints(&state.id, usize::MAX)
            .await
            .unwrap(),
        0
    );
    assert_eq!(stored_checkpoint_count(&store, state.id).await, 3);
}

async fn no_retention_keeps_every_checkpoint(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let state = saved_workflow(&store, "wf-keep-all").await;
    let created = create_checkpoints(&store, &state, 25).await;
    assert_eq!(
        store.list_checkpoints(&state.id, 100, 0).await.unwrap(),
        newest_first(created)
    );
}

async fn retention_applies_per_workflow(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(Some(2))).await;
    let one = saved_workflow(&store, "wf-a").await;
    let two = saved_workflow(&store, "wf-b").await;
    let first = create_checkpoints(&store, &one, 2).await;
    // Many checkpoints of another workflow do not push out the first one's.
    let second = create_checkpoints(&store, &two, 5).await;
    assert_eq!(
        store.list_checkpoints(&one.id, 100, 0).await.unwrap(),
        newest_first(first)
    );
    assert_eq!(
        store.list_checkpoints(&two.id, 100, 0).await.unwrap(),
        newest_first(second[3..].to_vec())
    );
}

async fn retention_holds_when_checkpoints_arrive_at_once(backend: Backend) {
    const KEEP: usize = 3;
    const WRITERS: i64 = 16;
    let store = open_with(backend, |b| b.checkpoint_retention(Some(KEEP))).await;
    let state = saved_workflow(&store, "wf-busy").await;
    let checkpoints: Vec<_> = (0..WRITERS)
        .map(|n| checkpoint_at(&state, &format!("step-{n}"), n))
        .collect();
    let tasks: Vec<_> = checkpoints
        .iter()
        .cloned()
        .map(|checkpoint| {
            let store = store.store.clone();
            tokio::spawn(async move { store.create_checkpoint(&checkpoint).await })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.expect("task panicked")
            .expect("create_checkpoint failed");
    }

    // Whatever the interleaving, at most KEEP are left, and the newest is one of them.
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert!(
        kept.len() <= KEEP,
        "{} checkpoints kept: {:?}",
        kept.len(),
        kept.iter().map(|c| &c.step_id).collect::<Vec<_>>()
    );
    assert_eq!(kept.first(), checkpoints.last());
}

async fn a_checkpoint_whose_retention_fails_is_not_stored(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(Some(2))).await;
    let state = saved_workflow(&store, "wf-retention-fails").await;
    let created = create_checkpoints(&store, &state, 2).await;
    // Retention has to delete the oldest; the database refuses every delete.
    install_failing_trigger(&store, "checkpoints", true).await;

    let third = checkpoint_at(&state, "third", 10);
    store.create_checkpoint(&third).await.unwrap_err();
    assert_eq!(
        store.list_checkpoints(&state.id, 100, 0).await.unwrap(),
        newest_first(created)
    );
    assert!(matches!(
        store.restore_from_checkpoint(&third.id).await,
        Err(StateStoreError::NotFound(_))
    ));
}

async fn a_rollback_the_database_refuses_half_way_changes_nothing(backend: Backend) {
    let store = open(backend).await;
    let mut then = saved_workflow(&store, "wf-rollback-fails").await;
    then.upsert_step(step("boom", StepStatus::Completed, json!("then")));
    store.save_workflow_state(&then).await.unwrap();
    let checkpoint = checkpoint_at(&then, "boom", 1);
    store.create_checkpoint(&checkpoint).await.unwrap();

    let mut now = then.clone();
    now.steps.remove("boom");
    now.steps.remove("fetch");
    now.context = json!({"now": true});
    now.mark_failed("later failure");
    store.save_workflow_state(&now).await.unwrap();
    // Rolling back has to write the step `boom` again, which the database now refuses.
    install_failing_trigger(&store, "step_states", false).await;

    store
        .rollback_to_checkpoint(&checkpoint.id)
        .await
        .unwrap_err();
    assert_eq!(store.load_workflow_state(&now.id).await.unwrap(), now);
    assert_eq!(stored_step_ids(&store, now.id).await, ["parse"]);
    assert_eq!(
        store.list_checkpoints(&now.id, 100, 0).await.unwrap(),
        [checkpoint]
    );
}

async fn cleanup_old_checkpoints_keeps_the_newest(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let state = saved_workflow(&store, "wf-cleanup").await;
    let other = saved_workflow(&store, "wf-cleanup-other").await;
    let created = create_checkpoints(&store, &state, 6).await;
    let others = create_checkpoints(&store, &other, 3).await;

    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 4).await.unwrap(),
        2
    );
    assert_eq!(
        store.list_checkpoints(&state.id, 100, 0).await.unwrap(),
        newest_first(created[2..].to_vec())
    );
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 4).await.unwrap(),
        0
    );
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 100).await.unwrap(),
        0
    );
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 1).await.unwrap(),
        3
    );
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(created[5].clone())
    );
    // The workflow is pending: its newest checkpoint is what recovery resumes from,
    // and stays even when asked to keep none.
    assert!(state.status.is_active());
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 0).await.unwrap(),
        0
    );
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(created[5].clone())
    );
    // Once it has finished, nothing resumes it: keeping none deletes it.
    let mut finished = state.clone();
    finished.mark_completed();
    store.save_workflow_state(&finished).await.unwrap();
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 0).await.unwrap(),
        1
    );
    assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);
    assert_eq!(stored_checkpoint_count(&store, state.id).await, 0);

    // The other workflow's checkpoints and the workflows themselves are untouched.
    assert_eq!(
        store.list_checkpoints(&other.id, 100, 0).await.unwrap(),
        newest_first(others)
    );
    assert_eq!(
        store.load_workflow_state(&state.id).await.unwrap(),
        finished
    );
}

async fn restore_returns_the_snapshot_and_changes_nothing(backend: Backend) {
    let store = open(backend).await;
    let snapshot_state = saved_workflow(&store, "wf-restore").await;
    let checkpoint = Checkpoint::of(&snapshot_state, "fetch").unwrap();
    store.create_checkpoint(&checkpoint).await.unwrap();

    let mut current = snapshot_state.clone();
    current.steps.remove("fetch");
    current.upsert_step(step("publish", StepStatus::Completed, json!("done")));
    current.context = json!({"later": true});
    current.mark_completed();
    store.save_workflow_state(&current).await.unwrap();
    let later = checkpoint_at(&current, "publish", 1_000_000);
    store.create_checkpoint(&later).await.unwrap();
    let checkpoints_before = store.list_checkpoints(&current.id, 100, 0).await.unwrap();

    let restored = store.restore_from_checkpoint(&checkpoint.id).await.unwrap();
    assert_eq!(restored, snapshot_state);
    assert_eq!(restored, checkpoint.state().unwrap());

    // Nothing stored changed: not the row, not the steps, not the checkpoints.
    assert_eq!(
        store.load_workflow_state(&current.id).await.unwrap(),
        current
    );
    assert_eq!(
        stored_step_ids(&store, current.id).await,
        ["parse", "publish"]
    );
    assert_eq!(
        store.list_checkpoints(&current.id, 100, 0).await.unwrap(),
        checkpoints_before
    );
    assert!(store.list_active_workflows().await.unwrap().is_empty());
}

async fn restore_or_rollback_of_unknown_checkpoint_is_not_found(backend: Backend) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-unknown-checkpoint").await;
    store
        .create_checkpoint(&Checkpoint::of(&state, "fetch").unwrap())
        .await
        .unwrap();
    let unknown = Uuid::new_v4();
    let err = store.restore_from_checkpoint(&unknown).await.unwrap_err();
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err:?}");
    let err = store.rollback_to_checkpoint(&unknown).await.unwrap_err();
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

async fn rollback_makes_the_snapshot_the_stored_state(backend: Backend) {
    let store = open(backend).await;
    let mut snapshot_state = saved_workflow(&store, "wf-rollback").await;
    snapshot_state.updated_at = at(0, 0);
    store.save_workflow_state(&snapshot_state).await.unwrap();
    let checkpoint = checkpoint_at(&snapshot_state, "fetch", 1);
    store.create_checkpoint(&checkpoint).await.unwrap();

    // Later: a step changed, one removed, one added, other fields changed.
    let mut later = snapshot_state.clone();
    let mut parse = later.step("parse").unwrap().clone();
    parse.mark_failed("bad input");
    parse.increment_retry();
    later.upsert_step(parse);
    later.steps.remove("fetch");
    later.upsert_step(StepState::new("added-after-checkpoint"));
    later.context = json!({"changed": [1, 2, 3]});
    later.mark_failed("gave up");
    store.save_workflow_state(&later).await.unwrap();
    let later_checkpoint = checkpoint_at(&later, "parse", 2);
    store.create_checkpoint(&later_checkpoint).await.unwrap();

    let rolled_back = store.rollback_to_checkpoint(&checkpoint.id).await.unwrap();

    // The returned state is the snapshot, touched now, and exactly what is stored.
    let loaded = store.load_workflow_state(&snapshot_state.id).await.unwrap();
    assert_eq!(rolled_back, loaded);
    assert!(rolled_back.updated_at > snapshot_state.updated_at);
    assert_eq!(
        WorkflowState {
            updated_at: snapshot_state.updated_at,
            ..rolled_back.clone()
        },
        snapshot_state
    );
    assert_eq!(
        stored_step_ids(&store, snapshot_state.id).await,
        ["fetch", "parse"]
    );
    assert_eq!(loaded.status, WorkflowStatus::Running);
    assert_eq!(loaded.error, None);
    assert_eq!(
        store.list_active_workflows().await.unwrap(),
        std::slice::from_ref(&loaded)
    );
    assert_eq!(
        store
            .load_workflow_state_by_workflow_id("wf-rollback")
            .await
            .unwrap(),
        loaded
    );

    // Checkpoints are kept, both of them, unchanged, and a new one of the state rolled
    // back to, after the same step, is the newest: what recovery resumes from.
    let listed = store
        .list_checkpoints(&snapshot_state.id, 100, 0)
        .await
        .unwrap();
    assert_eq!(listed[1..], [later_checkpoint.clone(), checkpoint.clone()]);
    assert_eq!(listed[0].step_id, "fetch");
    assert_eq!(listed[0].state().unwrap(), loaded);
    assert_eq!(listed[0].timestamp, loaded.updated_at);

    // Rolling forward again works the same way.
    let forward = store
        .rollback_to_checkpoint(&later_checkpoint.id)
        .await
        .unwrap();
    assert_eq!(forward, store.load_workflow_state(&later.id).await.unwrap());
    assert_eq!(
        WorkflowState {
            updated_at: later.updated_at,
            ..forward
        },
        later
    );
    assert_eq!(
        stored_step_ids(&store, later.id).await,
        ["added-after-checkpoint", "parse"]
    );

    // Renamed since (another name, no user): its earlier checkpoints hold states of the
    // workflow as it was, not as it is, and a rollback to one is refused.
    let mut renamed = store.load_workflow_state(&later.id).await.unwrap();
    renamed.workflow_name = "renamed".into();
    renamed.user_id = None;
    store.save_workflow_state(&renamed).await.unwrap();
    let err = store
        .rollback_to_checkpoint(&checkpoint.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("workflow_name"), "{err}");
    assert_eq!(
        store.load_workflow_state(&renamed.id).await.unwrap(),
        renamed
    );
}

async fn a_snapshot_of_something_else_is_stored_as_written(backend: Backend) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-target").await;
    let stranger = saved_workflow(&store, "wf-stranger").await;

    // A snapshot is any JSON: another workflow's state, or none at all, is stored and
    // read back as written (restoring it is refused: see tests/tests/any_snapshot.rs).
    let mut foreign = Checkpoint::new(state.id, "x", serde_json::to_value(&stranger).unwrap());
    foreign.timestamp = at(0, 0);
    let mut junk = Checkpoint::new(state.id, "y", json!({"not": "a state"}));
    junk.timestamp = at(1, 0);
    for checkpoint in [&foreign, &junk] {
        store.create_checkpoint(checkpoint).await.unwrap();
        assert_eq!(
            &store.get_checkpoint(&checkpoint.id).await.unwrap(),
            checkpoint
        );
    }
    assert_eq!(
        store.list_checkpoints(&state.id, 10, 0).await.unwrap(),
        [junk, foreign]
    );
    // Still within the store's limits: a NUL in a string of it is refused.
    let mut invalid = state.clone();
    invalid.workflow_name = "n\0".into();
    let invalid = Checkpoint::new(state.id, "z", serde_json::to_value(&invalid).unwrap());
    let err = store.create_checkpoint(&invalid).await.unwrap_err();
    assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("NUL"), "{err}");
    assert_eq!(store.checkpoint_usage(&state.id).await.unwrap().count, 2);
}

async fn snapshot_of_something_else_is_refused_on_restore_and_rollback(backend: Backend) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-target").await;
    let stranger = saved_workflow(&store, "wf-stranger").await;
    let first = Checkpoint::of(&state, "x").unwrap();
    let second = Checkpoint::of(&state, "y").unwrap();
    store.create_checkpoint(&first).await.unwrap();
    store.create_checkpoint(&second).await.unwrap();

    // Rows changed behind the store's back, by hand: one now holds another workflow's
    // state, one no state at all.
    let stranger_json = serde_json::to_string(&stranger).unwrap();
    corrupt_snapshot(&store, "x", &stranger_json).await;
    corrupt_snapshot(&store, "y", r#"{"not": "a state"}"#).await;

    for (checkpoint, why) in [
        (
            &first,
            format!("the state of workflow state {}", stranger.id),
        ),
        (&second, "not a workflow state".to_owned()),
    ] {
        let restored = store.restore_from_checkpoint(&checkpoint.id).await;
        let rolled_back = store.rollback_to_checkpoint(&checkpoint.id).await;
        for err in [restored.unwrap_err(), rolled_back.unwrap_err()] {
            assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
            assert!(err.to_string().contains("holds no state of"), "{err}");
            assert!(err.to_string().contains(&why), "{err}");
        }
    }

    // Neither workflow changed.
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.load_workflow_state(&stranger.id).await.unwrap(),
        stranger
    );
}

/// Writes `snapshot` (JSON text) into the checkpoint with `step_id`, with plain SQL.
async fn corrupt_snapshot(store: &SeaOrmStateStore, step_id: &str, snapshot: &str) {
    let backend = store.connection().get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "UPDATE checkpoints SET snapshot = $1::jsonb WHERE step_id = $2",
        _ => "UPDATE checkpoints SET snapshot = ? WHERE step_id = ?",
    };
    let updated = store
        .connection()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [snapshot.into(), step_id.into()],
        ))
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1);
}

/// Saves a workflow in `status`, last updated at `updated`, with a step and a checkpoint.
async fn finished_at(
    store: &SeaOrmStateStore,
    workflow_id: &str,
    status: WorkflowStatus,
    updated: chrono::DateTime<chrono::Utc>,
) -> (WorkflowState, Checkpoint) {
    let mut state = saved_workflow(store, workflow_id).await;
    let checkpoint = Checkpoint::of(&state, "fetch").unwrap();
    store.create_checkpoint(&checkpoint).await.unwrap();
    state.status = status;
    if !status.is_active() {
        state.completed_at = Some(updated);
    }
    state.updated_at = updated;
    store.save_workflow_state(&state).await.unwrap();
    (state, checkpoint)
}

async fn delete_old_states_deletes_only_old_finished_workflows(backend: Backend) {
    let store = open(backend).await;
    let cutoff = at(1000, 0);
    let old = at(999, 999_999);
    let new = at(1000, 1);

    let mut doomed = Vec::new();
    let mut kept = Vec::new();
    for status in WorkflowStatus::ALL {
        let (old_state, _) = finished_at(&store, &format!("old-{status}"), status, old).await;
        let (new_state, _) = finished_at(&store, &format!("new-{status}"), status, new).await;
        // Updated exactly at the cutoff: not older than it.
        let (edge_state, _) = finished_at(&store, &format!("edge-{status}"), status, cutoff).await;
        if status.is_active() {
            kept.push(old_state);
        } else {
            doomed.push(old_state);
        }
        kept.push(new_state);
        kept.push(edge_state);
    }

    assert_eq!(store.delete_old_states(cutoff).await.unwrap(), 2);
    for state in &doomed {
        assert!(matches!(
            store.load_workflow_state(&state.id).await,
            Err(StateStoreError::NotFound(_))
        ));
    }
    for state in &kept {
        assert_eq!(&store.load_workflow_state(&state.id).await.unwrap(), state);
        assert!(
            store
                .get_latest_checkpoint(&state.id)
                .await
                .unwrap()
                .is_some()
        );
    }
    // Nothing left to delete for that cutoff.
    assert_eq!(store.delete_old_states(cutoff).await.unwrap(), 0);
    // A cutoff in the distant past deletes nothing.
    assert_eq!(
        store.delete_old_states(at(-10_000_000, 0)).await.unwrap(),
        0
    );
    // A later cutoff takes the rest of the finished ones and never an active one.
    assert_eq!(store.delete_old_states(at(5000, 0)).await.unwrap(), 4);
    let active = store.list_active_workflows().await.unwrap();
    assert_eq!(active.len(), 9);
}

async fn delete_old_states_cascades_to_steps_and_checkpoints(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let (completed, completed_checkpoint) =
        finished_at(&store, "wf-done", WorkflowStatus::Completed, at(0, 0)).await;
    let (failed, failed_checkpoint) =
        finished_at(&store, "wf-failed", WorkflowStatus::Failed, at(1, 0)).await;
    let (survivor, survivor_checkpoint) =
        finished_at(&store, "wf-running", WorkflowStatus::Running, at(0, 0)).await;
    create_checkpoints(&store, &completed, 3).await;
    assert_eq!(stored_checkpoint_count(&store, completed.id).await, 4);

    assert_eq!(store.delete_old_states(at(100, 0)).await.unwrap(), 2);

    for (state, checkpoint) in [
        (&completed, &completed_checkpoint),
        (&failed, &failed_checkpoint),
    ] {
        assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);
        assert!(
            store
                .list_checkpoints(&state.id, 100, 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store.restore_from_checkpoint(&checkpoint.id).await,
            Err(StateStoreError::NotFound(_))
        ));
        assert!(matches!(
            store.rollback_to_checkpoint(&checkpoint.id).await,
            Err(StateStoreError::NotFound(_))
        ));
        assert!(matches!(
            store
                .load_workflow_state_by_workflow_id(&state.workflow_id)
                .await,
            Err(StateStoreError::NotFound(_))
        ));
        // The rows themselves are gone, not just hidden.
        assert!(stored_step_ids(&store, state.id).await.is_empty());
        assert_eq!(stored_checkpoint_count(&store, state.id).await, 0);
    }
    assert_eq!(
        store.get_latest_checkpoint(&survivor.id).await.unwrap(),
        Some(survivor_checkpoint)
    );
    assert_eq!(
        stored_step_ids(&store, survivor.id).await,
        ["fetch", "parse"]
    );

    // A deleted workflow's id can be used again from scratch.
    store.save_workflow_state(&completed).await.unwrap();
    assert_eq!(
        store.load_workflow_state(&completed.id).await.unwrap(),
        completed
    );
    assert_eq!(
        store.get_latest_checkpoint(&completed.id).await.unwrap(),
        None
    );
}

async fn a_delete_the_database_refuses_half_way_deletes_nothing(backend: Backend) {
    let store = open(backend).await;
    // Two old finished workflows; only the second has a checkpoint.
    let mut plain = saved_workflow(&store, "wf-old-plain").await;
    plain.mark_completed();
    plain.updated_at = at(0, 0);
    store.save_workflow_state(&plain).await.unwrap();
    let (checkpointed, checkpoint) = finished_at(
        &store,
        "wf-old-checkpointed",
        WorkflowStatus::Failed,
        at(1, 0),
    )
    .await;
    // Deleting the second cascades to its checkpoint, which the database refuses.
    install_failing_trigger(&store, "checkpoints", true).await;

    store.delete_old_states(at(100, 0)).await.unwrap_err();
    assert_eq!(store.load_workflow_state(&plain.id).await.unwrap(), plain);
    assert_eq!(
        store.load_workflow_state(&checkpointed.id).await.unwrap(),
        checkpointed
    );
    assert_eq!(
        store.get_latest_checkpoint(&checkpointed.id).await.unwrap(),
        Some(checkpoint)
    );
    assert_eq!(stored_step_ids(&store, plain.id).await, ["fetch", "parse"]);
}

/// The compression method Postgres used for the stored value of `column` in the row of
/// `table` whose `key` is `id`: "lz4", "pglz", or none for a value stored uncompressed.
async fn compression_of(
    store: &SeaOrmStateStore,
    table: &str,
    column: &str,
    key: &str,
    id: Uuid,
) -> Option<String> {
    let row = store
        .connection()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT pg_column_compression({column}) FROM {table} WHERE {key} = $1"),
            [id.into()],
        ))
        .await
        .unwrap()
        .expect("the row exists");
    row.try_get_by_index::<Option<String>>(0).unwrap()
}

async fn large_json_is_compressed_with_lz4_when_the_server_has_it(backend: Backend) {
    let store = open(backend).await;
    let server_has_lz4 = store
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings \
             WHERE name = 'default_toast_compression'",
        ))
        .await
        .unwrap()
        .is_some_and(|row| row.try_get_by_index::<bool>(0).unwrap());
    let expected = if server_has_lz4 { "lz4" } else { "pglz" };

    // Text that compresses well, well over the 2 KiB at which Postgres compresses.
    let text = "the model answered the question about the invoice. ".repeat(200);
    let mut state = workflow("wf-compressed");
    state.context = json!({ "notes": text });
    let answer = step("answer", StepStatus::Completed, json!({ "text": text }));
    let checkpoint = store.record_step(&mut state, answer).await.unwrap();

    for (table, column, key, id) in [
        ("workflow_states", "context", "id", state.id),
        ("step_states", "outputs", "workflow_state_id", state.id),
        // The checkpoint's snapshot is stored whole in the base it starts.
        (
            "checkpoint_bases",
            "snapshot",
            "workflow_state_id",
            state.id,
        ),
    ] {
        assert_eq!(
            compression_of(&store, table, column, key, id)
                .await
                .as_deref(),
            Some(expected),
            "{table}.{column}"
        );
    }
    // And it reads back exactly.
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.restore_from_checkpoint(&checkpoint.id).await.unwrap(),
        state
    );
}

/// Rows inserted into the TOAST table of `table` (where Postgres keeps large values), from
/// the statistics of the transaction: compare two readings inside one transaction, since
/// the count also holds earlier transactions of the same connection whose statistics the
/// server has not flushed yet (it flushes at most once a second).
async fn toast_rows_inserted(txn: &DatabaseTransaction, table: &str) -> i64 {
    let row = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_xact_all_tables \
                 WHERE relid = (SELECT reltoastrelid FROM pg_class \
                 WHERE oid = '{table}'::regclass)"
            ),
        ))
        .await
        .unwrap()
        .expect("one row");
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Text of about `len` bytes that compresses poorly, so Postgres stores it out of line.
fn incompressible(len: usize) -> String {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'a' + (seed % 26) as u8)
        })
        .collect()
}

/// A save rewrites the whole state, but a large context or step output that did not
/// change keeps its stored copy: nothing new goes into the TOAST tables for it. A changed
/// one is written.
async fn an_unchanged_context_or_output_is_not_written_again(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-toast");
    state.context = json!({ "document": incompressible(40_000) });
    let answer = step(
        "answer",
        StepStatus::Completed,
        json!({ "text": incompressible(40_000) }),
    );
    store.record_step(&mut state, answer).await.unwrap();

    // Only the status changes: neither big value is written again.
    let txn = store.connection().begin().await.unwrap();
    let workflows_before = toast_rows_inserted(&txn, "workflow_states").await;
    let steps_before = toast_rows_inserted(&txn, "step_states").await;
    state.mark_paused();
    store
        .within(&txn)
        .save_workflow_state(&state)
        .await
        .unwrap();
    assert_eq!(
        toast_rows_inserted(&txn, "workflow_states").await,
        workflows_before
    );
    assert_eq!(toast_rows_inserted(&txn, "step_states").await, steps_before);
    txn.commit().await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

    // A changed context is written; the unchanged output still is not.
    let txn = store.connection().begin().await.unwrap();
    let workflows_before = toast_rows_inserted(&txn, "workflow_states").await;
    let steps_before = toast_rows_inserted(&txn, "step_states").await;
    state.context["document"] = json!(incompressible(30_000));
    store
        .within(&txn)
        .save_workflow_state(&state)
        .await
        .unwrap();
    assert!(toast_rows_inserted(&txn, "workflow_states").await > workflows_before);
    assert_eq!(toast_rows_inserted(&txn, "step_states").await, steps_before);
    txn.commit().await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

/// The row version (`xmin`) of each stored step of `workflow`, by step id.
async fn step_row_versions(
    store: &SeaOrmStateStore,
    workflow: Uuid,
) -> std::collections::BTreeMap<String, String> {
    store
        .connection()
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT step_id, xmin::text FROM step_states WHERE workflow_state_id = $1",
            [workflow.into()],
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0).unwrap(),
                row.try_get_by_index::<String>(1).unwrap(),
            )
        })
        .collect()
}

/// A save of a workflow with many steps of which one changed writes a new row version
/// for that step only (Postgres's `xmin` tells): the cost of a save follows what changed.
async fn a_save_writes_only_the_steps_that_changed(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-many-steps");
    for index in 0..20 {
        state.upsert_step(step(
            &format!("step-{index:02}"),
            StepStatus::Completed,
            json!({ "answer": index }),
        ));
    }
    store.save_workflow_state(&state).await.unwrap();
    let before = step_row_versions(&store, state.id).await;

    let retried = StepState {
        retry_count: 1,
        ..state.steps["step-07"].clone()
    };
    store.record_step(&mut state, retried).await.unwrap();
    let after = step_row_versions(&store, state.id).await;

    let rewritten: Vec<&String> = after
        .iter()
        .filter(|(step_id, version)| before.get(*step_id) != Some(version))
        .map(|(step_id, _)| step_id)
        .collect();
    assert_eq!(rewritten, ["step-07"]);
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

/// An operator rolls a workflow back (wfadmin restore), then the orchestrator restarts:
/// recovery must resume from the state rolled back to, not from the newest checkpoint
/// taken before the rollback, which would undo it without a word.
async fn recovery_after_a_rollback_resumes_from_the_rolled_back_state(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-rolled-back");
    state.mark_running();
    let first = store
        .record_step(
            &mut state,
            step("retrieve", StepStatus::Completed, json!(1)),
        )
        .await
        .unwrap();
    for id in ["prompt", "tool"] {
        store
            .record_step(&mut state, step(id, StepStatus::Completed, json!(id)))
            .await
            .unwrap();
    }
    let rolled_back = store.rollback_to_checkpoint(&first.id).await.unwrap();
    assert!(rolled_back.step("prompt").is_none());

    let recovered = store
        .recover_workflows(
            "replica-after-restart",
            std::time::Duration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(recovered.len(), 1);
    let resumed = &recovered[0].state;
    assert!(
        resumed.step("prompt").is_none() && resumed.step("tool").is_none(),
        "recovery resumed from before the rollback: {:?}",
        resumed.steps.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        store
            .get_latest_checkpoint(&state.id)
            .await
            .unwrap()
            .map(|c| c.step_id),
        recovered[0].checkpoint.as_ref().map(|c| c.step_id.clone())
    );
}

/// A checkpoint whose snapshot carries the workflow's id but another workflow id, name or
/// user is stored as written, and a rollback to it is refused (it would rewrite who the
/// workflow is); one whose status, steps or context moved on is what checkpoints are for.
async fn a_snapshot_of_the_workflow_under_another_identity_is_stored_but_not_rolled_back_to(
    backend: Backend,
) {
    let store = open(backend).await;
    let state = saved_workflow(&store, "wf-identity").await;

    let renamed = |change: &dyn Fn(&mut WorkflowState)| {
        let mut snapshot = state.clone();
        change(&mut snapshot);
        Checkpoint::new(state.id, "x", serde_json::to_value(&snapshot).unwrap())
    };
    let other_id = renamed(&|s| s.workflow_id = "wf-someone-else".into());
    let other_name = renamed(&|s| s.workflow_name = "Another name".into());
    let no_user = renamed(&|s| s.user_id = None);
    let other_user = renamed(&|s| s.user_id = Some("user-2".into()));
    for (bad, field) in [
        (&other_id, "workflow_id"),
        (&other_name, "workflow_name"),
        (&no_user, "user_id"),
        (&other_user, "user_id"),
    ] {
        store.create_checkpoint(bad).await.unwrap();
        assert_eq!(&store.get_checkpoint(&bad.id).await.unwrap(), bad);
        let err = store.rollback_to_checkpoint(&bad.id).await.unwrap_err();
        assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains(field), "{err}");
    }
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

    let mut moved_on = state.clone();
    moved_on.mark_paused();
    moved_on.upsert_step(step("summarize", StepStatus::Completed, json!("done")));
    moved_on.context = json!({ "more": true });
    let fine = Checkpoint::of(&moved_on, "summarize").unwrap();
    store.create_checkpoint(&fine).await.unwrap();
    let rolled_back = store.rollback_to_checkpoint(&fine.id).await.unwrap();
    assert_eq!(rolled_back.workflow_id, state.workflow_id);
    assert_eq!(rolled_back.workflow_name, state.workflow_name);
    assert_eq!(rolled_back.user_id, state.user_id);
    assert_eq!(rolled_back.status, WorkflowStatus::Paused);
}
