//! One workflow whose stored rows cannot be read never blocks the others, on every
//! backend: claims and recovery lease only the healthy ones (and never the broken one),
//! listings report the broken ones apart, and every public read either serves a row or
//! says, with a typed error, that this one row is unreadable. The damage is made by the
//! suite's fixture (`backend_suite::corrupt`).

use std::collections::HashSet;
use std::time::Duration;

use backend_suite::corrupt::{self, Damage};
use backend_suite::{Backend, TestStore, at, backend_tests, open, step, stored_texts, workflow};
use llm_orchestrator_state::{
    RetentionPolicy, SkippedWorkflow, StateStore, StateStoreError, StepStatus, WorkflowState,
    WorkflowStatus,
};
use serde_json::json;
use uuid::Uuid;

backend_tests!(
    claims_lease_only_healthy_workflows_and_fill_the_limit_past_unreadable_ones,
    recovery_resumes_the_healthy_workflows_and_leaves_unreadable_ones_unleased,
    listings_report_unreadable_active_workflows_apart,
    a_status_stored_in_upper_case_is_listed_and_claimed_as_running,
    every_read_serves_healthy_rows_beside_unreadable_ones,
);

const MINUTE: Duration = Duration::from_secs(60);

/// A running workflow with one completed step, last updated at `at(seconds)`.
fn running(workflow_id: &str, seconds: i64) -> WorkflowState {
    let mut state = workflow(workflow_id);
    state.mark_running();
    state.upsert_step(step(
        "retrieve",
        StepStatus::Completed,
        json!({"chunks": [1, 2, 3]}),
    ));
    state.updated_at = at(seconds, 0);
    state
}

/// A store with one unreadable running workflow per kind of [`Damage`], updated before
/// (so claimed before) three healthy running ones. Returns the unreadable and the healthy.
async fn seeded(backend: Backend) -> (TestStore, Vec<WorkflowState>, Vec<WorkflowState>) {
    let store = open(backend).await;
    let mut unreadable = Vec::new();
    for (n, damage) in Damage::ALL.into_iter().enumerate() {
        let state = running(&format!("wf-unreadable-{n}"), n as i64);
        store.save_workflow_state(&state).await.unwrap();
        damage.apply(&store, state.id).await;
        unreadable.push(state);
    }
    let mut healthy = Vec::new();
    for n in 0..3 {
        let state = running(&format!("wf-healthy-{n}"), 100 + n);
        store.save_workflow_state(&state).await.unwrap();
        healthy.push(state);
    }
    (store, unreadable, healthy)
}

fn ids(states: &[WorkflowState]) -> HashSet<Uuid> {
    states.iter().map(|state| state.id).collect()
}

/// The ids skipped, each checked to come with a typed "unreadable row" error.
fn skipped_ids(skipped: &[SkippedWorkflow]) -> HashSet<Uuid> {
    for skipped in skipped {
        assert!(
            skipped.error.is_unreadable_data(),
            "{}: {:?}",
            skipped.id,
            skipped.error
        );
    }
    skipped.iter().map(|skipped| skipped.id).collect()
}

/// Who holds the lease on a workflow, as stored ("-" for nobody).
async fn lease_owner(store: &TestStore, id: Uuid) -> String {
    let owners = stored_texts(
        store,
        "SELECT coalesce(lease_owner, '-') AS owner FROM workflow_states WHERE id = {}",
        "owner",
        id,
    )
    .await;
    owners.concat()
}

async fn claims_lease_only_healthy_workflows_and_fill_the_limit_past_unreadable_ones(
    backend: Backend,
) {
    let (store, unreadable, healthy) = seeded(backend).await;

    // The unreadable workflows sort first; a limit of 2 still hands out 2 healthy ones.
    let report = store
        .claim_workflows_report("replica-1", MINUTE, 2)
        .await
        .unwrap();
    let claimed: Vec<WorkflowState> = report.claimed.iter().map(|c| c.state.clone()).collect();
    assert_eq!(ids(&claimed), ids(&healthy[..2]));
    assert_eq!(claimed.len(), 2);
    for claim in &report.claimed {
        assert_eq!(
            Some(&claim.state),
            healthy.iter().find(|h| h.id == claim.state.id)
        );
    }
    assert_eq!(skipped_ids(&report.skipped), ids(&unreadable));
    // The unreadable ones are not held by this claimer (nor anyone): an operator or
    // another replica can act on them.
    for state in &unreadable {
        assert_eq!(
            lease_owner(&store, state.id).await,
            "-",
            "{}",
            state.workflow_id
        );
    }

    // The next round is not blocked by them either, and the plain call works.
    let next = store
        .claim_workflows("replica-2", MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].state, healthy[2]);
    for state in &unreadable {
        assert_eq!(lease_owner(&store, state.id).await, "-");
    }

    // Repaired (saved again), a workflow is claimable like any other.
    store.save_workflow_state(&unreadable[0]).await.unwrap();
    let repaired = store
        .claim_workflows_report("replica-3", MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(repaired.claimed.len(), 1);
    assert_eq!(repaired.claimed[0].state, unreadable[0]);
    assert_eq!(skipped_ids(&repaired.skipped), ids(&unreadable[1..]));
}

