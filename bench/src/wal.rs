//! Postgres only: the WAL one `record_step` writes, from the server's WAL position around
//! a run of calls with nothing else in between, when the context stays the same from step to
//! step and when it changes at every step, beside the floor insert of the same snapshot.
//! WAL is what a durable commit waits for and what replicas and backups receive.

use std::error::Error;
use std::time::Instant;

use llm_orchestrator_state::{SeaOrmStateStore, StateStore};

use crate::floor::Floor;
use crate::report::Row;
use crate::stats::Samples;
use crate::workload::{Shape, Words, step_name};

/// Measures `calls` calls of each kind after a few unmeasured ones and adds one row per
/// kind, with `wal_bytes_per_call`; returns a line per row.
pub async fn run(
    store: &SeaOrmStateStore,
    floor: &mut Floor,
    shape: Shape,
    calls: usize,
    rows: &mut Vec<Row>,
) -> Result<Vec<String>, Box<dyn Error>> {
    let warmup = 10;
    let mut words = Words::new(7);
    let mut lines = Vec::new();
    let mut add = |row: Row, bytes: i64| {
        let per_call = (bytes as f64 / calls as f64).round();
        lines.push(format!(
            "{:40} {per_call:8.0} bytes of WAL per call",
            row.op
        ));
        rows.push(row.with("wal_bytes_per_call", per_call));
    };

    let mut snapshot = String::new();
    for (op, context_changes) in [
        ("wal: record_step, context unchanged", false),
        ("wal: record_step, context changed", true),
    ] {
        let mut state = shape.new_state(&format!("bench-wal-{context_changes}"), &mut words);
        store.save_workflow_state(&state).await?;
        let context = state.context.clone();
        let mut samples = Samples::with_capacity(calls);
        let mut before = 0;
        for iteration in 0..(warmup + calls) {
            if iteration == warmup {
                before = floor.wal_position().await?;
            }
            shape.advance(&mut state, iteration as u64, &mut words);
            if !context_changes {
                state.context.clone_from(&context);
            }
            let name = step_name(iteration % shape.steps.max(1));
            let step = state
                .steps
                .get(&name)
                .cloned()
                .ok_or("no steps to record")?;
            let started = Instant::now();
            store.record_step(&mut state, step).await?;
            if iteration >= warmup {
                samples.push(started.elapsed());
            }
        }
        let after = floor.wal_position().await?;
        snapshot = serde_json::to_string(&state)?;
        add(
            Row::new("postgres", op, samples.summary(None)),
            after - before,
        );
    }

    let mut samples = Samples::with_capacity(calls);
    for _ in 0..warmup {
        floor.insert_once(&snapshot).await?;
    }
    let before = floor.wal_position().await?;
    for _ in 0..calls {
        samples.push(floor.insert_once(&snapshot).await?);
    }
    let after = floor.wal_position().await?;
    add(
        Row::new(
            "postgres",
            "wal: floor insert of the snapshot",
            samples.summary(None),
        ),
        after - before,
    );
    Ok(lines)
}
