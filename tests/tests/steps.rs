//! Steps as their own writes: parallel steps of one workflow all land, checkpoints follow
//! commit order, context patches merge, and a call sent twice is stored once.

use std::collections::BTreeSet;
use std::sync::Arc;

use backend_suite::{Backend, TestStore, backend_tests, open_with, step, workflow};
use llm_orchestrator_state::{
    Checkpoint, SaveCondition, StateStore, StateStoreError, StepStatus, StepWrite, WorkflowState,
};
use serde_json::json;

const PARALLEL: usize = 16;

/// A store that keeps every checkpoint, so a test sees the whole history.
async fn open(backend: Backend) -> TestStore {
    open_with(backend, |builder| builder.checkpoint_retention(None)).await
}

/// Two handles on the test's database: the store and, where another can see the same
/// database, a second store on it (`:memory:` has only the one).
async fn two_handles(store: &TestStore) -> [Arc<dyn StateStore>; 2] {
    let first: Arc<dyn StateStore> = Arc::new((**store).clone());
    let second: Arc<dyn StateStore> = match store.builder_for_same_database() {
        Some(builder) => Arc::new(
            builder
                .checkpoint_retention(None)
                .connect()
                .await
                .expect("a second store on the same database"),
        ),
        None => first.clone(),
    };
    [first, second]
}

fn step_ids(state: &WorkflowState) -> BTreeSet<String> {
    state.steps.keys().cloned().collect()
}

/// The checkpoints of a workflow, oldest first.
async fn history(store: &TestStore, state: &WorkflowState) -> Vec<Checkpoint> {
    let mut checkpoints = store
        .list_checkpoints(&state.id, 1_000, 0)
        .await
        .expect("listing checkpoints");
    checkpoints.reverse();
    checkpoints
}

/// Checks that each checkpoint holds every step of the one before it plus its own.
fn assert_in_commit_order(checkpoints: &[Checkpoint]) {
    let mut before = BTreeSet::new();
    for checkpoint in checkpoints {
        let state = checkpoint.state().expect("a checkpoint of a state");
        let steps = step_ids(&state);
        assert!(
            steps.is_superset(&before),
            "checkpoint after {} lost steps {:?}",
            checkpoint.step_id,
            before.difference(&steps).collect::<Vec<_>>()
        );
        assert!(steps.contains(&checkpoint.step_id));
        assert_eq!(
            steps.len(),
            before.len() + usize::from(!before.contains(&checkpoint.step_id)),
            "checkpoint after {} holds more than one new step",
            checkpoint.step_id
        );
        before = steps;
    }
}

async fn parallel_steps_from_stale_copies_all_land(backend: Backend) {
    let store = open(backend).await;
    let handles = two_handles(&store).await;
    let mut state = workflow("fan-out");
    state.mark_running();
    store.save_workflow_state(&state).await.expect("saving");

    let mut calls = Vec::new();
    for index in 0..PARALLEL {
        let handle = handles[index % 2].clone();
        // Every call starts from the same copy: none of them sees the others' steps.
        let mut copy = state.clone();
        calls.push(tokio::spawn(async move {
            let done = step(
                &format!("tool-{index:02}"),
                StepStatus::Completed,
                json!(index),
            );
            let checkpoint = handle.record_step(&mut copy, done).await?;
            Ok::<_, StateStoreError>((checkpoint, copy))
        }));
    }
    let mut returned = Vec::new();
    for call in calls {
        let (checkpoint, copy) = call.await.expect("the task ran").expect("record_step");
        // The caller's copy is the workflow as stored after its step.
        assert_eq!(copy, checkpoint.state().expect("a state"));
        returned.push(checkpoint);
    }

    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    let expected: BTreeSet<String> = (0..PARALLEL).map(|i| format!("tool-{i:02}")).collect();
    assert_eq!(step_ids(&stored), expected, "every parallel step is stored");
    assert_eq!(stored.status, state.status);
    assert_eq!(stored.context, state.context);

    let checkpoints = history(&store, &state).await;
    assert_eq!(checkpoints.len(), PARALLEL);
    assert_in_commit_order(&checkpoints);
    let newest = checkpoints
        .last()
        .expect("a checkpoint")
        .state()
        .expect("a state");
    assert_eq!(step_ids(&newest), expected);
    let latest = store
        .get_latest_checkpoint(&state.id)
        .await
        .expect("reading the latest")
        .expect("there is one");
    assert_eq!(latest.state().expect("a state"), stored);
    // What each call returned is what is stored under its id.
    for checkpoint in returned {
        assert_eq!(
            store.get_checkpoint(&checkpoint.id).await.expect("stored"),
            checkpoint
        );
    }
}

