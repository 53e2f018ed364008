//! One result row per (backend, operation): the human table and the JSON lines.

use std::collections::BTreeMap;

use llm_orchestrator_state::StateStoreError;
use serde_json::{Map, Value, json};

use crate::stats::Summary;

/// Errors seen during a phase, by kind.
#[derive(Debug, Default, Clone)]
pub struct Errors(pub BTreeMap<String, u64>);

impl Errors {
    /// Counts one error of `kind`.
    pub fn add(&mut self, kind: &str) {
        *self.0.entry(kind.to_owned()).or_default() += 1;
    }

    /// Counts a store error under its kind.
    pub fn add_error(&mut self, err: &StateStoreError) {
        self.add(&error_kind(err));
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: Errors) {
        for (kind, count) in other.0 {
            *self.0.entry(kind).or_default() += count;
        }
    }

    /// All errors of every kind.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// The kind of a store error, from the kind the store gives it (never its text): pool
/// time-outs and a busy database apart from the rest.
pub fn error_kind(err: &StateStoreError) -> String {
    use llm_orchestrator_state::ErrorKind;
    match err.kind() {
        ErrorKind::PoolExhausted => "pool_timeout".into(),
        ErrorKind::Busy => "busy".into(),
        kind => kind.to_string().replace([' ', ':'], "_"),
    }
}

/// What the ratio of a row is taken against.
#[derive(Debug, Clone)]
pub struct FloorRatio {
    /// The floor operation (`pg_select_1`, `pg_durable_insert`, `pgbench_64_clients`).
    pub floor_op: String,
    /// The floor's own value (p50 µs, or ops/s for throughput).
    pub floor_value: f64,
    /// This row's value divided by the floor's (p50 ratio; for throughput, ops/s ratio).
    pub ratio: f64,
}

/// One measured operation on one backend.
#[derive(Debug, Clone)]
pub struct Row {
    /// `sqlite-memory`, `sqlite-file` or `postgres`.
    pub backend: String,
    /// The operation (store method, floor or concurrent phase).
    pub op: String,
    /// Latency and throughput.
    pub summary: Summary,
    /// The statements one call sent (steady state), when they were recorded.
    pub statements: Option<Vec<String>>,
    /// Errors by kind.
    pub errors: Errors,
    /// Ratio to the database's floor, for Postgres rows.
    pub floor: Option<FloorRatio>,
    /// Anything else worth keeping (sizes, task counts).
    pub extra: Map<String, Value>,
}

impl Row {
    /// A row with no statements, errors, floor or extras yet.
    pub fn new(backend: &str, op: impl Into<String>, summary: Summary) -> Self {
        Self {
            backend: backend.to_owned(),
            op: op.into(),
            summary,
            statements: None,
            errors: Errors::default(),
            floor: None,
            extra: Map::new(),
        }
    }

    /// Records the statements one call sent.
    pub fn statements(mut self, statements: Vec<String>) -> Self {
        self.statements = Some(statements);
        self
    }

    /// Records the phase's errors.
    pub fn errors(mut self, errors: Errors) -> Self {
        self.errors = errors;
        self
    }

    /// Adds an extra field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// The row as one JSON object (one line of `--json` output).
    pub fn to_json(&self) -> Value {
        let round = |x: f64| (x * 10.0).round() / 10.0;
        let mut out = json!({
            "kind": "op",
            "backend": self.backend,
            "op": self.op,
            "count": self.summary.count,
            "p50_us": round(self.summary.p50_us),
            "p99_us": round(self.summary.p99_us),
            "max_us": round(self.summary.max_us),
            "mean_us": round(self.summary.mean_us),
            "ops_per_s": round(self.summary.ops_per_s),
            "errors": self.errors.0,
        });
        if let Some(statements) = &self.statements {
            out["statements_per_call"] = json!(statements.len());
            out["statements"] = json!(statements);
        }
        if let Some(floor) = &self.floor {
            out["floor_op"] = json!(floor.floor_op);
            out["floor_value"] = json!(round(floor.floor_value));
            out["ratio_to_floor"] = json!((floor.ratio * 100.0).round() / 100.0);
        }
        if let Value::Object(map) = &mut out {
            map.extend(self.extra.clone());
        }
        out
    }
}

/// Prints the rows as a table, one block per backend.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<14} {:<34} {:>7} {:>10} {:>10} {:>10} {:>10} {:>6} {:>7} {:>8} {:>9}",
        "backend",
        "op",
        "count",
        "p50 µs",
        "p99 µs",
        "max µs",
        "ops/s",
        "stmts",
        "errors",
        "× floor",
        "cpu µs/op"
    );
    // pgbench reports only an average, as its p50: no p99 or max to show.
    let latency = |us: f64| {
        if us > 0.0 {
            format!("{us:.1}")
        } else {
            "-".to_owned()
        }
    };
    let mut last_backend = "";
    for row in rows {
        if row.backend != last_backend && !last_backend.is_empty() {
            println!();
        }
        last_backend = &row.backend;
        let statements = row
            .statements
            .as_ref()
            .map_or("-".to_owned(), |s| s.len().to_string());
        let floor = row
            .floor
            .as_ref()
            .map_or("-".to_owned(), |f| format!("{:.2}", f.ratio));
        let cpu = row
            .extra
            .get("client_cpu_us_per_call")
            .and_then(Value::as_f64)
            .map_or("-".to_owned(), |cpu| format!("{cpu:.0}"));
        println!(
            "{:<14} {:<34} {:>7} {:>10} {:>10} {:>10} {:>10.0} {:>6} {:>7} {:>8} {:>9}",
            row.backend,
            row.op,
            row.summary.count,
            latency(row.summary.p50_us),
            latency(row.summary.p99_us),
            latency(row.summary.max_us),
            row.summary.ops_per_s,
            statements,
            row.errors.total(),
            floor,
            cpu
        );
    }
}

/// Prints what each call sent, for the rows that recorded it.
pub fn print_statements(rows: &[Row]) {
    println!("\nStatements per call (steady state, from sqlx's query log):");
    for row in rows {
        if let Some(statements) = &row.statements {
            println!("  {} {}: {}", row.backend, row.op, statements.join(" | "));
        }
    }
}
