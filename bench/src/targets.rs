//! The performance targets, checked against one run: ratios to the database's own floor
//! measured beside each call, absolute limits, and LangGraph's savers measured in the same
//! run (`--peer`).

use serde_json::{Value, json};

use crate::report::Row;

/// One target, with what was measured.
#[derive(Debug, Clone)]
pub struct Target {
    /// Backend the target is about.
    pub backend: &'static str,
    /// What is promised.
    pub goal: String,
    /// What was measured (with ratio where the goal is a ratio).
    pub measured: String,
    /// Met, not met, or not measured in this run.
    pub met: Option<bool>,
}

impl Target {
    /// The target as one JSON object.
    pub fn to_json(&self) -> Value {
        json!({"kind": "target", "backend": self.backend, "goal": self.goal,
               "measured": self.measured, "met": self.met})
    }
}

fn find<'a>(rows: &'a [Row], backend: &str, op: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|row| row.backend == backend && row.op == op)
}

fn list_row<'a>(rows: &'a [Row], backend: &str, size: usize) -> Option<&'a Row> {
    find(rows, backend, &format!("list_active_workflows[{size}]"))
}

const READS: [&str; 4] = [
    "load_workflow_state",
    "get_latest_checkpoint",
    "restore_from_checkpoint",
    "load_workflow_state_by_workflow_id",
];
const SINGLE: [&str; 6] = [
    "save_workflow_state",
    "load_workflow_state",
    "create_checkpoint",
    "get_latest_checkpoint",
    "restore_from_checkpoint",
    "load_workflow_state_by_workflow_id",
];

struct Targets<'a> {
    rows: &'a [Row],
    out: Vec<Target>,
}

