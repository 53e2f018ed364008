//! Benchmark of llm-orchestrator-state: every store operation on SQLite `:memory:`, a
//! SQLite file and Postgres, next to the database's own floor measured in the same run.
//!
//! ```text
//! cargo run --release -p bench -- --backend all --pgbench
//! ```
//!
//! Prints a table, the targets with met / not met, and one JSON line per (backend,
//! operation) so that runs can be compared (`--json` prints only those). With `--peer`,
//! LangGraph's checkpoint savers run on the same data in the same run. `--scenarios`
//! picks some of the scenarios instead of all of them.

mod concurrent;
mod fan_out;
mod floor;
mod listing;
mod peer;
mod profile;
mod report;
mod single;
mod statements;
mod stats;
mod targets;
mod wal;
mod workload;
mod write_volume;

use std::error::Error;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use llm_orchestrator_state::{SeaOrmStateStore, StateStoreBuilder};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::concurrent::Workload;
use crate::report::{FloorRatio, Row};
use crate::workload::Shape;

/// Which databases to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    /// SQLite in memory.
    SqliteMemory,
    /// A SQLite file in a fresh temp folder.
    SqliteFile,
    /// Postgres at `--database-url`, in a fresh schema dropped at the end.
    Postgres,
    /// All three, in that order.
    All,
}

/// What the bench can run; every one by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Every scenario below.
    All,
    /// Each operation, one call at a time, paired with the floor (and `--peer`).
    Single,
    /// Postgres: WAL bytes per `record_step` on a workflow of constant size.
    Wal,
    /// Postgres: WAL and table bytes per `record_step` as a chat-style context grows.
    WriteVolume,
    /// Parallel `record_step` calls on different steps of one workflow, and how many of
    /// their steps the stored workflow keeps.
    FanOut,
    /// `--tasks` tasks, each on its own workflow, save + checkpoint in a loop.
    Concurrent,
    /// `list_active_workflows` at `--list-sizes`.
    Listing,
    /// Postgres: `--tasks` workflows recording steps at once (next to `--pgbench`).
    ConcurrentRecordStep,
    /// Postgres: where each call's time goes (client CPU, server CPU, the WAL flush wait),
    /// for the store's calls and the floor's.
    Profile,
}

/// Latency and throughput of every store operation, against the database's own floor.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Which database(s) to measure.
    #[arg(long, value_enum, default_value = "all")]
    backend: BackendArg,
    /// Which scenarios to run, comma-separated (`--pgbench` and `--peer` add to them).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    scenarios: Vec<Scenario>,
    /// Postgres URL (a fresh schema is created in it and dropped at the end).
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
    /// Measured calls per single-task operation.
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
    /// Unmeasured calls per operation before measuring.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Serialized size of the workflow context, bytes.
    #[arg(long, default_value_t = 4096)]
    context_bytes: usize,
    /// Steps per workflow.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Serialized size of each step's outputs, bytes.
    #[arg(long, default_value_t = 200)]
    output_bytes: usize,
    /// Concurrent tasks in the concurrent phase, each on its own workflow.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    /// Measured seconds of the concurrent phase (after one second of warm-up).
    #[arg(long, default_value_t = 5)]
    duration_secs: u64,
    /// Active workflows in the table when `list_active_workflows` is timed.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    list_sizes: Vec<usize>,
    /// Context bytes of the listed workflows (default: --context-bytes).
    #[arg(long)]
    list_context_bytes: Option<usize>,
    /// Steps of the listed workflows (default: --steps).
    #[arg(long)]
    list_steps: Option<usize>,
    /// Also run pgbench (`--pgbench-clients`, then 1) doing the durable insert, for the
    /// concurrent floor.
    #[arg(long)]
    pgbench: bool,
    /// Clients of the many-client pgbench run.
    #[arg(long, default_value_t = 64)]
    pgbench_clients: usize,
    /// Seconds of the many-client pgbench run.
    #[arg(long, default_value_t = 10)]
    pgbench_secs: u64,
    /// `record_step` calls of the write-volume scenario, one message each (at least 60:
    /// it compares steps 11–30 with the 20 steps that end 10 before the last).
    #[arg(long, default_value_t = 220)]
    volume_steps: usize,
    /// Serialized size of each message the write-volume scenario appends, bytes.
    #[arg(long, default_value_t = 1024)]
    volume_message_bytes: usize,
    /// Parallel `record_step` calls per fan-out round.
    #[arg(long, default_value_t = 16)]
    fan_out: usize,
    /// Fan-out rounds, each on a fresh workflow.
    #[arg(long, default_value_t = 10)]
    fan_out_rounds: usize,
    /// Checkpoints kept per workflow by the store ("none" keeps all; default: the store's).
    #[arg(long)]
    checkpoint_retention: Option<String>,
    /// Postgres pool size (default: the store's).
    #[arg(long)]
    max_connections: Option<u32>,
    /// Open the SQLite file as the store does but with `synchronous=NORMAL` instead of
    /// `FULL` (through `SeaOrmStateStore::from_connection`), to measure what it buys.
    #[arg(long)]
    sqlite_synchronous_normal: bool,
    /// Keep the Postgres schema and the SQLite file (for EXPLAIN and the like).
    #[arg(long)]
    keep_data: bool,
    /// Print only the JSON lines.
    #[arg(long)]
    json: bool,
    /// Print the statements each call sent.
    #[arg(long)]
    show_statements: bool,
    /// Also measure LangGraph's checkpoint savers (SqliteSaver, PostgresSaver) on the same
    /// data, right after the store's single-task phases (see bench/peer/setup.sh).
    #[arg(long)]
    peer: bool,
    /// The Python interpreter that has LangGraph's savers installed.
    #[arg(
        long,
        env = "BENCH_PEER_PYTHON",
        default_value = "target/langgraph-venv/bin/python"
    )]
    peer_python: String,
}

