//! Calls that take or return many rows, at 100,000 workflows, on a SQLite file and on
//! Postgres: none may fail on a database's cap on bind parameters per statement (SQLite
//! 32,766, Postgres 65,535), whatever the limit asked for.

use std::collections::HashSet;
use std::time::Duration;

use backend_suite::{Backend, TestStore, backend_tests_for, open_with, step, workflow};
use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
use llm_orchestrator_state::{
    SeaOrmStateStore, StateStore, StepStatus, WorkflowStatus, admin::WorkflowQuery,
};
use serde_json::json;

// One call per test, each on its own 100,000 workflows, so that each stays well under a
// minute in a debug build.
backend_tests_for!(mod sqlite_file = SqliteFile:
    a_page_of_a_hundred_thousand_summaries,
    a_hundred_thousand_active_workflows_are_listed,
    a_page_of_a_hundred_thousand_active_workflows,
    a_claim_of_a_hundred_thousand_workflows,
    a_recovery_of_a_hundred_thousand_workflows,
);
backend_tests_for!(mod postgres = Postgres:
    a_page_of_a_hundred_thousand_summaries,
    a_hundred_thousand_active_workflows_are_listed,
    a_page_of_a_hundred_thousand_active_workflows,
    a_claim_of_a_hundred_thousand_workflows,
    a_recovery_of_a_hundred_thousand_workflows,
);

/// Workflows the fixture adds to its template.
const COPIES: u64 = 100_000;

/// A running workflow with one step and one checkpoint, and [`COPIES`] copies of it
/// (each with its step and checkpoint), inserted by three `INSERT ... SELECT`
/// statements: seconds, where 100,000 saves through the store would take minutes.
/// A store whose calls have no deadline: one call over 100,000 full workflows in a debug
/// build on a loaded 2-core machine can take longer than the default `call_timeout`, and
/// what these tests check is that it succeeds, not how fast.
async fn unhurried(backend: Backend) -> TestStore {
    open_with(backend, |builder| builder.call_timeout(None)).await
}

async fn hundred_thousand_running(store: &SeaOrmStateStore) {
    let mut template = workflow("wf-template");
    template.mark_running();
    store
        .record_step(
            &mut template,
            step("retrieve", StepStatus::Completed, json!({ "docs": 1 })),
        )
        .await
        .unwrap();
    let db = store.connection();
    let backend = db.get_database_backend();
    let (numbers, new_id, id) = match backend {
        DbBackend::Postgres => (
            format!("generate_series(1, {COPIES}) AS n(i)"),
            "gen_random_uuid()",
            "$1",
        ),
        _ => (
            format!(
                "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \
                 {COPIES}) SELECT i FROM n) AS n"
            ),
            "randomblob(16)",
            "?",
        ),
    };
    let statements = [
        format!(
            "INSERT INTO workflow_states (id, workflow_id, workflow_name, status, user_id, \
             started_at, updated_at, completed_at, context, error, version, lease_token) \
             SELECT {new_id}, 'wf-' || n.i, t.workflow_name, t.status, t.user_id, \
             t.started_at, t.updated_at, t.completed_at, t.context, t.error, 1, 0 \
             FROM {numbers}, workflow_states t WHERE t.id = {id}"
        ),
        format!(
            "INSERT INTO step_states (workflow_state_id, step_id, status, started_at, \
             completed_at, outputs, error, retry_count) \
             SELECT w.id, s.step_id, s.status, s.started_at, s.completed_at, s.outputs, \
             s.error, s.retry_count \
             FROM workflow_states w, step_states s \
             WHERE s.workflow_state_id = {id} AND w.id <> s.workflow_state_id"
        ),
        format!(
            "INSERT INTO checkpoints (id, workflow_state_id, step_id, \"timestamp\", snapshot, \
             size_bytes, workflow_status) \
             SELECT {new_id}, w.id, c.step_id, c.\"timestamp\", c.snapshot, c.size_bytes, \
             c.workflow_status \
             FROM workflow_states w, checkpoints c \
             WHERE c.workflow_state_id = {id} AND w.id <> c.workflow_state_id"
        ),
    ];
    for sql in statements {
        let inserted = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [template.id.into()],
            ))
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(inserted, COPIES);
    }
}

/// The admin page of 100,000 summaries (what `wfadmin list --limit 100000` asks for),
/// each with its step and checkpoint counts.
async fn a_page_of_a_hundred_thousand_summaries(backend: Backend) {
    let store = unhurried(backend).await;
    hundred_thousand_running(&store).await;
    let page = store
        .workflow_page(&WorkflowQuery {
            limit: COPIES,
            ..WorkflowQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.rows.len() as u64, COPIES);
    assert!(page.rows.iter().all(|row| row.steps_total == 1
        && row.steps_done == 1
        && row.checkpoint_count == 1
        && row.status == WorkflowStatus::Running));
    assert!(page.next.is_some());
}

/// Every one of 100,001 active workflows, with its steps.
async fn a_hundred_thousand_active_workflows_are_listed(backend: Backend) {
    let store = unhurried(backend).await;
    hundred_thousand_running(&store).await;
    let active = store.list_active_workflows().await.unwrap();
    assert_eq!(active.len() as u64, COPIES + 1);
    assert!(active.iter().all(|state| state.steps.len() == 1));
}

/// A page of 100,000 of them, and the one left on the next.
async fn a_page_of_a_hundred_thousand_active_workflows(backend: Backend) {
    let store = unhurried(backend).await;
    hundred_thousand_running(&store).await;
    let page = store
        .list_active_workflows_page(None, COPIES)
        .await
        .unwrap();
    assert_eq!(page.workflows.len() as u64, COPIES);
    let rest = store
        .list_active_workflows_page(page.next.as_ref(), COPIES)
        .await
        .unwrap();
    assert_eq!(rest.workflows.len(), 1);
}

/// A claim of 100,000 at once, each with its state and steps.
async fn a_claim_of_a_hundred_thousand_workflows(backend: Backend) {
    let store = unhurried(backend).await;
    hundred_thousand_running(&store).await;
    let claims = store
        .claim_workflows("replica-a", Duration::from_secs(300), COPIES)
        .await
        .unwrap();
    assert_eq!(claims.len() as u64, COPIES);
    assert!(claims.iter().all(|claim| claim.state.steps.len() == 1));
    let ids: HashSet<_> = claims.iter().map(|claim| claim.state.id).collect();
    assert_eq!(ids.len() as u64, COPIES);
}

/// A recovery of all 100,001, each with its newest checkpoint.
async fn a_recovery_of_a_hundred_thousand_workflows(backend: Backend) {
    let store = unhurried(backend).await;
    hundred_thousand_running(&store).await;
    let recovered = store
        .recover_workflows("replica-b", Duration::from_secs(300), 2 * COPIES)
        .await
        .unwrap();
    assert_eq!(recovered.len() as u64, COPIES + 1);
    assert!(
        recovered
            .iter()
            .all(|recovery| recovery.checkpoint.is_some() && recovery.lease.owner == "replica-b")
    );
}
