//! Several replicas on one database, on every backend: versions and conditional saves,
//! recovery leases with fencing tokens, and recovery in one call.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use backend_suite::{Backend, backend_tests, open, step, workflow};
use llm_orchestrator_state::{
    Checkpoint, SaveCondition, StateStore, StateStoreError, StepState, StepStatus, WorkflowState,
};
use serde_json::json;

backend_tests!(
    versions_start_at_one_and_every_save_bumps_them,
    conditional_save_with_a_stale_version_is_a_conflict_and_changes_nothing,
    concurrent_conditional_saves_lose_no_update,
    each_workflow_is_claimed_by_exactly_one_of_four_replicas,
    a_replica_that_stops_renewing_loses_its_workflows_and_its_late_writes,
    released_workflows_can_be_claimed_at_once,
    record_step_if_refuses_a_step_from_a_replica_that_lost_the_lease,
    record_step_if_with_a_version_records_once,
    a_fenced_write_is_not_refused_by_its_own_lease_renewal,
    recover_workflows_returns_the_newest_checkpoint_state_claimed,
    a_stale_holders_plain_writes_and_rollback_are_refused_naming_the_new_holder,
    without_a_live_lease_plain_writes_work_as_before,
    an_operator_rollback_overrides_a_live_lease_and_fences_its_holder,
);

async fn versions_start_at_one_and_every_save_bumps_them(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-version");
    store.save_workflow_state(&state).await.unwrap();
    let loaded = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    assert_eq!((loaded.value.clone(), loaded.version), (state.clone(), 1));

    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    assert_eq!(
        store
            .load_workflow_state_versioned(&state.id)
            .await
            .unwrap()
            .version,
        2
    );
    state.mark_paused();
    let version = store
        .save_workflow_state_if(&state, &SaveCondition::Version(2))
        .await
        .unwrap();
    assert_eq!(version, 3);
    let loaded = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    assert_eq!((loaded.value, loaded.version), (state.clone(), 3));

    // Version 0 means "create": fine for a new workflow, a conflict for an existing one.
    let fresh = workflow("wf-version-new");
    assert_eq!(
        store
            .save_workflow_state_if(&fresh, &SaveCondition::Version(0))
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        store
            .save_workflow_state_if(&fresh, &SaveCondition::Version(0))
            .await,
        Err(StateStoreError::Conflict(_))
    ));
    // A version for a workflow that does not exist cannot hold either.
    assert!(matches!(
        store
            .save_workflow_state_if(&workflow("wf-missing"), &SaveCondition::Version(4))
            .await,
        Err(StateStoreError::Conflict(_))
    ));
}

async fn conditional_save_with_a_stale_version_is_a_conflict_and_changes_nothing(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-stale");
    state.upsert_step(StepState::new("a"));
    store.save_workflow_state(&state).await.unwrap();
    let mine = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();

    // Another writer saves first.
    let mut theirs = mine.value.clone();
    theirs.mark_running();
    store
        .save_workflow_state_if(&theirs, &SaveCondition::Version(mine.version))
        .await
        .unwrap();

    // My save, based on what I loaded before theirs, is refused, steps and all.
    let mut stale = mine.value.clone();
    stale.mark_failed("from a stale copy");
    stale.steps.clear();
    stale.upsert_step(StepState::new("b"));
    let err = store
        .save_workflow_state_if(&stale, &SaveCondition::Version(mine.version))
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err}");
    assert!(err.is_transient());
    let stored = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    assert_eq!(stored.value, theirs);
    assert_eq!(stored.version, mine.version + 1);
}

