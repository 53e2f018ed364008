//! The non-interactive subcommands: human tables by default, `--json` for scripts.

use std::io::{BufRead, IsTerminal, Write};

use chrono::{DateTime, Utc};
use llm_orchestrator_state::admin::{StatusCounts, WorkflowPage, WorkflowQuery, WorkflowSummary};
use llm_orchestrator_state::{
    Checkpoint, CheckpointUsage, Lineage, PruneReport, RetentionPolicy, StateStore,
    StateStoreError, WorkflowBundle, WorkflowState, WorkflowStatus, redact_url,
};
use serde_json::{Value, json};

use crate::cli::MigrateAction;
use crate::db::{self, Store};
use crate::diff::{Change, diff};
use crate::error::{AdminError, Result};
use crate::format;
use crate::output_file;
use crate::rollback_plan::{LiveLease, RollbackPlan};

/// Most checkpoints a command loads for one workflow.
pub const CHECKPOINT_LIMIT: u64 = 1000;

fn print_json(out: &mut impl Write, value: &Value) -> Result<()> {
    writeln!(out, "{}", format::json_pretty(value))?;
    Ok(())
}

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
async fn summary_of(store: &Store, id: uuid::Uuid) -> Result<Option<WorkflowSummary>> {
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

/// The steps of a state, in the order they ran (unstarted last, then by id).
pub fn ordered_steps(state: &WorkflowState) -> Vec<&llm_orchestrator_state::StepState> {
    let mut steps: Vec<_> = state.steps.values().collect();
    steps.sort_by(|a, b| {
        (a.started_at.is_none(), a.started_at, &a.step_id).cmp(&(
            b.started_at.is_none(),
            b.started_at,
            &b.step_id,
        ))
    });
    steps
}

/// A workflow's lineage in words, one line each: where it was forked from, its forks.
/// Workflows that still exist are named by their workflow_id, followed by their uuid if
/// `with_uuids`, else by its last 8 hex digits (a workflow_id may have several runs; the
/// UI is short of room).
pub async fn lineage_lines(store: &Store, lineage: &Lineage, with_uuids: bool) -> Vec<String> {
    let name = async |id: uuid::Uuid| match store.load_workflow_state(&id).await {
        Ok(state) if with_uuids => format!("{} ({id})", format::printable(&state.workflow_id)),
        // Runs can share a workflow_id (two forks to one id): the end of the uuid, its
        // random part, tells them apart where a full one would crowd the screen.
        Ok(state) => format!(
            "{} (uuid …{})",
            format::printable(&state.workflow_id),
            &id.simple().to_string()[24..]
        ),
        Err(_) => format!("{id} (deleted)"),
    };
    let mut lines = Vec::new();
    if let Some(origin) = lineage.forked_from {
        lines.push(format!(
            "forked from {} at checkpoint {}",
            name(origin.workflow_state_id).await,
            origin.checkpoint_id
        ));
    }
    for (fork, checkpoint) in &lineage.forks {
        lines.push(format!(
            "fork {} from checkpoint {checkpoint}",
            name(*fork).await
        ));
    }
    lines
}

/// The workflow a user named (see [`db::find_workflow`]). Named by a workflow_id that
/// several runs share, it is the most recently updated run, and a line on `notes`
/// (stderr) says so: else a user inspecting or exporting an older run gets the wrong one
/// without knowing.
async fn named_workflow(
    store: &Store,
    notes: &mut impl Write,
    command: &str,
    key: &str,
) -> Result<WorkflowState> {
    let state = match db::find_workflow(store, key).await {
        Ok(state) => state,
        Err(err) => return Err(not_a_workflow(store, command, key, err).await),
    };
    note_other_runs(store, notes, key, state.id, &state.workflow_id).await?;
    Ok(state)
}

/// [`named_workflow`]'s list row (see [`db::find_workflow_summary`]): for commands that
/// need no more than its ids, and so serve a workflow whose stored JSON cannot be read.
async fn named_summary(
    store: &Store,
    notes: &mut impl Write,
    command: &str,
    key: &str,
) -> Result<WorkflowSummary> {
    let row = match db::find_workflow_summary(store, key).await {
        Ok(row) => row,
        Err(err) => return Err(not_a_workflow(store, command, key, err).await),
    };
    note_other_runs(store, notes, key, row.id, &row.workflow_id).await?;
    Ok(row)
}

/// The note on `notes` when `key` named run `id` by a `workflow_id` other runs share.
async fn note_other_runs(
    store: &Store,
    notes: &mut impl Write,
    key: &str,
    id: uuid::Uuid,
    workflow_id: &str,
) -> Result<()> {
    if uuid::Uuid::parse_str(key).is_ok_and(|key| key == id) {
        return Ok(());
    }
    let runs = store.count_runs(workflow_id).await?;
    if runs > 1 {
        writeln!(
            notes,
            "{runs} runs have workflow_id {}; showing the most recently updated (uuid {id}); \
             pass a uuid for another",
            format::printable(workflow_id),
        )?;
    }
    Ok(())
}

/// `err`, a workflow `key` not found, unless `key` is a checkpoint's uuid: then which
/// workflow it is of, and the commands meant (`command` on that workflow, or a diff of
/// the checkpoint).
async fn not_a_workflow(store: &Store, command: &str, key: &str, err: AdminError) -> AdminError {
    let Ok(id) = uuid::Uuid::parse_str(key.trim()) else {
        return err;
    };
    match store.get_checkpoint(&id).await {
        Ok(checkpoint) => {
            let workflow = checkpoint.workflow_state_id;
            // Its workflow_id as its snapshot says, when the snapshot is a workflow state
            // (it may be any JSON).
            let named = match checkpoint
                .snapshot
                .get("workflow_id")
                .and_then(Value::as_str)
            {
                Some(workflow_id) => format!("{workflow_id} ({workflow})"),
                None => workflow.to_string(),
            };
            AdminError::new(format!(
                "{id} is a checkpoint of workflow {named}, not a workflow; \
                 did you mean `wfadmin {command} {workflow}`, or `wfadmin diff {id} current` \
                 (the checkpoint against its workflow now)?"
            ))
        }
        Err(_) => err,
    }
}

/// `result` of a command given checkpoint uuids (`args`): a checkpoint not found whose
/// uuid is a workflow's says so, and how to list that workflow's checkpoints.
pub async fn not_a_checkpoint<T>(store: &Store, args: &[String], result: Result<T>) -> Result<T> {
    let err = match result {
        Err(err) if err.is_not_found() => err,
        other => return other,
    };
    for arg in args {
        let Ok(id) = uuid::Uuid::parse_str(arg.trim()) else {
            continue;
        };
        if store.get_checkpoint(&id).await.is_ok() {
            continue;
        }
        if let Ok(row) = store.workflow_summary(&id).await {
            return Err(AdminError::new(format!(
                "{id} is a workflow ({}), not a checkpoint; did you mean `wfadmin checkpoints \
                 {id}`, which lists its checkpoints?",
                row.workflow_id
            )));
        }
    }
    Err(err)
}

/// `show`; a note on `notes` when the workflow_id names several runs.
pub async fn show(
    store: &Store,
    clock: db::Clock,
    out: &mut impl Write,
    notes: &mut impl Write,
    key: &str,
    as_json: bool,
) -> Result<()> {
    let state = named_workflow(store, notes, "show", key).await?;
    let lineage = store.lineage(&state.id).await?;
    let usage = store.checkpoint_usage(&state.id).await?;
    let summary = summary_of(store, state.id).await?;
    if as_json {
        let mut value = serde_json::to_value(&state)?;
        if let Value::Object(fields) = &mut value {
            fields.insert("lineage".into(), serde_json::to_value(&lineage)?);
            fields.insert("checkpoint_usage".into(), serde_json::to_value(usage)?);
            let lease = summary.as_ref();
            fields.insert(
                "lease_owner".into(),
                json!(lease.and_then(|row| row.lease_owner.as_deref())),
            );
            fields.insert(
                "lease_expires_at".into(),
                json!(lease.and_then(|row| row.lease_expires_at)),
            );
        }
        return print_json(out, &value);
    }
    // Stored strings are shown with their control characters escaped (they come from
    // LLMs and tools); multi-line ones line by line.
    let one_line = format::printable;
    writeln!(out, "id:           {}", state.id)?;
    writeln!(out, "workflow_id:  {}", one_line(&state.workflow_id))?;
    writeln!(out, "name:         {}", one_line(&state.workflow_name))?;
    writeln!(out, "status:       {}", state.status)?;
    writeln!(
        out,
        "user:         {}",
        one_line(state.user_id.as_deref().unwrap_or("-"))
    )?;
    writeln!(
        out,
        "started:      {}",
        format::time_utc(Some(state.started_at))
    )?;
    writeln!(
        out,
        "updated:      {}",
        format::time_utc(Some(state.updated_at))
    )?;
    writeln!(
        out,
        "completed:    {}",
        format::time_utc(state.completed_at)
    )?;
    let error = state.error.as_deref().unwrap_or("-");
    let mut error_lines = format::printable_lines(error);
    writeln!(
        out,
        "error:        {}",
        error_lines.next().unwrap_or_default()
    )?;
    for line in error_lines {
        writeln!(out, "              {line}")?;
    }
    if let Some(row) = &summary {
        let (lease, _) = lease_words(row, clock.now());
        writeln!(out, "lease:        {lease}")?;
    }
    writeln!(out, "checkpoints:  {}", usage_text(&usage))?;
    let lines = lineage_lines(store, &lineage, true).await;
    if lines.is_empty() {
        writeln!(out, "lineage:      -")?;
    }
    for (i, line) in lines.iter().enumerate() {
        let head = if i == 0 { "lineage:" } else { "" };
        writeln!(out, "{head:<14}{line}")?;
    }
    writeln!(out, "context:")?;
    for line in format::json_pretty(&state.context).lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "steps:")?;
    let steps = ordered_steps(&state);
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|step| {
            vec![
                step.step_id.clone(),
                step.status.to_string(),
                step.retry_count.to_string(),
                format::time(step.started_at),
                format::duration(step.started_at, step.completed_at),
                step.error
                    .as_deref()
                    .map_or_else(|| "-".into(), short_error),
                format::cut(&step.outputs.to_string(), 60),
            ]
        })
        .collect();
    for line in format::table(
        &[
            "STEP",
            "STATUS",
            "RETRIES",
            "STARTED (UTC)",
            "DURATION",
            "ERROR",
            "OUTPUTS",
        ],
        &rows,
    )
    .lines()
    {
        writeln!(out, "  {line}")?;
    }
    // Errors cut in the table, in full: one padded to the longest would push every row's
    // outputs off the screen.
    let cut = steps
        .iter()
        .filter_map(|step| Some((step, step.error.as_deref()?)))
        .filter(|(_, error)| !error.trim().is_empty() && short_error(error) != error.trim());
    for (n, (step, error)) in cut.enumerate() {
        if n == 0 {
            writeln!(out, "step errors:")?;
        }
        writeln!(out, "  {}:", one_line(&step.step_id))?;
        for line in format::printable_lines(error) {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}

/// A step's error as the `show` table has room for: its first line, cut at 60
/// characters, with `…` when more lines follow (`-` for a blank error).
fn short_error(error: &str) -> String {
    let mut lines = error.trim().lines();
    let Some(first) = lines.next() else {
        return "-".to_owned();
    };
    if lines.next().is_some() {
        format::cut(&format!("{} …", first.trim_end()), 60)
    } else {
        format::cut(first, 60)
    }
}

/// `12 checkpoints, 9.8 KiB, 2 pinned`.
pub fn usage_text(usage: &CheckpointUsage) -> String {
    format!(
        "{}, {}, {} pinned",
        format::count(usage.count, "checkpoint", "checkpoints"),
        format::size(usage.bytes),
        usage.pinned
    )
}

/// `checkpoints`: each with its size, the workflow's status in it and its pin, then the
/// workflow's totals; a note on `notes` when the workflow_id names several runs.
pub async fn checkpoints(
    store: &Store,
    out: &mut impl Write,
    notes: &mut impl Write,
    key: &str,
    as_json: bool,
) -> Result<()> {
    // Its row only: the checkpoints of a workflow whose own JSON cannot be read are what
    // an operator repairs it from.
    let state = named_summary(store, notes, "checkpoints", key).await?;
    let list = store
        .list_checkpoint_infos(&state.id, CHECKPOINT_LIMIT, 0)
        .await?;
    let usage = store.checkpoint_usage(&state.id).await?;
    if as_json {
        return print_json(
            out,
            &json!({
                "workflow_state_id": state.id,
                "workflow_id": state.workflow_id,
                "usage": usage,
                "checkpoints": list,
            }),
        );
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                c.step_id.clone(),
                format::time(Some(c.timestamp)),
                format::size(c.size_bytes),
                c.workflow_status
                    .map_or("unknown", |status| status.as_str())
                    .to_owned(),
                c.pinned.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let which = if usage.count > list.len() as u64 {
        format!("the newest {} of {}", list.len(), usage.count)
    } else {
        "newest first".to_owned()
    };
    writeln!(
        out,
        "checkpoints of {} ({}), {which}:",
        format::printable(&state.workflow_id),
        state.id
    )?;
    write!(
        out,
        "{}",
        format::table(
            &["ID", "STEP", "TAKEN (UTC)", "SIZE", "STATUS", "PINNED"],
            &rows
        )
    )?;
    writeln!(out, "total: {}", usage_text(&usage))?;
    Ok(())
}

/// One side of a diff: a checkpoint's snapshot or a workflow's current state.
pub struct DiffSide {
    /// The checkpoint's uuid, or `current`.
    pub id: String,
    /// For people: `after retrieve (2026-11-25 09:00:03)` or `current state`.
    pub label: String,
    /// The state as JSON.
    pub value: Value,
    /// The workflow it belongs to (store uuid).
    pub workflow_state_id: uuid::Uuid,
    /// That workflow's orchestrator workflow_id, as the state says.
    pub workflow_id: String,
}

impl DiffSide {
    fn checkpoint(checkpoint: Checkpoint) -> Self {
        let workflow_id = checkpoint
            .snapshot
            .get("workflow_id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        Self {
            id: checkpoint.id.to_string(),
            label: format!(
                "after {} ({})",
                checkpoint.step_id,
                format::time(Some(checkpoint.timestamp))
            ),
            value: checkpoint.snapshot,
            workflow_state_id: checkpoint.workflow_state_id,
            workflow_id,
        }
    }

    /// The workflow, for people: `doc-summary-0021 (01a2...)`.
    fn workflow(&self) -> String {
        format!("{} ({})", self.workflow_id, self.workflow_state_id)
    }
}

/// When `old` and `new` belong to different workflows (two checkpoints picked from two
/// lists; a diff between them reads like one workflow's history otherwise): which.
pub fn different_workflows(old: &DiffSide, new: &DiffSide) -> Option<String> {
    (old.workflow_state_id != new.workflow_state_id).then(|| {
        format!(
            "checkpoints of different workflows: {} -> {}",
            old.workflow(),
            new.workflow()
        )
    })
}

/// A diff's title: what it compares, and whether those are of two workflows.
pub fn diff_title(old: &DiffSide, new: &DiffSide) -> String {
    let title = format!("{} -> {}", old.label, new.label);
    match different_workflows(old, new) {
        Some(note) => format!("{title}; {note}"),
        None => title,
    }
}

/// The two documents a `diff` compares: a checkpoint, and another checkpoint or the
/// current state of the first one's workflow.
pub async fn diff_sides(store: &Store, from: &str, to: &str) -> Result<(DiffSide, DiffSide)> {
    let from_id = db::parse_uuid("checkpoint", from)?;
    let old = store.get_checkpoint(&from_id).await?;
    let new = if to.eq_ignore_ascii_case("current") {
        let current = store.load_workflow_state(&old.workflow_state_id).await?;
        DiffSide {
            id: "current".to_owned(),
            label: "current state".to_owned(),
            value: serde_json::to_value(&current)?,
            workflow_state_id: current.id,
            workflow_id: current.workflow_id,
        }
    } else {
        let to_id = db::parse_uuid("checkpoint", to)?;
        DiffSide::checkpoint(store.get_checkpoint(&to_id).await?)
    };
    Ok((DiffSide::checkpoint(old), new))
}

/// `diff`.
pub async fn diff_command(
    store: &Store,
    out: &mut impl Write,
    from: &str,
    to: &str,
    as_json: bool,
) -> Result<()> {
    let (old, new) = diff_sides(store, from, to).await?;
    let changes = diff(&old.value, &new.value);
    if as_json {
        return print_json(
            out,
            &json!({
                "from": old.id,
                "to": new.id,
                "from_label": old.label,
                "to_label": new.label,
                "from_workflow": {"id": old.workflow_state_id, "workflow_id": old.workflow_id},
                "to_workflow": {"id": new.workflow_state_id, "workflow_id": new.workflow_id},
                "changes": changes.iter().map(Change::to_json).collect::<Vec<_>>(),
            }),
        );
    }
    writeln!(
        out,
        "diff {} -> {}:",
        format::printable(&old.label),
        format::printable(&new.label)
    )?;
    if let Some(note) = different_workflows(&old, &new) {
        writeln!(out, "warning: {}", format::printable(&note))?;
    }
    for change in &changes {
        writeln!(out, "{}", change.describe())?;
    }
    if changes.is_empty() {
        writeln!(out, "(no differences)")?;
    }
    Ok(())
}

/// The plan for rolling back to a checkpoint, with the replica that holds the workflow's
/// lease if one does (it would overwrite the rollback).
pub async fn plan_rollback(
    store: &Store,
    clock: db::Clock,
    checkpoint_id: uuid::Uuid,
) -> Result<RollbackPlan> {
    let checkpoint = store.get_checkpoint(&checkpoint_id).await?;
    let workflow_state_id = checkpoint.workflow_state_id;
    // A workflow whose stored JSON cannot be read is what a rollback repairs.
    let plan = match store.load_workflow_state(&workflow_state_id).await {
        Ok(current) => RollbackPlan::new(current, checkpoint)?,
        Err(err) if err.is_unreadable_data() => RollbackPlan::over_unreadable(checkpoint, &err)?,
        Err(err) => return Err(err.into()),
    };
    let lease = summary_of(store, workflow_state_id)
        .await?
        .and_then(|row| LiveLease::of(&row, clock.now()));
    Ok(plan.with_live_lease(lease))
}

/// What the operator said on `rollback`'s command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Consented {
    /// `--yes`: do not ask.
    pub yes: bool,
    /// `--override-lease`: roll back even while a replica holds the workflow's lease.
    pub override_lease: bool,
}

/// `rollback`: prints the plan, asks unless `yes`, then rolls back. While a replica holds
/// the workflow's lease, the rollback ends that lease when the operator confirmed after
/// the plan's warning or passed `--override-lease`; with `--yes` alone it is refused,
/// naming the holder, before anything is written.
pub async fn rollback(
    store: &Store,
    clock: db::Clock,
    out: &mut impl Write,
    input: &mut impl BufRead,
    interactive: bool,
    checkpoint: &str,
    consented: Consented,
) -> Result<()> {
    let Consented {
        yes,
        override_lease,
    } = consented;
    let id = db::parse_uuid("checkpoint", checkpoint)?;
    let plan = plan_rollback(store, clock, id).await?;
    for line in plan.lines() {
        writeln!(out, "{line}")?;
    }
    if plan.refused.is_some() {
        return Err(AdminError::new(
            "not rolling back: the checkpoint holds no state of this workflow; nothing changed",
        ));
    }
    if let Some(lease) = plan.live_lease.as_ref().filter(|_| yes && !override_lease) {
        return Err(AdminError::new(format!(
            "not rolling back: {} holds the workflow's lease (it is running it); pass \
             --override-lease to roll back anyway and end its lease",
            format::printable(&lease.owner)
        )));
    }
    if !yes {
        let consent = Consent {
            input,
            interactive,
            yes,
        };
        consent.ask(
            out,
            "Roll back?",
            "not rolling back: stdin is not a terminal; pass --yes to confirm",
            "rollback cancelled; nothing changed",
        )?;
    }
    // Confirmed under the warning, or told to: the lease ends with the rollback. A lease
    // taken since the plan was read still refuses a plain rollback.
    let state = if override_lease || plan.live_lease.is_some() {
        store.rollback_to_checkpoint_overriding_lease(&id).await?
    } else {
        store.rollback_to_checkpoint(&id).await?
    };
    tracing::info!(checkpoint_id = %id, workflow_state_id = %state.id, "rolled back");
    writeln!(
        out,
        "rolled back workflow {} ({}) to checkpoint {}: status {}, {}",
        format::printable(&state.workflow_id),
        state.id,
        id,
        state.status,
        format::count(state.steps.len() as u64, "step", "steps")
    )?;
    Ok(())
}

/// How a destructive command (`rollback`, `prune`) gets the operator's yes: `--yes`, or
/// `y` typed at a `[y/N]` question on a terminal. Without a terminal and without `--yes`
/// it refuses: a script must say `--yes`, not be answered by whatever its stdin holds.
pub struct Consent<'a, R> {
    /// Where the answer is read.
    pub input: &'a mut R,
    /// Whether `input` is a terminal someone can answer from.
    pub interactive: bool,
    /// `--yes`: do not ask.
    pub yes: bool,
}

