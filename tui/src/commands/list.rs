//! `wfadmin list`: the workflows table (or JSON), active ones first, and the lease words the UI shares.

use std::io::Write;

use chrono::{DateTime, Utc};
use llm_orchestrator_state::admin::{StatusCounts, WorkflowPage, WorkflowQuery, WorkflowSummary};
use llm_orchestrator_state::{StateStoreError, WorkflowStatus};
use serde_json::{Value, json};

use super::print_json;
use crate::db::{self, Store};
use crate::error::{AdminError, Result};
use crate::format;

/// A workflow summary as JSON.
pub fn summary_json(row: &WorkflowSummary) -> Value {
    json!({
        "id": row.id,
        "workflow_id": row.workflow_id,
        "workflow_name": row.workflow_name,
        "status": row.status,
        "user_id": row.user_id,
        "started_at": row.started_at,
        "updated_at": row.updated_at,
        "completed_at": row.completed_at,
        "error": row.error,
        "steps_done": row.steps_done,
        "steps_total": row.steps_total,
        "checkpoints": row.checkpoint_count,
        "lease_owner": row.lease_owner,
        "lease_expires_at": row.lease_expires_at,
        "lease_expired": row.lease_expired,
    })
}

/// Who holds an active workflow's recovery lease as of `now`, and for how long it has
/// been expired if it has (its owner stopped renewing it, a crashed replica, and
/// `recover_workflows` will hand the workflow to another). `None` when nobody holds it
/// or the workflow has finished.
pub fn lease_of(
    row: &WorkflowSummary,
    now: DateTime<Utc>,
) -> Option<(&str, Option<chrono::Duration>)> {
    let owner = row
        .lease_owner
        .as_deref()
        .filter(|_| row.status.is_active())?;
    let expired_for = row
        .lease_expires_at
        .filter(|expires_at| *expires_at < now)
        .map(|expires_at| now - expires_at);
    Some((owner, expired_for))
}

/// Which workflows `list` shows.
#[derive(Debug, Default)]
pub struct ListFilter {
    /// Only pending, running and paused ones.
    pub active: bool,
    /// Only active ones whose recovery lease expired.
    pub lease_expired: bool,
    /// Only this status.
    pub status: Option<WorkflowStatus>,
}

/// A workflow's lease in words, as of `now`: `-`, `worker-1, until 2026-11-30 14:07:02 UTC`
/// or `worker-2, expired 3m ago`; the flag is true when it expired.
pub fn lease_words(row: &WorkflowSummary, now: DateTime<Utc>) -> (String, bool) {
    match lease_of(row, now) {
        None => ("-".to_owned(), false),
        Some((owner, None)) => (
            format!(
                "{}, until {}",
                format::printable(owner),
                format::time_utc(row.lease_expires_at)
            ),
            false,
        ),
        Some((owner, Some(expired_for))) => (
            format!(
                "{}, expired {} ago",
                format::printable(owner),
                format::ago(expired_for)
            ),
            true,
        ),
    }
}

