//! Several replicas running a pipeline over many workflows on one database, with faults
//! injected at random: a replica stalls past its lease and then carries on, a replica
//! crashes (its task aborted, its store dropped mid-pipeline) and restarts, a replica
//! gives a workflow back. Heartbeats renew the leases, steps are recorded with
//! `record_step_if` under the lease, and workflows are recovered with
//! `recover_workflows`.
//!
//! Afterwards every workflow must have finished every step exactly once: one checkpoint
//! per step, each extending the one before, the stored state the last of them, no
//! acknowledged step missing and no refused step anywhere. A write under a lease that
//! was refused once must be refused forever, a `Conflict` must only come when the lease
//! really moved, and no call may fail otherwise or panic.
//!
//! A second run adds cancelled calls, as `tokio::time::timeout` or `JoinHandle::abort`
//! make them: a replica gives up on `record_step_if` or a heartbeat's `renew_lease`
//! mid-flight, aborts heartbeat tasks wherever they are, and carries on with the same
//! store. On Postgres a call cancelled while its `BEGIN` was unanswered used to leave a
//! transaction open on a pooled connection, which later acknowledged writes ran in and
//! lost (`a_cancelled_call_leaves_no_transaction_open` is the smallest case; see
//! `backend::begin` in the store).
//!
//! Faults are drawn from a seeded generator (`REPLICA_STRESS_SEED=<n>` replays one);
//! timing still varies from run to run, so a slow machine loses more leases. That is
//! allowed: the invariants hold whoever ends up recording a step.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backend_suite::{Backend, backend_tests, open_with};
use llm_orchestrator_state::{
    AutoCheckpoint, Lease, Recovery, SaveCondition, SeaOrmStateStore, StateStore,
    StateStoreBuilder, StateStoreError, StepState, StepStatus, WorkflowState, WorkflowStatus,
};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

backend_tests!(
    replicas_under_faults_record_every_step_exactly_once,
    replicas_whose_calls_are_cancelled_record_every_step_exactly_once,
);
backend_suite::backend_tests_for!(
    mod cancelled_call_sqlite_file = SqliteFile: a_cancelled_call_leaves_no_transaction_open
);
backend_suite::backend_tests_for!(
    mod cancelled_call_postgres = Postgres: a_cancelled_call_leaves_no_transaction_open
);

const WORKFLOWS: usize = 28;
const STEPS: usize = 6;
const REPLICAS: usize = 5;
/// Workflows one replica runs at once.
const PER_REPLICA: usize = 3;
const LEASE: Duration = Duration::from_millis(500);
/// The longest pause between two renewals (each workflow draws its own, down to 20 ms).
const HEARTBEAT: Duration = Duration::from_millis(150);
const CRASHES: usize = 6;
/// Past this the test fails as "no progress" (a liveness failure, not a slow machine).
const DEADLINE: Duration = Duration::from_secs(120);
const DEFAULT_SEED: u64 = 0x005e_ed0f_4e91_1ca5;

fn seed() -> u64 {
    match std::env::var("REPLICA_STRESS_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("REPLICA_STRESS_SEED={text} is not a u64")),
        Err(_) => DEFAULT_SEED,
    }
}

fn step_name(index: usize) -> String {
    format!("s{index}")
}

fn step_index(step_id: &str) -> Option<usize> {
    step_id.strip_prefix('s')?.parse().ok()
}

/// xorshift64*, seeded through splitmix64 so that nearby seeds differ.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}

/// What became of one attempt to record a step.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Sent, no answer yet: its task was aborted (a crash) while it ran.
    InFlight,
    /// Acknowledged, with its checkpoint and the workflow's new version.
    Stored { checkpoint: Uuid, version: i64 },
    /// Refused with `Conflict`: must be stored nowhere.
    Refused,
    /// Any other error.
    Failed(String),
}

#[derive(Debug, Clone)]
struct Attempt {
    workflow: Uuid,
    step: usize,
    owner: String,
    token: i64,
    outcome: Outcome,
}

