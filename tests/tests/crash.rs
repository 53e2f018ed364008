//! Crash safety: a child process writes workflows and checkpoints from several tasks and
//! is killed with SIGKILL at a random moment, again and again; the store reopened
//! afterwards must hold every save the child saw acknowledged, never half of one.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_suite::test_database_url;
use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
use llm_orchestrator_state::{SeaOrmStateStore, StateStore, StateStoreBuilder};
use uuid::Uuid;

/// Kills per backend.
const KILLS: usize = 6;

/// Where the child writes: a target string and an optional Postgres schema.
struct Target {
    url: String,
    schema: Option<String>,
}

impl Target {
    fn builder(&self) -> StateStoreBuilder {
        let builder = StateStoreBuilder::new(self.url.clone());
        match &self.schema {
            Some(schema) => builder.postgres_schema(schema.clone()),
            None => builder,
        }
    }
}

/// A random pause of 0..1,020 ms after the first acknowledged save: the kill lands
/// anywhere in a save, a checkpoint or a commit.
fn random_pause() -> Duration {
    let byte = Uuid::new_v4().as_bytes()[0];
    Duration::from_millis(u64::from(byte) * 4)
}

/// Runs the child until killed; returns the newest acknowledged iteration per workflow.
fn run_and_kill(target: &Target) -> HashMap<Uuid, u64> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crash_writer"));
    command.arg(&target.url);
    if let Some(schema) = &target.schema {
        command.arg(schema);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start crash_writer");
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let (first_ack, started) = std::sync::mpsc::channel();
    let reader = {
        let acked = acked.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split_whitespace();
                if parts.next() != Some("ack") {
                    continue;
                }
                let id: Uuid = parts.next().unwrap().parse().unwrap();
                let iteration: u64 = parts.next().unwrap().parse().unwrap();
                acked.lock().unwrap().insert(id, iteration);
                let _ = first_ack.send(());
            }
        })
    };
    // Kill while it writes, not while it connects.
    started
        .recv_timeout(Duration::from_secs(30))
        .expect("the writer acknowledged no save within 30 s");
    std::thread::sleep(random_pause());
    child.kill().expect("SIGKILL the writer");
    child.wait().unwrap();
    reader.join().unwrap();
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// Checks that `state` is whole as the writer stores it at `iteration`: a save writes
/// steps `0..=iteration % 7`, each with the iteration in its outputs; a step
/// (`iteration % 3 == 2`) writes `step-0` and the context, over the steps of the save
/// before it.
fn assert_whole(state: &llm_orchestrator_state::WorkflowState, iteration: u64, what: &str) {
    let saved_at = if iteration % 3 == 2 {
        iteration - 1
    } else {
        iteration
    };
    assert_eq!(
        state.steps.len() as u64,
        saved_at % 7 + 1,
        "{what}: steps of another save"
    );
    for step in state.steps.values() {
        let expected = if step.step_id == "step-0" {
            iteration
        } else {
            saved_at
        };
        assert_eq!(
            step.outputs["iteration"].as_u64(),
            Some(expected),
            "{what}: step {} from another write",
            step.step_id
        );
    }
}

/// Checks the reopened store against what was acknowledged; returns the saves checked.
async fn check(store: &SeaOrmStateStore, acked: &HashMap<Uuid, u64>) -> usize {
    for (id, acked_iteration) in acked {
        let state = store
            .load_workflow_state(id)
            .await
            .unwrap_or_else(|err| panic!("acknowledged workflow {id} lost: {err}"));
        let iteration = state.context["iteration"].as_u64().unwrap();
        // A save after the last ack may have committed before the kill: newer is fine,
        // older is a lost write.
        assert!(
            iteration >= *acked_iteration,
            "workflow {id}: acknowledged iteration {acked_iteration}, found {iteration}"
        );
        // Torn write: steps from another save than the workflow row.
        assert_whole(&state, iteration, &format!("workflow {id}"));
        // The application's rows written in the same transactions as saves: an invoice
        // exists exactly for the transactional iterations the stored state has reached.
        let invoices = store
            .connection()
            .query_all_raw(Statement::from_string(
                store.connection().get_database_backend(),
                format!("SELECT iteration FROM crash_invoices WHERE workflow = '{id}' ORDER BY iteration"),
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index::<i64>(0).unwrap() as u64)
            .collect::<Vec<_>>();
        let expected: Vec<u64> = (0..=iteration).filter(|i| i % 3 == 1).collect();
        assert_eq!(
            invoices, expected,
            "workflow {id}: application rows and state committed apart"
        );
        // Every checkpoint restores a whole state too.
        for checkpoint in store.list_checkpoints(id, 100, 0).await.unwrap() {
            let snapshot = store.restore_from_checkpoint(&checkpoint.id).await.unwrap();
            let at = snapshot.context["iteration"].as_u64().unwrap();
            assert_whole(&snapshot, at, &format!("checkpoint {}", checkpoint.id));
        }
    }
    let active = store.list_active_workflows().await.unwrap();
    assert!(active.len() >= acked.len());
    if store.connection().get_database_backend() == DbBackend::Sqlite {
        let row = store
            .connection()
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA integrity_check",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "ok");
    }
    acked.len()
}

async fn kill_repeatedly(target: Target, name: &str) {
    // Create the schema and tables before the first child, so a kill during the very
    // first migration is not what the test measures.
    target
        .builder()
        .connect()
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let mut acknowledged = 0u64;
    for kill in 0..KILLS {
        let acked = run_and_kill(&target);
        let store = target.builder().connect().await.unwrap();
        check(&store, &acked).await;
        acknowledged += acked.values().map(|iteration| iteration + 1).sum::<u64>();
        store.close().await.unwrap();
        eprintln!(
            "{name}: kill {} of {KILLS}: {} workflows verified",
            kill + 1,
            acked.len()
        );
    }
    // The summary the table of docs/reliability.md quotes.
    println!("crash test {name}: {KILLS} kills, {acknowledged} acknowledged saves, 0 lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db").display().to_string();
    kill_repeatedly(
        Target {
            url: path,
            schema: None,
        },
        "sqlite file",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill() {
    let schema = format!("crash_{}", Uuid::new_v4().simple());
    let target = Target {
        url: test_database_url(),
        schema: Some(schema.clone()),
    };
    kill_repeatedly(target, "postgres").await;
    let admin = StateStoreBuilder::new(test_database_url())
        .run_migrations(false)
        .connect()
        .await
        .unwrap();
    admin
        .connection()
        .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
