//! Applying a batch of writes atomically in the fewest round trips: one statement of
//! data-modifying CTEs on Postgres (run again on a serialization failure), the
//! statements in one transaction on SQLite.

use sea_orm::sea_query::{
    Alias, CommonTableExpression, DeleteStatement, Expr, InsertStatement, Query, SimpleExpr,
    SubQueryStatement, UpdateStatement, WithClause,
};
use std::time::Duration;

use sea_orm::sqlx;
use sea_orm::{ConnectionTrait, DbBackend, DbErr};

use super::{Db, begin_write};

/// How often a single-statement write that lost a race to a concurrent writer of the same
/// rows is run again before the caller gets `Conflict`.
const SERIALIZATION_RETRIES: u32 = 10;

/// Postgres's "could not serialize access" (40001) and deadlock (40P01).
fn is_serialization_failure(err: &DbErr) -> bool {
    match err {
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(sqlx_err))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(sqlx_err)) => match sqlx_err.as_ref() {
            sqlx::Error::Database(db_err) => {
                matches!(db_err.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        },
        _ => false,
    }
}

/// Most ids one statement lists (`id IN (...)`, one bind parameter each): SQLite takes at
/// most 32,766 parameters in a statement and Postgres 65,535, so a call on more ids (a
/// page of 100,000 workflows, a claim of as many) runs one statement per this many.
pub(crate) const IDS_PER_STATEMENT: usize = 10_000;

/// One statement of a batch that must apply all-or-nothing.
pub(crate) enum Write {
    /// An insert (or upsert).
    Insert(InsertStatement),
    /// A delete.
    Delete(DeleteStatement),
    /// An update; a guard that checks a row (see `queries::guard_write`) is one.
    Update(UpdateStatement),
    /// The upsert of a workflow row, whose new `version` the batch gives back (see
    /// [`Written::version`]); at most one per batch.
    Versioned(InsertStatement),
}

/// What a batch of writes did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Written {
    /// The rows the writes touched.
    pub(crate) rows: u64,
    /// The workflow's version after the batch, when it held a [`Write::Versioned`].
    pub(crate) version: Option<i64>,
}

/// The `version` column an upsert of a workflow row returns.
fn version_column() -> Alias {
    Alias::new("version")
}

/// Applies `writes` atomically and returns the rows they touched.
///
/// Postgres: one statement, each write a data-modifying CTE, so the whole batch costs one
/// round trip and commits on its own (or inside the caller's transaction). SQLite, which
/// has no data-modifying CTEs but no network either: the statements in order inside a
/// write transaction (a savepoint when `db` is already a transaction).
///
/// Our Postgres connections run at REPEATABLE READ (see [`connect`](super::connect())): a batch whose rows a
/// concurrent batch changed after it started fails with a serialization error instead of
/// mixing the two (its delete would not see the other's new steps), and is run again here
/// when it is a statement of its own. Inside a transaction the error goes to the caller
/// as `Conflict`.
pub(crate) async fn write_all<C: Db>(db: &C, writes: Vec<Write>) -> Result<u64, DbErr> {
    Ok(write_all_versioned(db, writes).await?.rows)
}

/// [`write_all`], with the workflow's new version when the batch upserts its row with
/// [`Write::Versioned`].
pub(crate) async fn write_all_versioned<C: Db>(
    db: &C,
    writes: Vec<Write>,
) -> Result<Written, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres if writes.len() <= POSTGRES_WRITES_PER_STATEMENT => {
            let batch = postgres_batch(writes);
            let row = retrying(db, || db.query_one(&batch)).await?;
            Ok(Written {
                rows: row
                    .as_ref()
                    .and_then(|row| row.try_get_by_index::<i64>(0).ok())
                    .map_or(0, |rows| u64::try_from(rows).unwrap_or(0)),
                version: row.and_then(|row| row.try_get_by_index::<Option<i64>>(1).ok().flatten()),
            })
        }
        // Thousands of steps (many insert chunks): more values than one statement takes;
        // one statement per write, in a transaction, like SQLite.
        _ => write_in_transaction(db, writes).await,
    }
}

/// Writes batched into one Postgres statement at most. Postgres takes 65,535 values per
/// statement; a step insert holds at most 8,000 (1,000 rows) and a save's delete lists the
/// step ids, so seven writes (the guard, a workflow row, up to four step chunks, the
/// delete, or a checkpoint's two) stay well under it.
const POSTGRES_WRITES_PER_STATEMENT: usize = 7;