impl<R: BufRead> Consent<'_, R> {
    /// Asks `question` with `[y/N]` on `out` unless `--yes` was given; an error (nothing
    /// done) saying `no_terminal` without a terminal, or `cancelled` for any answer but
    /// y or yes.
    pub fn ask(
        self,
        out: &mut impl Write,
        question: &str,
        no_terminal: &str,
        cancelled: &str,
    ) -> Result<()> {
        if self.yes {
            return Ok(());
        }
        if !self.interactive {
            return Err(AdminError::new(no_terminal));
        }
        write!(out, "{question} [y/N] ")?;
        out.flush()?;
        let mut answer = String::new();
        self.input.read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return Err(AdminError::new(cancelled));
        }
        Ok(())
    }
}

/// Whether stdin is a terminal (for `rollback`'s and `prune`'s question).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The retention policy `prune`'s flags describe; at least one rule must be set.
pub fn retention_policy(
    older_than: Option<&str>,
    keep_checkpoints: Option<u64>,
    keep_younger_than: Option<&str>,
) -> Result<RetentionPolicy> {
    let age = |text: &str| retention_age(text).map_err(AdminError::new);
    let policy = RetentionPolicy {
        keep_last: keep_checkpoints.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        keep_younger_than: keep_younger_than.map(age).transpose()?,
        delete_finished_older_than: older_than.map(age).transpose()?,
    };
    if policy == RetentionPolicy::default() {
        return Err(AdminError::new(
            "nothing to prune: give --older-than, --keep-checkpoints or --keep-younger-than",
        ));
    }
    Ok(policy)
}