async fn parallel_context_patches_all_keep_their_change(backend: Backend) {
    let store = open(backend).await;
    let handles = two_handles(&store).await;
    let state = workflow("patches");
    store.save_workflow_state(&state).await.expect("saving");

    let mut calls = Vec::new();
    for index in 0..PARALLEL {
        let handle = handles[index % 2].clone();
        let mut copy = state.clone();
        calls.push(tokio::spawn(async move {
            let done = step(
                &format!("branch-{index:02}"),
                StepStatus::Completed,
                json!(null),
            );
            let write = StepWrite::new().merge_context(json!({
                "results": { format!("branch-{index:02}"): index },
            }));
            handle.record_step_with(&mut copy, done, &write).await
        }));
    }
    let mut versions = BTreeSet::new();
    for call in calls {
        let (_, version) = call.await.expect("the task ran").expect("record_step_with");
        versions.insert(version);
    }
    // One version per write, in a row after the save's.
    assert_eq!(versions, (2..2 + PARALLEL as i64).collect());

    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    let results = stored.context["results"].as_object().expect("an object");
    assert_eq!(results.len(), PARALLEL, "every branch's key is kept");
    assert_eq!(stored.context["inputs"], state.context["inputs"]);
    assert_eq!(stored.steps.len(), PARALLEL);
    assert_in_commit_order(&history(&store, &state).await);
}

async fn a_merge_patch_sets_and_deletes_keys_of_the_stored_context(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("patch");
    state.context = json!({"keep": 1, "drop": 2, "nested": {"a": 1, "b": 2}});
    store.save_workflow_state(&state).await.expect("saving");
    // The copy's own context is not what is written: the patch applies to the stored one.
    let mut copy = state.clone();
    copy.context = json!({"ignored": true});
    let write = StepWrite::new()
        .merge_context(json!({"drop": null, "nested": {"b": null, "c": 3}}))
        .merge_context(json!({"added": [1, 2]}));
    let done = step("s1", StepStatus::Completed, json!("ok"));
    let (checkpoint, version) = store
        .record_step_with(&mut copy, done, &write)
        .await
        .expect("recording");
    let expected = json!({"keep": 1, "nested": {"a": 1, "c": 3}, "added": [1, 2]});
    assert_eq!(copy.context, expected);
    assert_eq!(version, 2);
    assert_eq!(checkpoint.state().expect("a state").context, expected);
    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    assert_eq!(stored, copy);
}

async fn a_stale_copy_keeps_what_another_step_changed(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("stale");
    state.mark_running();
    store.save_workflow_state(&state).await.expect("saving");
    let first = step("first", StepStatus::Completed, json!(1));
    store
        .record_step(&mut state, first)
        .await
        .expect("first step");

    // Two copies of the state after the first step; one changes the context.
    let mut changes_context = state.clone();
    let mut stale = state.clone();
    changes_context.context["summary"] = json!("written by the first branch");
    let a = step("a", StepStatus::Completed, json!("a"));
    store
        .record_step(&mut changes_context, a)
        .await
        .expect("step a");
    // The other copy never saw step a nor the new context, and changed neither.
    let b = step("b", StepStatus::Completed, json!("b"));
    let checkpoint = store.record_step(&mut stale, b).await.expect("step b");

    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    assert_eq!(
        step_ids(&stored),
        ["a", "b", "first"].map(String::from).into()
    );
    assert_eq!(
        stored.context["summary"],
        json!("written by the first branch")
    );
    assert_eq!(checkpoint.state().expect("a state"), stored);
    assert_eq!(stale, stored);
}

