//! Reading many workflows: every active one, a page of them by keyset, or a list of ids,
//! with their steps, in a fixed number of statements; a row that does not read back is
//! reported apart and the others are served.

use chrono::{DateTime, Utc};
use entity::{step_states, workflow_states};
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Func, Query, SelectStatement, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::convert;
use super::queries::{
    find_readable, load_state, readable_workflows, select_with_steps, sql_count, status_in,
    status_names, with_steps,
};
use crate::backend::{self, Db};
use crate::error::{Result, StateStoreError};
use crate::model::{WorkflowState, WorkflowStatus};

/// Every workflow in one of `statuses`, newest update first, with steps. Rows that fail
/// to convert come back apart, with their error.
pub(crate) async fn list_by_status<C: Db>(
    conn: &C,
    statuses: &[WorkflowStatus],
) -> Result<(Vec<WorkflowState>, Vec<(Uuid, StateStoreError)>)> {
    let page = list_page(conn, statuses, None, None).await?;
    Ok((page.states, page.skipped))
}

/// What [`list_page`] read.
pub(crate) struct ListedPage {
    /// The workflows that converted.
    pub(crate) states: Vec<WorkflowState>,
    /// The ones that did not, with why.
    pub(crate) skipped: Vec<(Uuid, StateStoreError)>,
    /// `(updated_at, id)` of the last row read, converted or not.
    pub(crate) last: Option<(DateTime<Utc>, Uuid)>,
}

/// A page of the workflows in one of `statuses`, newest update first, with steps: those
/// after `after` (keyset: `(updated_at, id)` of the previous page's last), at most `limit`.
///
/// Two statements on one snapshot (a read-only transaction unless `conn` is one already):
/// the workflow rows, then the steps of exactly those rows, grouped in memory. A fixed
/// number of statements whatever the count, and the database neither builds JSON per row
/// nor sorts wide rows.
///
/// A row whose JSON does not even decode (hand-corrupted in a SQLite file) fails the
/// statement; then the page is read workflow by workflow, so the others still come back
/// and only the broken ones are reported.
pub(crate) async fn list_page<C: Db>(
    conn: &C,
    statuses: &[WorkflowStatus],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: Option<u64>,
) -> Result<ListedPage> {
    use workflow_states::Column as W;
    let mut filter = Condition::all().add(status_in(statuses));
    let after = after.map(|(updated_at, id)| {
        let updated_at = convert::to_db(updated_at);
        Condition::any().add(W::UpdatedAt.lt(updated_at)).add(
            Condition::all()
                .add(W::UpdatedAt.eq(updated_at))
                .add(W::Id.lt(id)),
        )
    });
    if let Some(after) = &after {
        filter = filter.add(after.clone());
    }
    let page = limit.map(|limit| page_ids(statuses, after.as_ref(), limit));
    let result = if conn.in_transaction() {
        read_page(conn, filter.clone(), page.clone()).await
    } else {
        let txn = backend::begin_read(conn).await?;
        let result = read_page(&txn, filter.clone(), page.clone()).await;
        txn.commit().await?;
        result
    };
    match result {
        Ok(page) => Ok(page),
        Err(err) if !err.is_unreadable_data() => Err(err),
        Err(err) => {
            tracing::warn!(error = %err, "a workflow row does not decode; reading them one by one");
            let updated_at = backend::time_as_text(
                conn.get_database_backend(),
                Expr::col((workflow_states::Entity, W::UpdatedAt)),
            );
            let mut ids = workflow_states::Entity::find()
                .select_only()
                .column_as(updated_at, "updated_at")
                .column(W::Id)
                .filter(filter)
                .order_by_desc(W::UpdatedAt)
                .order_by_desc(W::Id);
            if let Some(limit) = limit {
                ids = ids.limit(sql_count(limit));
            }
            let ids: Vec<(String, Uuid)> = ids.into_tuple().all(conn).await?;
            let last = last_readable(ids.iter().map(|(updated_at, id)| (updated_at, *id)));
            let ids: Vec<Uuid> = ids.into_iter().map(|(_, id)| id).collect();
            let (states, skipped) = read_one_by_one(conn, &ids).await?;
            Ok(ListedPage {
                states,
                skipped,
                last,
            })
        }
    }
}

/// The keyset position `(updated_at, id)` of the last row of a page (rows in listing
/// order, `updated_at` as read by `backend::time_as_text`) whose time the store can read;
/// rows after it on the page, unreadable, are then read again on the next page, once
/// more reported, rather than left behind.
fn last_readable<'r>(
    rows: impl DoubleEndedIterator<Item = (&'r String, Uuid)>,
) -> Option<(DateTime<Utc>, Uuid)> {
    rows.rev().find_map(|(updated_at, id)| {
        convert::stored_time("updated_at", updated_at)
            .ok()
            .map(|updated_at| (updated_at, id))
    })
}