/// An age of a retention rule (`30d`, `12h`), as `prune`'s flags and the UI read it.
fn retention_age(text: &str) -> std::result::Result<std::time::Duration, String> {
    format::parse_age(text)?
        .to_std()
        .map_err(|_| format!("{text:?} is not a positive age"))
}

/// A policy as the UI's prune popup shows it for editing, one `rule=value` per flag of
/// `prune`, `off` for a rule not set: `older-than=30d keep-checkpoints=10 keep-younger-than=off`.
pub fn policy_text(policy: &RetentionPolicy) -> String {
    let age = |age: Option<std::time::Duration>| age.map_or_else(|| "off".to_owned(), format::age);
    format!(
        "older-than={} keep-checkpoints={} keep-younger-than={}",
        age(policy.delete_finished_older_than),
        policy
            .keep_last
            .map_or_else(|| "off".to_owned(), |keep| keep.to_string()),
        age(policy.keep_younger_than)
    )
}

/// Reads a policy written as [`policy_text`] writes it: the rules in any order, each at
/// most once, a rule left out or `off` not set (the names of the store's fields,
/// `delete-finished-older-than` and `keep-last`, are read too). It refuses what
/// `prune`'s flags refuse: no rule at all, and `keep-checkpoints=0` alone.
pub fn parse_policy_text(text: &str) -> std::result::Result<RetentionPolicy, String> {
    let mut policy = RetentionPolicy::default();
    let mut seen = Vec::new();
    for rule in text.split_whitespace() {
        let (name, value) = rule.split_once('=').ok_or_else(|| {
            format!(
                "{rule:?} is not rule=value (older-than=30d keep-checkpoints=10 \
                 keep-younger-than=1d; off turns a rule off)"
            )
        })?;
        let name = match name {
            "older-than" | "delete-finished-older-than" => "older-than",
            "keep-checkpoints" | "keep-last" => "keep-checkpoints",
            "keep-younger-than" => "keep-younger-than",
            _ => {
                return Err(format!(
                    "unknown rule {name:?}: the rules are older-than, keep-checkpoints \
                     and keep-younger-than"
                ));
            }
        };
        if seen.contains(&name) {
            return Err(format!("{name} is given twice"));
        }
        seen.push(name);
        let off = value == "off";
        let age = || {
            (!off)
                .then(|| retention_age(value).map_err(|err| format!("{name}: {err}")))
                .transpose()
        };
        match name {
            "older-than" => policy.delete_finished_older_than = age()?,
            "keep-younger-than" => policy.keep_younger_than = age()?,
            _ if off => policy.keep_last = None,
            _ => {
                let keep = value.parse::<usize>().map_err(|_| {
                    format!("keep-checkpoints: {value:?} is not a number of checkpoints (10)")
                })?;
                policy.keep_last = Some(keep);
            }
        }
    }
    if policy == RetentionPolicy::default() {
        return Err(
            "nothing to prune: set older-than, keep-checkpoints or keep-younger-than".into(),
        );
    }
    if policy.keep_last == Some(0) && policy.keep_younger_than.is_none() {
        return Err(
            "keep-checkpoints=0 would delete every unpinned checkpoint of every \
                    workflow (an active one keeps only its newest); keep at least 1, or \
                    set keep-younger-than to keep the recent ones"
                .into(),
        );
    }
    Ok(policy)
}