impl Args {
    /// Whether `scenario` was asked for.
    fn runs(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&Scenario::All) || self.scenarios.contains(&scenario)
    }

    fn shape(&self) -> Shape {
        Shape {
            context_bytes: self.context_bytes,
            steps: self.steps,
            output_bytes: self.output_bytes,
        }
    }

    fn list_shape(&self) -> Shape {
        Shape {
            context_bytes: self.list_context_bytes.unwrap_or(self.context_bytes),
            steps: self.list_steps.unwrap_or(self.steps),
            output_bytes: self.output_bytes,
        }
    }

    fn builder(&self, target: &str) -> Result<StateStoreBuilder, Box<dyn Error>> {
        let mut builder = StateStoreBuilder::new(target);
        if let Some(retention) = &self.checkpoint_retention {
            builder = builder.checkpoint_retention(match retention.as_str() {
                "none" => None,
                keep => Some(keep.parse()?),
            });
        }
        if let Some(max) = self.max_connections {
            builder = builder.max_connections(max);
        }
        Ok(builder)
    }
}

fn say(args: &Args, text: &str) {
    if !args.json {
        eprintln!("{text}");
    }
}

/// Where a backend's store lives: enough to open another handle on the same database.
#[derive(Debug, Clone, Copy)]
enum Place<'a> {
    /// SQLite in memory: another handle would open another, empty database.
    Memory,
    /// A SQLite file at `path`, in `folder`.
    File {
        folder: &'a std::path::Path,
        path: &'a std::path::Path,
    },
    /// Postgres at `--database-url`, in `schema`.
    Postgres { schema: &'a str },
}

impl Place<'_> {
    /// The backend's name in rows and output.
    fn backend(&self) -> &'static str {
        match self {
            Place::Memory => "sqlite-memory",
            Place::File { .. } => "sqlite-file",
            Place::Postgres { .. } => "postgres",
        }
    }

    /// A store handle of its own (its own pool) on the same database, opened as the
    /// bench's main one was; `None` in memory.
    async fn another_handle(
        &self,
        args: &Args,
    ) -> Result<Option<SeaOrmStateStore>, Box<dyn Error>> {
        Ok(Some(match self {
            Place::Memory => return Ok(None),
            Place::File { path, .. } if args.sqlite_synchronous_normal => {
                sqlite_normal_store(args, path).await?
            }
            Place::File { path, .. } => args.builder(&path.to_string_lossy())?.connect().await?,
            Place::Postgres { schema } => {
                args.builder(&args.database_url)?
                    .postgres_schema(*schema)
                    .connect()
                    .await?
            }
        }))
    }
}