impl Targets<'_> {
    fn push(&mut self, backend: &'static str, goal: String, result: Option<(String, bool)>) {
        let (measured, met) = match result {
            Some((measured, met)) => (measured, Some(met)),
            None => ("not measured".into(), None),
        };
        self.out.push(Target {
            backend,
            goal,
            measured,
            met,
        });
    }

    /// `op`'s p50 within `limit` × the floor's p50: the floor samples taken beside the
    /// op's own calls when there are some, else the floor row of the run.
    fn ratio(&mut self, backend: &'static str, op: &str, floor: &str, limit: f64) {
        let result = find(self.rows, backend, op).and_then(|row| {
            let floor_p50 = match &row.floor {
                Some(paired) => Some(paired.floor_value),
                None => find(self.rows, backend, floor).map(|f| f.summary.p50_us),
            }?;
            let ratio = row.summary.p50_us / floor_p50;
            Some((
                format!(
                    "{:.0} µs / {floor_p50:.0} µs = {ratio:.2}×",
                    row.summary.p50_us
                ),
                ratio <= limit,
            ))
        });
        self.push(backend, format!("{op} p50 ≤ {limit}× {floor} p50"), result);
    }

    /// `op`'s p50 (or p99) at most `limit` µs.
    fn absolute(&mut self, backend: &'static str, op: &str, p99: bool, limit: f64, who: &str) {
        let which = if p99 { "p99" } else { "p50" };
        let result = find(self.rows, backend, op).map(|row| {
            let value = if p99 {
                row.summary.p99_us
            } else {
                row.summary.p50_us
            };
            (format!("{value:.0} µs"), value <= limit)
        });
        self.push(backend, format!("{op} {which} ≤ {limit} µs{who}"), result);
    }

    /// `op`'s p50 below the peer's `peer_op` p50, both measured in this run.
    fn below_peer(&mut self, backend: &'static str, op: &str, peer_op: &str) {
        let theirs = find(self.rows, backend, peer_op);
        let result = find(self.rows, backend, op)
            .zip(theirs)
            .map(|(ours, theirs)| {
                let (ours, theirs) = (ours.summary.p50_us, theirs.summary.p50_us);
                (
                    format!("{ours:.0} µs / {theirs:.0} µs = {:.2}×", ours / theirs),
                    ours < theirs,
                )
            });
        let short = peer_op.trim_start_matches("peer: ");
        self.push(backend, format!("{op} p50 < {short} p50"), result);
    }

    fn tail(&mut self, backend: &'static str, op: &str) {
        let result = find(self.rows, backend, op).map(|row| {
            let ratio = row.summary.p99_us / row.summary.p50_us;
            (
                format!(
                    "{:.0} / {:.0} µs = {ratio:.2}×",
                    row.summary.p99_us, row.summary.p50_us
                ),
                ratio <= 3.0,
            )
        });
        self.push(backend, format!("{op} p99 ≤ 3× p50"), result);
    }

    fn concurrent(&mut self, backend: &'static str, tasks: usize, min_ops: Option<f64>) {
        let row = find(self.rows, backend, "concurrent: all write calls");
        self.push(
            backend,
            format!("{tasks} tasks save+checkpoint: 0 errors"),
            row.map(|row| {
                let errors = row.errors.total();
                let detail = if errors == 0 {
                    "0 errors".to_owned()
                } else {
                    format!("{errors} errors {:?}", row.errors.0)
                };
                (detail, errors == 0)
            }),
        );
        if let Some(min_ops) = min_ops {
            self.push(
                backend,
                format!("{tasks} tasks: ≥ {min_ops} write calls/s"),
                row.map(|row| {
                    (
                        format!("{:.0} calls/s", row.summary.ops_per_s),
                        row.summary.ops_per_s >= min_ops,
                    )
                }),
            );
        }
    }

    /// WAL per `record_step` late in a growing chat workflow at most twice what it is
    /// early (`write_volume`): a step's write follows what the step changed, not the
    /// whole state's size.
    fn write_volume(&mut self, backend: &'static str) {
        let late = self.rows.iter().find(|row| {
            row.backend == backend
                && row.op.starts_with("write volume:")
                && row.extra.contains_key("wal_growth_ratio")
        });
        // Only a run that reached step 200 measures the target.
        let late_last = crate::write_volume::LATE_LAST as u64;
        let extra = |row: &Row, key: &str| row.extra.get(key).and_then(Value::as_u64);
        let result = late
            .filter(|row| extra(row, "last_step") == Some(late_last))
            .filter(|row| extra(row, "message_bytes") == Some(1024))
            .and_then(|row| {
                let ratio = row.extra.get("wal_growth_ratio")?.as_f64()?;
                Some((format!("{ratio:.2}× (medians)"), ratio <= 2.0))
            });
        self.push(
            backend,
            format!(
                "WAL per record_step, context +1 KiB/step: steps {}–{late_last} ≤ 2× steps 11–30",
                late_last + 1 - crate::write_volume::WINDOW as u64
            ),
            result,
        );
    }

    fn list(&mut self, backend: &'static str) {
        let result = list_row(self.rows, backend, 10_000).map(|row| {
            (
                format!(
                    "p50 {:.1} ms ({} statements)",
                    row.summary.p50_us / 1000.0,
                    row.statements.as_ref().map_or(0, Vec::len)
                ),
                row.summary.p50_us <= 300_000.0 && row.errors.total() == 0,
            )
        });
        self.push(
            backend,
            "list_active_workflows, 10,000 active: ≤ 300 ms".into(),
            result,
        );
        let page = find(
            self.rows,
            backend,
            &format!(
                "list_active_workflows_page[10000] first {}",
                crate::listing::FIRST
            ),
        )
        .map(|row| {
            (
                format!("p50 {:.1} ms", row.summary.p50_us / 1000.0),
                row.summary.p50_us < 10_000.0 && row.errors.total() == 0,
            )
        });
        self.push(
            backend,
            format!(
                "a page of {} active workflows out of 10,000: < 10 ms",
                crate::listing::FIRST
            ),
            page,
        );
        let small = list_row(self.rows, backend, 1_000);
        let result = list_row(self.rows, backend, 100_000).map(|row| {
            let statements = row.statements.as_ref().map_or(0, Vec::len);
            let fixed = small
                .and_then(|small| small.statements.as_ref())
                .is_none_or(|s| s.len() == statements);
            (
                format!(
                    "p50 {:.0} ms, {statements} statements, {} errors",
                    row.summary.p50_us / 1000.0,
                    row.errors.total()
                ),
                fixed && row.errors.total() == 0,
            )
        });
        self.push(
            backend,
            "list_active_workflows, 100,000 active: works, fixed statement count".into(),
            result,
        );
    }
}

