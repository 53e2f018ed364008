//! The database's own floor on the same Postgres, measured in the same run: a `SELECT 1`
//! round trip and a durable single-row insert of the checkpoint's snapshot in its own
//! transaction, on a plain sqlx connection; and pgbench with many clients doing that insert.

use std::error::Error;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use llm_orchestrator_state::sea_orm::sqlx::{self, Connection, PgConnection};
use serde_json::json;

use crate::report::{Errors, Row};
use crate::stats::Samples;

/// A plain connection to the benchmark's schema, with the floor's table.
pub struct Floor {
    conn: PgConnection,
    table: String,
}

impl Floor {
    /// Connects and creates `schema.bench_floor (id uuid primary key, snapshot jsonb)`.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, Box<dyn Error>> {
        let mut conn = PgConnection::connect(url).await?;
        // As libpq and the store do: without it a write over 16 KiB through TLS waits
        // 40 ms for the server's delayed ACK (sqlx 0.9.0 leaves Nagle on).
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        if options.get_socket().is_none() {
            llm_orchestrator_state::disable_nagle(options.get_host(), options.get_port()).await?;
        }
        let table = format!("\"{schema}\".bench_floor");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut conn)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (id uuid PRIMARY KEY, snapshot jsonb NOT NULL)"
        )))
        .execute(&mut conn)
        .await?;
        Ok(Self { conn, table })
    }

    /// One `SELECT 1` round trip, timed.
    pub async fn select_one_once(&mut self) -> Result<Duration, Box<dyn Error>> {
        let started = Instant::now();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut self.conn)
            .await?;
        let elapsed = started.elapsed();
        if one != 1 {
            return Err("SELECT 1 did not return 1".into());
        }
        Ok(elapsed)
    }

    /// Where the server's WAL is now, in bytes from its start: exact and immediate, unlike
    /// `pg_stat_wal`, which each connection updates only every second or so.
    pub async fn wal_position(&mut self) -> Result<i64, Box<dyn Error>> {
        Ok(
            sqlx::query_scalar(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint",
            )
            .fetch_one(&mut self.conn)
            .await?,
        )
    }

    /// One durable insert of `snapshot`, timed.
    pub async fn insert_once(&mut self, snapshot: &str) -> Result<Duration, Box<dyn Error>> {
        let sql = format!(
            "INSERT INTO {} (id, snapshot) VALUES ($1::uuid, $2::jsonb)",
            self.table
        );
        let id = uuid::Uuid::now_v7().to_string();
        let started = Instant::now();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(snapshot)
            .execute(&mut self.conn)
            .await?;
        Ok(started.elapsed())
    }

    /// One durable commit of two copies of `snapshot` as two rows, timed: the bytes a
    /// `record_step` must write (the state, and its snapshot in the checkpoint) with
    /// nothing else, the floor of any store that keeps both.
    pub async fn insert_two_once(&mut self, snapshot: &str) -> Result<Duration, Box<dyn Error>> {
        let sql = format!(
            "INSERT INTO {} (id, snapshot) VALUES ($1::uuid, $2::jsonb), ($3::uuid, $4::jsonb)",
            self.table
        );
        let (first, second) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let started = Instant::now();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(first.to_string())
            .bind(snapshot)
            .bind(second.to_string())
            .bind(snapshot)
            .execute(&mut self.conn)
            .await?;
        Ok(started.elapsed())
    }

    /// Reads of one snapshot row by primary key, decoded into JSON on the client: the
    /// floor of a single-row read that carries the same bytes as a checkpoint read.
    pub async fn read_snapshot(
        &mut self,
        iterations: usize,
        warmup: usize,
    ) -> Result<Row, Box<dyn Error>> {
        let id: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id::text FROM {} LIMIT 1",
            self.table
        )))
        .fetch_one(&mut self.conn)
        .await?;
        let sql = format!(
            "SELECT snapshot::text FROM {} WHERE id = $1::uuid",
            self.table
        );
        let mut samples = Samples::with_capacity(iterations);
        let mut errors = Errors::default();
        for index in 0..warmup + iterations {
            let started = Instant::now();
            let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&id)
                .fetch_one(&mut self.conn)
                .await?;
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(&text);
            let elapsed = started.elapsed();
            if index >= warmup {
                samples.push(elapsed);
            }
            if parsed.is_err() {
                errors.add("wrong_result");
            }
        }
        Ok(Row::new(
            "postgres",
            "floor: read snapshot by id",
            samples.summary(None),
        )
        .errors(errors)
        .statements(vec![
            "SELECT snapshot FROM bench_floor WHERE id = $1".into(),
        ]))
    }

    /// Empties the floor table (pgbench fills it with hundreds of MB).
    pub async fn truncate(&mut self) -> Result<(), Box<dyn Error>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("TRUNCATE {}", self.table)))
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Drops the benchmark's schema with everything in it.
    pub async fn drop_schema(mut self, schema: &str) -> Result<(), Box<dyn Error>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut self.conn)
        .await?;
        self.conn.close().await?;
        Ok(())
    }

    /// The floor table's name, schema-qualified.
    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Runs pgbench with `clients` clients for `seconds`, each transaction the same durable
