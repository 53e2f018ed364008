//! Times the store's reads against the driver's own floor, on SQLite in memory, a SQLite
//! file and Postgres: p50 and p99 of each read, next to a raw sqlx `SELECT 1` and a raw
//! sqlx fetch of the same checkpoint row on the same pool.
//!
//! ```text
//! cargo run --release -p llm-orchestrator-state --example read_probe -- \
//!     [--backend memory|file|postgres|all] [--iterations 20000] [--current-thread] [--tracing]
//! ```
//!
//! Postgres is the database at `PROBE_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/llm_state_test`), in a schema of its own that is
//! dropped at the end. `--tracing` installs a subscriber that keeps INFO spans (written
//! nowhere), as an application that logs would; without it no subscriber is installed.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use llm_orchestrator_state::sea_orm::sqlx;
use llm_orchestrator_state::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use llm_orchestrator_state::{
    SeaOrmStateStore, StateStore, StateStoreBuilder, StepState, WorkflowState,
};
use serde_json::json;
use uuid::Uuid;

/// What the command line asked for.
struct Args {
    backends: Vec<&'static str>,
    iterations: usize,
    current_thread: bool,
    tracing: bool,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        backends: vec!["memory", "file", "postgres"],
        iterations: 20_000,
        current_thread: false,
        tracing: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--backend" => {
                args.backends = match given.next().as_deref() {
                    Some("memory") => vec!["memory"],
                    Some("file") => vec!["file"],
                    Some("postgres") => vec!["postgres"],
                    Some("all") => vec!["memory", "file", "postgres"],
                    other => return Err(format!("unknown backend {other:?}").into()),
                }
            }
            "--iterations" => {
                args.iterations = given.next().ok_or("--iterations needs a count")?.parse()?;
            }
            "--current-thread" => args.current_thread = true,
            "--tracing" => args.tracing = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(args)
}

/// About `len` bytes of words that do not compress to nothing.
fn text(seed: &mut u64, len: usize) -> String {
    let mut out = String::with_capacity(len + 12);
    while out.len() < len {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let word = 2 + (*seed % 9) as usize;
        out.extend((0..word).map(|at| (b'a' + ((*seed >> (at * 5)) % 26) as u8) as char));
        out.push(' ');
    }
    out.truncate(len);
    out
}

/// One read to time, as a call that can be made again and again.
type Call<'a> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Outcome> + 'a>> + 'a>;
type Outcome = Result<(), Box<dyn Error>>;

/// `read` as a [`Call`] whose answer is dropped.
fn call<'a, F, Fut, T, E>(mut read: F) -> Call<'a>
where
    F: FnMut() -> Fut + 'a,
    Fut: Future<Output = Result<T, E>> + 'a,
    E: Error + 'static,
{
    Box::new(move || {
        let pending = read();
        Box::pin(async move {
            pending.await?;
            Ok(())
        })
    })
}

/// Calls made one after the other per read in a round: the reads take turns, round after
/// round, so that a burst of load on a shared machine falls on all of them alike.
const ROUND: usize = 100;

/// Times every read `iterations` times, interleaved (see [`ROUND`]), after a tenth as
/// many unmeasured calls; returns each read's p50 and p99.
async fn time_all(
    reads: &mut [(&'static str, Call<'_>)],
    iterations: usize,
) -> Result<Vec<(&'static str, Duration, Duration)>, Box<dyn Error>> {
    for (_, read) in reads.iter_mut() {
        for _ in 0..iterations / 10 {
            read().await?;
        }
    }
    let mut taken = vec![Vec::with_capacity(iterations); reads.len()];
    for _ in 0..iterations.div_ceil(ROUND) {
        for ((_, read), taken) in reads.iter_mut().zip(&mut taken) {
            for _ in 0..ROUND {
                let started = Instant::now();
                let result = read().await;
                taken.push(started.elapsed());
                result?;
            }
        }
    }
    Ok(reads
        .iter()
        .zip(taken)
        .map(|((name, _), mut taken)| {
            taken.sort_unstable();
            let at = |quantile: f64| taken[((taken.len() - 1) as f64 * quantile).round() as usize];
            (*name, at(0.50), at(0.99))
        })
        .collect())
}

/// A running workflow with ten steps, each recorded with a checkpoint (about 8 KiB each,
/// the size of the benchmark's default shape).
async fn seed(store: &SeaOrmStateStore) -> Result<(WorkflowState, Uuid), Box<dyn Error>> {
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let context = json!({"model": "probe", "document": text(&mut seed, 4000)});
    let mut state = WorkflowState::new(
        "probe-workflow",
        "probe",
        Some("probe-user".into()),
        context,
    );
    state.mark_running();
    store.save_workflow_state(&state).await?;
    let mut latest = None;
    for index in 0..10 {
        let mut step = StepState::new(format!("step-{index:02}"));
        step.mark_running();
        step.mark_completed(json!({"tokens": 42, "text": text(&mut seed, 170)}));
        latest = Some(store.record_step(&mut state, step).await?.id);
    }
    Ok((state, latest.ok_or("no checkpoint")?))
}

