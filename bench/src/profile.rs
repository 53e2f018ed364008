//! Where a call's time goes, on Postgres: the client's CPU, the server's CPU, and the wait
//! for the WAL flush at commit, for the store's write and read calls and for the floor
//! calls beside them.
//!
//! Each operation runs `calls` times back to back on a store handle (and a plain sqlx
//! connection for the floor calls) whose sessions have `synchronous_commit` on, then the
//! same on handles with it off. The difference of the two means is what the commit waits
//! for its WAL flush (fsync); client CPU is this process's user + system time (all
//! threads), server CPU the same for every `postgres` process on the machine (the backend
//! serving the call, the WAL writer, anything else the server does meanwhile), both from
//! `/proc` around the whole phase, divided by the calls. What is left of the mean with
//! `synchronous_commit` off is neither side computing: the trip over loopback, waking the
//! threads and processes that take part.

use std::error::Error;
use std::time::{Duration, Instant};

use llm_orchestrator_state::sea_orm::sqlx::{self, Connection, PgConnection};
use llm_orchestrator_state::{Checkpoint, SeaOrmStateStore, StateStore, StateStoreBuilder};

use crate::concurrent::process_cpu;
use crate::report::Row;
use crate::stats::Samples;
use crate::workload::{Shape, Words, step_name};

/// What to measure.
pub struct Settings {
    /// Measured calls per operation and setting.
    pub calls: usize,
    /// Unmeasured calls before them.
    pub warmup: usize,
    /// The workload's sizes.
    pub shape: Shape,
}

/// The operations profiled, store calls first, then their floors.
const OPS: [&str; 7] = [
    "record_step",
    "create_checkpoint",
    "get_latest_checkpoint",
    "floor: durable insert",
    "floor: two snapshots in one commit",
    "floor: SELECT 1",
    "floor: read snapshot by id",
];

/// CPU time of every process named `postgres` on this machine, from `/proc`.
pub fn server_cpu() -> Option<Duration> {
    let mut ticks = 0_u64;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // gone meanwhile
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
        seen = true;
    }
    seen.then(|| Duration::from_millis(ticks * 10))
}

/// CPU time the whole machine spent busy (not idle or waiting for I/O), over all cores,
/// from `/proc/stat`.
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&index| fields.get(index))
        .sum();
    Some(Duration::from_millis(busy * 10))
}

/// CPU spent between two readings, in µs per call, when both readings exist.
pub fn per_call(before: Option<Duration>, after: Option<Duration>, calls: f64) -> Option<f64> {
    before.zip(after).map(|(before, after)| {
        (after.saturating_sub(before).as_secs_f64() * 1e6 / calls.max(1.0)).round()
    })
}

/// `url` with `-c name=value` added to the session options it asks for.
fn with_setting(url: &str, name: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20{name}%3D{value}")
}

/// One side of the profile: a store handle and a plain connection, both with
/// `synchronous_commit` set as asked, and the workload's state.
struct Side {
    store: SeaOrmStateStore,
    conn: PgConnection,
    table: String,
    state: llm_orchestrator_state::WorkflowState,
    words: Words,
    shape: Shape,
    iteration: u64,
    snapshot: String,
    read_id: uuid::Uuid,
}