async fn recovery_resumes_the_healthy_workflows_and_leaves_unreadable_ones_unleased(
    backend: Backend,
) {
    let (store, unreadable, healthy) = seeded(backend).await;
    let mut checkpointed = healthy[1].clone();
    let mut tool = step("tool", StepStatus::Completed, json!("called"));
    tool.completed_at = Some(at(150, 0));
    let checkpoint = store.record_step(&mut checkpointed, tool).await.unwrap();

    let report = store
        .recover_workflows_report("replica-1", MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(skipped_ids(&report.skipped), ids(&unreadable));
    assert_eq!(report.recovered.len(), 3);
    let resumed = report
        .recovered
        .iter()
        .find(|r| r.state.id == checkpointed.id)
        .unwrap();
    assert_eq!(resumed.state, checkpointed);
    assert_eq!(resumed.checkpoint.as_ref(), Some(&checkpoint));
    for state in &unreadable {
        assert_eq!(
            lease_owner(&store, state.id).await,
            "-",
            "{}",
            state.workflow_id
        );
    }
    for state in &healthy {
        assert_eq!(lease_owner(&store, state.id).await, "replica-1");
    }

    // Nothing healthy is left to claim; the unreadable ones still fail no call.
    let again = store
        .recover_workflows("replica-2", MINUTE, 10)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
}

async fn listings_report_unreadable_active_workflows_apart(backend: Backend) {
    let (store, unreadable, healthy) = seeded(backend).await;
    let newest_first: Vec<WorkflowState> = healthy.iter().rev().cloned().collect();

    let report = store.list_active_workflows_report().await.unwrap();
    assert_eq!(report.workflows, newest_first);
    assert_eq!(skipped_ids(&report.skipped), ids(&unreadable));
    assert_eq!(store.list_active_workflows().await.unwrap(), newest_first);

    // Page by page (two to a page): every workflow is on exactly one page, readable or not.
    let (mut listed, mut skipped, mut after) = (Vec::new(), Vec::new(), None);
    loop {
        let page = store
            .list_active_workflows_page(after.as_ref(), 2)
            .await
            .unwrap();
        listed.extend(page.workflows);
        skipped.extend(page.skipped);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, newest_first);
    assert_eq!(skipped.len(), unreadable.len());
    assert_eq!(skipped_ids(&skipped), ids(&unreadable));
}

async fn a_status_stored_in_upper_case_is_listed_and_claimed_as_running(backend: Backend) {
    let store = open(backend).await;
    let mut state = running("wf-shouting", 1);
    state.mark_paused();
    let mut finished = running("wf-done", 2);
    finished.mark_completed();
    for state in [&state, &finished] {
        store.save_workflow_state(state).await.unwrap();
        assert_eq!(corrupt::status_upper_case(&store, state.id).await, 1);
    }

    assert_eq!(
        store.load_workflow_state(&state.id).await.unwrap().status,
        WorkflowStatus::Paused
    );
    assert_eq!(
        store.list_active_workflows().await.unwrap(),
        [state.clone()]
    );
    let page = store.list_active_workflows_page(None, 10).await.unwrap();
    assert_eq!(page.workflows, [state.clone()]);
    let recovered = store
        .recover_workflows("replica-1", MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].state, state);
    // A finished one in upper case is finished: pruned with the others.
    let pruned = store.delete_old_states(at(1_000_000_000, 0)).await.unwrap();
    assert_eq!(pruned, 1);
}

/// Whether `result` is an error saying the row is unreadable.
fn unreadable<T: std::fmt::Debug>(what: &str, result: Result<T, StateStoreError>) {
    match result {
        Err(err) if err.is_unreadable_data() => {}
        other => panic!("{what}: expected an unreadable-row error, got {other:?}"),
    }
}

