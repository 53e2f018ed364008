//! The admin UI's reads (`store/src/admin.rs`) that must agree with the store's writes on
//! every backend: a workflow's current version, its summary, and who holds its lease.

use backend_suite::{Backend, at, backend_tests, open, step, workflow};
use llm_orchestrator_state::{Checkpoint, StateStore, StateStoreError, StepStatus};
use serde_json::json;
use uuid::Uuid;

backend_tests!(
    the_version_is_the_stored_one_and_goes_up_with_every_write,
    the_version_of_an_unknown_or_deleted_workflow_is_not_found,
    the_workflow_list_shows_who_holds_each_lease_and_until_when,
    the_workflow_list_finds_the_workflows_whose_lease_expired,
    one_workflows_summary_is_its_list_row_read_by_id,
    runs_of_a_workflow_id_are_counted_exactly,
);

async fn runs_of_a_workflow_id_are_counted_exactly(backend: Backend) {
    let store = open(backend).await;
    // Two runs of one workflow_id, and ids that merely contain it or differ in case.
    for id in ["order-7", "order-7", "order-77", "ORDER-7", "re-order-7"] {
        store.save_workflow_state(&workflow(id)).await.unwrap();
    }
    assert_eq!(store.count_runs("order-7").await.unwrap(), 2);
    assert_eq!(store.count_runs("order-77").await.unwrap(), 1);
    assert_eq!(store.count_runs("order").await.unwrap(), 0);
}

async fn one_workflows_summary_is_its_list_row_read_by_id(backend: Backend) {
    use llm_orchestrator_state::admin::WorkflowQuery;
    use std::time::Duration;

    let store = open(backend).await;
    // Steps done and not, checkpoints, a claim, and a name that also matches the other
    // workflow's id (the list's text search would find both).
    let mut claimed = workflow("wf-a");
    claimed.upsert_step(step(
        "retrieve",
        StepStatus::Completed,
        json!({ "docs": 2 }),
    ));
    claimed.upsert_step(step("prompt", StepStatus::Running, json!(null)));
    store.save_workflow_state(&claimed).await.unwrap();
    let checkpoint = Checkpoint::of(&claimed, "retrieve").unwrap();
    store.create_checkpoint(&checkpoint).await.unwrap();
    store
        .claim_workflows("replica-1", Duration::from_secs(60), 1)
        .await
        .unwrap();
    let mut other = workflow("wf-b");
    other.workflow_name = format!("after {}", claimed.id);
    other.upsert_step(step("retrieve", StepStatus::Skipped, json!(null)));
    store.save_workflow_state(&other).await.unwrap();

    let page = store
        .workflow_page(&WorkflowQuery::default())
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 2);
    for row in &page.rows {
        assert_eq!(&store.workflow_summary(&row.id).await.unwrap(), row);
    }
    let summary = store.workflow_summary(&claimed.id).await.unwrap();
    assert_eq!(
        (
            summary.steps_done,
            summary.steps_total,
            summary.checkpoint_count
        ),
        (1, 2, 1)
    );
    assert_eq!(summary.lease_owner.as_deref(), Some("replica-1"));

    let unknown = Uuid::from_u128(0xdead);
    assert_eq!(
        store.workflow_summary(&unknown).await.unwrap_err(),
        StateStoreError::NotFound(format!("workflow state {unknown}").into())
    );
}