async fn the_same_step_sent_twice_from_the_same_copy_is_stored_once(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("twice");
    state.mark_running();
    store.save_workflow_state(&state).await.expect("saving");
    let done = step("s1", StepStatus::Completed, json!({"answer": 42}));

    let mut first_copy = state.clone();
    let first = store
        .record_step(&mut first_copy, done.clone())
        .await
        .expect("first call");
    // The caller did not learn that the first call went through: same copy, same step.
    let mut second_copy = state.clone();
    let second = store
        .record_step(&mut second_copy, done.clone())
        .await
        .expect("second call");
    assert_eq!(second, first, "the first call's checkpoint comes back");
    assert_eq!(second_copy, first_copy);
    assert_eq!(history(&store, &state).await.len(), 1);
    let stored = store
        .load_workflow_state_versioned(&state.id)
        .await
        .expect("loading");
    assert_eq!(stored.version, 2, "the second call wrote nothing");

    // Under a condition and with a patch, the same.
    let write = StepWrite::new()
        .merge_context(json!({"n": 1}))
        .only_if(SaveCondition::Version(2));
    let next = step("s2", StepStatus::Completed, json!(null));
    let mut copy = first_copy.clone();
    let (third, version) = store
        .record_step_with(&mut copy, next.clone(), &write)
        .await
        .expect("conditional call");
    let mut again = first_copy.clone();
    let (fourth, version_again) = store
        .record_step_with(&mut again, next, &write)
        .await
        .expect("the same conditional call again");
    assert_eq!((fourth, version_again), (third, version));
    assert_eq!(again, copy);
    assert_eq!(history(&store, &state).await.len(), 2);

    // Another step from the same copy is another call.
    let other = step("s1", StepStatus::Failed, json!(null));
    let mut other_copy = state.clone();
    let third = store
        .record_step(&mut other_copy, other)
        .await
        .expect("a different step");
    assert_ne!(third.id, first.id);
    assert_eq!(history(&store, &state).await.len(), 3);
}

async fn parallel_steps_under_one_lease_all_land(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("leased");
    state.mark_running();
    store.save_workflow_state(&state).await.expect("saving");
    let claims = store
        .claim_workflows("worker-1", std::time::Duration::from_secs(60), 10)
        .await
        .expect("claiming");
    let claim = claims.into_iter().next().expect("claimed");
    let handles = two_handles(&store).await;
    let mut calls = Vec::new();
    for index in 0..PARALLEL {
        let handle = handles[index % 2].clone();
        let mut copy = claim.state.clone();
        let condition = SaveCondition::Lease(claim.lease.clone());
        calls.push(tokio::spawn(async move {
            let done = step(
                &format!("leased-{index:02}"),
                StepStatus::Completed,
                json!(index),
            );
            handle.record_step_if(&mut copy, done, &condition).await
        }));
    }
    for call in calls {
        call.await.expect("the task ran").expect("record_step_if");
    }
    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    assert_eq!(stored.steps.len(), PARALLEL);
    assert_in_commit_order(&history(&store, &state).await);
}

async fn a_plain_step_is_still_refused_under_a_live_lease(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("refused");
    state.mark_running();
    store.save_workflow_state(&state).await.expect("saving");
    store
        .claim_workflows("worker-1", std::time::Duration::from_secs(60), 10)
        .await
        .expect("claiming");
    // From the current copy (one statement) and from a stale one (the stored path).
    let mut copy = state.clone();
    let fresh = store
        .record_step(&mut copy, step("s", StepStatus::Completed, json!(1)))
        .await;
    assert!(
        matches!(&fresh, Err(StateStoreError::Conflict(message)) if message.contains("worker-1")),
        "{fresh:?}"
    );
    let mut stale = state.clone();
    stale.updated_at -= chrono::Duration::seconds(1);
    let from_stale = store
        .record_step(&mut stale, step("s", StepStatus::Completed, json!(1)))
        .await;
    assert!(
        matches!(&from_stale, Err(StateStoreError::Conflict(message)) if message.contains("worker-1")),
        "{from_stale:?}"
    );
    assert_eq!(copy, state);
    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    assert!(stored.steps.is_empty());
}