#[derive(Default)]
struct Journal {
    attempts: HashMap<String, Attempt>,
    /// (workflow, token, owner) of every claim, in the order they were seen.
    claims: Vec<(Uuid, i64, String)>,
    /// (operation, "ok" or the error variant) -> count.
    calls: BTreeMap<(&'static str, String), u64>,
    faults: BTreeMap<&'static str, u64>,
    violations: Vec<String>,
}

/// What every replica shares: the journal, and a store of the test's own to look at the
/// rows (for `:memory:` the one store everybody uses).
struct Shared {
    journal: Mutex<Journal>,
    observer: SeaOrmStateStore,
    seed: u64,
    /// Whether replicas also give up on calls mid-flight (timeouts).
    cancellations: bool,
    next_attempt: AtomicU64,
    done: AtomicBool,
}

fn kind(err: &StateStoreError) -> String {
    let debug = format!("{err:?}");
    debug.split('(').next().unwrap_or(&debug).to_owned()
}

impl Shared {
    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a call's outcome; any error but `Conflict` is a violation.
    fn tally<T>(&self, operation: &'static str, result: &Result<T, StateStoreError>) {
        let mut journal = self.journal();
        let outcome = match result {
            Ok(_) => "ok".to_owned(),
            Err(err) => kind(err),
        };
        *journal.calls.entry((operation, outcome)).or_default() += 1;
        if let Err(err) = result
            && !matches!(err, StateStoreError::Conflict(_))
        {
            journal.violations.push(format!(
                "{operation} failed with an undocumented error: {err}"
            ));
        }
    }

    fn fault(&self, name: &'static str) {
        *self.journal().faults.entry(name).or_default() += 1;
    }

    fn violation(&self, what: String) {
        self.journal().violations.push(what);
    }

    fn new_attempt(&self, lease: &Lease, step: usize) -> String {
        let n = self.next_attempt.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}#t{}#{}#a{n}", lease.owner, lease.token, step_name(step));
        self.journal().attempts.insert(
            id.clone(),
            Attempt {
                workflow: lease.workflow_state_id,
                step,
                owner: lease.owner.clone(),
                token: lease.token,
                outcome: Outcome::InFlight,
            },
        );
        id
    }

    fn settle(&self, attempt: &str, outcome: Outcome) {
        if let Some(entry) = self.journal().attempts.get_mut(attempt) {
            entry.outcome = outcome;
        }
    }

    /// The lease columns of a workflow row, read with plain SQL.
    async fn stored_lease(&self, id: Uuid) -> Option<(Option<String>, i64)> {
        let db = self.observer.connection();
        let backend = db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "SELECT lease_owner, lease_token FROM workflow_states WHERE id = $1"
            }
            _ => "SELECT lease_owner, lease_token FROM workflow_states WHERE id = ?",
        };
        let row = db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                sql,
                [id.into()],
            ))
            .await
            .ok()??;
        let owner: Option<String> = row.try_get("", "lease_owner").ok()?;
        let token: i64 = row.try_get("", "lease_token").ok()?;
        Some((owner, token))
    }

    /// After `what` under `lease` was refused with `Conflict`: the lease must really have
    /// moved (another claim, or a release), and from then on every write, renewal and
    /// release under it must be refused too, since fencing tokens only grow.
    async fn after_refusal(
        &self,
        store: &SeaOrmStateStore,
        lease: &Lease,
        state: &WorkflowState,
        next_step: usize,
        what: &str,
    ) {
        let stored = self.stored_lease(lease.workflow_state_id).await;
        if stored == Some((Some(lease.owner.clone()), lease.token)) {
            self.violation(format!(
                "spurious Conflict: {what} by {} (token {}) on workflow {} was refused while \
                 the row still names it as the lease holder with that token",
                lease.owner, lease.token, lease.workflow_state_id
            ));
            return;
        }
        self.expect_fenced(store, lease, state, next_step, what)
            .await;
    }

    /// Writes under a lease that is gone (refused, or released) must all be refused.
    async fn expect_fenced(
        &self,
        store: &SeaOrmStateStore,
        lease: &Lease,
        state: &WorkflowState,
        next_step: usize,
        what: &str,
    ) {
        self.fault("zombie writes");
        let held = SaveCondition::Lease(lease.clone());
        if next_step < STEPS {
            let attempt = self.new_attempt(lease, next_step);
            let mut step = StepState::new(step_name(next_step));
            step.mark_running();
            step.mark_completed(json!({
                "attempt": attempt, "owner": lease.owner, "token": lease.token,
                "prev": Value::Null, "zombie": true,
            }));
            let mut zombie = state.clone();
            let result = store.record_step_if(&mut zombie, step, &held).await;
            self.tally("record_step_if (zombie)", &result);
            match result {
                Ok((checkpoint, version)) => {
                    self.settle(
                        &attempt,
                        Outcome::Stored {
                            checkpoint: checkpoint.id,
                            version,
                        },
                    );
                    self.violation(format!(
                        "record_step_if under a lease that was gone ({what}) was accepted: \
                         {attempt} stored as checkpoint {}",
                        checkpoint.id
                    ));
                }
                Err(StateStoreError::Conflict(_)) => self.settle(&attempt, Outcome::Refused),
                Err(err) => self.settle(&attempt, Outcome::Failed(err.to_string())),
            }
        }
        let mut late = state.clone();
        late.mark_failed("written by a replica that lost its lease");
        let result = store.save_workflow_state_if(&late, &held).await;
        self.tally("save_workflow_state_if (zombie)", &result);
        if result.is_ok() {
            self.violation(format!(
                "save_workflow_state_if under a lease that was gone ({what}) was accepted on \
                 workflow {}",
                lease.workflow_state_id
            ));
        }
        let result = store.renew_lease(lease, LEASE).await;
        self.tally("renew_lease (zombie)", &result);
        if result.is_ok() {
            self.violation(format!(
                "renew_lease of a lease that was gone ({what}) succeeded on workflow {}",
                lease.workflow_state_id
            ));
        }
        let result = store.release_lease(lease).await;
        self.tally("release_lease (zombie)", &result);
        if let Ok(true) = result {
            self.violation(format!(
                "release_lease of a lease that was gone ({what}) said it released workflow {}",
                lease.workflow_state_id
            ));
        }
    }
}