/// The scenarios asked for, on a connected store.
async fn phases(
    args: &Args,
    store: &SeaOrmStateStore,
    place: Place<'_>,
    mut floor: Option<&mut floor::Floor>,
    rows: &mut Vec<Row>,
) -> Result<(), Box<dyn Error>> {
    let backend = place.backend();
    let sqlite_folder = match place {
        Place::File { folder, .. } => Some(folder),
        _ => None,
    };
    let mut snapshot = None;
    if args.runs(Scenario::Single) {
        snapshot = Some(
            single_phases(
                args,
                store,
                backend,
                floor.as_deref_mut(),
                sqlite_folder,
                rows,
            )
            .await?,
        );
    }
    if let (Some(floor), true) = (floor.as_deref_mut(), args.runs(Scenario::Wal)) {
        say(args, &format!("[{backend}] WAL per record_step"));
        let calls = args.iterations.min(500);
        for line in wal::run(store, floor, args.shape(), calls, rows).await? {
            say(args, &format!("[{backend}]   {line}"));
        }
    }
    if let (Place::Postgres { .. }, true) = (place, args.runs(Scenario::WriteVolume)) {
        say(
            args,
            &format!("[{backend}] write volume per step as the context grows"),
        );
        let settings = write_volume::Settings {
            steps: args.volume_steps,
            message_bytes: args.volume_message_bytes,
            keep_data: args.keep_data,
        };
        let builder = args.builder(&args.database_url)?;
        for line in write_volume::run(builder, &args.database_url, settings, rows).await? {
            say(args, &format!("[{backend}]   {line}"));
        }
    }
    if args.runs(Scenario::FanOut) {
        say(
            args,
            &format!(
                "[{backend}] fan-out, {} branches of one workflow",
                args.fan_out
            ),
        );
        let mut own = Vec::new();
        let mut opened = Ok(());
        for _ in 0..args.fan_out / 2 {
            match place.another_handle(args).await {
                Ok(Some(handle)) => own.push(handle),
                Ok(None) => break,
                Err(err) => {
                    opened = Err(err);
                    break;
                }
            }
        }
        let settings = fan_out::Settings {
            branches: args.fan_out,
            rounds: args.fan_out_rounds,
            shape: args.shape(),
        };
        let result = match opened {
            Ok(()) => fan_out::run(store, &own, backend, settings, rows).await,
            Err(err) => Err(err),
        };
        // Closed whatever happened above; the first failure is reported.
        for handle in own {
            handle.close().await?;
        }
        say(args, &format!("[{backend}]   {}", result?));
    }
    if args.runs(Scenario::Concurrent) {
        say(
            args,
            &format!("[{backend}] concurrent phase, {} tasks", args.tasks),
        );
        rows.extend(
            concurrent::run(
                store,
                backend,
                concurrent_settings(args, Workload::SaveAndCheckpoint),
            )
            .await,
        );
    }
    if args.runs(Scenario::Listing) {
        say(args, &format!("[{backend}] list_active_workflows"));
        listing::run(store, backend, &args.list_sizes, args.list_shape(), rows).await?;
    }
    if let (Place::Postgres { .. }, true) = (place, args.runs(Scenario::ConcurrentRecordStep)) {
        say(
            args,
            &format!(
                "[{backend}] {} workflows recording steps at once",
                args.tasks
            ),
        );
        rows.extend(
            concurrent::run(
                store,
                backend,
                concurrent_settings(args, Workload::RecordStep),
            )
            .await,
        );
    }
    if let (Place::Postgres { schema }, true) = (place, args.runs(Scenario::Profile)) {
        say(
            args,
            &format!("[{backend}] where the time goes (client CPU, server CPU, WAL flush)"),
        );
        let settings = profile::Settings {
            calls: args.iterations,
            warmup: args.warmup,
            shape: args.shape(),
        };
        let builder = |url: &str| args.builder(url);
        for line in profile::run(builder, &args.database_url, schema, settings, rows).await? {
            say(args, &format!("[{backend}]   {line}"));
        }
    }
    if let (Some(floor), true) = (floor, args.pgbench) {
        let snapshot = match snapshot {
            Some(snapshot) => snapshot,
            None => args.shape().snapshot()?,
        };
        pgbench_phase(args, floor, snapshot, rows).await?;
    }
    if let Some(line) = record_step_against_pgbench(rows, backend) {
        say(args, &format!("[{backend}]   {line}"));
    }
    Ok(())
}

