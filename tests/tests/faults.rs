//! Connection faults on Postgres while a load runs: the server kills the store's
//! connections, then the server stops and starts again. Calls fail with `Connection`
//! within the configured timeout (no hang, no panic), the store recovers by itself, no
//! acknowledged write is lost, and an interrupted transaction leaves nothing behind.
//!
//! One test in its own binary: it restarts the server, which no other test may see
//! (cargo runs test binaries one after another).

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backend_suite::test_database_url;
use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
use llm_orchestrator_state::{
    SeaOrmStateStore, StateStore, StateStoreBuilder, StateStoreError, WorkflowState,
};
use serde_json::json;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The version and name of the local cluster on port 5432, the one the tests use, from
/// `pg_lsclusters` (several PostgreSQL versions may be installed, each with a cluster).
fn cluster() -> [String; 2] {
    let output = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .expect("run pg_lsclusters (a local PostgreSQL cluster)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [version, name, "5432", ..] => Some([version.to_owned(), name.to_owned()]),
                _ => None,
            },
        )
        .expect("a local PostgreSQL cluster on port 5432 (pg_lsclusters)")
}

fn pg_ctl(action: &str) {
    let [version, name] = cluster();
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, &name, action])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

/// Starts the server again however the test ends, so later tests find it up.
struct RestartOnDrop;
impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let [version, name] = cluster();
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, &name, "start"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A load: tasks saving their own workflow over and over, remembering what was acked.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashMap<Uuid, u64>>>,
    errors: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn start_load(store: &SeaOrmStateStore, tasks: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let tasks = (0..tasks)
        .map(|task| {
            let (store, stop, acked, errors) =
                (store.clone(), stop.clone(), acked.clone(), errors.clone());
            tokio::spawn(async move {
                let mut state =
                    WorkflowState::new(format!("load-{task}"), "fault load", None, json!({}));
                let mut iteration = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    state.context = json!({ "iteration": iteration });
                    match store.save_workflow_state(&state).await {
                        Ok(()) => {
                            acked.lock().unwrap().insert(state.id, iteration);
                            iteration += 1;
                        }
                        // A broken connection is a Connection error, which
                        // `is_transient` tells a retry loop to retry; nothing else.
                        Err(StateStoreError::Connection(_)) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(other) => panic!("unexpected error under faults: {other}"),
                    }
                }
            })
        })
        .collect();
    Load {
        stop,
        acked,
        errors,
        tasks,
    }
}

impl Load {
    async fn finish(self) -> (HashMap<Uuid, u64>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a load task panicked");
        }
        let acked = Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap();
        (acked, self.errors.load(Ordering::Relaxed))
    }
}

async fn assert_acked_present(store: &SeaOrmStateStore, acked: &HashMap<Uuid, u64>) {
    for (id, iteration) in acked {
        let state = store.load_workflow_state(id).await.unwrap();
        assert!(
            state.context["iteration"].as_u64().unwrap() >= *iteration,
            "acknowledged save of {id} lost"
        );
    }
}

/// Waits until the store answers again, without reopening it.
async fn wait_until_healthy(store: &SeaOrmStateStore) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.health_check().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the store did not recover by itself"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn terminate(admin: &SeaOrmStateStore, application_name: &str) -> u64 {
    let row = admin
        .connection()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            [application_name.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    u64::try_from(row.try_get_by_index::<i64>(0).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_faults_lose_no_acknowledged_write() {
    let schema = format!("faults_{}", Uuid::new_v4().simple());
    let application_name = format!("faults-{}", Uuid::new_v4().simple());
    let builder = StateStoreBuilder::new(test_database_url())
        .postgres_schema(schema.clone())
        .application_name(application_name.clone())
        .min_connections(2)
        .max_connections(8)
        .connect_timeout(TIMEOUT)
        .acquire_timeout(TIMEOUT);
    let store = builder.clone().connect().await.unwrap();
    let admin = StateStoreBuilder::new(test_database_url())
        .run_migrations(false)
        .application_name("faults-admin")
        .connect()
        .await
        .unwrap();

    // 1. The server terminates the store's connections in the middle of a load.
    let load = start_load(&store, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = terminate(&admin, &application_name).await;
    assert!(killed > 0, "no store connection to terminate");
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&admin, &application_name).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (acked, errors) = load.finish().await;
    wait_until_healthy(&store).await;
    assert_acked_present(&store, &acked).await;
    println!(
        "terminated connections: {} acknowledged workflows intact, {errors} failed calls",
        acked.len()
    );

    // 2. A transaction whose connection dies before the commit leaves nothing.
    let half = WorkflowState::new("half-written", "interrupted", None, json!({}));
    let tx = store.begin().await.unwrap();
    tx.save_workflow_state(&half).await.unwrap();
    let pid = tx
        .transaction()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i32>(0)
        .unwrap();
    admin
        .connection()
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_terminate_backend($1)",
            [pid.into()],
        ))
        .await
        .unwrap();
    let err = tx.commit().await.unwrap_err();
    assert!(matches!(err, StateStoreError::Connection(_)), "{err}");
    wait_until_healthy(&store).await;
    assert!(matches!(
        store.load_workflow_state(&half.id).await,
        Err(StateStoreError::NotFound(_))
    ));

    // 3. The server goes down: calls fail with Connection, promptly; then it comes back.
    let _restart = RestartOnDrop;
    let load = start_load(&store, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(admin);
    pg_ctl("stop");
    let probe = WorkflowState::new("while-down", "down", None, json!({}));
    let started = Instant::now();
    let err = store.save_workflow_state(&probe).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, StateStoreError::Connection(_)), "{err}");
    assert!(
        took < TIMEOUT + Duration::from_secs(5),
        "a call hung for {took:?} with the server down"
    );
    assert!(!err.to_string().is_empty());
    assert!(matches!(
        store.health_check().await,
        Err(StateStoreError::Connection(_))
    ));
    pg_ctl("start");
    wait_until_healthy(&store).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (acked, errors) = load.finish().await;
    assert_acked_present(&store, &acked).await;
    store.save_workflow_state(&probe).await.unwrap();
    println!(
        "server restart: {} acknowledged workflows intact, {errors} failed calls while down",
        acked.len()
    );

    store
        .connection()
        .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