/// A policy in words: `finished workflows older than 30d; keep the newest 10 checkpoints`.
pub fn describe_policy(policy: &RetentionPolicy) -> String {
    let mut rules = Vec::new();
    if let Some(age) = policy.delete_finished_older_than {
        rules.push(format!(
            "completed or failed workflows not updated for {}",
            format::age(age)
        ));
    }
    if let Some(keep) = policy.keep_last {
        rules.push(format!("checkpoints beyond the newest {keep} per workflow"));
    }
    if let Some(age) = policy.keep_younger_than {
        rules.push(format!("checkpoints older than {}", format::age(age)));
    }
    let mut text = rules.join("; ");
    if policy.keep_last.is_some() && policy.keep_younger_than.is_some() {
        text.push_str(" (a checkpoint goes only if both rules let it go)");
    }
    // Pins only protect checkpoints from the checkpoint rules: a finished workflow that
    // `--older-than` deletes takes every checkpoint it has, pinned ones too.
    if policy.delete_finished_older_than.is_some() {
        text.push_str(
            "; pinned checkpoints of the workflows that stay are kept\
             ; a deleted workflow takes all its checkpoints, pinned ones too",
        );
    } else {
        text.push_str("; pinned checkpoints are kept");
    }
    text
}

/// `prune`'s report as text: what went (or would go) under which rules.
fn write_prune_report(
    out: &mut impl Write,
    heading: &str,
    policy: &RetentionPolicy,
    report: &PruneReport,
) -> Result<()> {
    writeln!(out, "{heading}: {}", describe_policy(policy))?;
    write!(
        out,
        "{}",
        format::table(
            &["WORKFLOWS", "CHECKPOINTS", "BYTES"],
            &[vec![
                report.workflows.to_string(),
                report.checkpoints.to_string(),
                format::size(report.bytes),
            ]]
        )
    )?;
    Ok(())
}

/// `prune --json`'s policy, its ages in whole seconds under keys that say so
/// (`"delete_finished_older_than_secs": 2592000` for `--older-than 30d`), not serde's
/// `{"secs": .., "nanos": ..}` of a `Duration`; `null` for a rule not given.
fn policy_json(policy: &RetentionPolicy) -> Value {
    let secs = |age: Option<std::time::Duration>| age.map(|age| age.as_secs());
    json!({
        "keep_last": policy.keep_last,
        "keep_younger_than_secs": secs(policy.keep_younger_than),
        "delete_finished_older_than_secs": secs(policy.delete_finished_older_than),
    })
}