fn concurrent_settings(args: &Args, workload: Workload) -> concurrent::Settings {
    concurrent::Settings {
        tasks: args.tasks,
        duration: Duration::from_secs(args.duration_secs),
        warmup: Duration::from_secs(1),
        shape: args.shape(),
        workload,
    }
}

/// The single-task phases, LangGraph's savers beside them (`--peer`) and the read and
/// SQLite floors; returns the snapshot the checkpoints held.
async fn single_phases(
    args: &Args,
    store: &SeaOrmStateStore,
    backend: &str,
    mut floor: Option<&mut floor::Floor>,
    sqlite_folder: Option<&std::path::Path>,
    rows: &mut Vec<Row>,
) -> Result<String, Box<dyn Error>> {
    say(args, &format!("[{backend}] single-task phases"));
    let settings = single::Settings {
        iterations: args.iterations,
        warmup: args.warmup,
        shape: args.shape(),
    };
    let outcome = single::run(store, backend, settings, floor.as_deref_mut(), rows).await?;
    if args.peer {
        say(
            args,
            &format!("[{backend}] LangGraph's saver on the same data"),
        );
        let settings = peer::Settings {
            python: &args.peer_python,
            backend,
            snapshot: &outcome.snapshot,
            iterations: args.iterations,
            warmup: args.warmup,
            folder: sqlite_folder,
            url: floor.is_some().then_some(args.database_url.as_str()),
        };
        let peer_rows = tokio::task::block_in_place(|| peer::run(&settings))?;
        if let Some(durability) = peer_rows
            .first()
            .and_then(|row| row.extra.get("settings"))
            .and_then(|value| value.as_str())
        {
            say(
                args,
                &format!("[{backend}]   LangGraph ran with {durability}"),
            );
        }
        rows.extend(peer_rows);
    }
    if let Some(floor) = floor {
        say(
            args,
            &format!("[{backend}] floor: read of the snapshot by id"),
        );
        rows.push(floor.read_snapshot(args.iterations, args.warmup).await?);
    }
    if backend != "postgres" {
        say(args, &format!("[{backend}] floor: plain sqlx SQLite calls"));
        rows.extend(
            floor::sqlite(
                sqlite_folder,
                &outcome.snapshot,
                args.iterations,
                args.warmup,
            )
            .await?,
        );
    }
    Ok(outcome.snapshot)
}

/// pgbench doing the durable insert of `snapshot`, `--pgbench-clients` clients then 1.
async fn pgbench_phase(
    args: &Args,
    floor: &mut floor::Floor,
    snapshot: String,
    rows: &mut Vec<Row>,
) -> Result<(), Box<dyn Error>> {
    floor.truncate().await?;
    let url = args.database_url.clone();
    let table = floor.table().to_owned();
    let seconds = args.pgbench_secs;
    let clients = args.pgbench_clients;
    say(
        args,
        &format!("[postgres] pgbench, {clients} clients then 1"),
    );
    // The store's pool is idle now; its connections count against max_connections.
    let machine_before = profile::machine_busy();
    let many = tokio::task::spawn_blocking({
        let (url, table, snapshot) = (url.clone(), table.clone(), snapshot.clone());
        move || floor::pgbench(&url, &table, &snapshot, clients, seconds)
    })
    .await??;
    let transactions = many.summary.count as f64;
    // Not the server's share: pgbench's backends exit with it, and their CPU with them.
    let many = many.with(
        "machine_cpu_us_per_call",
        profile::per_call(machine_before, profile::machine_busy(), transactions),
    );
    rows.push(many);
    floor.truncate().await?;
    let one = tokio::task::spawn_blocking(move || {
        floor::pgbench(&url, &table, &snapshot, 1, seconds.min(5))
    })
    .await??;
    rows.push(one);
    floor.truncate().await?;
    Ok(())
}

