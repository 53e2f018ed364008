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

/// Runs the phase and returns its rows: saves, checkpoints, and all calls together.
pub async fn run(store: &SeaOrmStateStore, backend: &str, settings: Settings) -> Vec<Row> {
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
            .with("tasks", tasks)
            .with("seconds", seconds),
    ]
}
