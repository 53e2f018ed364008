//! The database's clock: lease expiry computed by the server, and how far this machine's
//! clock is from it.

use sea_orm::sea_query::{Expr, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DbBackend, DbErr};

use crate::error::Result;

/// "Now" on the clock leases run by, as SQL, `after` from now. On Postgres the server's
/// clock (`statement_timestamp()`), so replicas whose own clocks disagree still agree on
/// when a lease runs out. On SQLite this machine's clock, bound as a value: processes that
/// share a SQLite file share a machine, and so a clock.
pub(crate) fn lease_clock(backend: DbBackend, after: chrono::Duration) -> SimpleExpr {
    match backend {
        DbBackend::Postgres if after.is_zero() => Expr::cust("statement_timestamp()"),
        DbBackend::Postgres => Expr::cust_with_values(
            "statement_timestamp() + $1 * interval '1 microsecond'",
            [after.num_microseconds().unwrap_or(i64::MAX)],
        ),
        _ => Expr::val((crate::model::now() + after).fixed_offset()),
    }
}

/// How far the clock leases run by ([`lease_clock`]) is ahead of this machine's;
/// negative when it is behind. On Postgres: the server's `statement_timestamp()` set
/// against the middle of the round trip that read it, the closest of three reads (the
/// shortest round trip bounds the error best). On SQLite it is this machine's own clock:
/// zero, without a query.
pub(crate) async fn clock_offset<C: ConnectionTrait>(db: &C) -> Result<chrono::Duration, DbErr> {
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres {
        return Ok(chrono::Duration::zero());
    }
    let read = Query::select()
        .expr(lease_clock(backend, chrono::Duration::zero()))
        .to_owned();
    let mut best: Option<(chrono::Duration, chrono::Duration)> = None;
    for _ in 0..3 {
        let sent = crate::model::now();
        let row = db.query_one(&read).await?;
        let received = crate::model::now();
        let server: chrono::DateTime<chrono::Utc> = row
            .ok_or_else(|| DbErr::RecordNotFound("the server's clock".into()))?
            .try_get_by_index(0)?;
        let round_trip = received - sent;
        let offset = server - (sent + round_trip / 2);
        if best.is_none_or(|(shortest, _)| round_trip < shortest) {
            best = Some((round_trip, offset));
        }
    }
    Ok(best.map_or_else(chrono::Duration::zero, |(_, offset)| offset))
}
