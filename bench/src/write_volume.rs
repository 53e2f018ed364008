//! Postgres only: how the bytes one `record_step` writes grow with the workflow. A
//! chat-style workflow gains one ~1 KiB message in `context.messages` and one step per
//! call; the server's WAL position is read on a separate connection right before and
//! right after each call, and the three tables' total size after each call. Steps 11–30
//! are compared with steps 191–210 (with fewer steps, the last 20 but 10): a store that
//! writes what a step changed writes about as much at step 200 as at step 20; one that
//! rewrites the whole state writes ten times as much.
//!
//! Runs in a schema of its own, dropped afterwards.

use std::error::Error;
use std::time::Instant;

use llm_orchestrator_state::sea_orm::sqlx::{self, Connection, PgConnection};
use llm_orchestrator_state::{StateStore, StateStoreBuilder, StepState, WorkflowState};
use serde_json::{Value, json};

use crate::report::Row;
use crate::stats::{Samples, median};
use crate::workload::{Words, json_len};

/// The store's tables whose size is followed.
const TABLES: [&str; 3] = ["workflow_states", "step_states", "checkpoints"];

/// Steps before the early window (it covers steps `SKIP + 1 ..= SKIP + WINDOW`), and the
/// fewest steps after the late window's last.
const SKIP: usize = 10;
/// The last step of the late window when there are enough steps (the target compares
/// steps 191–210 with 11–30).
pub const LATE_LAST: usize = 210;
/// Steps in each window.
pub const WINDOW: usize = 20;

/// The fewest steps for two windows that do not overlap.
pub const MIN_STEPS: usize = 2 * (SKIP + WINDOW);

/// Settings of the write-volume scenario.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `record_step` calls, one message each (at least [`MIN_STEPS`]).
    pub steps: usize,
    /// Serialized size of each appended message, bytes (approximately).
    pub message_bytes: usize,
    /// Keep the schema instead of dropping it.
    pub keep_data: bool,
}

/// What one call wrote, as the server saw it.
#[derive(Debug, Clone, Copy)]
struct StepMeasure {
    /// WAL bytes between the positions read right before and right after the call.
    wal_bytes: f64,
    /// The three tables' total size (heap, TOAST, indexes) after the call, per table.
    table_bytes: [i64; 3],
    /// How long the call took.
    elapsed: std::time::Duration,
    /// The context's serialized size after the call.
    context_bytes: usize,
}

/// A plain connection that reads the server's WAL position and the tables' sizes.
struct Probe {
    conn: PgConnection,
    schema: String,
}

impl Probe {
    async fn wal_position(&mut self) -> Result<f64, Box<dyn Error>> {
        let position: f64 = sqlx::query_scalar(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8",
        )
        .fetch_one(&mut self.conn)
        .await?;
        Ok(position)
    }

    async fn table_bytes(&mut self) -> Result<[i64; 3], Box<dyn Error>> {
        let size = |table: &str| {
            format!("pg_total_relation_size(format('%I.%I', $1::text, '{table}')::regclass)")
        };
        let (a, b, c): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {}, {}, {}",
            size(TABLES[0]),
            size(TABLES[1]),
            size(TABLES[2])
        )))
        .bind(&self.schema)
        .fetch_one(&mut self.conn)
        .await?;
        Ok([a, b, c])
    }
}

