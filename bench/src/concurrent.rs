//! Many tasks at once, each on its own workflow, looping save + checkpoint for a fixed
//! time: throughput, tail latency and errors by kind (pool time-outs, `SQLITE_BUSY`).

use std::time::{Duration, Instant};

use llm_orchestrator_state::{Checkpoint, SeaOrmStateStore, StateStore};

use crate::report::{Errors, Row};
use crate::stats::Samples;
use crate::workload::{Shape, Words};

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
}

struct TaskResult {
    saves: Samples,
    checkpoints: Samples,
    errors: Errors,
}

async fn task(
    store: SeaOrmStateStore,
    shape: Shape,
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
    let mut state = shape.new_state(&format!("bench-concurrent-{index}"), &mut words);
    if let Err(err) = store.save_workflow_state(&state).await {
        result.errors.add_error(&err);
        return result;
    }
    let mut iteration = 0_u64;
    let mut last_saved = state.clone();
    while Instant::now() < stop {
        iteration += 1;
        shape.advance(&mut state, iteration, &mut words);
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

/// Runs the phase and returns its rows: saves, checkpoints, and all calls together.
pub async fn run(store: &SeaOrmStateStore, backend: &str, settings: Settings) -> Vec<Row> {
    let cpu_before = process_cpu();
    let started = Instant::now();
    let measure_from = Instant::now() + settings.warmup;
    let stop = measure_from + settings.duration;
    let handles: Vec<_> = (0..settings.tasks)
        .map(|index| {
            tokio::spawn(task(
                store.clone(),
                settings.shape,
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
    let wall = Some(settings.duration);
    let mut all = saves.clone();
    all.extend(checkpoints.clone());
    let tasks = settings.tasks;
    let seconds = settings.duration.as_secs_f64();
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
            .with("client_cores_busy", cores_busy)
            .with("tasks", tasks)
            .with("seconds", seconds),
    ]
}