/// `prune`: previews the policy (`dry_run`), or applies it and prints what went. Unless
/// `consent` says `--yes`, it first prints what would go and asks, like `rollback`; a
/// refusal or a no deletes nothing. With `as_json` the preview and the question go to
/// `notes` (stderr), so that stdout holds only the JSON report.
pub async fn prune(
    store: &Store,
    out: &mut impl Write,
    notes: &mut impl Write,
    consent: Consent<'_, impl BufRead>,
    policy: &RetentionPolicy,
    dry_run: bool,
    as_json: bool,
) -> Result<()> {
    let report = if dry_run || consent.yes {
        store.prune(policy, dry_run).await?
    } else {
        let preview = store.prune(policy, true).await?;
        let mut asked: &mut dyn Write = if as_json { notes } else { out };
        write_prune_report(&mut asked, "would delete", policy, &preview)?;
        if preview.workflows == 0 && preview.checkpoints == 0 {
            // Nothing to ask about; and nothing deleted, whatever appeared since.
            writeln!(asked, "nothing to delete")?;
            if !as_json {
                return Ok(());
            }
            PruneReport {
                dry_run: false,
                ..preview
            }
        } else {
            consent.ask(
                &mut asked,
                "Prune?",
                "not pruning: stdin is not a terminal; pass --yes to confirm (--dry-run \
                 only previews)",
                "prune cancelled; nothing deleted",
            )?;
            store.prune(policy, false).await?
        }
    };
    if as_json {
        return print_json(
            out,
            &json!({ "policy": policy_json(policy), "report": report }),
        );
    }
    let heading = if dry_run {
        "would delete (dry run)"
    } else {
        "deleted"
    };
    write_prune_report(out, heading, policy, &report)
}

/// A checkpoint's pin label, `None` when it has none; `NotFound` for an unknown one.
async fn pin_of(store: &Store, id: uuid::Uuid) -> Result<Option<String>> {
    Ok(store.checkpoint_info(&id).await?.pinned)
}

/// `pin`: says what changed, and says so when nothing did (the same label already).
pub async fn pin(store: &Store, out: &mut impl Write, checkpoint: &str, label: &str) -> Result<()> {
    let id = db::parse_uuid("checkpoint", checkpoint)?;
    let before = pin_of(store, id).await?;
    let shown = format::printable(label);
    if before.as_deref() == Some(label) {
        writeln!(
            out,
            "checkpoint {id} is already pinned: {shown}; nothing changed"
        )?;
        return Ok(());
    }
    store.pin_checkpoint(&id, label).await?;
    match before {
        Some(old) => writeln!(
            out,
            "pinned checkpoint {id}: {shown} (was: {})",
            format::printable(&old)
        )?,
        None => writeln!(out, "pinned checkpoint {id}: {shown}")?,
    }
    Ok(())
}

/// `unpin`: says what changed, and says so when nothing did (it was not pinned).
pub async fn unpin(store: &Store, out: &mut impl Write, checkpoint: &str) -> Result<()> {
    let id = db::parse_uuid("checkpoint", checkpoint)?;
    let Some(label) = pin_of(store, id).await? else {
        writeln!(out, "checkpoint {id} was not pinned; nothing changed")?;
        return Ok(());
    };
    store.unpin_checkpoint(&id).await?;
    writeln!(
        out,
        "unpinned checkpoint {id} (was pinned: {})",
        format::printable(&label)
    )?;
    Ok(())
}

/// `fork`.
pub async fn fork(
    store: &Store,
    out: &mut impl Write,
    checkpoint: &str,
    new_workflow_id: &str,
) -> Result<()> {
    let id = db::parse_uuid("checkpoint", checkpoint)?;
    let state = store.fork_from_checkpoint(&id, new_workflow_id).await?;
    writeln!(
        out,
        "forked workflow {} ({}) from checkpoint {id}: status {}, {}",
        format::printable(&state.workflow_id),
        state.id,
        state.status,
        format::count(state.steps.len() as u64, "step", "steps")
    )?;
    Ok(())
}

/// Where `export --output` writes, and whether it may replace an existing file.
#[derive(Debug, Clone, Copy)]
pub struct OutputFile<'a> {
    /// The file.
    pub path: &'a std::path::Path,
    /// `--force`: replace it if it exists.
    pub force: bool,
}

/// `export`: the bundle as JSON, to `output` or to `out`; a note on `notes` when the
/// workflow_id names several runs. An existing `output` is refused unless forced, before
/// anything is read, and the file appears only complete (see [`output_file`]).
pub async fn export(
    store: &Store,
    out: &mut impl Write,
    notes: &mut impl Write,
    key: &str,
    output: Option<OutputFile<'_>>,
) -> Result<()> {
    if let Some(output) = output {
        output_file::check(output.path, output.force)?;
    }
    let state = named_workflow(store, notes, "export", key).await?;
    let bundle = store.export_workflow(&state.id).await?;
    let text = format::json_pretty(&serde_json::to_value(&bundle)?);
    match output {
        None => writeln!(out, "{text}")?,
        Some(OutputFile { path, force }) => {
            output_file::write(path, force, |file| writeln!(file, "{text}"))?;
            writeln!(
                out,
                "exported workflow {} ({}) with {} to {}",
                format::printable(&state.workflow_id),
                state.id,
                format::count(bundle.checkpoints.len() as u64, "checkpoint", "checkpoints"),
                path.display()
            )?;
        }
    }
    Ok(())
}

/// `import`: a bundle from `input` (a file's or stdin's text).
pub async fn import(
    store: &Store,
    out: &mut impl Write,
    input: &str,
    source: &str,
    new_ids: bool,
) -> Result<()> {
    let bundle: WorkflowBundle = serde_json::from_str(input)
        .map_err(|err| AdminError::new(format!("{source} is not a workflow bundle: {err}")))?;
    let state = store.import_workflow(&bundle, new_ids).await?;
    writeln!(
        out,
        "imported workflow {} ({}) with {}",
        format::printable(&state.workflow_id),
        state.id,
        format::count(bundle.checkpoints.len() as u64, "checkpoint", "checkpoints")
    )?;
    Ok(())
}

/// `migrate`.
pub async fn migrate(
    target: &db::Target<'_>,
    out: &mut impl Write,
    action: MigrateAction,
) -> Result<()> {
    // `status` only reports: a mistyped path or schema must not be left behind, empty.
    let store = match action {
        MigrateAction::Status => db::connect_existing(target).await?,
        MigrateAction::Up => db::connect(target, true).await?,
    };
    let (applied, pending) = db::migration_status(store.connection()).await?;
    match action {
        MigrateAction::Status => {
            writeln!(out, "database {}", target.shown())?;
            for name in &applied {
                writeln!(out, "applied  {name}")?;
            }
            for name in &pending {
                writeln!(out, "pending  {name}")?;
            }
        }
        MigrateAction::Up => {
            if pending.is_empty() {
                writeln!(
                    out,
                    "nothing to apply; {} applied",
                    format::count(applied.len() as u64, "migration", "migrations")
                )?;
            } else {
                db::migrate(&store).await?;
                for name in &pending {
                    writeln!(out, "applied  {name}")?;
                }
            }
        }
    }
    db::close(store).await;
    Ok(())
}