/// Runs the scenario on a store built by `builder` in a fresh schema of the database at
/// `url`; adds one row per window and returns the lines to print.
pub async fn run(
    builder: StateStoreBuilder,
    url: &str,
    settings: Settings,
    rows: &mut Vec<Row>,
) -> Result<Vec<String>, Box<dyn Error>> {
    if settings.steps < MIN_STEPS {
        return Err(format!(
            "the write-volume scenario needs at least {MIN_STEPS} steps (two windows of \
             {WINDOW} steps, {SKIP} steps from either end), got {}",
            settings.steps
        )
        .into());
    }
    let schema = format!("bench_volume_{}", uuid::Uuid::now_v7().simple());
    let mut probe = Probe {
        conn: PgConnection::connect(url).await?,
        schema: schema.clone(),
    };
    let measured: Result<_, Box<dyn Error>> = async {
        let store = builder.postgres_schema(&schema).connect().await?;
        let retention = store.options().checkpoint_retention;
        let measured = measure(&store, &mut probe, settings).await;
        let closed = store.close().await;
        let measured = measured?;
        closed?;
        Ok((retention, measured))
    }
    .await;
    // Clean up whatever happened above, then report the first failure.
    let dropped = if settings.keep_data {
        eprintln!("kept Postgres schema {schema}");
        Ok(())
    } else {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut probe.conn)
        .await
        .map(drop)
    };
    let _ = probe.conn.close().await;
    let (retention, (before, steps)) = measured?;
    dropped?;

    let last = LATE_LAST.min(settings.steps - SKIP);
    let windows = [(SKIP + 1, SKIP + WINDOW), (last - WINDOW + 1, last)];
    let mut lines = vec![format!(
        "chat-style workflow, one ~{} B message and one step per record_step, {} steps, \
         checkpoint retention {}",
        settings.message_bytes,
        settings.steps,
        retention.map_or("none".to_owned(), |keep| keep.to_string()),
    )];
    let mut medians = Vec::new();
    for (first, last) in windows {
        let window = &steps[first - 1..last];
        let wal: Vec<f64> = window.iter().map(|step| step.wal_bytes).collect();
        let wal_median = median(&wal);
        let wal_min = wal.iter().copied().fold(f64::INFINITY, f64::min);
        let wal_mean = wal.iter().sum::<f64>() / wal.len() as f64;
        // Sizes move by whole pages: growth over the window, per step.
        let start = if first >= 2 {
            steps[first - 2].table_bytes
        } else {
            before
        };
        let end = window[window.len() - 1].table_bytes;
        let growth: Vec<f64> = (0..TABLES.len())
            .map(|table| (end[table] - start[table]) as f64 / window.len() as f64)
            .collect();
        let total_growth: f64 = growth.iter().sum();
        let mut samples = Samples::with_capacity(window.len());
        for step in window {
            samples.push(step.elapsed);
        }
        let summary = samples.summary(None);
        let context_bytes = window[window.len() / 2].context_bytes;
        medians.push(wal_median);
        lines.push(format!(
            "steps {first:>3}–{last:<3} (context ~{:>4} KiB): WAL {wal_median:>8.0} B/step median \
             (min {wal_min:.0}, mean {wal_mean:.0}); tables +{total_growth:.0} B/step \
             (workflow_states {:.0}, step_states {:.0}, checkpoints {:.0}); record_step p50 \
             {:.0} µs",
            context_bytes / 1024,
            growth[0],
            growth[1],
            growth[2],
            summary.p50_us,
        ));
        let mut row = Row::new(
            "postgres",
            format!("write volume: steps {first}–{last}"),
            summary,
        )
        .with("first_step", first)
        .with("last_step", last)
        .with("context_bytes", context_bytes)
        .with("message_bytes", settings.message_bytes)
        .with("wal_bytes_per_step_median", wal_median.round())
        .with("wal_bytes_per_step_min", wal_min.round())
        .with("wal_bytes_per_step_mean", wal_mean.round())
        .with("table_bytes_per_step", total_growth.round());
        for (table, growth) in TABLES.iter().zip(&growth) {
            row = row.with(&format!("{table}_bytes_per_step"), growth.round());
        }
        rows.push(row);
    }
    let ratio = medians[1] / medians[0];
    if let Some(late) = rows.last_mut() {
        late.extra.insert(
            "wal_growth_ratio".into(),
            json!((ratio * 100.0).round() / 100.0),
        );
    }
    let target = if last < LATE_LAST {
        format!(
            "the ≤ 2× target is about steps {}–{LATE_LAST}",
            LATE_LAST - WINDOW + 1
        )
    } else if ratio <= 2.0 {
        "target ≤ 2×: met".to_owned()
    } else {
        "target ≤ 2×: not met".to_owned()
    };
    lines.push(format!(
        "WAL per step, steps {}–{last} over steps {}–{} (medians): {ratio:.2}× ({target})",
        last - WINDOW + 1,
        SKIP + 1,
        SKIP + WINDOW,
    ));
    lines.push(
        "WAL positions are the whole server's (no private cluster here): other sessions' \
         writes (autovacuum, other clients) and full-page images after a server checkpoint \
         land in some steps' diffs, hence medians of per-step diffs, not means"
            .into(),
    );
    Ok(lines)
}

/// The calls themselves: the table sizes before the first, then one measure per call.
async fn measure(
    store: &impl StateStore,
    probe: &mut Probe,
    settings: Settings,
) -> Result<([i64; 3], Vec<StepMeasure>), Box<dyn Error>> {
    let mut words = Words::new(11);
    let mut state = WorkflowState::new(
        "bench-write-volume",
        "bench chat",
        Some("bench-user".into()),
        json!({"model": "gpt-bench", "system": words.text(256), "messages": []}),
    );
    state.mark_running();
    store.save_workflow_state(&state).await?;
    let before = probe.table_bytes().await?;
    let mut steps = Vec::with_capacity(settings.steps);
    for index in 1..=settings.steps {
        let role = if index % 2 == 1 { "user" } else { "assistant" };
        let mut message = json!({"role": role, "turn": index, "content": ""});
        let overhead = json_len(&message);
        message["content"] =
            Value::String(words.text(settings.message_bytes.saturating_sub(overhead)));
        state.context["messages"]
            .as_array_mut()
            .ok_or("context.messages is not an array")?
            .push(message);
        let mut step = StepState::new(format!("turn-{index:03}"));
        step.mark_running();
        step.mark_completed(json!({"role": role, "tokens": 250 + index % 50}));

        let wal_before = probe.wal_position().await?;
        let started = Instant::now();
        store.record_step(&mut state, step).await?;
        let elapsed = started.elapsed();
        let wal_after = probe.wal_position().await?;
        steps.push(StepMeasure {
            wal_bytes: wal_after - wal_before,
            table_bytes: probe.table_bytes().await?,
            elapsed,
            context_bytes: json_len(&state.context),
        });
    }
    Ok((before, steps))
}