/// The concurrent `record_step` phase's throughput next to pgbench's, when both ran.
fn record_step_against_pgbench(rows: &[Row], backend: &str) -> Option<String> {
    let ours = rows
        .iter()
        .find(|row| row.backend == backend && row.op == concurrent::RECORD_STEP_OP)?;
    let tasks = ours
        .extra
        .get("tasks")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let head = format!(
        "{tasks} workflows recording steps: {:.0} tx/s, {} errors {:?}",
        ours.summary.ops_per_s,
        ours.errors.total(),
        ours.errors.0
    );
    let cpu = |row: &Row, key: &str| {
        row.extra
            .get(key)
            .and_then(|v| v.as_f64())
            .map_or("-".to_owned(), |v| format!("{v:.0}"))
    };
    Some(match floor::pgbench_many(rows, backend) {
        Some(theirs) => format!(
            "{head}; pgbench's {} clients, durable insert of the snapshot: {:.0} tx/s ({:.0}%). \
             Machine CPU per call (all processes): {} µs (this process {}, the server {}) \
             against pgbench's {} µs",
            theirs
                .extra
                .get("clients")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            theirs.summary.ops_per_s,
            ours.summary.ops_per_s / theirs.summary.ops_per_s * 100.0,
            cpu(ours, "machine_cpu_us_per_call"),
            cpu(ours, "client_cpu_us_per_call"),
            cpu(ours, "server_cpu_us_per_call"),
            cpu(theirs, "machine_cpu_us_per_call"),
        ),
        None => format!("{head}; pgbench not run (--pgbench)"),
    })
}

async fn run_backend(
    args: &Args,
    backend: BackendArg,
    rows: &mut Vec<Row>,
) -> Result<(), Box<dyn Error>> {
    match backend {
        BackendArg::SqliteMemory => {
            let store = args.builder(":memory:")?.connect().await?;
            let result = phases(args, &store, Place::Memory, None, rows).await;
            store.close().await?;
            result
        }
        BackendArg::SqliteFile => {
            let folder = std::env::temp_dir().join(format!(
                "bench-sqlite-{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7()
            ));
            std::fs::create_dir_all(&folder)?;
            let path = folder.join("bench.db");
            let result = async {
                let store = if args.sqlite_synchronous_normal {
                    sqlite_normal_store(args, &path).await?
                } else {
                    args.builder(&path.to_string_lossy())?.connect().await?
                };
                let place = Place::File {
                    folder: &folder,
                    path: &path,
                };
                let result = phases(args, &store, place, None, rows).await;
                store.close().await?;
                result
            }
            .await;
            if args.keep_data {
                eprintln!("kept SQLite file {}", path.display());
            } else {
                let _ = std::fs::remove_dir_all(&folder);
            }
            result
        }
        BackendArg::Postgres => {
            let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
            let store = args
                .builder(&args.database_url)?
                .postgres_schema(&schema)
                .connect()
                .await?;
            let mut floor = floor::Floor::connect(&args.database_url, &schema).await?;
            let place = Place::Postgres { schema: &schema };
            let result = phases(args, &store, place, Some(&mut floor), rows).await;
            // Clean up whatever happened above, then report the first failure.
            let closed = store.close().await;
            if args.keep_data {
                eprintln!("kept Postgres schema {schema}");
            } else {
                floor.drop_schema(&schema).await?;
            }
            result?;
            Ok(closed?)
        }
        BackendArg::All => unreachable!("expanded by main"),
    }
}

/// A store on the SQLite file at `path` with the store's own connection settings (WAL,
/// 5 s busy timeout, foreign keys, one connection kept open) except `synchronous=NORMAL`.
async fn sqlite_normal_store(
    args: &Args,
    path: &std::path::Path,
) -> Result<SeaOrmStateStore, Box<dyn Error>> {
    use llm_orchestrator_state::StoreOptions;
    use llm_orchestrator_state::sea_orm::SqlxSqliteConnector;
    use llm_orchestrator_state::sea_orm::sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .connect_with(connect)
        .await?;
    let mut options = StoreOptions::default();
    if let Some(retention) = &args.checkpoint_retention {
        options.checkpoint_retention = match retention.as_str() {
            "none" => None,
            keep => Some(keep.parse()?),
        };
    }
    let db = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
    Ok(SeaOrmStateStore::from_connection(db, options).await?)
}

