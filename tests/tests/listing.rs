//! Listing active workflows in pages (keyset), on every backend.

use backend_suite::{Backend, at, backend_tests, open, workflow};
use llm_orchestrator_state::sea_orm::ConnectionTrait;
use llm_orchestrator_state::{StateStore, StepState, WorkflowState};
use serde_json::json;

backend_tests!(
    pages_return_every_active_workflow_once_in_order,
    an_unreadable_row_does_not_stop_the_pages,
);

async fn page_through(
    store: &llm_orchestrator_state::SeaOrmStateStore,
    limit: u64,
) -> Vec<WorkflowState> {
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..1_000 {
        let page = store
            .list_active_workflows_page(after.as_ref(), limit)
            .await
            .unwrap();
        assert!(page.workflows.len() as u64 <= limit);
        all.extend(page.workflows);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
    panic!("paging did not end");
}

async fn pages_return_every_active_workflow_once_in_order(backend: Backend) {
    let store = open(backend).await;
    let tx = store.begin().await.unwrap();
    for n in 0..250_i64 {
        let mut state = workflow(&format!("wf-{n}"));
        // Ties on updated_at are broken by id.
        state.updated_at = at(n / 3, 0);
        let mut step = StepState::new("s");
        step.mark_completed(json!({ "n": n }));
        state.upsert_step(step);
        if n % 5 == 0 {
            state.mark_completed();
            state.updated_at = at(n / 3, 0);
        }
        tx.save_workflow_state(&state).await.unwrap();
    }
    tx.commit().await.unwrap();

    let everything = store.list_active_workflows().await.unwrap();
    assert_eq!(everything.len(), 200);
    for limit in [1, 7, 40, 200, 1_000] {
        let paged = page_through(&store, limit).await;
        assert_eq!(paged, everything, "limit {limit}");
    }
    let empty = store.list_active_workflows_page(None, 0).await.unwrap();
    assert!(empty.workflows.is_empty());
    assert_eq!(empty.next, None);
}

async fn an_unreadable_row_does_not_stop_the_pages(backend: Backend) {
    let store = open(backend).await;
    for n in 0..10_i64 {
        let mut state = workflow(&format!("wf-{n}"));
        state.updated_at = at(n, 0);
        store.save_workflow_state(&state).await.unwrap();
    }
    store
        .connection()
        .execute_unprepared(
            "UPDATE workflow_states SET status = 'exploded' WHERE workflow_id = 'wf-4'",
        )
        .await
        .unwrap();
    let paged = page_through(&store, 3).await;
    let ids: Vec<_> = paged.iter().map(|s| s.workflow_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "wf-9", "wf-8", "wf-7", "wf-6", "wf-5", "wf-3", "wf-2", "wf-1", "wf-0"
        ]
    );
}
