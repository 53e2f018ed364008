//! Many tasks at once, each on its own workflow, looping save + checkpoint (or
//! `record_step`) for a fixed time: throughput, tail latency and errors by kind (pool
//! time-outs, `SQLITE_BUSY`).

use std::time::{Duration, Instant};

use llm_orchestrator_state::{Checkpoint, SeaOrmStateStore, StateStore};

use crate::profile::{machine_busy, per_call, server_cpu};
use crate::report::{Errors, Row};
use crate::stats::Samples;
use crate::workload::{Shape, Words};

/// What each task repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `save_workflow_state`, then `create_checkpoint` of the saved state.
    SaveAndCheckpoint,
    /// `record_step` of one re-run step (state and checkpoint in one call).
    RecordStep,
}

/// Settings of the concurrent phase.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Concurrent tasks, each with its own workflow.
    pub tasks: usize,
    /// How long calls are measured.
    pub duration: Duration,
    /// How long the tasks run before measuring starts (pool growth, statement caches).
    pub warmup: Duration,
    /// The workflow state's sizes.
    pub shape: Shape,
    /// What each task repeats.
    pub workload: Workload,
}

struct TaskResult {
    /// `save_workflow_state` calls, or `record_step` calls.
    saves: Samples,
    checkpoints: Samples,
    errors: Errors,
}

async fn task(
    store: SeaOrmStateStore,
    shape: Shape,
    workload: Workload,
    index: usize,
    measure_from: Instant,
    stop: Instant,
) -> TaskResult {
    let mut result = TaskResult {
        saves: Samples::default(),
        checkpoints: Samples::default(),
        errors: Errors::default(),
    };
    let mut words = Words::new(1000 + index as u64);
    let name = match workload {
        Workload::SaveAndCheckpoint => "bench-concurrent",
        Workload::RecordStep => "bench-concurrent-steps",
    };
    let mut state = shape.new_state(&format!("{name}-{index}"), &mut words);
    if let Err(err) = store.save_workflow_state(&state).await {
        result.errors.add_error(&err);
        return result;
    }
    let mut iteration = 0_u64;
    let mut last_saved = state.clone();
    while Instant::now() < stop {
        iteration += 1;
        shape.advance(&mut state, iteration, &mut words);
        if workload == Workload::RecordStep {
            if record_one(
                &store,
                &mut state,
                shape,
                iteration,
                measure_from,
                &mut result,
            )
            .await
            {
                last_saved = state.clone();
            }
            continue;
        }
        let started = Instant::now();
        let saved = store.save_workflow_state(&state).await;
        let elapsed = started.elapsed();
        let measured = started >= measure_from;
        match saved {
            Ok(()) => {
                last_saved = state.clone();
                if measured {
                    result.saves.push(elapsed);
                }
            }
            Err(err) => {
                if measured {
                    result.errors.add_error(&err);
                }
                continue;
            }
        }
        let checkpoint = match Checkpoint::of(&state, "step-00") {
            Ok(checkpoint) => checkpoint,
            Err(err) => {
                result.errors.add_error(&err);
                continue;
            }
        };
        let started = Instant::now();
        let created = store.create_checkpoint(&checkpoint).await;
        let elapsed = started.elapsed();
        match created {
            Ok(()) if started >= measure_from => result.checkpoints.push(elapsed),
            Ok(()) => {}
            Err(err) if started >= measure_from => result.errors.add_error(&err),
            Err(_) => {}
        }
    }
    // Checked after the clock: what the task saved last is what is stored.
    match store.load_workflow_state(&state.id).await {
        Ok(loaded) if loaded == last_saved => {}
        Ok(_) => result.errors.add("wrong_result"),
        Err(err) => result.errors.add_error(&err),
    }
    result
}

/// One `record_step` of the step `advance` re-ran in `state`; whether it was stored. On
/// error the store leaves `state` as it was, and the next call saves it whole anyway.
async fn record_one(
    store: &SeaOrmStateStore,
    state: &mut llm_orchestrator_state::WorkflowState,
    shape: Shape,
    iteration: u64,
    measure_from: Instant,
    result: &mut TaskResult,
) -> bool {
    let name = crate::workload::step_name((iteration % shape.steps.max(1) as u64) as usize);
    let Some(step) = state.steps.get(&name).cloned() else {
        result.errors.add("no_step_to_record");
        return false;
    };
    let started = Instant::now();
    let recorded = store.record_step(state, step).await;
    let elapsed = started.elapsed();
    let measured = started >= measure_from;
    match recorded {
        Ok(_) => {
            if measured {
                result.saves.push(elapsed);
            }
            true
        }
        Err(err) => {
            if measured {
                result.errors.add_error(&err);
            }
            false
        }
    }
}