async fn the_workflow_list_finds_the_workflows_whose_lease_expired(backend: Backend) {
    use llm_orchestrator_state::admin::{WorkflowQuery, WorkflowSort};
    use std::time::Duration;

    let store = open(backend).await;
    // A claim takes the oldest claimable workflow, an expired lease's included, so each
    // is saved just before its claim: `done` finished under an expired lease, `held` by a
    // replica that keeps its lease, `crashed` by one whose lease runs out at once; `free`
    // is claimed by nobody.
    let crashed = workflow("wf-crashed");
    let held = workflow("wf-held");
    let mut done = workflow("wf-done");
    store.save_workflow_state(&done).await.unwrap();
    store
        .claim_workflows("replica-done", Duration::from_millis(1), 1)
        .await
        .unwrap();
    // A plain save is refused while the lease is live: let it run out first.
    tokio::time::sleep(Duration::from_millis(20)).await;
    done.mark_completed();
    store.save_workflow_state(&done).await.unwrap();
    store.save_workflow_state(&held).await.unwrap();
    store
        .claim_workflows("replica-alive", Duration::from_secs(600), 1)
        .await
        .unwrap();
    store.save_workflow_state(&crashed).await.unwrap();
    store
        .claim_workflows("replica-gone", Duration::from_millis(1), 1)
        .await
        .unwrap();
    store
        .save_workflow_state(&workflow("wf-free"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Both ways a page is read: per status (by update time) and in one statement.
    for sort in [WorkflowSort::UpdatedAt, WorkflowSort::WorkflowId] {
        let expired = store
            .workflow_page(&WorkflowQuery {
                lease_expired: true,
                sort,
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<&str> = expired
            .rows
            .iter()
            .map(|row| row.workflow_id.as_str())
            .collect();
        assert_eq!(ids, ["wf-crashed"], "{sort:?}");
    }
    // Each row says whether its lease ran out, by the database's clock (for a tool whose
    // machine's clock may be off).
    let all = store
        .workflow_page(&WorkflowQuery::default())
        .await
        .unwrap();
    let expired: Vec<(&str, bool)> = {
        let mut rows: Vec<_> = all
            .rows
            .iter()
            .map(|row| (row.workflow_id.as_str(), row.lease_expired))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        expired,
        [
            ("wf-crashed", true),
            ("wf-done", true),
            ("wf-free", false),
            ("wf-held", false)
        ]
    );
    // The status counts say how many, for the status bar.
    let counts = store.status_counts().await.unwrap();
    assert_eq!(counts.lease_expired, 1);
    assert_eq!(counts.total(), 4);
    // What the list names is what recovery takes over.
    let recovered = store
        .recover_workflows("replica-new", Duration::from_secs(60), 10)
        .await
        .unwrap();
    let recovered: Vec<&str> = recovered
        .iter()
        .map(|recovery| recovery.state.workflow_id.as_str())
        .filter(|id| *id != "wf-free")
        .collect();
    assert_eq!(recovered, ["wf-crashed"]);
    assert_eq!(store.status_counts().await.unwrap().lease_expired, 0);
}

async fn the_workflow_list_shows_who_holds_each_lease_and_until_when(backend: Backend) {
    use llm_orchestrator_state::admin::{WorkflowQuery, WorkflowSummary};
    use std::time::Duration;

    let store = open(backend).await;
    let claimed = workflow("wf-claimed");
    let unclaimed = workflow("wf-unclaimed");
    store.save_workflow_state(&claimed).await.unwrap();
    let claims = store
        .claim_workflows("replica-1", Duration::from_secs(60), 1)
        .await
        .unwrap();
    store.save_workflow_state(&unclaimed).await.unwrap();
    let lease = &claims[0].lease;
    assert_eq!(lease.workflow_state_id, claimed.id);
    let listed = |id: Uuid| {
        let store = &store;
        async move {
            let page = store
                .workflow_page(&WorkflowQuery::default())
                .await
                .unwrap();
            let row: WorkflowSummary = page.rows.into_iter().find(|row| row.id == id).unwrap();
            (row.lease_owner, row.lease_expires_at)
        }
    };
    assert_eq!(
        listed(claimed.id).await,
        (Some("replica-1".to_owned()), Some(lease.expires_at))
    );
    assert_eq!(listed(unclaimed.id).await, (None, None));

    // Released: no one holds it.
    assert!(store.release_lease(lease).await.unwrap());
    assert_eq!(listed(claimed.id).await.0, None);
}

async fn the_version_is_the_stored_one_and_goes_up_with_every_write(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-version");
    store.save_workflow_state(&state).await.unwrap();
    let first = store
        .load_workflow_state_versioned(&state.id)
        .await
        .unwrap();
    assert_eq!(
        store.workflow_version(&state.id).await.unwrap(),
        first.version
    );

    // A save.
    state.context = json!({"answer": "more"});
    store.save_workflow_state(&state).await.unwrap();
    let saved = store.workflow_version(&state.id).await.unwrap();
    assert_eq!(saved, first.version + 1);
    assert_eq!(
        store
            .load_workflow_state_versioned(&state.id)
            .await
            .unwrap()
            .version,
        saved
    );

    // A step recorded with its checkpoint, then a rollback to that checkpoint.
    let checkpoint = store
        .record_step(
            &mut state,
            step("s1", StepStatus::Completed, json!({"n": 1})),
        )
        .await
        .unwrap();
    let recorded = store.workflow_version(&state.id).await.unwrap();
    assert!(recorded > saved, "{recorded} after {saved}");
    store.rollback_to_checkpoint(&checkpoint.id).await.unwrap();
    let rolled_back = store.workflow_version(&state.id).await.unwrap();
    assert!(rolled_back > recorded, "{rolled_back} after {recorded}");

    // Another workflow's writes leave it alone.
    let other = workflow("wf-other");
    store.save_workflow_state(&other).await.unwrap();
    store.save_workflow_state(&other).await.unwrap();
    assert_eq!(
        store.workflow_version(&state.id).await.unwrap(),
        rolled_back
    );
    assert_eq!(
        store.workflow_version(&state.id).await.unwrap(),
        store
            .load_workflow_state_versioned(&state.id)
            .await
            .unwrap()
            .version
    );
}

async fn the_version_of_an_unknown_or_deleted_workflow_is_not_found(backend: Backend) {
    let store = open(backend).await;
    let unknown = Uuid::from_u128(0xdead);
    let err = store.workflow_version(&unknown).await.unwrap_err();
    assert_eq!(
        err,
        StateStoreError::NotFound(format!("workflow state {unknown}").into())
    );

    // Deleted after it was shown: the same answer a full load gives.
    let mut state = workflow("wf-deleted");
    state.mark_completed();
    state.updated_at = at(0, 0);
    store.save_workflow_state(&state).await.unwrap();
    assert!(store.workflow_version(&state.id).await.is_ok());
    assert_eq!(store.delete_old_states(at(60, 0)).await.unwrap(), 1);
    let err = store.workflow_version(&state.id).await.unwrap_err();
    assert_eq!(
        err,
        store.load_workflow_state(&state.id).await.unwrap_err(),
        "{err}"
    );
    assert!(matches!(err, StateStoreError::NotFound(_)), "{err}");
}