impl Side {
    async fn open(
        builder: StateStoreBuilder,
        url: &str,
        schema: &str,
        shape: Shape,
        synchronous_commit: &str,
    ) -> Result<Self, Box<dyn Error>> {
        let store = builder.postgres_schema(schema).connect().await?;
        let mut conn = PgConnection::connect(url).await?;
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        if options.get_socket().is_none() {
            llm_orchestrator_state::disable_nagle(options.get_host(), options.get_port()).await?;
        }
        let table = format!("\"{schema}\".bench_profile");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {table} (id uuid PRIMARY KEY, snapshot jsonb NOT NULL)"
        )))
        .execute(&mut conn)
        .await?;
        let mut words = Words::new(11);
        let workflow_id = format!(
            "bench-profile-{synchronous_commit}-{}",
            uuid::Uuid::now_v7()
        );
        let state = shape.new_state(&workflow_id, &mut words);
        store.save_workflow_state(&state).await?;
        let snapshot = serde_json::to_string(&Checkpoint::of(&state, "step-00")?.snapshot)?;
        let read_id = uuid::Uuid::now_v7();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (id, snapshot) VALUES ($1::uuid, $2::jsonb)"
        )))
        .bind(read_id.to_string())
        .bind(&snapshot)
        .execute(&mut conn)
        .await?;
        Ok(Self {
            store,
            conn,
            table,
            state,
            words,
            shape,
            iteration: 0,
            snapshot,
            read_id,
        })
    }

    /// One call of `op`; its checks are left to the single-task phases.
    async fn call(&mut self, op: &str) -> Result<(), Box<dyn Error>> {
        match op {
            "record_step" => {
                self.iteration += 1;
                self.shape
                    .advance(&mut self.state, self.iteration, &mut self.words);
                let name = step_name((self.iteration % self.shape.steps.max(1) as u64) as usize);
                let step = self.state.steps.get(&name).cloned().ok_or("no such step")?;
                self.store.record_step(&mut self.state, step).await?;
            }
            "create_checkpoint" => {
                let checkpoint = Checkpoint::of(&self.state, "step-00")?;
                self.store.create_checkpoint(&checkpoint).await?;
            }
            "get_latest_checkpoint" => {
                self.store
                    .get_latest_checkpoint(&self.state.id)
                    .await?
                    .ok_or("no checkpoint")?;
            }
            "floor: durable insert" => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {} (id, snapshot) VALUES ($1::uuid, $2::jsonb)",
                    self.table
                )))
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&self.snapshot)
                .execute(&mut self.conn)
                .await?;
            }
            "floor: two snapshots in one commit" => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {} (id, snapshot) VALUES ($1::uuid, $2::jsonb), \
                     ($3::uuid, $4::jsonb)",
                    self.table
                )))
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&self.snapshot)
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&self.snapshot)
                .execute(&mut self.conn)
                .await?;
            }
            "floor: SELECT 1" => {
                let _: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(&mut self.conn)
                    .await?;
            }
            "floor: read snapshot by id" => {
                let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT snapshot::text FROM {} WHERE id = $1::uuid",
                    self.table
                )))
                .bind(self.read_id.to_string())
                .fetch_one(&mut self.conn)
                .await?;
                let _: serde_json::Value = serde_json::from_str(&text)?;
            }
            other => return Err(format!("unknown operation {other}").into()),
        }
        Ok(())
    }

    /// `calls` timed calls of `op` after `warmup` untimed ones: the latencies and the
    /// client and server CPU per call.
    async fn measure(
        &mut self,
        op: &str,
        warmup: usize,
        calls: usize,
    ) -> Result<(Samples, Option<f64>, Option<f64>), Box<dyn Error>> {
        for _ in 0..warmup {
            self.call(op).await?;
        }
        let mut samples = Samples::with_capacity(calls);
        let (client_before, server_before) = (process_cpu(), server_cpu());
        for _ in 0..calls {
            let started = Instant::now();
            self.call(op).await?;
            samples.push(started.elapsed());
        }
        let per_call = |before: Option<Duration>, after: Option<Duration>| {
            before.zip(after).map(|(before, after)| {
                after.saturating_sub(before).as_secs_f64() * 1e6 / calls as f64
            })
        };
        let client = per_call(client_before, process_cpu());
        let server = per_call(server_before, server_cpu());
        Ok((samples, client, server))
    }
}

/// Runs the profile in `schema` (which the store has already migrated) and returns the
/// lines that say where each operation's time goes.
pub async fn run(
    builder: impl Fn(&str) -> Result<StateStoreBuilder, Box<dyn Error>>,
    url: &str,
    schema: &str,
    settings: Settings,
    rows: &mut Vec<Row>,
) -> Result<Vec<String>, Box<dyn Error>> {
    let durable_url = with_setting(url, "synchronous_commit", "on");
    let no_wait_url = with_setting(url, "synchronous_commit", "off");
    let mut durable = Side::open(
        builder(&durable_url)?,
        &durable_url,
        schema,
        settings.shape,
        "on",
    )
    .await?;
    let mut no_wait = Side::open(
        builder(&no_wait_url)?,
        &no_wait_url,
        schema,
        settings.shape,
        "off",
    )
    .await?;
    let mut lines = vec![format!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "mean µs per call", "durable", "no wait", "flush", "client", "server", "other"
    )];
    let mut result = Ok(());
    for op in OPS {
        let measured = async {
            let (on, client_on, server_on) =
                durable.measure(op, settings.warmup, settings.calls).await?;
            let (off, client_off, server_off) =
                no_wait.measure(op, settings.warmup, settings.calls).await?;
            Ok::<_, Box<dyn Error>>((on, client_on, server_on, off, client_off, server_off))
        }
        .await;
        let (on, client_on, server_on, off, client_off, server_off) = match measured {
            Ok(measured) => measured,
            Err(err) => {
                result = Err(err);
                break;
            }
        };
        let (on, off) = (on.summary(None), off.summary(None));
        let flush = on.mean_us - off.mean_us;
        // CPU from both settings: the same work, twice the samples of a 10 ms clock.
        let average = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            (a, b) => a.or(b),
        };
        let client = average(client_on, client_off);
        let server = average(server_on, server_off);
        let other = match (client, server) {
            (Some(client), Some(server)) => Some(off.mean_us - client - server),
            _ => None,
        };
        let shown = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.0}"));
        lines.push(format!(
            "{:<36} {:>9.0} {:>9.0} {:>9.0} {:>9} {:>9} {:>9}",
            op,
            on.mean_us,
            off.mean_us,
            flush,
            shown(client),
            shown(server),
            shown(other)
        ));
        let number =
            |value: Option<f64>| value.map_or(serde_json::Value::Null, |v| v.round().into());
        rows.push(
            Row::new("postgres", format!("profile: {op}"), on)
                .with("synchronous_commit", "on")
                .with("mean_us_without_flush_wait", off.mean_us.round())
                .with("p50_us_without_flush_wait", off.p50_us.round())
                .with("flush_wait_us", flush.round())
                .with("client_cpu_us_per_call", number(client))
                .with("server_cpu_us_per_call", number(server))
                .with("other_us_per_call", number(other)),
        );
    }
    let closed = (durable.store.close().await, no_wait.store.close().await);
    result?;
    closed.0?;
    closed.1?;
    Ok(lines)
}