/// Renews a lease every `every` (at most [`HEARTBEAT`]) until dropped; pausable, for a
/// replica that stalls without renewing.
struct Heartbeat {
    paused: Arc<AtomicBool>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    /// Whether [`Heartbeat::stop`] aborts the task (wherever its renewal is) instead of
    /// asking it to stop and waiting.
    abrupt: bool,
}

impl Heartbeat {
    fn start(
        shared: Arc<Shared>,
        store: SeaOrmStateStore,
        lease: Lease,
        every: Duration,
        mut rng: Rng,
    ) -> Self {
        let paused = Arc::new(AtomicBool::new(false));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let abrupt = shared.cancellations;
        let task = tokio::spawn({
            let paused = paused.clone();
            async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stopped.changed() => return,
                    }
                    if paused.load(Ordering::SeqCst) {
                        continue;
                    }
                    let renewal = store.renew_lease(&lease, LEASE);
                    let (cancel, patience) =
                        (rng.percent(10), Duration::from_micros(rng.below(2_000)));
                    let result = if cancel && shared.cancellations {
                        // A heartbeat that gives up on a slow renewal, and tries again later.
                        match tokio::time::timeout(patience, renewal).await {
                            Ok(result) => result,
                            Err(_) => {
                                shared.fault("cancelled renewal");
                                continue;
                            }
                        }
                    } else {
                        renewal.await
                    };
                    shared.tally("renew_lease", &result);
                    match result {
                        Ok(renewed) => {
                            if renewed.token != lease.token || renewed.owner != lease.owner {
                                shared.violation(format!(
                                    "renew_lease changed the lease: {lease:?} -> {renewed:?}"
                                ));
                            }
                        }
                        Err(StateStoreError::Conflict(_)) => {
                            if paused.load(Ordering::SeqCst) {
                                return;
                            }
                            let stored = shared.stored_lease(lease.workflow_state_id).await;
                            if stored == Some((Some(lease.owner.clone()), lease.token)) {
                                shared.violation(format!(
                                    "spurious Conflict: renew_lease by {} (token {}) on \
                                     workflow {} was refused while the row still names it \
                                     as the lease holder with that token",
                                    lease.owner, lease.token, lease.workflow_state_id
                                ));
                            }
                            return;
                        }
                        Err(_) => return,
                    }
                }
            }
        });
        Self {
            paused,
            stop,
            task: Some(task),
            abrupt,
        }
    }

    /// Stops renewing before the lease is given up or abandoned: by default the task
    /// finishes the renewal it is in and ends; with cancelled calls, it is aborted
    /// wherever it is, as `JoinHandle::abort` on a heartbeat task does.
    async fn stop(mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        if self.abrupt {
            task.abort();
        } else {
            let _ = self.stop.send(true);
        }
        let _ = task.await;
    }

    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