/// The writes one statement each, in a write transaction (a savepoint inside the caller's
/// transaction). On Postgres the transaction as a whole is retried when it lost a race and
/// is not inside the caller's transaction.
async fn write_in_transaction<C: Db>(db: &C, writes: Vec<Write>) -> Result<Written, DbErr> {
    retrying(db, || async {
        let txn = begin_write(db).await?;
        let mut written = Written::default();
        for write in &writes {
            let done = match write {
                Write::Insert(insert) => txn.execute(insert).await.map(|done| done.rows_affected()),
                Write::Delete(delete) => txn.execute(delete).await.map(|done| done.rows_affected()),
                Write::Update(update) => txn.execute(update).await.map(|done| done.rows_affected()),
                Write::Versioned(upsert) => {
                    let mut upsert = upsert.clone();
                    upsert.returning(Query::returning().column(version_column()));
                    txn.query_one(&upsert).await.map(|row| {
                        written.version = row.and_then(|row| row.try_get_by_index::<i64>(0).ok());
                        1
                    })
                }
            };
            match done {
                Ok(rows) => written.rows += rows,
                Err(err) => {
                    // Now, so the rows written so far are not locked until the
                    // connection's next use (see `all_or_nothing!`).
                    let _ = txn.rollback().await;
                    return Err(err);
                }
            }
        }
        txn.commit().await?;
        Ok(written)
    })
    .await
}

/// Runs a single-statement operation, running it again when it lost a race to a
/// concurrent writer (Postgres serialization failure or deadlock) and `db` is not inside
/// a transaction (which the failure has spoiled: there the caller gets `Conflict`).
pub(crate) async fn retrying<C, T, F, Fut>(db: &C, mut operation: F) -> Result<T, DbErr>
where
    C: Db,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Err(err)
                if is_serialization_failure(&err)
                    && !db.in_transaction()
                    && attempt < SERIALIZATION_RETRIES =>
            {
                attempt += 1;
                // Back off a little, differently per caller, so racers spread out.
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 4;
                tokio::time::sleep(Duration::from_micros(jitter * u64::from(attempt))).await;
            }
            result => return result,
        }
    }
}

/// The writes as one Postgres statement: each a data-modifying CTE, the statement's
/// result the total of rows they touched.
fn postgres_batch(writes: Vec<Write>) -> sea_orm::sea_query::WithQuery {
    use sea_orm::sea_query::ExprTrait as _;
    let mut with = WithClause::new();
    let mut total: SimpleExpr = Expr::val(0i64);
    let mut version: SimpleExpr = Expr::val(Option::<i64>::None);
    for (index, write) in writes.into_iter().enumerate() {
        let name = Alias::new(format!("write_{index}"));
        let one = Query::returning().expr(Expr::val(1));
        // No `to_owned()` on the way: it would clone every JSON value of the statement.
        let statement: SubQueryStatement = match write {
            Write::Insert(mut insert) => {
                insert.returning(one);
                insert.into()
            }
            Write::Delete(mut delete) => {
                delete.returning(one);
                delete.into()
            }
            Write::Update(mut update) => {
                update.returning(one);
                update.into()
            }
            Write::Versioned(mut upsert) => {
                let both: [SimpleExpr; 2] = [Expr::val(1), Expr::col(version_column())];
                upsert.returning(Query::returning().exprs(both));
                let returned = Query::select()
                    .column(version_column())
                    .from(name.clone())
                    .to_owned();
                version = SimpleExpr::SubQuery(None, Box::new(returned.into()));
                upsert.into()
            }
        };
        let mut cte = CommonTableExpression::new();
        cte.query(statement).table_name(name.clone());
        with.cte(cte);
        let count = Query::select()
            .expr(Expr::cust("count(*)"))
            .from(name)
            .to_owned();
        total = total.add(SimpleExpr::SubQuery(None, Box::new(count.into())));
    }
    // Assembled by hand: `WithClause::query` clones the whole statement on the way out.
    let mut select = Query::select();
    select.expr(total).expr(version);
    let mut batch = sea_orm::sea_query::WithQuery::new();
    batch.with_clause(with).query(select);
    batch
}