async fn concurrent_conditional_saves_lose_no_update(backend: Backend) {
    const WRITERS: i64 = 64;
    let store = open(backend).await;
    let state = WorkflowState::new("wf-counter", "counter", None, json!({"count": 0}));
    store.save_workflow_state(&state).await.unwrap();

    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = store.store.clone();
            let id = state.id;
            tokio::spawn(async move {
                let mut conflicts = 0u32;
                loop {
                    let current = store.load_workflow_state_versioned(&id).await.unwrap();
                    let mut next = current.value.clone();
                    next.context["count"] = json!(next.context["count"].as_i64().unwrap() + 1);
                    match store
                        .save_workflow_state_if(&next, &SaveCondition::Version(current.version))
                        .await
                    {
                        Ok(_) => return conflicts,
                        Err(StateStoreError::Conflict(_)) => {
                            conflicts += 1;
                            assert!(conflicts < 10_000, "no progress");
                            tokio::task::yield_now().await;
                        }
                        Err(err) => panic!("unexpected error: {err}"),
                    }
                }
            })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    let stored = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    assert_eq!(stored.value.context["count"], json!(WRITERS));
    assert_eq!(stored.version, 1 + WRITERS);
}

async fn save_many(
    store: &llm_orchestrator_state::SeaOrmStateStore,
    count: usize,
) -> Vec<WorkflowState> {
    let mut states = Vec::with_capacity(count);
    let txn = store.begin().await.unwrap();
    for n in 0..count {
        let mut state = workflow(&format!("wf-{n}"));
        state.mark_running();
        txn.save_workflow_state(&state).await.unwrap();
        states.push(state);
    }
    txn.commit().await.unwrap();
    states
}