impl Drop for Heartbeat {
    /// The workflow's task was aborted (its replica crashed): so is the heartbeat.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The completed steps of a state, as a prefix `s0..s{k-1}`; `Err` when they are not a
/// prefix, a step is not one of the pipeline's, or a step does not name the step before
/// it as the one it followed.
fn completed_prefix(state: &WorkflowState) -> Result<usize, String> {
    let mut done = 0;
    while state
        .step(&step_name(done))
        .is_some_and(|step| step.status == StepStatus::Completed)
    {
        done += 1;
    }
    for (id, step) in &state.steps {
        match step_index(id) {
            Some(index) if index < done => {}
            Some(index) if index == done && step.status == StepStatus::Running => {}
            _ => {
                return Err(format!(
                    "step {id} is {:?} beyond the completed prefix s0..s{done}",
                    step.status
                ));
            }
        }
    }
    for index in 1..done {
        let prev = &state.steps[&step_name(index)].outputs["prev"];
        let before = &state.steps[&step_name(index - 1)].outputs["attempt"];
        if prev != before {
            return Err(format!(
                "step s{index} followed {prev} but s{} is {before}",
                index - 1
            ));
        }
    }
    Ok(done)
}

fn attempt_of(state: &WorkflowState, index: usize) -> Option<String> {
    state
        .step(&step_name(index))
        .and_then(|step| step.outputs["attempt"].as_str())
        .map(str::to_owned)
}

/// Runs the pipeline of one recovered workflow under its lease, with faults.
async fn run_workflow(
    shared: Arc<Shared>,
    store: SeaOrmStateStore,
    recovery: Recovery,
    mut rng: Rng,
) {
    let lease = recovery.lease.clone();
    let id = lease.workflow_state_id;
    let mut state = recovery.state;

    // While we hold the lease nobody else writes: the newest checkpoint must be the one
    // recovery resumed from, unless the lease has already moved on (a replica slow to
    // start on what it claimed; its writes will be refused). Checkpoint first, then the
    // lease: tokens only grow, so a lease still ours after the read was ours throughout.
    let latest = store.get_latest_checkpoint(&id).await;
    shared.tally("get_latest_checkpoint", &latest);
    if let Ok(latest) = latest
        && latest.as_ref().map(|c| c.id) != recovery.checkpoint.as_ref().map(|c| c.id)
    {
        let stored = shared.stored_lease(id).await;
        if stored == Some((Some(lease.owner.clone()), lease.token)) {
            shared.violation(format!(
                "recover_workflows for {} (token {}) resumed workflow {id} from checkpoint \
                 {:?} but the newest is {:?}, and the lease is still theirs",
                lease.owner,
                lease.token,
                recovery.checkpoint.as_ref().map(|c| (&c.step_id, c.id)),
                latest.as_ref().map(|c| (&c.step_id, c.id)),
            ));
        } else {
            shared.fault("lease lost before starting");
        }
    }
    if let Err(why) = completed_prefix(&state) {
        shared.violation(format!(
            "recover_workflows for {} (token {}) gave workflow {id} an inconsistent state: {why}",
            lease.owner, lease.token
        ));
        return;
    }

    let heartbeat = Heartbeat::start(
        shared.clone(),
        store.clone(),
        lease.clone(),
        rng.millis(20, HEARTBEAT.as_millis() as u64),
        Rng::new(rng.next()),
    );
    let held = SaveCondition::Lease(lease.clone());
    for index in 0..STEPS {
        let step_id = step_name(index);
        if state
            .step(&step_id)
            .is_some_and(|step| step.status == StepStatus::Completed)
        {
            continue; // done before: no second tool call
        }
        let mut step = StepState::new(step_id.clone());
        step.mark_running();
        if rng.percent(25) {
            // Say the step is running, as an orchestrator might before a long call.
            let mut announced = state.clone();
            announced.upsert_step(step.clone());
            let result = store.save_workflow_state_if(&announced, &held).await;
            shared.tally("save_workflow_state_if", &result);
            match result {
                Ok(_) => state = announced,
                Err(StateStoreError::Conflict(_)) => {
                    heartbeat.stop().await;
                    shared
                        .after_refusal(&store, &lease, &state, index, "announcing a step")
                        .await;
                    return;
                }
                Err(_) => return,
            }
        }
        tokio::time::sleep(rng.millis(2, 12)).await; // the step's work
        match rng.below(100) {
            0..=5 => {
                // Stalls past the lease without renewing (a GC pause, a stuck call), then
                // carries on as if nothing happened.
                shared.fault("stall");
                heartbeat.pause();
                tokio::time::sleep(LEASE + HEARTBEAT + rng.millis(100, 350)).await;
                heartbeat.resume();
            }
            6..=8 => {
                // Gives the workflow back (shutting down), then writes anyway.
                shared.fault("release");
                heartbeat.stop().await;
                let result = store.release_lease(&lease).await;
                shared.tally("release_lease", &result);
                shared
                    .expect_fenced(&store, &lease, &state, index, "after its release")
                    .await;
                return;
            }
            _ => {}
        }
        let attempt = shared.new_attempt(&lease, index);
        let prev = index
            .checked_sub(1)
            .and_then(|before| attempt_of(&state, before))
            .map_or(Value::Null, Value::from);
        step.mark_completed(json!({
            "attempt": attempt, "owner": lease.owner, "token": lease.token, "prev": prev,
        }));
        let (cancel, patience) = (rng.percent(6), Duration::from_micros(rng.below(4_000)));
        let result = if cancel && shared.cancellations {
            // The caller gives up on the write mid-flight (a timeout around the call): the
            // future is dropped wherever it is, and whether the step was stored is unknown.
            // The replica abandons the workflow, and sometimes hands it back at once.
            match tokio::time::timeout(patience, store.record_step_if(&mut state, step, &held))
                .await
            {
                Ok(result) => result,
                Err(_) => {
                    shared.fault("cancelled write");
                    heartbeat.stop().await;
                    if patience.as_micros() % 2 == 0 {
                        let result = store.release_lease(&lease).await;
                        shared.tally("release_lease", &result);
                        shared
                            .expect_fenced(&store, &lease, &state, index, "after a cancelled write")
                            .await;
                    }
                    return;
                }
            }
        } else {
            store.record_step_if(&mut state, step, &held).await
        };
        shared.tally("record_step_if", &result);
        match result {
            Ok((checkpoint, version)) => {
                shared.settle(
                    &attempt,
                    Outcome::Stored {
                        checkpoint: checkpoint.id,
                        version,
                    },
                );
                if attempt_of(&state, index).as_deref() != Some(attempt.as_str()) {
                    shared.violation(format!(
                        "record_step_if returned Ok but left the caller's state without {attempt}"
                    ));
                }
            }
            Err(StateStoreError::Conflict(_)) => {
                shared.settle(&attempt, Outcome::Refused);
                heartbeat.stop().await;
                shared
                    .after_refusal(&store, &lease, &state, index, "record_step_if")
                    .await;
                return;
            }
            Err(err) => {
                shared.settle(&attempt, Outcome::Failed(err.to_string()));
                return;
            }
        }
    }
    state.mark_completed();
    let result = store.save_workflow_state_if(&state, &held).await;
    shared.tally("save_workflow_state_if", &result);
    match result {
        Ok(_) => {
            heartbeat.stop().await;
            // Saved under the lease and no longer active: nobody can have claimed it since.
            let result = store.release_lease(&lease).await;
            shared.tally("release_lease", &result);
            if let Ok(false) = result {
                shared.violation(format!(
                    "release_lease after completing workflow {id} under {} (token {}) said the \
                     lease was no longer held",
                    lease.owner, lease.token
                ));
            }
        }
        Err(StateStoreError::Conflict(_)) => {
            heartbeat.stop().await;
            shared
                .after_refusal(&store, &lease, &state, STEPS, "completing")
                .await;
        }
        Err(_) => {}
    }
}

/// One replica process: claims workflows (up to [`PER_REPLICA`] at once) and runs them,
/// until the test says everything is done.
async fn replica(shared: Arc<Shared>, index: usize, store: SeaOrmStateStore, mut rng: Rng) {
    let owner = format!("replica-{index}");
    let mut running = JoinSet::new();
    while !shared.done.load(Ordering::SeqCst) {
        while let Some(joined) = running.try_join_next() {
            if let Err(err) = joined
                && err.is_panic()
            {
                shared.violation(format!("a workflow task of {owner} panicked: {err}"));
            }
        }
        let room = PER_REPLICA.saturating_sub(running.len());
        if room > 0 {
            let result = store.recover_workflows(&owner, LEASE, room as u64).await;
            shared.tally("recover_workflows", &result);
            for recovery in result.unwrap_or_default() {
                let lease = &recovery.lease;
                if lease.owner != owner || lease.workflow_state_id != recovery.state.id {
                    shared.violation(format!("a claim for {owner} came back as {lease:?}"));
                    continue;
                }
                shared
                    .journal()
                    .claims
                    .push((lease.workflow_state_id, lease.token, owner.clone()));
                let workflow: u64 = recovery
                    .state
                    .workflow_id
                    .trim_start_matches("wf-")
                    .parse()
                    .unwrap_or(0);
                let run_rng = Rng::new(
                    shared.seed ^ workflow.wrapping_mul(0x1000_0001) ^ ((lease.token as u64) << 40),
                );
                running.spawn(run_workflow(
                    shared.clone(),
                    store.clone(),
                    recovery,
                    run_rng,
                ));
            }
        }
        tokio::time::sleep(rng.millis(10, 40)).await;
    }
    // Everything is completed; what still runs is a stalled zombie about to be refused.
    while let Some(joined) = running.join_next().await {
        if let Err(err) = joined
            && err.is_panic()
        {
            shared.violation(format!("a workflow task of {owner} panicked: {err}"));
        }
    }
}

fn configure(builder: StateStoreBuilder) -> StateStoreBuilder {
    // Every checkpoint kept: the history is what the test checks.
    builder
        .checkpoint_retention(None)
        .auto_checkpoint(AutoCheckpoint::Off)
}

/// Starts incarnation `incarnation` of replica `index` after `delay`, on a store of its
/// own (`builder`), or on the shared `:memory:` store.
fn start_replica(
    shared: &Arc<Shared>,
    index: usize,
    incarnation: u64,
    builder: Option<StateStoreBuilder>,
    delay: Duration,
) -> JoinHandle<()> {
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let store = match builder {
            Some(builder) => {
                let opened = configure(builder)
                    .min_connections(1)
                    .max_connections(4)
                    .connect()
                    .await;
                shared.tally("connect", &opened);
                match opened {
                    Ok(store) => store,
                    Err(_) => return,
                }
            }
            None => shared.observer.clone(),
        };
        let rng = Rng::new(shared.seed ^ ((index as u64) << 8) ^ (incarnation << 16));
        replica(shared, index, store, rng).await;
    })
}