async fn every_read_serves_healthy_rows_beside_unreadable_ones(backend: Backend) {
    let (store, broken, healthy) = seeded(backend).await;
    let good = &healthy[0];
    // A healthy workflow whose newest checkpoint is unreadable, its older one fine.
    let mut checkpointed = healthy[1].clone();
    let older = store
        .record_step(
            &mut checkpointed,
            step("first", StepStatus::Completed, json!(1)),
        )
        .await
        .unwrap();
    let newest = store
        .record_step(
            &mut checkpointed,
            step("second", StepStatus::Completed, json!(2)),
        )
        .await
        .unwrap();
    assert_eq!(corrupt::snapshot(&store, newest.id).await, 1);
    // An unreadable workflow with a readable checkpoint, to repair it from.
    let mut damaged = running("wf-damaged-later", 50);
    store.save_workflow_state(&damaged).await.unwrap();
    let repair_point = store
        .record_step(&mut damaged, step("ok", StepStatus::Completed, json!("ok")))
        .await
        .unwrap();
    corrupt::context(&store, damaged.id).await;

    for state in broken.iter().chain([&damaged]) {
        unreadable("load", store.load_workflow_state(&state.id).await);
        unreadable(
            "load by workflow id",
            store
                .load_workflow_state_by_workflow_id(&state.workflow_id)
                .await,
        );
        unreadable(
            "load versioned",
            store.load_workflow_state_versioned(&state.id).await,
        );
        unreadable("export", store.export_workflow(&state.id).await);
        // Reads that never decode the workflow's own JSON serve it.
        store.lineage(&state.id).await.unwrap();
        store.checkpoint_usage(&state.id).await.unwrap();
        store.list_checkpoint_infos(&state.id, 10, 0).await.unwrap();
    }
    assert_eq!(store.load_workflow_state(&good.id).await.unwrap(), *good);
    store.export_workflow(&good.id).await.unwrap();

    // Checkpoints: the unreadable one is an error of its own; the others are served.
    unreadable("get checkpoint", store.get_checkpoint(&newest.id).await);
    unreadable("restore", store.restore_from_checkpoint(&newest.id).await);
    unreadable(
        "latest checkpoint",
        store.get_latest_checkpoint(&checkpointed.id).await,
    );
    // A page leaves the unreadable checkpoint out (with a warning) and serves the rest.
    assert_eq!(
        store
            .list_checkpoints(&checkpointed.id, 10, 0)
            .await
            .unwrap(),
        std::slice::from_ref(&older)
    );
    unreadable(
        "export with an unreadable checkpoint",
        store.export_workflow(&checkpointed.id).await,
    );
    assert_eq!(store.get_checkpoint(&older.id).await.unwrap(), older);
    assert_eq!(
        store
            .list_checkpoints(&checkpointed.id, 10, 1)
            .await
            .unwrap(),
        std::slice::from_ref(&older)
    );
    let infos = store
        .list_checkpoint_infos(&checkpointed.id, 10, 0)
        .await
        .unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(
        store.checkpoint_info(&newest.id).await.unwrap().id,
        newest.id
    );
    store
        .prune(&RetentionPolicy::default(), true)
        .await
        .unwrap();

    // Listings and recovery: every healthy workflow, the broken ones reported apart.
    let listed = store.list_active_workflows_report().await.unwrap();
    assert_eq!(ids(&listed.workflows), ids(&healthy));
    let broken_ids: HashSet<Uuid> = broken.iter().chain([&damaged]).map(|s| s.id).collect();
    assert_eq!(skipped_ids(&listed.skipped), broken_ids);
    let recovered = store
        .recover_workflows_report("replica-1", MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(skipped_ids(&recovered.skipped), broken_ids);
    assert_eq!(
        recovered
            .recovered
            .iter()
            .map(|r| r.state.id)
            .collect::<HashSet<_>>(),
        ids(&healthy)
    );
    // The newest checkpoint unreadable: resumed from the stored state.
    let resumed = recovered
        .recovered
        .iter()
        .find(|r| r.state.id == checkpointed.id)
        .unwrap();
    assert_eq!(resumed.state, checkpointed);
    assert_eq!(resumed.checkpoint, None);

    // Rolling back to a readable checkpoint repairs an unreadable workflow.
    let repaired = store
        .rollback_to_checkpoint(&repair_point.id)
        .await
        .unwrap();
    assert_eq!(
        store.load_workflow_state(&damaged.id).await.unwrap(),
        repaired
    );
    assert_eq!(repaired.context, damaged.context);
}