/// `demo`: fills an empty database; one that holds workflows already (a second run, or
/// a real one) only with `force`, since a second set repeats the first one's
/// workflow_ids.
pub async fn demo(
    store: &Store,
    out: &mut impl Write,
    target: &db::Target<'_>,
    count: u64,
    force: bool,
    open: bool,
) -> Result<()> {
    let held = store.status_counts().await?.total();
    if held > 0 && !force && open {
        // `demo --open` again, as the README's first command: the samples are there.
        writeln!(
            out,
            "{} already holds {}; opening it without adding more (--force adds them)",
            target.shown(),
            format::count(held, "workflow", "workflows"),
        )?;
        return Ok(());
    }
    if held > 0 && !force {
        return Err(AdminError::already_redacted(format!(
            "{} already holds {}; demo only fills an empty database (nothing was added): \
             browse it with `{}`, or pass --force to add {} anyway",
            target.shown(),
            format::count(held, "workflow", "workflows"),
            browse_command(target),
            format::count(count, "sample workflow", "sample workflows"),
        )));
    }
    let checkpoints = crate::demo::seed(store, count).await?;
    writeln!(
        out,
        "created {} with {} in {}",
        format::count(count, "sample workflow", "sample workflows"),
        format::count(checkpoints, "checkpoint", "checkpoints"),
        target.shown()
    )?;
    if target.in_memory() {
        // A command run later opens a new, empty in-memory database.
        writeln!(
            out,
            "the database is in memory: the sample workflows are gone when {}; to keep \
             them, give a file: wfadmin --database-url demo.db demo{}",
            if open {
                "wfadmin exits"
            } else {
                "this command ends"
            },
            if open { " --open" } else { "" },
        )?;
    } else {
        writeln!(out, "browse them with: {}", browse_command(target))?;
    }
    Ok(())
}