async fn replicas_under_faults_record_every_step_exactly_once(backend: Backend) {
    run(backend, false).await;
}

/// The same, with replicas that also give up on calls mid-flight (a timeout around
/// `record_step_if` or a heartbeat's `renew_lease`) and carry on with the same store: the
/// cancelled call's transaction must leave nothing behind on the store's connections.
async fn replicas_whose_calls_are_cancelled_record_every_step_exactly_once(backend: Backend) {
    run(backend, true).await;
}

async fn run(backend: Backend, cancellations: bool) {
    let seed = seed();
    let began = Instant::now();
    let test_store = open_with(backend, configure).await;
    let mut ids = Vec::with_capacity(WORKFLOWS);
    for n in 0..WORKFLOWS {
        let mut state =
            WorkflowState::new(format!("wf-{n}"), "pipeline", None, json!({ "input": n }));
        if n % 3 != 0 {
            state.mark_running();
        }
        test_store.save_workflow_state(&state).await.unwrap();
        ids.push(state.id);
    }
    let shared = Arc::new(Shared {
        journal: Mutex::new(Journal::default()),
        observer: test_store.store.clone(),
        seed,
        cancellations,
        next_attempt: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });

    let mut incarnations = [0u64; REPLICAS];
    let mut replicas: Vec<JoinHandle<()>> = (0..REPLICAS)
        .map(|index| {
            start_replica(
                &shared,
                index,
                0,
                test_store.builder_for_same_database(),
                Duration::ZERO,
            )
        })
        .collect();

    // The supervisor: crashes a replica now and then, and restarts it.
    let mut rng = Rng::new(seed ^ 0x0c4a_54e5);
    let mut next_crash = Instant::now() + rng.millis(300, 1_000);
    let mut crashes = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let active = test_store.list_active_workflows().await;
        shared.tally("list_active_workflows", &active);
        if active.as_ref().is_ok_and(Vec::is_empty) {
            break;
        }
        if began.elapsed() > DEADLINE {
            shared.done.store(true, Ordering::SeqCst);
            for replica in &replicas {
                replica.abort();
            }
            let journal = shared.journal();
            panic!(
                "{backend:?}, seed {seed}: no progress after {DEADLINE:?}; still active: {:?}; \
                 violations so far: {:#?}",
                active.map(|states| states
                    .iter()
                    .map(|s| (s.workflow_id.clone(), s.steps.len()))
                    .collect::<Vec<_>>()),
                journal.violations
            );
        }
        if crashes < CRASHES && Instant::now() >= next_crash {
            let victim = rng.below(REPLICAS as u64) as usize;
            replicas[victim].abort();
            if let Err(err) = (&mut replicas[victim]).await
                && err.is_panic()
            {
                shared.violation(format!("replica {victim} panicked: {err}"));
            }
            crashes += 1;
            shared.fault("crash");
            incarnations[victim] += 1;
            replicas[victim] = start_replica(
                &shared,
                victim,
                incarnations[victim],
                test_store.builder_for_same_database(),
                rng.millis(20, 400),
            );
            next_crash = Instant::now() + rng.millis(300, 1_200);
        }
    }
    let ran_for = began.elapsed();
    shared.done.store(true, Ordering::SeqCst);
    for replica in replicas {
        match tokio::time::timeout(Duration::from_secs(30), replica).await {
            Ok(Err(err)) if err.is_panic() => {
                shared.violation(format!("a replica panicked: {err}"));
            }
            Ok(_) => {}
            Err(_) => shared.violation("a replica did not stop within 30 s".to_owned()),
        }
    }

    verify(&shared, &test_store.store, &ids, backend, seed, ran_for).await;
}