/// insert, from a script file in a fresh temp folder. Returns a row whose ops/s is
/// pgbench's tps and whose p50 is its average latency (pgbench reports no percentiles
/// without per-transaction logs).
pub fn pgbench(
    url: &str,
    table: &str,
    snapshot: &str,
    clients: usize,
    seconds: u64,
) -> Result<Row, String> {
    let folder: PathBuf = std::env::temp_dir().join(format!(
        "bench-pgbench-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir_all(&folder).map_err(|err| err.to_string())?;
    let script = folder.join("durable_insert.sql");
    // The snapshot goes in as a variable, so each transaction sends it as a bind parameter
    // (as sqlx does); pgbench would read `:name` inside a literal as a variable.
    std::fs::write(
        &script,
        format!(
            "INSERT INTO {table} (id, snapshot) VALUES (gen_random_uuid(), :snapshot::jsonb);\n"
        ),
    )
    .map_err(|err| err.to_string())?;
    let output = Command::new("pgbench")
        .arg("-n")
        .args(["-M", "prepared"])
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &seconds.to_string()])
        .arg("-D")
        .arg(format!("snapshot={snapshot}"))
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output();
    let _ = std::fs::remove_dir_all(&folder);
    let output = output.map_err(|err| format!("cannot run pgbench: {err}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let number_after = |prefix: &str| -> Option<f64> {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    let tps = number_after("tps = ").ok_or("pgbench printed no tps")?;
    let latency_ms = number_after("latency average = ").unwrap_or(0.0);
    let failed = number_after("number of failed transactions: ").unwrap_or(0.0);
    let transactions = number_after("number of transactions actually processed: ").unwrap_or(0.0);
    let mut row = Row::new(
        "postgres",
        format!("floor: pgbench {clients} clients"),
        crate::stats::Summary {
            count: transactions as usize,
            p50_us: latency_ms * 1000.0,
            mean_us: latency_ms * 1000.0,
            ops_per_s: tps,
            ..Default::default()
        },
    )
    .with("clients", clients)
    .with("seconds", seconds)
    .with("latency_is", json!("pgbench average, not p50"));
    if failed > 0.0 {
        let mut errors = Errors::default();
        errors.0.insert("pgbench_failed".into(), failed as u64);
        row = row.errors(errors);
    }
    Ok(row)
}

/// The many-client pgbench row of `backend` (the run with the most clients, if any).
pub fn pgbench_many<'a>(rows: &'a [Row], backend: &str) -> Option<&'a Row> {
    let clients = |row: &Row| row.extra.get("clients").and_then(|v| v.as_u64());
    rows.iter()
        .filter(|row| row.backend == backend && row.op.starts_with("floor: pgbench "))
        .filter(|row| clients(row).is_some_and(|clients| clients > 1))
        .max_by_key(|row| clients(row))
}