/// The workflows list's row of workflow `id` (lease, counts), read now; `None` if it
/// was deleted since it was read.
pub(super) async fn summary_of(store: &Store, id: uuid::Uuid) -> Result<Option<WorkflowSummary>> {
    match store.workflow_summary(&id).await {
        Ok(row) => Ok(Some(row)),
        Err(StateStoreError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// How many workflows match `list`'s filter, from the counts per status; `None` when
/// the counts cannot tell (expired leases of one status are not counted apart).
fn matching_total(
    counts: &StatusCounts,
    only: &ListFilter,
    status: Option<WorkflowStatus>,
) -> Option<u64> {
    match (only.lease_expired, status) {
        (true, Some(_)) => None,
        (true, None) => Some(counts.lease_expired),
        (false, Some(status)) => Some(counts.get(status)),
        (false, None) if only.active => Some(counts.active()),
        (false, None) => Some(counts.total()),
    }
}

/// What `list` says when a full page hid workflows that match: how many, and the
/// `--limit` that shows them. `None` when the page showed them all.
async fn hidden_note(
    store: &Store,
    query: &WorkflowQuery,
    only: &ListFilter,
    page: &WorkflowPage,
) -> Result<Option<String>> {
    let Some(next) = page.next.clone() else {
        return Ok(None);
    };
    let shown = page.rows.len() as u64;
    let counts = store.status_counts().await?;
    let note = match matching_total(&counts, only, query.statuses.first().copied()) {
        Some(total) if total > shown => Some(format!(
            "showing {shown} of {total} workflows; --limit {total} shows them all"
        )),
        Some(_) => None,
        None => {
            let beyond = WorkflowQuery {
                after: Some(next),
                limit: 1,
                ..query.clone()
            };
            let more = !store.workflow_page(&beyond).await?.rows.is_empty();
            more.then(|| {
                format!("showing the first {shown} workflows; there are more: --limit N for more")
            })
        }
    };
    Ok(note)
}

/// `list`: the table (or JSON) on `out`; when more workflows match than `limit`, a note
/// saying so on `notes` (stderr), which keeps `--json` output valid.
pub async fn list(
    store: &Store,
    clock: db::Clock,
    out: &mut impl Write,
    notes: &mut impl Write,
    only: &ListFilter,
    limit: u64,
    as_json: bool,
) -> Result<()> {
    let (page, query) = list_page(store, only, limit).await?;
    if as_json {
        print_json(
            out,
            &Value::Array(page.rows.iter().map(summary_json).collect()),
        )?;
    } else {
        write_list_table(out, &page, clock.now())?;
    }
    if let Some(note) = hidden_note(store, &query, only, &page).await? {
        out.flush()?;
        writeln!(notes, "{note}")?;
    }
    Ok(())
}

/// The page `list` shows, and the query that read it.
async fn list_page(
    store: &Store,
    only: &ListFilter,
    limit: u64,
) -> Result<(WorkflowPage, WorkflowQuery)> {
    let statuses: Vec<WorkflowStatus> = only.status.into_iter().collect();
    if let Some(finished) = statuses.iter().find(|status| !status.is_active()) {
        let contradicts = match (only.lease_expired, only.active) {
            (true, _) => Some("--lease-expired lists active workflows only"),
            (false, true) => Some("--active lists active workflows only"),
            (false, false) => None,
        };
        if let Some(why) = contradicts {
            return Err(AdminError::new(format!(
                "--status {finished} lists none: {why}, and a {finished} workflow has finished"
            )));
        }
    }
    let query = WorkflowQuery {
        statuses,
        active_only: only.active,
        lease_expired: only.lease_expired,
        limit,
        ..Default::default()
    };
    Ok((store.workflow_page(&query).await?, query))
}

/// `list`'s table, leases as of `now` (the database's clock).
fn write_list_table(out: &mut impl Write, page: &WorkflowPage, now: DateTime<Utc>) -> Result<()> {
    let rows: Vec<Vec<String>> = page
        .rows
        .iter()
        .map(|row| {
            vec![
                row.status.to_string(),
                row.workflow_id.clone(),
                format::cut(&row.workflow_name, 40),
                row.user_id.clone().unwrap_or_else(|| "-".into()),
                format::time(Some(row.started_at)),
                format::time(Some(row.updated_at)),
                format!("{}/{}", row.steps_done, row.steps_total),
                row.checkpoint_count.to_string(),
                match lease_of(row, now) {
                    None => "-".into(),
                    Some((owner, None)) => owner.to_owned(),
                    Some((owner, Some(expired_for))) => {
                        format!("{owner}, expired {} ago", format::ago(expired_for))
                    }
                },
                row.id.to_string(),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        format::table(
            &[
                "STATUS",
                "WORKFLOW_ID",
                "NAME",
                "USER",
                "STARTED (UTC)",
                "UPDATED (UTC)",
                "STEPS",
                "CKPTS",
                "LEASE",
                "ID"
            ],
            &rows
        )
    )?;
    if rows.is_empty() {
        writeln!(out, "(no workflows)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_orchestrator_state::StateStore;

    use crate::commands::tests::printed_list;
    use llm_orchestrator_state::{WorkflowState, WorkflowStatus};
    use serde_json::json;

    /// `list`'s output and note for this filter and limit.
    async fn listed(store: &Store, only: &ListFilter, limit: u64) -> (Value, String) {
        let (out, notes) = printed_list(store, db::Clock::default(), only, limit, true).await;
        (serde_json::from_str(&out).unwrap(), notes)
    }

    #[tokio::test]
    async fn list_says_on_stderr_how_many_it_left_out() {
        let store = db::open(&db::Target::new("sqlite::memory:")).await.unwrap();
        for n in 0..5 {
            let state = WorkflowState::new(format!("wf-{n}"), "Demo", None, json!({}));
            store.save_workflow_state(&state).await.unwrap();
        }
        let all = ListFilter::default();
        let (rows, note) = listed(&store, &all, 3).await;
        assert_eq!(rows.as_array().unwrap().len(), 3);
        assert_eq!(note, "showing 3 of 5 workflows; --limit 5 shows them all\n");
        // Exactly as many as the limit, or fewer: nothing to say.
        assert_eq!(listed(&store, &all, 5).await.1, "");
        assert_eq!(listed(&store, &all, 6).await.1, "");

        // Stuck ones of one status: counted by reading one more.
        let claimed = store
            .claim_workflows("worker-2", std::time::Duration::ZERO, 3)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let stuck = ListFilter {
            lease_expired: true,
            status: Some(WorkflowStatus::Pending),
            ..Default::default()
        };
        let (rows, note) = listed(&store, &stuck, 2).await;
        assert_eq!(rows.as_array().unwrap().len(), 2);
        assert_eq!(
            note,
            "showing the first 2 workflows; there are more: --limit N for more\n"
        );
        assert_eq!(listed(&store, &stuck, 3).await.1, "");
        let all_stuck = ListFilter {
            lease_expired: true,
            ..Default::default()
        };
        assert_eq!(
            listed(&store, &all_stuck, 1).await.1,
            "showing 1 of 3 workflows; --limit 3 shows them all\n"
        );
    }
}