/// The invariants, on the rows as stored once every replica has stopped.
async fn verify(
    shared: &Shared,
    store: &SeaOrmStateStore,
    ids: &[Uuid],
    backend: Backend,
    seed: u64,
    ran_for: Duration,
) {
    let mut stored = Vec::with_capacity(ids.len());
    for id in ids {
        let mut history = store.list_checkpoints(id, 10_000, 0).await.unwrap();
        history.reverse(); // oldest first
        stored.push((history, store.load_workflow_state(id).await.unwrap()));
    }
    let journal = shared.journal();
    let mut problems = journal.violations.clone();
    let describe = |attempt: &str| match journal.attempts.get(attempt) {
        Some(a) => format!("{attempt} ({:?})", a.outcome),
        None => format!("{attempt} (not in the journal)"),
    };

    // Each claim of a workflow has a fencing token of its own.
    let mut tokens: HashSet<(Uuid, i64)> = HashSet::new();
    for (workflow, token, owner) in &journal.claims {
        if !tokens.insert((*workflow, *token)) {
            problems.push(format!(
                "workflow {workflow} was claimed twice with token {token} (again by {owner})"
            ));
        }
    }

    let mut stored_checkpoints: HashSet<Uuid> = HashSet::new();
    let mut versions: HashMap<Uuid, HashSet<i64>> = HashMap::new();
    for (history, final_state) in &stored {
        let name = &final_state.workflow_id;
        if final_state.status != WorkflowStatus::Completed {
            problems.push(format!(
                "{name}: finished as {:?}, not completed",
                final_state.status
            ));
        }
        if history.len() != STEPS {
            problems.push(format!(
                "{name}: {} checkpoints for {STEPS} steps: {:?}",
                history.len(),
                history
                    .iter()
                    .map(|c| {
                        let attempt = c
                            .state()
                            .ok()
                            .and_then(|s| attempt_of(&s, step_index(&c.step_id).unwrap_or(0)));
                        (c.step_id.clone(), attempt.map(|a| describe(&a)))
                    })
                    .collect::<Vec<_>>()
            ));
        }
        // Each checkpoint holds exactly one more completed step than the one before, in
        // order, the earlier ones as they were, each recorded by an acknowledged or
        // unanswered write (never a refused one), under tokens that never go down.
        let mut before: Option<WorkflowState> = None;
        let mut last_token = i64::MIN;
        for (n, checkpoint) in history.iter().enumerate() {
            stored_checkpoints.insert(checkpoint.id);
            let snapshot = match checkpoint.state() {
                Ok(snapshot) => snapshot,
                Err(err) => {
                    problems.push(format!("{name}: checkpoint {n}: {err}"));
                    continue;
                }
            };
            match completed_prefix(&snapshot) {
                Ok(done) if done == n + 1 && snapshot.steps.len() == n + 1 => {}
                Ok(done) => problems.push(format!(
                    "{name}: checkpoint {n} ({}) holds {} steps, {done} completed in order; \
                     expected s0..s{n}",
                    checkpoint.step_id,
                    snapshot.steps.len()
                )),
                Err(why) => problems.push(format!("{name}: checkpoint {n}: {why}")),
            }
            if checkpoint.step_id != step_name(n) {
                problems.push(format!(
                    "{name}: checkpoint {n} is after {}, expected {}",
                    checkpoint.step_id,
                    step_name(n)
                ));
            }
            if let Some(before) = &before {
                for index in 0..n {
                    if attempt_of(before, index) != attempt_of(&snapshot, index) {
                        problems.push(format!(
                            "{name}: checkpoint {n} has s{index} = {:?} where the one before \
                             had {:?}: a step was overwritten",
                            attempt_of(&snapshot, index).map(|a| describe(&a)),
                            attempt_of(before, index).map(|a| describe(&a)),
                        ));
                    }
                }
            }
            if let Some(attempt) =
                step_index(&checkpoint.step_id).and_then(|index| attempt_of(&snapshot, index))
            {
                match journal.attempts.get(&attempt) {
                    Some(Attempt {
                        outcome: Outcome::Stored { checkpoint: id, .. },
                        ..
                    }) if *id == checkpoint.id => {}
                    Some(Attempt {
                        outcome: Outcome::InFlight,
                        ..
                    }) => {}
                    _ => problems.push(format!(
                        "{name}: checkpoint {n} ({}) was written by {}",
                        checkpoint.id,
                        describe(&attempt)
                    )),
                }
                if let Some(recorded) = journal.attempts.get(&attempt) {
                    if recorded.token < last_token {
                        problems.push(format!(
                            "{name}: checkpoint {n} by {} with token {} after a checkpoint \
                             under token {last_token}",
                            recorded.owner, recorded.token
                        ));
                    }
                    last_token = last_token.max(recorded.token);
                }
            }
            before = Some(snapshot);
        }
        // The stored state is the newest checkpoint's, completed.
        match &before {
            Some(last) => {
                let stored_steps: Vec<_> = (0..STEPS)
                    .map(|index| attempt_of(final_state, index))
                    .collect();
                let checkpointed: Vec<_> =
                    (0..STEPS).map(|index| attempt_of(last, index)).collect();
                if stored_steps != checkpointed || final_state.steps.len() != STEPS {
                    problems.push(format!(
                        "{name}: stored steps {stored_steps:?} ({} rows) differ from the newest \
                         checkpoint's {checkpointed:?}",
                        final_state.steps.len()
                    ));
                }
            }
            None => problems.push(format!("{name}: no checkpoint at all")),
        }
        if let Err(why) = completed_prefix(final_state) {
            problems.push(format!("{name}: stored state: {why}"));
        }
    }

    // No acknowledged step lost; no two acknowledged writes at the same version.
    for (attempt, recorded) in &journal.attempts {
        if let Outcome::Stored {
            checkpoint,
            version,
        } = recorded.outcome
        {
            if !stored_checkpoints.contains(&checkpoint) {
                problems.push(format!(
                    "acknowledged step {attempt} (checkpoint {checkpoint}) is not in the history \
                     of workflow {}",
                    recorded.workflow
                ));
            }
            if !versions
                .entry(recorded.workflow)
                .or_default()
                .insert(version)
            {
                problems.push(format!(
                    "two acknowledged writes of workflow {} returned version {version}",
                    recorded.workflow
                ));
            }
        }
        if let Outcome::Failed(err) = &recorded.outcome {
            problems.push(format!(
                "attempt {attempt} (s{}) failed: {err}",
                recorded.step
            ));
        }
    }

    let count = |wanted: fn(&Outcome) -> bool| {
        journal
            .attempts
            .values()
            .filter(|a| wanted(&a.outcome))
            .count()
    };
    println!(
        "replica_stress {backend:?} seed {seed}{}: {WORKFLOWS} workflows x {STEPS} steps, \
         {REPLICAS} replicas, lease {LEASE:?}, done in {ran_for:.2?}; {} claims; attempts: {} \
         stored, {} refused, {} unanswered (crash); faults {:?}",
        if shared.cancellations {
            ", with cancelled calls"
        } else {
            ""
        },
        journal.claims.len(),
        count(|o| matches!(o, Outcome::Stored { .. })),
        count(|o| matches!(o, Outcome::Refused)),
        count(|o| matches!(o, Outcome::InFlight)),
        journal.faults,
    );
    for ((operation, outcome), n) in &journal.calls {
        println!("  {operation:<34} {outcome:<12} {n}");
    }
    assert!(
        problems.is_empty(),
        "{backend:?}, seed {seed} (REPLICA_STRESS_SEED={seed} replays the faults): {} \
         problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        journal.faults.values().sum::<u64>() > 0,
        "no fault was injected"
    );
}