/// The workflows with these ids, each with its steps, in the order of `ids`, and apart
/// the ones whose rows do not read back, with why (see
/// [`StateStoreError::is_unreadable_data`]); ids no longer stored are left out. One
/// statement when every row reads. A corrupt row fails that statement as a whole (SQLite's
/// JSON functions refuse it, or decoding it here does), and then each is read alone, so
/// that only the broken ones are lost. Any other error fails the read.
pub(crate) async fn read_each<C: Db>(
    conn: &C,
    ids: &[Uuid],
) -> Result<(Vec<WorkflowState>, Vec<(Uuid, StateStoreError)>)> {
    if ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let filter = Condition::all().add(workflow_states::Column::Id.is_in(ids.iter().copied()));
    let found = match select_with_steps(conn, filter).await {
        Ok(found) => found,
        Err(err) if err.is_unreadable_data() => return read_one_by_one(conn, ids).await,
        Err(err) => return Err(err),
    };
    let (mut states, mut skipped) = (Vec::with_capacity(found.len()), Vec::new());
    for found in found {
        let id = found.row.id;
        match with_steps(found) {
            Ok(state) => states.push(state),
            Err(err) if err.is_unreadable_data() => skipped.push((id, err)),
            Err(err) => return Err(err),
        }
    }
    let position: std::collections::HashMap<Uuid, usize> =
        ids.iter().enumerate().map(|(at, id)| (*id, at)).collect();
    states.sort_by_key(|state| position.get(&state.id).copied());
    skipped.sort_by_key(|(id, _)| position.get(id).copied());
    Ok((states, skipped))
}

/// [`read_each`] one workflow at a time: for when reading them together failed on a
/// corrupt row.
async fn read_one_by_one<C: Db>(
    conn: &C,
    ids: &[Uuid],
) -> Result<(Vec<WorkflowState>, Vec<(Uuid, StateStoreError)>)> {
    let (mut states, mut skipped) = (Vec::new(), Vec::new());
    for id in ids {
        match load_state(conn, *id).await {
            Ok(state) => states.push(state),
            Err(StateStoreError::NotFound(_)) => {}
            Err(err) if err.is_unreadable_data() => skipped.push((*id, err)),
            Err(err) => return Err(err),
        }
    }
    Ok((states, skipped))
}

/// The ids of a page of workflows in `statuses` (after `after`), newest update first, as a
/// statement: one ordered, limited read per status through the index on the lower-cased
/// status and `updated_at`, merged, so that a page costs the same however many
/// workflows there are (a filter on all statuses at once would sort every one of them).
fn page_ids(statuses: &[WorkflowStatus], after: Option<&Condition>, limit: u64) -> SelectStatement {
    use sea_orm::sea_query::UnionType;
    use workflow_states::Column as W;
    let limit = sql_count(limit);
    let branch = |status: &str| {
        let stored = Expr::col((workflow_states::Entity, W::Status));
        let mut newest = Query::select();
        newest
            .columns([W::Id, W::UpdatedAt])
            .from(workflow_states::Entity)
            .and_where(SimpleExpr::from(Func::lower(stored)).eq(status))
            .order_by(W::UpdatedAt, Order::Desc)
            .order_by(W::Id, Order::Desc)
            .limit(limit);
        if let Some(after) = after {
            newest.cond_where(after.clone());
        }
        // Wrapped, so the union does not take the branch's ORDER BY and LIMIT for its own.
        Query::select()
            .columns([W::Id, W::UpdatedAt])
            .from_subquery(newest, Alias::new(format!("newest_{status}")))
            .to_owned()
    };
    let names = status_names(statuses);
    let mut merged = match names.split_first() {
        Some((first, rest)) => {
            let mut merged = branch(first);
            for name in rest {
                merged.union(UnionType::All, branch(name));
            }
            merged
        }
        // No status at all: an empty page.
        None => Query::select()
            .columns([W::Id, W::UpdatedAt])
            .from(workflow_states::Entity)
            .and_where(Expr::val(1).eq(0))
            .to_owned(),
    };
    let page = Alias::new("page");
    Query::select()
        .column((page.clone(), W::Id))
        .from_subquery(std::mem::take(&mut merged), page.clone())
        .order_by((page.clone(), W::UpdatedAt), Order::Desc)
        .order_by((page, W::Id), Order::Desc)
        .limit(limit)
        .to_owned()
}

/// The workflows of the page `page` (the ids of [`page_ids`]), or all matching `filter`.
async fn read_page<C: Db>(
    conn: &C,
    filter: Condition,
    page: Option<SelectStatement>,
) -> Result<ListedPage> {
    use workflow_states::Column as W;
    let backend = conn.get_database_backend();
    let ids = page.unwrap_or_else(|| {
        Query::select()
            .column(W::Id)
            .from(workflow_states::Entity)
            .cond_where(filter.clone())
            .to_owned()
    });
    let rows = readable_workflows(backend)
        .filter(W::Id.in_subquery(ids.clone()))
        .order_by_desc(W::UpdatedAt)
        .order_by_desc(W::Id);
    let rows: Vec<convert::WorkflowRow> = rows.into_model().all(conn).await?;
    if rows.is_empty() {
        return Ok(ListedPage {
            states: Vec::new(),
            skipped: Vec::new(),
            last: None,
        });
    }
    let last = last_readable(rows.iter().map(|row| (&row.updated_at, row.id)));
    let steps = find_readable::<step_states::Entity>(backend)
        .filter(step_states::Column::WorkflowStateId.in_subquery(ids))
        .into_model()
        .all(conn)
        .await?;
    let (states, skipped) = convert::workflows_from_rows(rows, steps);
    Ok(ListedPage {
        states,
        skipped,
        last,
    })
}
