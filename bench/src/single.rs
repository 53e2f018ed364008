//! One task, one call at a time: each store operation on one ~8 KiB workflow, results
//! checked after the clock stops.

use std::error::Error;
use std::time::{Duration, Instant};

use llm_orchestrator_state::{
    Checkpoint, SaveCondition, SeaOrmStateStore, StateStore, StateStoreError, StepState,
    WorkflowState,
};

use crate::concurrent::process_cpu;
use crate::floor::Floor;
use crate::report::{Errors, FloorRatio, Row};
use crate::statements;
use crate::stats::Samples;
use crate::workload::{Shape, Words, json_len};

/// Settings of the single-task phases.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Measured calls per operation.
    pub iterations: usize,
    /// Unmeasured calls per operation before measuring.
    pub warmup: usize,
    /// The workflow state's sizes.
    pub shape: Shape,
}

/// What the single-task phases leave behind for later phases.
#[derive(Debug)]
pub struct Outcome {
    /// The serialized snapshot the checkpoints held (the floor inserts the same bytes).
    pub snapshot: String,
}

/// The Postgres floor measured call by call next to the store's calls: on a shared
/// machine, fsync and CPU latency drift by several times within a minute, so a ratio is
/// only fair between samples taken in the same moments.
struct Paired<'a> {
    floor: Option<&'a mut Floor>,
    snapshot: String,
    inserts: Samples,
    selects: Samples,
    two_inserts: Samples,
}

/// Which floor a store operation is paired with.
#[derive(Clone, Copy)]
enum FloorKind {
    Insert,
    Select,
    /// Two copies of the snapshot in one commit (see [`Floor::insert_two_once`]).
    InsertTwo,
}

impl Paired<'_> {
    /// Runs one floor call of `kind` and records it in `into` and in the phase totals.
    async fn once(&mut self, kind: FloorKind, into: &mut Samples) -> Result<(), Box<dyn Error>> {
        let Some(floor) = self.floor.as_deref_mut() else {
            return Ok(());
        };
        let elapsed = match kind {
            FloorKind::Insert => floor.insert_once(&self.snapshot).await?,
            FloorKind::Select => floor.select_one_once().await?,
            FloorKind::InsertTwo => floor.insert_two_once(&self.snapshot).await?,
        };
        into.push(elapsed);
        match kind {
            FloorKind::Insert => self.inserts.push(elapsed),
            FloorKind::Select => self.selects.push(elapsed),
            FloorKind::InsertTwo => self.two_inserts.push(elapsed),
        }
        Ok(())
    }

    /// Sets the row's ratio to the floor samples taken beside it.
    fn ratio(&self, row: Row, kind: FloorKind, beside: &Samples) -> Row {
        if self.floor.is_none() {
            return row;
        }
        let floor_p50 = beside.summary(None).p50_us;
        let mut row = row;
        if floor_p50 > 0.0 {
            row.floor = Some(FloorRatio {
                floor_op: match kind {
                    FloorKind::Insert => "floor: durable insert (paired)",
                    FloorKind::Select => "floor: SELECT 1 (paired)",
                    FloorKind::InsertTwo => "floor: two snapshots in one commit (paired)",
                }
                .into(),
                floor_value: floor_p50,
                ratio: row.summary.p50_us / floor_p50,
            });
        }
        row
    }
}

/// CPU time of this process (all threads: tokio workers, sqlx's SQLite worker) spent
/// inside timed calls since the last [`take_cpu_per_call`], and how many calls.
static CALL_CPU: std::sync::Mutex<(Duration, u32)> = std::sync::Mutex::new((Duration::ZERO, 0));

async fn timed<T, F>(call: F) -> (T, Duration)
where
    F: std::future::Future<Output = T>,
{
    let cpu_before = process_cpu();
    let started = Instant::now();
    let out = call.await;
    let elapsed = started.elapsed();
    if let (Some(before), Some(after), Ok(mut total)) = (cpu_before, process_cpu(), CALL_CPU.lock())
    {
        total.0 += after.saturating_sub(before);
        total.1 += 1;
    }
    (out, elapsed)
}

/// Client CPU µs per timed call since the last take (the kernel accounts CPU in 10 ms
/// ticks, so this is a sampled estimate: good over hundreds of calls, not one).
fn take_cpu_per_call() -> serde_json::Value {
    match CALL_CPU.lock() {
        Ok(mut total) => {
            let (cpu, calls) = std::mem::take(&mut *total);
            if calls == 0 {
                return serde_json::Value::Null;
            }
            (cpu.as_secs_f64() * 1e6 / f64::from(calls)).round().into()
        }
        Err(_) => serde_json::Value::Null,
    }
}