/// The smallest case of what the cancelled-calls run finds on Postgres: a store call given
/// up on mid-flight (a `timeout` around `renew_lease`) must leave nothing open on the
/// store's connections, so the next acknowledged write on the same store is committed and
/// visible to another store at once. One pooled connection, so the next call gets the
/// same one.
async fn a_cancelled_call_leaves_no_transaction_open(backend: Backend) {
    let store = open_with(backend, |builder| {
        builder.min_connections(1).max_connections(1)
    })
    .await;
    let observer = store
        .reopen()
        .await
        .expect("a second store on the same database");
    let mut state = WorkflowState::new("wf-cancelled", "pipeline", None, json!({}));
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    let claim = store
        .claim_workflows("replica-a", Duration::from_secs(300), 1)
        .await
        .unwrap()
        .remove(0);
    for attempt in 0..600u64 {
        // Gives up after 0 to 600 µs: sometimes before BEGIN is answered.
        let patience = Duration::from_micros(attempt % 150 * 4);
        let renewal = store.renew_lease(&claim.lease, Duration::from_secs(300));
        let cancelled = tokio::time::timeout(patience, renewal).await.is_err();
        state.context = json!({ "attempt": attempt });
        store
            .save_workflow_state_if(&state, &SaveCondition::Lease(claim.lease.clone()))
            .await
            .unwrap_or_else(|err| {
                panic!("attempt {attempt} (renewal cancelled: {cancelled}): save failed: {err}")
            });
        let seen = observer.load_workflow_state(&state.id).await.unwrap();
        assert_eq!(
            seen.context, state.context,
            "attempt {attempt} (renewal cancelled: {cancelled}): the save was acknowledged but \
             another store does not see it"
        );
    }
    // And the lease is still held, renewable, by its owner.
    store
        .renew_lease(&claim.lease, Duration::from_secs(300))
        .await
        .unwrap();
}