/// CPU time this process has used so far (user + system), from `/proc/self/stat`; `None`
/// where there is no procfs. Ticks are taken as 1/100 s (Linux's USER_HZ).
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The row of the `record_step` workload.
pub const RECORD_STEP_OP: &str = "concurrent: record_step";

/// Runs the phase and returns its rows: saves, checkpoints, and all calls together.
pub async fn run(store: &SeaOrmStateStore, backend: &str, settings: Settings) -> Vec<Row> {
    let cpu_before = process_cpu();
    let (server_before, machine_before) = (server_cpu(), machine_busy());
    let started = Instant::now();
    let measure_from = Instant::now() + settings.warmup;
    let stop = measure_from + settings.duration;
    let handles: Vec<_> = (0..settings.tasks)
        .map(|index| {
            tokio::spawn(task(
                store.clone(),
                settings.shape,
                settings.workload,
                index,
                measure_from,
                stop,
            ))
        })
        .collect();
    let mut saves = Samples::default();
    let mut checkpoints = Samples::default();
    let mut errors = Errors::default();
    for handle in handles {
        match handle.await {
            Ok(result) => {
                saves.extend(result.saves);
                checkpoints.extend(result.checkpoints);
                errors.merge(result.errors);
            }
            Err(_) => errors.add("task_panicked"),
        }
    }
    // The benchmark process's own CPU (the store's client side, plus the workload's
    // cheap state changes) per write call, over the whole phase including warm-up.
    let cpu_per_call_us = cpu_before.zip(process_cpu()).map(|(before, after)| {
        let calls = (saves.len() + checkpoints.len()) as f64
            * (started.elapsed().as_secs_f64() / settings.duration.as_secs_f64());
        ((after - before).as_secs_f64() * 1e6 / calls.max(1.0)).round()
    });
    let cores_busy = cpu_before.zip(process_cpu()).map(|(before, after)| {
        ((after - before).as_secs_f64() / started.elapsed().as_secs_f64() * 100.0).round() / 100.0
    });
    // The same for the database server (every `postgres` process) and the whole machine.
    let calls = (saves.len() + checkpoints.len()) as f64
        * (started.elapsed().as_secs_f64() / settings.duration.as_secs_f64());
    let server_per_call =
        per_call(server_before, server_cpu(), calls).filter(|_| backend == "postgres");
    let machine_per_call = per_call(machine_before, machine_busy(), calls);
    let wall = Some(settings.duration);
    let mut all = saves.clone();
    all.extend(checkpoints.clone());
    let tasks = settings.tasks;
    let seconds = settings.duration.as_secs_f64();
    if settings.workload == Workload::RecordStep {
        return vec![
            Row::new(backend, RECORD_STEP_OP, saves.summary(wall))
                .errors(errors)
                .with("client_cpu_us_per_call", cpu_per_call_us)
                .with("server_cpu_us_per_call", server_per_call)
                .with("machine_cpu_us_per_call", machine_per_call)
                .with("client_cores_busy", cores_busy)
                .with("tasks", tasks)
                .with("seconds", seconds),
        ];
    }
    vec![
        Row::new(
            backend,
            "concurrent: save_workflow_state",
            saves.summary(wall),
        )
        .with("tasks", tasks)
        .with("seconds", seconds),
        Row::new(
            backend,
            "concurrent: create_checkpoint",
            checkpoints.summary(wall),
        )
        .with("tasks", tasks)
        .with("seconds", seconds),
        Row::new(backend, "concurrent: all write calls", all.summary(wall))
            .errors(errors)
            .with("client_cpu_us_per_call", cpu_per_call_us)
            .with("server_cpu_us_per_call", server_per_call)
            .with("machine_cpu_us_per_call", machine_per_call)
            .with("client_cores_busy", cores_busy)
            .with("tasks", tasks)
            .with("seconds", seconds),
    ]
}