/// The same floor on SQLite, on a plain sqlx connection of the same driver the store uses:
/// on a file (WAL, as the store opens it) inserting the snapshot, each row its own
/// transaction, once with `synchronous=FULL` (the store's setting: an fsync of the WAL per
/// commit) and once with `NORMAL` (no fsync per commit; durable against a crash of the
/// process, not of the machine); in memory (`folder` is `None`) the insert once. With the
/// first setting also a `SELECT 1`, which is one trip to the connection's worker thread
/// and back and nothing else, and a read of the snapshot by id.
pub async fn sqlite(
    folder: Option<&std::path::Path>,
    snapshot: &str,
    iterations: usize,
    warmup: usize,
) -> Result<Vec<Row>, Box<dyn Error>> {
    use llm_orchestrator_state::sea_orm::sqlx::sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous,
    };
    let backend = if folder.is_some() {
        "sqlite-file"
    } else {
        "sqlite-memory"
    };
    let settings: &[(&str, SqliteSynchronous)] = if folder.is_some() {
        &[
            ("FULL", SqliteSynchronous::Full),
            ("NORMAL", SqliteSynchronous::Normal),
        ]
    } else {
        &[("", SqliteSynchronous::Off)]
    };
    let mut rows = Vec::new();
    for (index, &(name, synchronous)) in settings.iter().enumerate() {
        let options = match folder {
            Some(folder) => SqliteConnectOptions::new()
                .filename(folder.join(format!("floor-{name}.db")))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous),
            None => "sqlite::memory:".parse::<SqliteConnectOptions>()?,
        };
        let insert_op = if name.is_empty() {
            "floor: insert".to_owned()
        } else {
            format!("floor: insert, synchronous={name}")
        };
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::query("CREATE TABLE bench_floor (id BLOB PRIMARY KEY, snapshot TEXT NOT NULL)")
            .execute(&mut conn)
            .await?;
        let mut samples = Samples::with_capacity(iterations);
        for index in 0..warmup + iterations {
            let id = uuid::Uuid::now_v7().as_bytes().to_vec();
            let started = Instant::now();
            sqlx::query("INSERT INTO bench_floor (id, snapshot) VALUES (?, ?)")
                .bind(id)
                .bind(snapshot)
                .execute(&mut conn)
                .await?;
            let elapsed = started.elapsed();
            if index >= warmup {
                samples.push(elapsed);
            }
        }
        rows.push(
            Row::new(backend, insert_op, samples.summary(None))
                .statements(vec!["INSERT INTO bench_floor …".into()])
                .with("snapshot_bytes", snapshot.len()),
        );
        if index == 0 {
            let mut samples = Samples::with_capacity(iterations);
            for index in 0..warmup + iterations {
                let started = Instant::now();
                let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
                let elapsed = started.elapsed();
                if index >= warmup && one == 1 {
                    samples.push(elapsed);
                }
            }
            rows.push(
                Row::new(backend, "floor: SELECT 1", samples.summary(None))
                    .statements(vec!["SELECT 1".into()]),
            );
            let id: Vec<u8> = sqlx::query_scalar("SELECT id FROM bench_floor LIMIT 1")
                .fetch_one(&mut conn)
                .await?;
            let mut samples = Samples::with_capacity(iterations);
            let mut errors = Errors::default();
            for index in 0..warmup + iterations {
                let started = Instant::now();
                let text: String =
                    sqlx::query_scalar("SELECT snapshot FROM bench_floor WHERE id = ?")
                        .bind(&id)
                        .fetch_one(&mut conn)
                        .await?;
                let parsed: Result<serde_json::Value, _> = serde_json::from_str(&text);
                let elapsed = started.elapsed();
                if index >= warmup {
                    samples.push(elapsed);
                }
                if parsed.is_err() {
                    errors.add("wrong_result");
                }
            }
            rows.push(
                Row::new(backend, "floor: read snapshot by id", samples.summary(None))
                    .errors(errors)
                    .statements(vec!["SELECT snapshot FROM bench_floor WHERE id = ?".into()]),
            );
        }
        conn.close().await?;
    }
    Ok(rows)
}