async fn each_workflow_is_claimed_by_exactly_one_of_four_replicas(backend: Backend) {
    const WORKFLOWS: usize = 1_000;
    let store = open(backend).await;
    let states = save_many(&store, WORKFLOWS).await;
    // A finished workflow is never claimed.
    let mut done = workflow("wf-done");
    done.mark_completed();
    store.save_workflow_state(&done).await.unwrap();

    let replicas: Vec<_> = (0..4)
        .map(|replica| {
            let store = store.store.clone();
            tokio::spawn(async move {
                let owner = format!("replica-{replica}");
                let mut mine = Vec::new();
                loop {
                    let claims = store
                        .claim_workflows(&owner, Duration::from_secs(300), 25)
                        .await
                        .unwrap();
                    if claims.is_empty() {
                        return mine;
                    }
                    for claim in claims {
                        assert_eq!(claim.lease.owner, owner);
                        assert_eq!(claim.lease.workflow_state_id, claim.state.id);
                        mine.push(claim.state.id);
                    }
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for replica in futures::future::join_all(replicas).await {
        for id in replica.unwrap() {
            assert!(seen.insert(id), "workflow {id} was claimed twice");
        }
    }
    let expected: HashSet<_> = states.iter().map(|state| state.id).collect();
    assert_eq!(
        seen, expected,
        "every active workflow claimed once, no finished one"
    );
}

async fn a_replica_that_stops_renewing_loses_its_workflows_and_its_late_writes(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-lease");
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();

    // Replica A claims with a lease that runs out at once, then stalls.
    let a = store
        .claim_workflows("replica-a", Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    let a_lease = a[0].lease.clone();
    tokio::time::sleep(Duration::from_millis(5)).await;

    // Replica B takes the workflow over, with a higher fencing token.
    let b = store
        .claim_workflows("replica-b", Duration::from_secs(300), 10)
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    let b_lease = b[0].lease.clone();
    assert!(b_lease.token > a_lease.token);
    // Nobody else can claim it while B's lease lives.
    assert!(
        store
            .claim_workflows("replica-c", Duration::from_secs(300), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A wakes up: its write, its renewal and its release are refused or ignored.
    let mut late = state.clone();
    late.mark_failed("written by a replica that lost the workflow");
    let err = store
        .save_workflow_state_if(&late, &SaveCondition::Lease(a_lease.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err}");
    assert!(matches!(
        store.renew_lease(&a_lease, Duration::from_secs(60)).await,
        Err(StateStoreError::Conflict(_))
    ));
    assert!(!store.release_lease(&a_lease).await.unwrap());

    // B's writes go through and are what is stored.
    let mut next = state.clone();
    next.mark_paused();
    store
        .save_workflow_state_if(&next, &SaveCondition::Lease(b_lease.clone()))
        .await
        .unwrap();
    let renewed = store
        .renew_lease(&b_lease, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(renewed.expires_at > b_lease.expires_at);
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), next);

    // A lease is for its own workflow only.
    let other = workflow("wf-other");
    assert!(matches!(
        store
            .save_workflow_state_if(&other, &SaveCondition::Lease(b_lease))
            .await,
        Err(StateStoreError::InvalidInput(_))
    ));
}

async fn record_step_if_refuses_a_step_from_a_replica_that_lost_the_lease(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-fenced-step");
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    let a = store
        .claim_workflows("replica-a", Duration::ZERO, 10)
        .await
        .unwrap();
    let mut a_state = a[0].state.clone();
    let a_lease = a[0].lease.clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = store
        .claim_workflows("replica-b", Duration::from_secs(300), 10)
        .await
        .unwrap();
    let mut b_state = b[0].state.clone();
    let b_lease = b[0].lease.clone();

    // B, the owner now, records the tool call.
    let (b_checkpoint, _) = store
        .record_step_if(
            &mut b_state,
            step(
                "tool_call",
                StepStatus::Completed,
                json!({ "output": "by b" }),
            ),
            &SaveCondition::Lease(b_lease),
        )
        .await
        .unwrap();

    // A wakes up and records the same step: refused, nothing stored, its state as it was.
    let before = a_state.clone();
    let err = store
        .record_step_if(
            &mut a_state,
            step(
                "tool_call",
                StepStatus::Completed,
                json!({ "output": "by a" }),
            ),
            &SaveCondition::Lease(a_lease),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err}");
    assert_eq!(a_state, before);
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), b_state);
    assert_eq!(
        store.list_checkpoints(&state.id, 10, 0).await.unwrap(),
        [b_checkpoint]
    );
}

async fn record_step_if_with_a_version_records_once(backend: Backend) {
    let store = open(backend).await;
    let state = workflow("wf-versioned-step");
    store.save_workflow_state(&state).await.unwrap();
    let loaded = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();

    let mut first = loaded.value.clone();
    let (_, version) = store
        .record_step_if(
            &mut first,
            step("retrieve", StepStatus::Completed, json!({ "output": "1" })),
            &SaveCondition::Version(loaded.version),
        )
        .await
        .unwrap();
    assert_eq!(version, loaded.version + 1);
    assert_eq!(
        store
            .load_workflow_state_versioned(&state.id)
            .await
            .unwrap()
            .version,
        version
    );

    // A second writer that loaded the same version loses.
    let mut second = loaded.value.clone();
    let err = store
        .record_step_if(
            &mut second,
            step("retrieve", StepStatus::Completed, json!({ "output": "2" })),
            &SaveCondition::Version(loaded.version),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err}");
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), first);
    assert_eq!(
        store
            .list_checkpoints(&state.id, 10, 0)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_fenced_write_is_not_refused_by_its_own_lease_renewal(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-heartbeat");
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    let claim = store
        .claim_workflows("replica-a", Duration::from_secs(300), 10)
        .await
        .unwrap()
        .remove(0);
    let mut state = claim.state;
    // A heartbeat task renews the lease over and over while the steps are recorded.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heartbeat = {
        let (store, lease, stop) = (store.store.clone(), claim.lease.clone(), stop.clone());
        tokio::spawn(async move {
            let mut renewals = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store
                    .renew_lease(&lease, Duration::from_secs(300))
                    .await
                    .unwrap();
                renewals += 1;
                tokio::task::yield_now().await;
            }
            renewals
        })
    };
    let held = SaveCondition::Lease(claim.lease.clone());
    for n in 0..60 {
        let step = step(
            &format!("step-{n}"),
            StepStatus::Completed,
            json!({ "n": n }),
        );
        store.record_step_if(&mut state, step, &held).await.unwrap();
        store.save_workflow_state_if(&state, &held).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(heartbeat.await.unwrap() > 0);
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

async fn released_workflows_can_be_claimed_at_once(backend: Backend) {
    let store = open(backend).await;
    let state = workflow("wf-release");
    store.save_workflow_state(&state).await.unwrap();
    let first = store
        .claim_workflows("one", Duration::from_secs(300), 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(store.release_lease(&first[0].lease).await.unwrap());
    let second = store
        .claim_workflows("two", Duration::from_secs(300), 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].state, state);
    // A save under the lease keeps the lease where it is.
    store
        .save_workflow_state_if(&state, &SaveCondition::Lease(second[0].lease.clone()))
        .await
        .unwrap();
    assert!(
        store
            .claim_workflows("three", Duration::from_secs(300), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn recover_workflows_returns_the_newest_checkpoint_state_claimed(backend: Backend) {
    let store = Arc::new(open(backend).await);
    let mut with_checkpoint = workflow("wf-recover");
    with_checkpoint.mark_running();
    let mut step = StepState::new("retrieve");
    step.mark_completed(json!({"docs": 2}));
    let checkpoint = store.record_step(&mut with_checkpoint, step).await.unwrap();
    // The stored state moves on after the checkpoint (a step started, then the crash).
    let mut moved_on = with_checkpoint.clone();
    let mut started = StepState::new("prompt");
    started.mark_running();
    moved_on.upsert_step(started);
    store.save_workflow_state(&moved_on).await.unwrap();

    let mut without = workflow("wf-recover-fresh");
    without.mark_running();
    store.save_workflow_state(&without).await.unwrap();

    let recovered = store
        .recover_workflows("restarted", Duration::from_secs(300), 100)
        .await
        .unwrap();
    assert_eq!(recovered.len(), 2);
    for recovery in &recovered {
        assert_eq!(recovery.lease.owner, "restarted");
        if recovery.state.id == with_checkpoint.id {
            assert_eq!(recovery.checkpoint.as_ref(), Some(&checkpoint));
            assert_eq!(
                recovery.state, with_checkpoint,
                "resumes from the checkpoint"
            );
        } else {
            assert_eq!(recovery.checkpoint, None);
            assert_eq!(recovery.state, without, "no checkpoint: the stored state");
        }
    }
    // Claimed: another process starting now gets nothing.
    assert!(
        store
            .recover_workflows("another", Duration::from_secs(300), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `err` is the `Conflict` of a plain write refused because `holder` holds the lease.
fn assert_refused_for(err: StateStoreError, holder: &str) {
    match err {
        StateStoreError::Conflict(why) => assert!(why.contains(holder), "{why}"),
        other => panic!("expected a Conflict naming {holder}, got {other:?}"),
    }
}

/// A replica whose lease ran out and was taken over wakes up and writes without a lease
/// condition: its step, save, checkpoint and rollback are all refused with a `Conflict`
/// that names the new holder, and the step the new holder recorded is what is stored.
async fn a_stale_holders_plain_writes_and_rollback_are_refused_naming_the_new_holder(
    backend: Backend,
) {
    let store = open(backend).await;
    let mut state = workflow("wf-stale-plain");
    state.mark_running();
    let first = store
        .record_step(
            &mut state,
            step("retrieve", StepStatus::Completed, json!({ "docs": 2 })),
        )
        .await
        .unwrap();

    let a = store
        .claim_workflows("replica-a", Duration::ZERO, 10)
        .await
        .unwrap();
    let mut a_state = a[0].state.clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = store
        .claim_workflows("replica-b", Duration::from_secs(300), 10)
        .await
        .unwrap();
    assert_eq!(b.len(), 1, "B takes the workflow over");
    let mut b_state = b[0].state.clone();
    let (b_checkpoint, b_version) = store
        .record_step_if(
            &mut b_state,
            step("tool_call", StepStatus::Completed, json!({ "by": "b" })),
            &SaveCondition::Lease(b[0].lease.clone()),
        )
        .await
        .unwrap();

    // A, unaware, records the same step with the plain call: refused, its copy unchanged.
    let before = a_state.clone();
    let err = store
        .record_step(
            &mut a_state,
            step("tool_call", StepStatus::Completed, json!({ "by": "a" })),
        )
        .await
        .unwrap_err();
    assert_refused_for(err, "replica-b");
    assert_eq!(a_state, before);
    // Nor may it roll the workflow back, save it, checkpoint it, or save it by version.
    assert_refused_for(
        store.rollback_to_checkpoint(&first.id).await.unwrap_err(),
        "replica-b",
    );
    let mut failed = a_state.clone();
    failed.mark_failed("written by a replica that lost the workflow");
    assert_refused_for(
        store.save_workflow_state(&failed).await.unwrap_err(),
        "replica-b",
    );
    let checkpoint = Checkpoint::of(&failed, "late").unwrap();
    assert_refused_for(
        store.create_checkpoint(&checkpoint).await.unwrap_err(),
        "replica-b",
    );
    assert_refused_for(
        store
            .save_workflow_state_if(&failed, &SaveCondition::Version(b_version))
            .await
            .unwrap_err(),
        "replica-b",
    );

    // B's acknowledged step is what is stored, and its checkpoint is still the newest.
    let stored = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    assert_eq!(stored.value, b_state);
    assert_eq!(stored.version, b_version);
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(b_checkpoint)
    );
    assert!(matches!(
        store.get_checkpoint(&checkpoint.id).await,
        Err(StateStoreError::NotFound(_))
    ));
}

/// With no live lease (never claimed, expired, released), plain writes behave as they
/// always did: the spec's API knows nothing of leases.
async fn without_a_live_lease_plain_writes_work_as_before(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-unleased");
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    let first = store
        .record_step(
            &mut state,
            step("retrieve", StepStatus::Completed, json!({ "docs": 1 })),
        )
        .await
        .unwrap();
    store
        .create_checkpoint(&Checkpoint::of(&state, "manual").unwrap())
        .await
        .unwrap();
    store.rollback_to_checkpoint(&first.id).await.unwrap();

    // A lease that ran out without anyone taking over stops nobody.
    let expired = store
        .claim_workflows("replica-a", Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .record_step(
            &mut state,
            step("prompt", StepStatus::Completed, json!("ok")),
        )
        .await
        .unwrap();
    store.rollback_to_checkpoint(&first.id).await.unwrap();

    // Nor does one given back.
    let live = store
        .claim_workflows("replica-b", Duration::from_secs(300), 10)
        .await
        .unwrap();
    assert!(store.release_lease(&live[0].lease).await.unwrap());
    let mut state = store.load_workflow_state(&state.id).await.unwrap();
    let version = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap()
        .version;
    state.mark_paused();
    store
        .save_workflow_state_if(&state, &SaveCondition::Version(version))
        .await
        .unwrap();
    store.save_workflow_state(&state).await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

/// An operator rolls back a workflow a live replica holds, deliberately: the override
/// goes through, ends the lease (the holder's next write under it, and its renewal, are
/// refused), and the workflow can be claimed again at once.
async fn an_operator_rollback_overrides_a_live_lease_and_fences_its_holder(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-override");
    state.mark_running();
    let first = store
        .record_step(
            &mut state,
            step("retrieve", StepStatus::Completed, json!({ "docs": 3 })),
        )
        .await
        .unwrap();
    let claims = store
        .claim_workflows("replica-b", Duration::from_secs(300), 10)
        .await
        .unwrap();
    let lease = claims[0].lease.clone();
    let mut held = claims[0].state.clone();
    store
        .record_step_if(
            &mut held,
            step("tool_call", StepStatus::Failed, json!({ "error": "bad" })),
            &SaveCondition::Lease(lease.clone()),
        )
        .await
        .unwrap();

    let rolled_back = store
        .rollback_to_checkpoint_overriding_lease(&first.id)
        .await
        .unwrap();
    assert_eq!(rolled_back.steps, state.steps);
    assert_eq!(
        store.load_workflow_state(&state.id).await.unwrap(),
        rolled_back
    );

    // The holder is fenced: its step under the old lease and its renewal are refused.
    let err = store
        .record_step_if(
            &mut held,
            step("tool_call", StepStatus::Completed, json!("retried")),
            &SaveCondition::Lease(lease.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err}");
    assert!(matches!(
        store.renew_lease(&lease, Duration::from_secs(300)).await,
        Err(StateStoreError::Conflict(_))
    ));
    assert_eq!(
        store.load_workflow_state(&state.id).await.unwrap(),
        rolled_back
    );
    // Nobody holds it now: it can be claimed at once, with a newer token.
    let again = store
        .claim_workflows("replica-c", Duration::from_secs(300), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].lease.token > lease.token);
}