fn check(errors: &mut Errors, ok: bool, what: &str) {
    if !ok {
        errors.add("wrong_result");
        eprintln!("warning: {what} returned a wrong result");
    }
}

/// How many calls a phase makes: `warmup` unmeasured, then `iterations` measured.
struct Phase {
    iterations: usize,
    warmup: usize,
}

impl Phase {
    fn new(iterations: usize, warmup: usize) -> Self {
        Self { iterations, warmup }
    }

    /// Measures a read: each measured call is timed, paired with a `SELECT 1` floor call
    /// and checked with `expected` after the clock stops; one more call, untimed, records
    /// the statements it sends. Appends the operation's row.
    async fn read<T, F, Fut>(
        &self,
        paired: &mut Paired<'_>,
        rows: &mut Vec<Row>,
        (backend, op): (&str, &str),
        call: F,
        expected: impl Fn(&T) -> bool,
    ) -> Result<(), Box<dyn Error>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StateStoreError>>,
    {
        let mut samples = Samples::with_capacity(self.iterations);
        let mut errors = Errors::default();
        let mut beside = Samples::with_capacity(self.iterations);
        take_cpu_per_call(); // start counting for this operation
        for measured in (0..self.warmup)
            .map(|_| false)
            .chain((0..self.iterations).map(|_| true))
        {
            let (result, elapsed) = timed(call()).await;
            match result {
                Ok(value) if measured => {
                    samples.push(elapsed);
                    paired.once(FloorKind::Select, &mut beside).await?;
                    check(&mut errors, expected(&value), op);
                }
                Ok(_) => {}
                Err(err) => errors.add_error(&err),
            }
        }
        let cpu_per_call = take_cpu_per_call();
        let (result, sent) = statements::record(call()).await;
        check(&mut errors, expected(&result?), op);
        rows.push(
            paired.ratio(
                Row::new(backend, op, samples.summary(None))
                    .statements(sent)
                    .with("client_cpu_us_per_call", cpu_per_call)
                    .errors(errors),
                FloorKind::Select,
                &beside,
            ),
        );
        Ok(())
    }
}