/// The command that opens the UI on `target` (password hidden).
fn browse_command(target: &db::Target<'_>) -> String {
    let schema = target
        .postgres_schema
        .map(|schema| format!(" --postgres-schema {schema}"))
        .unwrap_or_default();
    format!("wfadmin --database-url {}{schema}", redact_url(target.url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::failed_workflow;
    use llm_orchestrator_state::SaveCondition;

    /// `demo --open` run again (the README's first command, twice) opens the samples
    /// already there instead of refusing, and adds none.
    #[tokio::test]
    async fn demo_open_on_a_database_with_workflows_opens_it_as_it_is() {
        let target = db::Target::new("sqlite::memory:");
        let store = db::open(&target).await.unwrap();
        demo(&store, &mut Vec::new(), &target, 3, false, true)
            .await
            .unwrap();
        let mut out = Vec::new();
        demo(&store, &mut out, &target, 3, false, true)
            .await
            .unwrap();
        assert_eq!(store.status_counts().await.unwrap().total(), 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "sqlite::memory: already holds 3 workflows; opening it without adding more \
             (--force adds them)\n"
        );
        // Without --open it is still refused.
        let refused = demo(&store, &mut Vec::new(), &target, 3, false, false).await;
        assert!(refused.is_err());
    }

    #[test]
    fn a_policy_reads_back_as_the_popup_writes_it_and_bad_text_says_why() {
        let day = std::time::Duration::from_secs(86_400);
        let policy = RetentionPolicy {
            keep_last: Some(10),
            keep_younger_than: None,
            delete_finished_older_than: Some(30 * day),
        };
        let text = policy_text(&policy);
        assert_eq!(
            text,
            "older-than=30d keep-checkpoints=10 keep-younger-than=off"
        );
        assert_eq!(parse_policy_text(&text), Ok(policy));
        assert_eq!(
            parse_policy_text("keep-last=3 keep-younger-than=7d delete-finished-older-than=off"),
            Ok(RetentionPolicy {
                keep_last: Some(3),
                keep_younger_than: Some(7 * day),
                delete_finished_older_than: None,
            })
        );
        assert_eq!(
            parse_policy_text("keep-younger-than=12h"),
            Ok(RetentionPolicy {
                keep_younger_than: Some(day / 2),
                ..RetentionPolicy::default()
            }),
            "a rule left out is off"
        );
        for (text, error) in [
            (
                "older-than=30x",
                "older-than: unknown unit \"x\" in \"30x\"",
            ),
            ("older-than=30", "older-than: \"30\" has no unit"),
            (
                "keep-checkpoints=ten",
                "keep-checkpoints: \"ten\" is not a number",
            ),
            ("keep=10", "unknown rule \"keep\""),
            ("older-than 30d", "\"older-than\" is not rule=value"),
            ("older-than=1d older-than=2d", "older-than is given twice"),
            ("", "nothing to prune"),
            ("older-than=off keep-checkpoints=off", "nothing to prune"),
            (
                "keep-checkpoints=0",
                "keep-checkpoints=0 would delete every unpinned",
            ),
        ] {
            let got = parse_policy_text(text).unwrap_err();
            assert!(got.starts_with(error), "{text:?}: {got}");
        }
    }

    #[tokio::test]
    async fn checkpoints_says_when_it_lists_only_the_newest() {
        let (store, state, checkpoints) = seeded().await;
        let snapshot = checkpoints[0].snapshot.clone();
        for n in checkpoints.len() as u64..=CHECKPOINT_LIMIT {
            let checkpoint = Checkpoint::new(state.id, format!("step-{n}"), snapshot.clone());
            store.create_checkpoint(&checkpoint).await.unwrap();
        }
        let mut out = Vec::new();
        super::checkpoints(&store, &mut out, &mut Vec::new(), &state.workflow_id, false)
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.ends_with(", the newest 1000 of 1001:"), "{first}");
    }

    /// The seeded store with one more workflow, `claimed-1`, claimed by `replica-9` for
    /// `lease`.
    async fn with_a_claimed_workflow(lease: std::time::Duration) -> Store {
        let (store, _, _) = seeded().await;
        let waiting = WorkflowState::new("claimed-1", "Claimed", None, json!({}));
        store.save_workflow_state(&waiting).await.unwrap();
        store.claim_workflows("replica-9", lease, 10).await.unwrap();
        store
    }

    /// What `list` prints (its table, or JSON) and its note, for this filter and limit,
    /// counting by `clock`.
    async fn printed_list(
        store: &Store,
        clock: db::Clock,
        only: &ListFilter,
        limit: u64,
        as_json: bool,
    ) -> (String, String) {
        let (mut out, mut notes) = (Vec::new(), Vec::new());
        list(store, clock, &mut out, &mut notes, only, limit, as_json)
            .await
            .unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(notes).unwrap(),
        )
    }

    /// What `list` prints for the first 10 workflows, by `clock`: its table, or JSON.
    async fn first_ten(store: &Store, clock: db::Clock, as_json: bool) -> String {
        printed_list(store, clock, &ListFilter::default(), 10, as_json)
            .await
            .0
    }

    /// What `show` prints for `key`, by `clock`: text, or JSON.
    async fn shown(store: &Store, clock: db::Clock, key: &str, as_json: bool) -> String {
        let mut out = Vec::new();
        show(store, clock, &mut out, &mut Vec::new(), key, as_json)
            .await
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn list_and_show_say_who_holds_the_lease_of_a_claimed_workflow() {
        let store = with_a_claimed_workflow(std::time::Duration::from_secs(60)).await;
        let now = db::Clock::default();
        let text = first_ten(&store, now, false).await;
        let header = text.lines().next().unwrap();
        assert!(header.contains(" CKPTS  LEASE  "), "{text}");
        let row = text
            .lines()
            .find(|line| line.contains("claimed-1"))
            .unwrap();
        assert!(row.contains(" replica-9 "), "{text}");

        let rows: Value = serde_json::from_str(&first_ten(&store, now, true).await).unwrap();
        let claimed = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["workflow_id"] == "claimed-1")
            .unwrap();
        assert_eq!(claimed["lease_owner"], "replica-9");
        assert!(claimed["lease_expires_at"].is_string(), "{claimed}");
        assert_eq!(claimed["lease_expired"], false, "{claimed}");

        // `show` says whose it is and until when, in text and JSON.
        let text = shown(&store, now, "claimed-1", false).await;
        assert!(
            text.contains("\nlease:        replica-9, until 20"),
            "{text}"
        );
        let shown: Value =
            serde_json::from_str(&shown(&store, now, "claimed-1", true).await).unwrap();
        assert_eq!(shown["lease_owner"], "replica-9");
        assert_eq!(shown["lease_expires_at"], claimed["lease_expires_at"]);
    }

    #[tokio::test]
    async fn leases_are_counted_by_the_database_s_clock() {
        // A replica claimed a workflow for 2 minutes, by the database's clock. Were this
        // machine's clock 5 minutes behind (the database's 5 minutes ahead of it), its
        // own "now" would call the lease live for 7 more minutes; by the database's clock
        // it expired 3 minutes ago.
        let store = with_a_claimed_workflow(std::time::Duration::from_secs(120)).await;
        let ahead = db::Clock::with_offset(chrono::Duration::minutes(5));
        let line = |text: String, pick: fn(&str) -> bool| {
            text.lines().find(|line| pick(line)).unwrap().to_owned()
        };
        let row = async |clock| {
            line(first_ten(&store, clock, false).await, |l| {
                l.contains("claimed-1")
            })
        };
        assert!(row(db::Clock::default()).await.contains(" replica-9 "));
        let expired = row(ahead).await;
        assert!(expired.contains(" replica-9, expired 3m ago "), "{expired}");

        let lease = async |clock| {
            line(shown(&store, clock, "claimed-1", false).await, |l| {
                l.starts_with("lease:")
            })
        };
        assert!(
            lease(db::Clock::default())
                .await
                .contains("replica-9, until 20")
        );
        assert_eq!(
            lease(ahead).await,
            "lease:        replica-9, expired 3m ago"
        );
    }

    #[test]
    fn checkpoint_totals_say_one_checkpoint() {
        let usage = |count| CheckpointUsage {
            count,
            bytes: 639,
            pinned: 0,
        };
        assert_eq!(usage_text(&usage(1)), "1 checkpoint, 639 B, 0 pinned");
        assert_eq!(usage_text(&usage(2)), "2 checkpoints, 639 B, 0 pinned");
    }

    #[test]
    fn a_diff_title_says_when_the_checkpoints_are_of_two_workflows() {
        let side = |workflow_id: &str, id: u128| DiffSide {
            id: "c".to_owned(),
            label: format!("after retrieve of {workflow_id}"),
            value: Value::Null,
            workflow_state_id: uuid::Uuid::from_u128(id),
            workflow_id: workflow_id.to_owned(),
        };
        let (a, b) = (side("doc-1", 1), side("doc-2", 2));
        assert_eq!(
            diff_title(&a, &b),
            "after retrieve of doc-1 -> after retrieve of doc-2; checkpoints of different \
             workflows: doc-1 (00000000-0000-0000-0000-000000000001) -> doc-2 \
             (00000000-0000-0000-0000-000000000002)"
        );
        // Two runs of one workflow_id are two workflows too.
        assert!(different_workflows(&a, &side("doc-1", 3)).is_some());
        assert_eq!(
            diff_title(&a, &side("doc-1", 1)),
            "after retrieve of doc-1 -> after retrieve of doc-1"
        );
    }

    #[test]
    fn short_errors_are_the_first_line_of_what_was_said() {
        assert_eq!(short_error("timed out"), "timed out");
        assert_eq!(short_error("timed out\n"), "timed out");
        assert_eq!(short_error("\n  timed out  \n"), "timed out");
        assert_eq!(short_error("timed out\n  at step 2"), "timed out …");
        assert_eq!(short_error(""), "-");
        assert_eq!(short_error(" \n\t"), "-");
        assert_eq!(short_error(&"é".repeat(80)).chars().count(), 60);
    }

    #[tokio::test]
    async fn show_cuts_long_step_errors_in_the_table_and_prints_them_whole_below() {
        let store = db::open(&db::Target::new("sqlite::memory:")).await.unwrap();
        let (mut state, _) = failed_workflow();
        let traceback = format!(
            "{}\n  at step 2\n  at step 3",
            "upstream said no; ".repeat(20)
        );
        state.steps.get_mut("tool_call").unwrap().error = Some(traceback.clone());
        store.save_workflow_state(&state).await.unwrap();
        let mut out = Vec::new();
        show(
            &store,
            db::Clock::default(),
            &mut out,
            &mut Vec::new(),
            &state.workflow_id,
            false,
        )
        .await
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let (table, below) = text.split_once("step errors:\n").expect(&text);
        // No table row is padded out to the long error.
        let widest = table
            .lines()
            .map(|line| line.chars().count())
            .max()
            .unwrap();
        assert!(widest < 200, "{table}");
        let row = table
            .lines()
            .find(|line| line.contains("  tool_call"))
            .unwrap();
        assert!(row.contains("upstream said no; upstream said no;"), "{row}");
        assert!(row.contains('…'), "{row}");
        let whole: Vec<&str> = traceback.lines().map(str::trim_end).collect();
        let listed: Vec<&str> = below
            .lines()
            .skip(1)
            .map(|line| line[4..].trim_end())
            .collect();
        assert_eq!(below.lines().next(), Some("  tool_call:"));
        assert_eq!(listed, whole);
    }

    async fn seeded() -> (Store, WorkflowState, Vec<Checkpoint>) {
        let store = db::open(&db::Target::new("sqlite::memory:")).await.unwrap();
        let (state, checkpoints) = failed_workflow();
        store.save_workflow_state(&state).await.unwrap();
        for checkpoint in &checkpoints {
            store.create_checkpoint(checkpoint).await.unwrap();
        }
        (store, state, checkpoints)
    }

    #[tokio::test]
    async fn rollback_asks_and_only_yes_rolls_back() {
        let (store, state, checkpoints) = seeded().await;
        let oldest = checkpoints[1].id.to_string();
        let mut out = Vec::new();
        let err = rollback(
            &store,
            db::Clock::default(),
            &mut out,
            &mut "n\n".as_bytes(),
            true,
            &oldest,
            Consented::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("cancelled"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("status: failed -> running"), "{text}");
        assert!(text.ends_with("Roll back? [y/N] "), "{text}");
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

        let mut out = Vec::new();
        rollback(
            &store,
            db::Clock::default(),
            &mut out,
            &mut "yes\n".as_bytes(),
            true,
            &oldest,
            Consented::default(),
        )
        .await
        .unwrap();
        let now = store.load_workflow_state(&state.id).await.unwrap();
        assert_eq!(now.status, WorkflowStatus::Running);
        assert_eq!(now.steps.len(), 1);
    }

    #[tokio::test]
    async fn rollback_warns_first_when_a_replica_holds_the_lease() {
        let (store, mut state, checkpoints) = seeded().await;
        let oldest = checkpoints[1].id.to_string();
        let first_line = async |store: &Store| {
            let mut out = Vec::new();
            rollback(
                store,
                db::Clock::default(),
                &mut out,
                &mut "n\n".as_bytes(),
                true,
                &oldest,
                Consented::default(),
            )
            .await
            .unwrap_err();
            String::from_utf8(out)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_owned()
        };
        // Failed, nobody's: no warning.
        assert!(first_line(&store).await.starts_with("Roll back workflow"));

        // Running again, claimed by a live replica.
        state.status = WorkflowStatus::Running;
        state.error = None;
        store.save_workflow_state(&state).await.unwrap();
        let claims = store
            .claim_workflows("worker-1", std::time::Duration::from_secs(600), 10)
            .await
            .unwrap();
        let until = format::time(Some(claims[0].lease.expires_at));
        assert_eq!(
            first_line(&store).await,
            format!(
                "WARNING: worker-1 holds this workflow's lease until {until} UTC: it is \
                 running it; rolling back ends its lease and refuses its next write"
            )
        );
        // The TUI's plan says it too (the same plan, read by the same function).
        let plan = plan_rollback(&store, db::Clock::default(), checkpoints[1].id)
            .await
            .unwrap();
        assert_eq!(plan.live_lease.unwrap().owner, "worker-1");

        // Released: nobody runs it; no warning.
        store.release_lease(&claims[0].lease).await.unwrap();
        assert!(first_line(&store).await.starts_with("Roll back workflow"));
    }

    /// While a replica holds the lease, `--yes` alone rolls back nothing and says how to
    /// override; a yes after the warning, or `--override-lease`, rolls back and ends the
    /// lease, so the replica's next write under it is refused.
    #[tokio::test]
    async fn rollback_over_a_live_lease_needs_consent_and_fences_the_holder() {
        let (store, mut state, checkpoints) = seeded().await;
        let oldest = checkpoints[1].id.to_string();
        state.status = WorkflowStatus::Running;
        state.error = None;
        store.save_workflow_state(&state).await.unwrap();
        let claim = async || {
            store
                .claim_workflows("worker-1", std::time::Duration::from_secs(600), 10)
                .await
                .unwrap()
                .remove(0)
        };
        let rolled_back = async |answer: &str, consented: Consented| {
            let mut out = Vec::new();
            rollback(
                &store,
                db::Clock::default(),
                &mut out,
                &mut answer.as_bytes(),
                true,
                &oldest,
                consented,
            )
            .await
        };
        let claimed = claim().await;

        let yes = Consented {
            yes: true,
            override_lease: false,
        };
        let err = rolled_back("", yes).await.unwrap_err().to_string();
        assert!(
            err.contains("worker-1") && err.contains("--override-lease"),
            "{err}"
        );
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

        // Confirmed after the warning: rolled back, and the replica is fenced.
        rolled_back("y\n", Consented::default()).await.unwrap();
        let after = store.load_workflow_state(&state.id).await.unwrap();
        assert_eq!(after.steps.len(), 1);
        let mut late = claimed.state.clone();
        late.mark_paused();
        let fenced = store
            .save_workflow_state_if(&late, &SaveCondition::Lease(claimed.lease))
            .await;
        assert!(
            matches!(
                fenced,
                Err(llm_orchestrator_state::StateStoreError::Conflict(_))
            ),
            "{fenced:?}"
        );

        // Claimed again: --yes --override-lease rolls back without asking.
        let claimed = claim().await;
        let forced = Consented {
            yes: true,
            override_lease: true,
        };
        rolled_back("", forced).await.unwrap();
        assert!(
            store
                .renew_lease(&claimed.lease, std::time::Duration::from_secs(60))
                .await
                .is_err()
        );
    }

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

    #[tokio::test]
    async fn prune_shows_what_would_go_asks_and_only_yes_deletes() {
        let (store, state, _) = seeded().await;
        let policy = RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        };
        let count = async || store.checkpoint_usage(&state.id).await.unwrap().count;
        let run = async |answer: &str, interactive: bool, yes: bool, as_json: bool| {
            let (mut out, mut notes) = (Vec::new(), Vec::new());
            let consent = Consent {
                input: &mut answer.as_bytes(),
                interactive,
                yes,
            };
            let result = prune(
                &store, &mut out, &mut notes, consent, &policy, false, as_json,
            )
            .await;
            let text = |bytes| String::from_utf8(bytes).unwrap();
            (result, text(out), text(notes))
        };

        // No: the preview and the question, then nothing deleted.
        let (result, out, _) = run("n\n", true, false, false).await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "prune cancelled; nothing deleted"
        );
        assert!(
            out.starts_with("would delete: checkpoints beyond the newest 1 per workflow"),
            "{out}"
        );
        assert!(out.contains("\n0          1            555 B\n"), "{out}");
        assert!(out.ends_with("Prune? [y/N] "), "{out}");
        assert_eq!(count().await, 2);

        // No terminal and no --yes: refused, nothing deleted.
        let (result, out, _) = run("y\n", false, false, false).await;
        let err = result.unwrap_err().to_string();
        assert!(
            err.starts_with("not pruning: stdin is not a terminal; pass --yes"),
            "{err}"
        );
        assert!(out.starts_with("would delete: "), "{out}");
        assert_eq!(count().await, 2);

        // --json: stdout is only the report; the preview and the question on stderr.
        let (result, out, notes) = run("yes\n", true, false, true).await;
        result.unwrap();
        let report: Value = serde_json::from_str(&out).expect(&out);
        assert_eq!(report["report"]["checkpoints"], 1);
        assert_eq!(report["report"]["dry_run"], false);
        assert!(notes.starts_with("would delete: "), "{notes}");
        assert!(notes.ends_with("Prune? [y/N] "), "{notes}");
        assert_eq!(count().await, 1);

        // Nothing left to delete: said, not asked.
        let (result, out, _) = run("", true, false, false).await;
        result.unwrap();
        assert!(out.ends_with("nothing to delete\n"), "{out}");
    }

    #[tokio::test]
    async fn prune_with_yes_deletes_without_asking() {
        let (store, state, _) = seeded().await;
        let policy = RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        };
        let mut out = Vec::new();
        let consent = Consent {
            input: &mut "".as_bytes(),
            interactive: false,
            yes: true,
        };
        prune(
            &store,
            &mut out,
            &mut Vec::new(),
            consent,
            &policy,
            false,
            false,
        )
        .await
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("deleted: "), "{out}");
        assert!(!out.contains("[y/N]"), "{out}");
        let usage = store.checkpoint_usage(&state.id).await.unwrap();
        assert_eq!(usage.count, 1);
    }

    #[tokio::test]
    async fn show_and_list_print_tables() {
        let (store, state, _) = seeded().await;
        let mut out = Vec::new();
        show(
            &store,
            db::Clock::default(),
            &mut out,
            &mut Vec::new(),
            &state.workflow_id,
            false,
        )
        .await
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("error:        step tool_call failed"),
            "{text}"
        );
        // Steps in the order they ran.
        let retrieve = text.find("  retrieve").unwrap();
        let tool_call = text.find("  tool_call").unwrap();
        assert!(retrieve < tool_call, "{text}");
        // A short error stays in the table; nothing is listed below it.
        assert!(!text.contains("step errors:"), "{text}");

        let mut out = Vec::new();
        let failed = ListFilter {
            status: Some(WorkflowStatus::Failed),
            ..Default::default()
        };
        list(
            &store,
            db::Clock::default(),
            &mut out,
            &mut Vec::new(),
            &failed,
            10,
            false,
        )
        .await
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("rag-answer-0001"), "{text}");
        assert!(text.contains("2/3"), "{text}");
    }
}
