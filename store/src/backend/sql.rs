//! The SQL that differs between the databases inside otherwise shared statements: how a
//! timestamp or a JSON value is read as text, how a looked-up value is bound, and how a
//! workflow's steps are aggregated into JSON.

use sea_orm::DbBackend;
use sea_orm::sea_query::{Expr, SimpleExpr};

/// A timestamp column (or any timestamp expression) as text that reading can neither
/// fail on nor panic on, whatever the database holds: the store parses it itself (see
/// `convert::stored_time`), so a value it cannot use is an error for the row it is in.
///
/// Postgres takes instants up to the year 294276 (and `infinity`), which the driver
/// panics on when it decodes them as chrono times: within the years 1 to 9999 the
/// instant comes as RFC 3339 in UTC at microseconds, anything else as Postgres's own
/// text (`290000-01-01 00:00:00+00`, `infinity`), which parses as no time the store
/// reads. SQLite stores text already: its value as it is (cast, should a hand-written
/// row hold a number).
pub(crate) fn time_as_text(backend: DbBackend, time: SimpleExpr) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => Expr::cust_with_exprs(
            "CASE WHEN $1 >= '0001-01-01 00:00:00+00' AND $2 < '10000-01-01 00:00:00+00' \
             THEN to_char($3 AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             ELSE CAST($4 AS text) END",
            [time.clone(), time.clone(), time.clone(), time],
        ),
        _ => Expr::cust_with_expr("CAST(? AS TEXT)", time),
    }
}

/// A JSON column as text, so each row's JSON is parsed on its own and a corrupt value
/// fails only its row (decoding a `jsonb` value the store cannot read would fail the
/// whole result). SQLite keeps JSON as text already.
pub(crate) fn json_as_text(backend: DbBackend, json: SimpleExpr) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => Expr::cust_with_expr("CAST($1 AS text)", json),
        _ => json,
    }
}

/// `value` bound to a statement that reads rows by it through an index (`column = value`).
/// On SQLite behind a unary `+`, which changes no value: SQLite's planner looks at a
/// value bound right beside `=` to guess how many rows match and then marks the statement
/// to be prepared again when the value changes, which, as the driver clears the values
/// after each run, is every time. Postgres plans prepared statements its own way.
pub(crate) fn lookup_value(backend: DbBackend, value: impl Into<sea_orm::Value>) -> SimpleExpr {
    match backend {
        DbBackend::Sqlite => Expr::cust_with_values("+?", [value.into()]),
        _ => Expr::val(value),
    }
}

/// SQL for a column holding a workflow's steps as one JSON array, as text, to select next
/// to the `workflow_states` row: a workflow and its steps then come back in a single
/// statement, one round trip and one consistent snapshot, on both databases, and the
/// store parses the text straight into steps. Objects carry the `step_states` columns
/// except `workflow_state_id`; timestamps are RFC 3339 text. On Postgres the array is
/// built as `json`, which is text already, not as `jsonb` to be printed again.
pub(crate) fn steps_json_column(backend: DbBackend) -> SimpleExpr {
    const COLUMNS: [&str; 6] = [
        "step_id",
        "status",
        "started_at",
        "completed_at",
        "error",
        "retry_count",
    ];
    let pairs = |outputs: &str| {
        let mut pairs: Vec<String> = COLUMNS
            .iter()
            .map(|column| format!("'{column}', s.{column}"))
            .collect();
        pairs.push(format!("'outputs', {outputs}"));
        pairs.join(", ")
    };
    let sql = match backend {
        DbBackend::Postgres => format!(
            "CAST((SELECT coalesce(json_agg(json_build_object({})), '[]'::json) \
             FROM step_states s WHERE s.workflow_state_id = workflow_states.id) AS text)",
            pairs("s.outputs")
        ),
        _ => format!(
            "(SELECT json_group_array(json_object({})) \
             FROM step_states s WHERE s.workflow_state_id = workflow_states.id)",
            pairs("json(s.outputs)")
        ),
    };
    Expr::cust(sql)
}