/// Every target this run can check: Postgres against its floor, the listings, then the
/// SQLite limits and LangGraph's savers from the same run.
pub fn evaluate(rows: &[Row]) -> Vec<Target> {
    let mut t = Targets {
        rows,
        out: Vec::new(),
    };
    let pg = "postgres";
    if rows.iter().any(|row| row.backend == pg) {
        t.ratio(pg, "record_step", "floor: durable insert", 1.3);
        t.ratio(pg, "create_checkpoint", "floor: durable insert", 1.2);
        t.ratio(pg, "save_workflow_state", "floor: durable insert", 1.5);
        for op in READS {
            t.ratio(pg, op, "floor: SELECT 1", 2.0);
        }
        // The floors' own distance to those targets: what any store pays for the bytes.
        t.ratio(
            pg,
            "floor: two snapshots in one commit",
            "floor: durable insert",
            1.3,
        );
        t.ratio(pg, "floor: read snapshot by id", "floor: SELECT 1", 2.0);
        for op in SINGLE.iter().chain(&["record_step"]) {
            t.tail(pg, op);
        }
        t.concurrent(pg, tasks_of(rows, pg), None);
        let ours = find(rows, pg, "concurrent: all write calls");
        let theirs = crate::floor::pgbench_many(rows, pg);
        let clients = theirs
            .and_then(|row| row.extra.get("clients").and_then(Value::as_u64))
            .unwrap_or(64);
        let result = ours.zip(theirs).map(|(ours, theirs)| {
            let ratio = ours.summary.ops_per_s / theirs.summary.ops_per_s;
            (
                format!(
                    "{:.0} / {:.0} tx/s = {:.0}%",
                    ours.summary.ops_per_s,
                    theirs.summary.ops_per_s,
                    ratio * 100.0
                ),
                ratio >= 0.6,
            )
        });
        t.push(
            pg,
            format!(
                "{} tasks: ≥ 60% of pgbench's {clients}-client durable inserts/s",
                tasks_of(rows, pg)
            ),
            result,
        );
        t.write_volume(pg);
        t.list(pg);
        t.below_peer(pg, "get_latest_checkpoint", PEER_LATEST);
        t.below_peer(pg, "restore_from_checkpoint", PEER_BY_ID);
    }
    let file = "sqlite-file";
    if rows.iter().any(|row| row.backend == file) {
        t.list(file);
        t.concurrent(file, tasks_of(rows, file), None);
        t.below_peer(file, "record_step", PEER_PUT);
        t.below_peer(file, "create_checkpoint", PEER_PUT);
        t.below_peer(file, "get_latest_checkpoint", PEER_LATEST);
        t.below_peer(file, "restore_from_checkpoint", PEER_BY_ID);
        // What the driver alone costs against the peer: a trip to sqlx's worker thread.
        t.below_peer(file, "floor: SELECT 1", PEER_LATEST);
        t.below_peer(file, "floor: read snapshot by id", PEER_LATEST);
        t.below_peer(file, "floor: insert, synchronous=FULL", PEER_PUT);
    }
    let memory = "sqlite-memory";
    if rows.iter().any(|row| row.backend == memory) {
        t.list(memory);
        t.absolute(memory, "record_step", false, 50.0, "");
        for op in READS {
            t.absolute(memory, op, false, 20.0, "");
        }
        t.absolute(memory, "floor: SELECT 1", false, 20.0, "");
        t.absolute(memory, "floor: insert", false, 50.0, "");
        t.below_peer(memory, "floor: SELECT 1", PEER_LATEST);
        t.below_peer(memory, "floor: read snapshot by id", PEER_LATEST);
    }
    t.out
}

/// How many tasks the concurrent phase of `backend` ran.
fn tasks_of(rows: &[Row], backend: &str) -> usize {
    find(rows, backend, "concurrent: all write calls")
        .and_then(|row| row.extra.get("tasks").and_then(Value::as_u64))
        .unwrap_or(64) as usize
}

/// The peer's rows (`bench/peer/langgraph_peer.py`).
const PEER_PUT: &str = "peer: LangGraph put";
const PEER_LATEST: &str = "peer: LangGraph get_tuple (latest)";
const PEER_BY_ID: &str = "peer: LangGraph get_tuple (by id)";

/// Prints the targets as a table.
pub fn print(targets: &[Target]) {
    println!("\nTargets:");
    println!("{:<14} {:<70} {:<36} met", "backend", "goal", "measured");
    for target in targets {
        let met = match target.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!(
            "{:<14} {:<70} {:<36} {met}",
            target.backend, target.goal, target.measured
        );
    }
}