/// Runs every single-task phase on `store` and appends one row per operation.
pub async fn run(
    store: &SeaOrmStateStore,
    backend: &str,
    settings: Settings,
    floor: Option<&mut Floor>,
    rows: &mut Vec<Row>,
) -> Result<Outcome, Box<dyn Error>> {
    let Settings {
        iterations,
        warmup,
        shape,
    } = settings;
    let mut words = Words::new(7);
    let workflow_id = format!("bench-single-{}", uuid::Uuid::now_v7());
    let mut state = shape.new_state(&workflow_id, &mut words);
    store.save_workflow_state(&state).await?;
    let state_bytes = json_len(&serde_json::to_value(&state)?);
    let mut paired = Paired {
        floor,
        snapshot: serde_json::to_string(&Checkpoint::of(&state, "step-00")?.snapshot)?,
        inserts: Samples::default(),
        selects: Samples::default(),
        two_inserts: Samples::default(),
    };
    let mut iteration = 0_u64;

    // save_workflow_state: an update of an existing workflow, after a step.
    let mut samples = Samples::with_capacity(iterations);
    let mut errors = Errors::default();
    let mut beside = Samples::with_capacity(iterations);
    let mut beside_two = Samples::with_capacity(iterations);
    take_cpu_per_call(); // start counting for this operation
    for measured in (0..warmup)
        .map(|_| false)
        .chain((0..iterations).map(|_| true))
    {
        iteration += 1;
        shape.advance(&mut state, iteration, &mut words);
        let (result, elapsed) = timed(store.save_workflow_state(&state)).await;
        match result {
            Ok(()) if measured => {
                samples.push(elapsed);
                paired.once(FloorKind::Insert, &mut beside).await?;
                paired.once(FloorKind::InsertTwo, &mut beside_two).await?;
                let loaded = store.load_workflow_state(&state.id).await.ok();
                check(&mut errors, loaded.as_ref() == Some(&state), "save");
            }
            Ok(()) => {}
            Err(err) => errors.add_error(&err),
        }
    }
    iteration += 1;
    shape.advance(&mut state, iteration, &mut words);
    let cpu_per_call = take_cpu_per_call();
    let (result, sent) = statements::record(store.save_workflow_state(&state)).await;
    result?;
    rows.push(
        paired.ratio(
            Row::new(backend, "save_workflow_state", samples.summary(None))
                .statements(sent)
                .with("client_cpu_us_per_call", cpu_per_call.clone())
                .errors(errors)
                .with("state_bytes", state_bytes),
            FloorKind::Insert,
            &beside,
        ),
    );

    // load_workflow_state
    let phase = Phase::new(iterations, warmup);
    phase
        .read(
            &mut paired,
            rows,
            (backend, "load_workflow_state"),
            || store.load_workflow_state(&state.id),
            |loaded| *loaded == state,
        )
        .await?;

    // create_checkpoint: the snapshot is the serialized state, made outside the clock.
    let mut samples = Samples::with_capacity(iterations);
    let mut errors = Errors::default();
    let mut beside = Samples::with_capacity(iterations);
    take_cpu_per_call(); // start counting for this operation
    for measured in (0..warmup)
        .map(|_| false)
        .chain((0..iterations).map(|_| true))
    {
        let checkpoint = Checkpoint::of(&state, "step-00")?;
        let (result, elapsed) = timed(store.create_checkpoint(&checkpoint)).await;
        match result {
            Ok(()) if measured => {
                samples.push(elapsed);
                paired.once(FloorKind::Insert, &mut beside).await?;
                let stored = store.get_latest_checkpoint(&state.id).await.ok().flatten();
                check(
                    &mut errors,
                    stored.as_ref() == Some(&checkpoint),
                    "create_checkpoint",
                );
            }
            Ok(()) => {}
            Err(err) => errors.add_error(&err),
        }
    }
    let latest = Checkpoint::of(&state, "step-00")?;
    let cpu_per_call = take_cpu_per_call();
    let (result, sent) = statements::record(store.create_checkpoint(&latest)).await;
    result?;
    let snapshot = serde_json::to_string(&latest.snapshot)?;
    rows.push(
        paired.ratio(
            Row::new(backend, "create_checkpoint", samples.summary(None))
                .statements(sent)
                .with("client_cpu_us_per_call", cpu_per_call.clone())
                .errors(errors)
                .with("snapshot_bytes", snapshot.len())
                .with(
                    "checkpoint_retention",
                    store
                        .options()
                        .checkpoint_retention
                        .map_or(serde_json::Value::Null, |keep| keep.into()),
                ),
            FloorKind::Insert,
            &beside,
        ),
    );

    // record_step (issue 7): the step, the state and its checkpoint in one commit, to set
    // beside save_workflow_state + create_checkpoint, the two calls it replaces.
    let mut samples = Samples::with_capacity(iterations);
    let mut errors = Errors::default();
    let mut beside = Samples::with_capacity(iterations);
    take_cpu_per_call(); // start counting for this operation
    for measured in (0..warmup)
        .map(|_| false)
        .chain((0..iterations).map(|_| true))
    {
        iteration += 1;
        let Some(step) = next_step(&shape, &mut state, iteration, &mut words) else {
            break;
        };
        let (result, elapsed) = timed(store.record_step(&mut state, step)).await;
        match result {
            Ok(checkpoint) if measured => {
                samples.push(elapsed);
                paired.once(FloorKind::Insert, &mut beside).await?;
                let loaded = store.load_workflow_state(&state.id).await.ok();
                let stored = store.get_latest_checkpoint(&state.id).await.ok().flatten();
                check(
                    &mut errors,
                    loaded.as_ref() == Some(&state) && stored.as_ref() == Some(&checkpoint),
                    "record_step",
                );
            }
            Ok(_) => {}
            Err(err) => errors.add_error(&err),
        }
    }
    if samples.len() > 0 {
        let cpu_per_call = take_cpu_per_call();
        let two_p50 = beside_two.summary(None).p50_us;
        let mut row = Row::new(backend, "record_step", samples.summary(None));
        if two_p50 > 0.0 {
            let ratio = (row.summary.p50_us / two_p50 * 100.0).round() / 100.0;
            row = row
                .with("same_bytes_floor_p50_us", (two_p50 * 10.0).round() / 10.0)
                .with("ratio_to_same_bytes_floor", ratio);
        }
        rows.push(
            paired.ratio(
                row.with("client_cpu_us_per_call", cpu_per_call)
                    .errors(errors)
                    .with("replaces", "save_workflow_state + create_checkpoint"),
                FloorKind::Insert,
                &beside,
            ),
        );
    }
    // What fencing and transactions cost beside the plain one-statement record_step:
    // record_step_if fenced by the workflow's version (a few statements in a transaction),
    // and record_step inside a transaction the store begins (BEGIN, the write in a
    // savepoint on Postgres, COMMIT).
    for variant in ["record_step_if (version)", "record_step in a transaction"] {
        let mut samples = Samples::with_capacity(iterations);
        let mut errors = Errors::default();
        let mut beside = Samples::with_capacity(iterations);
        let mut version = store
            .load_workflow_state_versioned(&state.id)
            .await?
            .version;
        take_cpu_per_call();
        for measured in (0..warmup)
            .map(|_| false)
            .chain((0..iterations).map(|_| true))
        {
            iteration += 1;
            let Some(step) = next_step(&shape, &mut state, iteration, &mut words) else {
                break;
            };
            let (result, elapsed) = timed(fenced_or_in_transaction(
                variant,
                store,
                &mut state,
                step,
                &mut version,
            ))
            .await;
            match result {
                Ok(checkpoint) if measured => {
                    samples.push(elapsed);
                    paired.once(FloorKind::Insert, &mut beside).await?;
                    let stored = store.get_latest_checkpoint(&state.id).await.ok().flatten();
                    check(&mut errors, stored.as_ref() == Some(&checkpoint), variant);
                }
                Ok(_) => {}
                Err(err) => errors.add_error(&err),
            }
        }
        if samples.len() > 0 {
            let cpu_per_call = take_cpu_per_call();
            // One more, untimed, to list what a call sends.
            iteration += 1;
            let step =
                next_step(&shape, &mut state, iteration, &mut words).ok_or("no step to record")?;
            let (result, sent) = statements::record(fenced_or_in_transaction(
                variant,
                store,
                &mut state,
                step,
                &mut version,
            ))
            .await;
            result?;
            let row = Row::new(backend, variant, samples.summary(None))
                .statements(sent)
                .with("client_cpu_us_per_call", cpu_per_call)
                .errors(errors);
            rows.push(paired.ratio(row, FloorKind::Insert, &beside));
        }
    }

    let latest = store
        .get_latest_checkpoint(&state.id)
        .await?
        .ok_or("record_step left no checkpoint")?;

    let phase = Phase::new(iterations, warmup);
    phase
        .read(
            &mut paired,
            rows,
            (backend, "get_latest_checkpoint"),
            || store.get_latest_checkpoint(&state.id),
            |found| found.as_ref() == Some(&latest),
        )
        .await?;
    phase
        .read(
            &mut paired,
            rows,
            (backend, "restore_from_checkpoint"),
            || store.restore_from_checkpoint(&latest.id),
            |restored| *restored == state,
        )
        .await?;
    phase
        .read(
            &mut paired,
            rows,
            (backend, "load_workflow_state_by_workflow_id"),
            || store.load_workflow_state_by_workflow_id(&workflow_id),
            |loaded| *loaded == state,
        )
        .await?;

    if paired.floor.is_some() {
        rows.push(
            Row::new(backend, "floor: SELECT 1", paired.selects.summary(None))
                .statements(vec!["SELECT 1".into()])
                .with("paired_with", "the four reads"),
        );
        rows.push(
            Row::new(
                backend,
                "floor: durable insert",
                paired.inserts.summary(None),
            )
            .statements(vec!["INSERT INTO bench_floor …".into()])
            .with(
                "paired_with",
                "save_workflow_state, create_checkpoint and record_step",
            )
            .with("snapshot_bytes", paired.snapshot.len()),
        );
        rows.push(
            Row::new(
                backend,
                "floor: two snapshots in one commit",
                paired.two_inserts.summary(None),
            )
            .statements(vec!["INSERT INTO bench_floor … VALUES (…), (…)".into()])
            .with("paired_with", "record_step")
            .with("bytes", 2 * paired.snapshot.len()),
        );
    }
    Ok(Outcome { snapshot })
}

/// The workload's step of `iteration`, with `state` moved on to it first.
fn next_step(
    shape: &Shape,
    state: &mut WorkflowState,
    iteration: u64,
    words: &mut Words,
) -> Option<StepState> {
    shape.advance(state, iteration, words);
    let name = crate::workload::step_name((iteration % shape.steps.max(1) as u64) as usize);
    state.steps.get(&name).cloned()
}

/// One step recorded as `variant` says: `record_step_if` fenced by the workflow's
/// `version` (moved on to the new one), or `record_step` in a store transaction.
async fn fenced_or_in_transaction(
    variant: &str,
    store: &SeaOrmStateStore,
    state: &mut WorkflowState,
    step: StepState,
    version: &mut i64,
) -> Result<Checkpoint, StateStoreError> {
    if variant == "record_step_if (version)" {
        let condition = SaveCondition::Version(*version);
        let (checkpoint, next) = store.record_step_if(state, step, &condition).await?;
        *version = next;
        Ok(checkpoint)
    } else {
        let tx = store.begin().await?;
        let checkpoint = tx.record_step(state, step).await?;
        tx.commit().await?;
        Ok(checkpoint)
    }
}
