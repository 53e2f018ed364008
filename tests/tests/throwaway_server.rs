//! What a store does when its Postgres server freezes or restarts, on a cluster each test
//! starts for itself ([`Cluster`]) and stops afterwards: never the shared server.
//!
//! - A frozen server (every process stopped, as a hung host or a network black hole):
//!   a call ends with `Timeout` at the store's `call_timeout` instead of hanging, and
//!   once the server runs again the same store works.
//! - A restarted server: the pool's idle connections are all broken; a handful of calls
//!   fail, not one per pooled connection.

use std::future::Future;
use std::time::Duration;

use backend_suite::{Cluster, step, workflow};
use llm_orchestrator_state::{
    SeaOrmStateStore, StateStore, StateStoreBuilder, StateStoreError, StepStatus,
};
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

/// A store whose pool holds `size` open connections, all idle.
async fn store_with_full_pool(cluster: &Cluster, size: u32) -> SeaOrmStateStore {
    let store = StateStoreBuilder::new(cluster.url())
        .min_connections(size)
        .max_connections(size)
        .connect()
        .await
        .expect("the throwaway cluster");
    // Calls that each hold a connection a moment, all at once: the pool opens them all.
    use sea_orm::ConnectionTrait;
    let busy = (0..size).map(|_| {
        store
            .connection()
            .execute_unprepared("SELECT pg_sleep(0.2)")
    });
    for result in futures::future::join_all(busy).await {
        result.unwrap();
    }
    // Each goes back to the pool in a task of its own, after a ping.
    let pool = store.connection().get_postgres_connection_pool();
    answered("the pool's connections going back", async {
        while pool.num_idle() < size as usize {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(pool.size(), size);
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_a_handful_of_calls_fail_not_one_per_pooled_connection() {
    const POOL: u32 = 20;
    const AT_ONCE: usize = 4;
    let cluster = started_cluster().await;
    let store = store_with_full_pool(&cluster, POOL).await;
    let state = workflow("restarted");
    store.save_workflow_state(&state).await.unwrap();

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    })
    .await
    .unwrap();

    // Calls as a worker makes them, a few at a time, after the restart.
    let mut failed = Vec::new();
    for _ in 0..(POOL as usize * 2 / AT_ONCE) {
        let calls = (0..AT_ONCE).map(|_| store.load_workflow_state(&state.id));
        for result in answered("loads", futures::future::join_all(calls)).await {
            match result {
                Ok(loaded) => assert_eq!(loaded, state),
                Err(err) => {
                    assert!(matches!(err, StateStoreError::Connection(_)), "{err:?}");
                    failed.push(err);
                }
            }
        }
    }
    // The calls in flight when the first one found its connection broken may fail too;
    // no more.
    assert!(
        failed.len() <= AT_ONCE + 2,
        "{} of {} calls failed after the restart: {failed:?}",
        failed.len(),
        POOL as usize * 2
    );
    store.load_workflow_state(&state.id).await.unwrap();
    drop(cluster);
}