/// The raw sqlx reads, on the store's own pool: `SELECT 1`; the checkpoint row by id,
/// with its timestamp and snapshot as text (what the store reads); and that row with its
/// snapshot parsed into a `serde_json::Value`, as `get_checkpoint` must hand it over.
fn raw_reads(db: &DatabaseConnection, checkpoint: Uuid) -> Vec<(&'static str, Call<'_>)> {
    type Row = (Uuid, Uuid, String, String, String);
    macro_rules! row_by_id {
        ($placeholder:literal) => {
            concat!(
                "SELECT id, workflow_state_id, step_id, CAST(timestamp AS text), ",
                "CAST(snapshot AS text) FROM checkpoints WHERE id = ",
                $placeholder
            )
        };
    }
    macro_rules! reads {
        ($pool:expr, $placeholder:literal) => {{
            let pool = $pool;
            let fetch = move || {
                sqlx::query_as::<_, Row>(row_by_id!($placeholder))
                    .bind(checkpoint)
                    .fetch_one(pool)
            };
            let parsed = move || async move {
                let row = fetch().await?;
                serde_json::from_str::<serde_json::Value>(&row.4).map_err(sqlx::Error::decode)
            };
            vec![
                (
                    "raw sqlx SELECT 1",
                    call(move || sqlx::query("SELECT 1").fetch_one(pool)),
                ),
                ("raw sqlx checkpoint row", call(fetch)),
                ("raw sqlx checkpoint row + JSON parse", call(parsed)),
            ]
        }};
    }
    match db.get_database_backend() {
        DbBackend::Postgres => reads!(db.get_postgres_connection_pool(), "$1"),
        _ => reads!(db.get_sqlite_connection_pool(), "?"),
    }
}

/// Every read of one store, and the floor, interleaved.
async fn probe(
    name: &str,
    store: &SeaOrmStateStore,
    iterations: usize,
) -> Result<(), Box<dyn Error>> {
    let (state, checkpoint) = seed(store).await?;
    let (id, workflow_id) = (&state.id, state.workflow_id.as_str());
    let checkpoint = &checkpoint;
    let mut reads = raw_reads(store.connection(), *checkpoint);
    reads.extend([
        (
            "get_latest_checkpoint",
            call(move || store.get_latest_checkpoint(id)),
        ),
        (
            "get_checkpoint",
            call(move || store.get_checkpoint(checkpoint)),
        ),
        (
            "load_workflow_state",
            call(move || store.load_workflow_state(id)),
        ),
        (
            "load_workflow_state_by_workflow_id",
            call(move || store.load_workflow_state_by_workflow_id(workflow_id)),
        ),
        (
            "list_checkpoints (10)",
            call(move || store.list_checkpoints(id, 10, 0)),
        ),
    ]);
    let timings = time_all(&mut reads, iterations).await?;
    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    let floor = micros(timings[0].1);
    for (what, p50, p99) in timings {
        println!(
            "{name:<8} {what:<38} p50 {:>8.1} µs  p99 {:>8.1} µs  {:>5.2}× SELECT 1",
            micros(p50),
            micros(p99),
            micros(p50) / floor,
        );
    }
    Ok(())
}

async fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    for backend in &args.backends {
        match *backend {
            "memory" => {
                let store = StateStoreBuilder::new(":memory:").connect().await?;
                probe("memory", &store, args.iterations).await?;
                store.close().await?;
            }
            "file" => {
                let folder = std::env::temp_dir().join(format!("read-probe-{}", Uuid::now_v7()));
                std::fs::create_dir_all(&folder)?;
                let path = folder.join("probe.db");
                let store = StateStoreBuilder::new(path.to_string_lossy())
                    .connect()
                    .await?;
                let probed = probe("file", &store, args.iterations).await;
                store.close().await?;
                std::fs::remove_dir_all(&folder)?;
                probed?;
            }
            _ => {
                let url = std::env::var("PROBE_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/llm_state_test".into());
                let schema = format!("read_probe_{}", Uuid::now_v7().simple());
                let store = StateStoreBuilder::new(url.as_str())
                    .postgres_schema(&schema)
                    .connect()
                    .await?;
                let probed = probe("postgres", &store, args.iterations).await;
                store
                    .connection()
                    .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .await?;
                store.close().await?;
                probed?;
            }
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    if args.tracing {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .init();
    }
    let runtime = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()?;
    runtime.block_on(run(&args))
}