/// Each Postgres (and SQLite file) row's ratio to its floor from the same run.
fn add_floor_ratios(rows: &mut [Row]) {
    for (backend, write_floor) in [
        ("postgres", "floor: durable insert"),
        ("sqlite-file", "floor: insert, synchronous=FULL"),
        ("sqlite-memory", "floor: insert"),
    ] {
        let value_of = |rows: &[Row], op: &str, throughput: bool| {
            rows.iter()
                .find(|row| row.backend == backend && row.op == op)
                .map(|row| {
                    if throughput {
                        row.summary.ops_per_s
                    } else {
                        row.summary.p50_us
                    }
                })
        };
        let select_one = value_of(rows, "floor: SELECT 1", false);
        let insert = value_of(rows, write_floor, false);
        let pgbench = floor::pgbench_many(rows, backend).map(|row| row.op.clone());
        let pgbench_op = pgbench.as_deref().unwrap_or("floor: pgbench");
        let pgbench = pgbench.as_deref().and_then(|op| value_of(rows, op, true));
        for row in rows.iter_mut().filter(|row| row.backend == backend) {
            let (floor_op, floor_value, ours) = match row.op.as_str() {
                "save_workflow_state" | "create_checkpoint" => {
                    (write_floor, insert, row.summary.p50_us)
                }
                "load_workflow_state"
                | "get_latest_checkpoint"
                | "restore_from_checkpoint"
                | "load_workflow_state_by_workflow_id" => {
                    ("floor: SELECT 1", select_one, row.summary.p50_us)
                }
                "concurrent: all write calls" | concurrent::RECORD_STEP_OP => {
                    (pgbench_op, pgbench, row.summary.ops_per_s)
                }
                _ => continue,
            };
            if row.floor.is_some() {
                continue; // paired with its own floor samples already
            }
            if let Some(floor_value) = floor_value.filter(|v| *v > 0.0) {
                row.floor = Some(FloorRatio {
                    floor_op: floor_op.into(),
                    floor_value,
                    ratio: ours / floor_value,
                });
            }
        }
    }
}

/// The commit measured, and whether the store's crates differ from it.
fn measured_commit() -> serde_json::Value {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "store",
        "entity",
        "migration",
    ])
    .map(|changes| !changes.is_empty());
    json!({"commit": git(&["rev-parse", "--short", "HEAD"]), "store_dirty": dirty})
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,sqlx::query=error"));
    tracing_subscriber::registry()
        .with(statements::layer())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .init();

    let backends = match args.backend {
        BackendArg::All => vec![
            BackendArg::SqliteMemory,
            BackendArg::SqliteFile,
            BackendArg::Postgres,
        ],
        one => vec![one],
    };
    let load_before = load_average();
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    let mut failed = false;
    for backend in backends {
        if let Err(err) = run_backend(&args, backend, &mut rows).await {
            eprintln!("error: {backend:?}: {err}");
            failed = true;
        }
    }
    add_floor_ratios(&mut rows);
    let targets = targets::evaluate(&rows);

    let run = json!({
        "kind": "run",
        "started_utc": chrono::Utc::now().to_rfc3339(),
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "iterations": args.iterations,
        "warmup": args.warmup,
        "shape": {"context_bytes": args.context_bytes, "steps": args.steps,
                  "output_bytes": args.output_bytes},
        "tasks": args.tasks,
        "duration_secs": args.duration_secs,
        "list_sizes": args.list_sizes,
        "scenarios": args
            .scenarios
            .iter()
            .filter_map(|s| s.to_possible_value().map(|v| v.get_name().to_owned()))
            .collect::<Vec<_>>(),
        "checkpoint_retention": args.checkpoint_retention,
        "source": measured_commit(),
    });
    if !args.json {
        println!();
        report::print_table(&rows);
        if args.show_statements {
            report::print_statements(&rows);
        }
        targets::print(&targets);
        println!(
            "\nload average before {} / after {}, {:.0} s\n",
            run["load_average_before"].as_str().unwrap_or(""),
            run["load_average_after"].as_str().unwrap_or(""),
            started.elapsed().as_secs_f64()
        );
    }
    println!("{run}");
    for row in &rows {
        println!("{}", row.to_json());
    }
    for target in &targets {
        println!("{}", target.to_json());
    }
    if failed {
        return Err("a backend failed; see above".into());
    }
    Ok(())
}
