//! One workflow whose stored rows cannot be read never blocks the others, on every
//! backend: listings report the broken ones apart. The damage is made by the
//! suite's fixture (`backend_suite::corrupt`).

use std::collections::HashSet;
use std::time::Duration;

use backend_suite::corrupt::{self, Damage};
use backend_suite::{Backend, TestStore, at, backend_tests, open, step, workflow};
use llm_orchestrator_state::{
    SkippedWorkflow, StateStore, StepStatus, WorkflowState, WorkflowStatus,
};
use serde_json::json;
use uuid::Uuid;

backend_tests!(
    listings_report_unreadable_active_workflows_apart,
    a_status_stored_in_upper_case_is_listed_and_claimed_as_running,
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