async fn a_stale_copy_inside_a_transaction_keeps_the_other_steps(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("in-transaction");
    state.mark_running();
    store.save_workflow_state(&state).await.expect("saving");
    let mut stale = state.clone();
    store
        .record_step(&mut state, step("outside", StepStatus::Completed, json!(1)))
        .await
        .expect("a step outside");

    let txn = store.begin().await.expect("beginning");
    let checkpoint = txn
        .record_step(&mut stale, step("inside", StepStatus::Completed, json!(2)))
        .await
        .expect("a step from a stale copy, inside the transaction");
    txn.commit().await.expect("committing");
    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    assert_eq!(
        step_ids(&stored),
        ["inside", "outside"].map(String::from).into()
    );
    assert_eq!(checkpoint.state().expect("a state"), stored);
    assert_eq!(stale, stored);
}

async fn a_copy_marked_after_it_was_read_records_its_step_and_status(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("marked");
    state.mark_running();
    store.save_workflow_state(&state).await.expect("saving");
    store
        .record_step(&mut state, step("a", StepStatus::Completed, json!(1)))
        .await
        .expect("step a");
    // The copy changes after it was stored: its `updated_at` moves, so it is not the
    // stored workflow any more, yet nothing else wrote.
    state.mark_failed("the tool gave up");
    let checkpoint = store
        .record_step(&mut state, step("b", StepStatus::Failed, json!(null)))
        .await
        .expect("step b");
    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    assert_eq!(
        stored.status,
        llm_orchestrator_state::WorkflowStatus::Failed
    );
    assert_eq!(stored.error.as_deref(), Some("the tool gave up"));
    assert_eq!(step_ids(&stored), ["a", "b"].map(String::from).into());
    assert_eq!(checkpoint.state().expect("a state"), stored);
    assert_eq!(state, stored);
}

async fn a_step_under_a_released_or_taken_lease_is_refused(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("released");
    state.mark_running();
    store.save_workflow_state(&state).await.expect("saving");
    let lease_for = std::time::Duration::from_secs(60);
    let claim = store
        .claim_workflows("worker-1", lease_for, 10)
        .await
        .expect("claiming")
        .pop()
        .expect("claimed");
    let held = SaveCondition::Lease(claim.lease.clone());
    let mut copy = claim.state.clone();
    store
        .record_step_if(&mut copy, step("a", StepStatus::Completed, json!(1)), &held)
        .await
        .expect("a step under the lease");
    assert!(store.release_lease(&claim.lease).await.expect("releasing"));

    // From the current copy (one batch) and from a stale one (the stored path): the
    // released lease holds nothing.
    for mut from in [copy.clone(), claim.state.clone()] {
        let refused = store
            .record_step_if(&mut from, step("b", StepStatus::Completed, json!(2)), &held)
            .await;
        assert!(
            matches!(refused, Err(StateStoreError::Conflict(_))),
            "{refused:?}"
        );
    }
    // Claimed again by another owner: the old lease holds nothing either.
    store
        .claim_workflows("worker-2", lease_for, 10)
        .await
        .expect("claiming again");
    let mut from = copy.clone();
    let refused = store
        .record_step_if(&mut from, step("b", StepStatus::Completed, json!(2)), &held)
        .await;
    assert!(
        matches!(refused, Err(StateStoreError::Conflict(_))),
        "{refused:?}"
    );
    let stored = store.load_workflow_state(&state.id).await.expect("loading");
    assert_eq!(step_ids(&stored), ["a"].map(String::from).into());
    // A version condition that does not hold is refused the same way.
    let mut from = stored.clone();
    let refused = store
        .record_step_if(
            &mut from,
            step("c", StepStatus::Completed, json!(3)),
            &SaveCondition::Version(1),
        )
        .await;
    assert!(
        matches!(refused, Err(StateStoreError::Conflict(_))),
        "{refused:?}"
    );
}

backend_tests!(
    a_step_under_a_released_or_taken_lease_is_refused,
    a_stale_copy_inside_a_transaction_keeps_the_other_steps,
    a_copy_marked_after_it_was_read_records_its_step_and_status,
    parallel_steps_from_stale_copies_all_land,
    parallel_context_patches_all_keep_their_change,
    a_merge_patch_sets_and_deletes_keys_of_the_stored_context,
    a_stale_copy_keeps_what_another_step_changed,
    the_same_step_sent_twice_from_the_same_copy_is_stored_once,
    parallel_steps_under_one_lease_all_land,
    a_plain_step_is_still_refused_under_a_live_lease,
);
