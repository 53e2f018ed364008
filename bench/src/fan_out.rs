//! Fan-out: parallel branches of one workflow each finish a step at the same moment and
//! record it with `record_step`, each from its own copy of the state, half of them through
//! a store handle of their own (another pool on the same database). Measures each call,
//! then counts how many of the branches' steps the stored workflow holds: a store that
//! merges concurrent steps keeps all of them; one that saves each caller's whole copy
//! keeps the last writer's.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use llm_orchestrator_state::{SeaOrmStateStore, StateStore, StepState};
use serde_json::json;
use tokio::sync::Barrier;

use crate::report::{Errors, Row};
use crate::stats::{Samples, median};
use crate::workload::{Shape, Words};

/// Settings of the fan-out scenario.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Parallel `record_step` calls per round, each on a step of its own.
    pub branches: usize,
    /// Rounds, each on a fresh workflow.
    pub rounds: usize,
    /// The workflow's sizes before the branches run.
    pub shape: Shape,
}

/// The step id of branch `index`.
fn branch_step(index: usize) -> String {
    format!("branch-{index:02}")
}

/// Runs the rounds on `store`; the odd branches use `own_handles` (one each, in turn)
/// when there are some, else clones of `store`. Adds one row and returns a line to print.
pub async fn run(
    store: &SeaOrmStateStore,
    own_handles: &[SeaOrmStateStore],
    backend: &str,
    settings: Settings,
    rows: &mut Vec<Row>,
) -> Result<String, Box<dyn Error>> {
    let mut samples = Samples::with_capacity(settings.branches * settings.rounds);
    let mut errors = Errors::default();
    let mut held = Vec::with_capacity(settings.rounds);
    let mut words = Words::new(23);
    for round in 0..settings.rounds {
        let base = settings
            .shape
            .new_state(&format!("bench-fan-out-{round}"), &mut words);
        store.save_workflow_state(&base).await?;
        // Every branch waits here, so the calls start together.
        let barrier = Arc::new(Barrier::new(settings.branches));
        let handles: Vec<_> = (0..settings.branches)
            .map(|index| {
                let handle = match own_handles {
                    [] => store.clone(),
                    own if index % 2 == 1 => own[(index / 2) % own.len()].clone(),
                    _ => store.clone(),
                };
                let mut copy = base.clone();
                let mut step = StepState::new(branch_step(index));
                step.mark_running();
                step.mark_completed(json!({
                    "branch": index,
                    "text": words.text(settings.shape.output_bytes),
                }));
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let started = Instant::now();
                    let result = handle.record_step(&mut copy, step).await;
                    (started.elapsed(), result.map(drop))
                })
            })
            .collect();
        for handle in handles {
            match handle.await {
                Ok((elapsed, Ok(()))) => samples.push(elapsed),
                Ok((_, Err(err))) => errors.add_error(&err),
                Err(_) => errors.add("task_panicked"),
            }
        }
        // Checked after every call returned.
        let stored = store.load_workflow_state(&base.id).await?;
        held.push(
            (0..settings.branches)
                .filter(|index| stored.steps.contains_key(&branch_step(*index)))
                .count() as f64,
        );
    }
    let summary = samples.summary(None);
    let fewest = held.iter().copied().fold(f64::INFINITY, f64::min);
    let most = held.iter().copied().fold(0.0, f64::max);
    let typical = median(&held);
    let own = if own_handles.is_empty() {
        "all on clones of one handle (another handle would open another database)".to_owned()
    } else {
        format!("{} on store handles of their own", settings.branches / 2)
    };
    let line = format!(
        "{} record_step at once on one workflow, {own}, {} rounds: p50 {:.0} µs, p99 {:.0} µs, \
         {} errors {:?}; the stored workflow held {fewest:.0}–{most:.0} of the {} new steps \
         (median {typical:.1})",
        settings.branches,
        settings.rounds,
        summary.p50_us,
        summary.p99_us,
        errors.total(),
        errors.0,
        settings.branches,
    );
    rows.push(
        Row::new(
            backend,
            format!("fan-out: record_step ×{}", settings.branches),
            summary,
        )
        .errors(errors)
        .with("branches", settings.branches)
        .with("rounds", settings.rounds)
        .with("own_handles", own_handles.len())
        .with("steps_held_min", fewest)
        .with("steps_held_median", typical)
        .with("steps_held_max", most),
    );
    Ok(line)
}
