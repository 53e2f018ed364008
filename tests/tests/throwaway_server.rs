//! What a store does when its Postgres server freezes or restarts, on a cluster each test
//! starts for itself ([`Cluster`]) and stops afterwards: never the shared server.
//!
//! - A frozen server (every process stopped, as a hung host or a network black hole):
//!   a call ends with `Timeout` at the store's `call_timeout` instead of hanging, and
//!   once the server runs again the same store works.

use std::future::Future;
use std::time::Duration;

use backend_suite::{Cluster, step, workflow};
use llm_orchestrator_state::{StateStore, StateStoreBuilder, StateStoreError, StepStatus};
use serde_json::json;

/// Fails the test when `future` takes longer than a minute (a hang), never a timing
/// assertion on the store.
async fn answered<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within a minute"))
}

async fn started_cluster() -> Cluster {
    tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("starting a throwaway cluster")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_a_frozen_server_times_out_and_the_store_works_once_it_runs_again() {
    let cluster = started_cluster().await;
    let store = StateStoreBuilder::new(cluster.url())
        .min_connections(1)
        .max_connections(4)
        .call_timeout(Some(Duration::from_secs(2)))
        .connect()
        .await
        .expect("the throwaway cluster");
    let mut state = workflow("frozen");
    store.save_workflow_state(&state).await.unwrap();

    cluster.freeze();
    let mut frozen = state.clone();
    let recorded = answered(
        "record_step on a frozen server",
        store.record_step(
            &mut frozen,
            step("retrieve", StepStatus::Completed, json!(1)),
        ),
    )
    .await;
    let loaded = answered(
        "load on a frozen server",
        store.load_workflow_state(&state.id),
    )
    .await;
    cluster.thaw();

    for result in [recorded.map(|_| ()), loaded.map(|_| ())] {
        let err = result.expect_err("no answer from a frozen server");
        assert!(matches!(err, StateStoreError::Timeout(_)), "{err:?}");
        assert!(err.is_transient(), "{err:?}");
    }
    // Running again: the same store answers (the step may or may not have been taken
    // before the freeze; recording it again is what a caller does after a timeout).
    let checkpoint = answered(
        "record_step once the server runs again",
        store.record_step(
            &mut state,
            step("retrieve", StepStatus::Completed, json!(1)),
        ),
    )
    .await
    .expect("the store works once the server runs again");
    let loaded = store.load_workflow_state(&state.id).await.unwrap();
    assert!(loaded.step("retrieve").is_some());
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(checkpoint)
    );
}
