//! The non-interactive subcommands: human tables by default, `--json` for scripts.

use std::io::{BufRead, IsTerminal, Write};

use llm_orchestrator_state::admin::{WorkflowQuery, WorkflowSummary};
use llm_orchestrator_state::{Checkpoint, StateStore, WorkflowState, WorkflowStatus, now, redact};
use serde_json::{Value, json};

use crate::cli::MigrateAction;
use crate::db::{self, Store};
use crate::diff::{Change, diff};
use crate::error::{AdminError, Result};
use crate::format;
use crate::restore_plan::RestorePlan;

/// Most checkpoints a command loads for one workflow.
pub const CHECKPOINT_LIMIT: u64 = 1000;

fn print_json(out: &mut impl Write, value: &Value) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
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
    })
}

/// `list`.
pub async fn list(
    store: &Store,
    out: &mut impl Write,
    active: bool,
    status: Option<&str>,
    limit: u64,
    as_json: bool,
) -> Result<()> {
    let statuses = match status {
        Some(text) => vec![text.parse::<WorkflowStatus>().map_err(|_| {
            AdminError::new(format!(
                "unknown status {text:?}: use pending, running, paused, completed or failed"
            ))
        })?],
        None => Vec::new(),
    };
    let page = store
        .workflow_page(&WorkflowQuery {
            statuses,
            active_only: active,
            limit,
            ..Default::default()
        })
        .await?;
    if as_json {
        return print_json(
            out,
            &Value::Array(page.rows.iter().map(summary_json).collect()),
        );
    }
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
                "STARTED",
                "UPDATED",
                "STEPS",
                "CKPTS",
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

/// `show`.
pub async fn show(store: &Store, out: &mut impl Write, key: &str, as_json: bool) -> Result<()> {
    let state = db::find_workflow(store, key).await?;
    if as_json {
        return print_json(out, &serde_json::to_value(&state)?);
    }
    writeln!(out, "id:           {}", state.id)?;
    writeln!(out, "workflow_id:  {}", state.workflow_id)?;
    writeln!(out, "name:         {}", state.workflow_name)?;
    writeln!(out, "status:       {}", state.status)?;
    writeln!(
        out,
        "user:         {}",
        state.user_id.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "started:      {}",
        format::time(Some(state.started_at))
    )?;
    writeln!(
        out,
        "updated:      {}",
        format::time(Some(state.updated_at))
    )?;
    writeln!(out, "completed:    {}", format::time(state.completed_at))?;
    writeln!(
        out,
        "error:        {}",
        state.error.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "context:")?;
    for line in serde_json::to_string_pretty(&state.context)?.lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "steps:")?;
    let rows: Vec<Vec<String>> = ordered_steps(&state)
        .into_iter()
        .map(|step| {
            vec![
                step.step_id.clone(),
                step.status.to_string(),
                step.retry_count.to_string(),
                format::time(step.started_at),
                format::duration(step.started_at, step.completed_at),
                step.error.clone().unwrap_or_else(|| "-".into()),
                format::cut(&step.outputs.to_string(), 60),
            ]
        })
        .collect();
    for line in format::table(
        &[
            "STEP", "STATUS", "RETRIES", "STARTED", "DURATION", "ERROR", "OUTPUTS",
        ],
        &rows,
    )
    .lines()
    {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// A checkpoint's snapshot size in bytes, as compact JSON.
pub fn snapshot_size(checkpoint: &Checkpoint) -> usize {
    serde_json::to_string(&checkpoint.snapshot).map_or(0, |text| text.len())
}

/// `checkpoints`.
pub async fn checkpoints(
    store: &Store,
    out: &mut impl Write,
    key: &str,
    as_json: bool,
) -> Result<()> {
    let state = db::find_workflow(store, key).await?;
    let list = store
        .list_checkpoints(&state.id, CHECKPOINT_LIMIT, 0)
        .await?;
    if as_json {
        let rows = list
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "workflow_state_id": c.workflow_state_id,
                    "step_id": c.step_id,
                    "timestamp": c.timestamp,
                    "size_bytes": snapshot_size(c),
                })
            })
            .collect();
        return print_json(out, &Value::Array(rows));
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                c.step_id.clone(),
                format::time(Some(c.timestamp)),
                format::size(snapshot_size(c)),
            ]
        })
        .collect();
    writeln!(
        out,
        "checkpoints of {} ({}), newest first:",
        state.workflow_id, state.id
    )?;
    write!(
        out,
        "{}",
        format::table(&["ID", "STEP", "TAKEN", "SIZE"], &rows)
    )?;
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
}

impl DiffSide {
    fn checkpoint(checkpoint: Checkpoint) -> Self {
        Self {
            id: checkpoint.id.to_string(),
            label: format!(
                "after {} ({})",
                checkpoint.step_id,
                format::time(Some(checkpoint.timestamp))
            ),
            value: checkpoint.snapshot,
        }
    }
}

/// The two documents a `diff` compares: a checkpoint, and another checkpoint or the
/// current state of the first one's workflow.
pub async fn diff_sides(store: &Store, from: &str, to: &str) -> Result<(DiffSide, DiffSide)> {
    let from_id = db::parse_uuid("checkpoint", from)?;
    let old = store.checkpoint(from_id).await?;
    let new = if to.eq_ignore_ascii_case("current") {
        let current = store.load_workflow_state(&old.workflow_state_id).await?;
        DiffSide {
            id: "current".to_owned(),
            label: "current state".to_owned(),
            value: serde_json::to_value(&current)?,
        }
    } else {
        let to_id = db::parse_uuid("checkpoint", to)?;
        DiffSide::checkpoint(store.checkpoint(to_id).await?)
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
                "changes": changes.iter().map(Change::to_json).collect::<Vec<_>>(),
            }),
        );
    }
    writeln!(out, "diff {} -> {}:", old.label, new.label)?;
    for change in &changes {
        writeln!(out, "{}", change.describe())?;
    }
    if changes.is_empty() {
        writeln!(out, "(no differences)")?;
    }
    Ok(())
}

/// The plan for restoring a checkpoint.
pub async fn plan_restore(store: &Store, checkpoint_id: uuid::Uuid) -> Result<RestorePlan> {
    let checkpoint = store.checkpoint(checkpoint_id).await?;
    let current = store
        .load_workflow_state(&checkpoint.workflow_state_id)
        .await?;
    RestorePlan::new(current, checkpoint)
}

/// `restore`: prints the plan, asks unless `yes`, then rolls back.
pub async fn restore(
    store: &Store,
    out: &mut impl Write,
    input: &mut impl BufRead,
    interactive: bool,
    checkpoint: &str,
    yes: bool,
) -> Result<()> {
    let id = db::parse_uuid("checkpoint", checkpoint)?;
    let plan = plan_restore(store, id).await?;
    for line in plan.lines() {
        writeln!(out, "{line}")?;
    }
    if !yes {
        if !interactive {
            return Err(AdminError::new(
                "not restoring: stdin is not a terminal; pass --yes to confirm",
            ));
        }
        write!(out, "Restore? [y/N] ")?;
        out.flush()?;
        let mut answer = String::new();
        input.read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return Err(AdminError::new("restore cancelled; nothing changed"));
        }
    }
    let state = store.rollback_to_checkpoint(&id).await?;
    tracing::info!(checkpoint_id = %id, workflow_state_id = %state.id, "restored");
    writeln!(
        out,
        "restored workflow {} ({}) to checkpoint {}: status {}, {} steps",
        state.workflow_id,
        state.id,
        id,
        state.status,
        state.steps.len()
    )?;
    Ok(())
}

/// Whether stdin is a terminal (for `restore`'s question).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// `prune`.
pub async fn prune(
    store: &Store,
    out: &mut impl Write,
    older_than: &str,
    keep_checkpoints: Option<u64>,
    dry_run: bool,
) -> Result<()> {
    let age = format::parse_age(older_than).map_err(AdminError::new)?;
    let cutoff = now() - age;
    let surplus = match keep_checkpoints {
        Some(keep) => store.checkpoints_beyond(keep).await?,
        None => Vec::new(),
    };
    let surplus_total: u64 = surplus.iter().map(|(_, n)| n).sum();
    if dry_run {
        let workflows = store.count_finished_before(cutoff).await?;
        writeln!(
            out,
            "would delete {workflows} completed or failed workflows not updated since {}",
            format::time(Some(cutoff))
        )?;
        if let Some(keep) = keep_checkpoints {
            writeln!(
                out,
                "would delete {surplus_total} checkpoints beyond the newest {keep} of {} workflows",
                surplus.len()
            )?;
        }
        return Ok(());
    }
    let workflows = store.delete_old_states(cutoff).await?;
    writeln!(
        out,
        "deleted {workflows} completed or failed workflows not updated since {}",
        format::time(Some(cutoff))
    )?;
    if let Some(keep) = keep_checkpoints {
        let keep_usize = usize::try_from(keep).unwrap_or(usize::MAX);
        let mut deleted = 0;
        for (id, _) in &surplus {
            match store.cleanup_old_checkpoints(id, keep_usize).await {
                Ok(n) => deleted += n,
                // Deleted with its workflow a moment ago.
                Err(llm_orchestrator_state::StateStoreError::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        writeln!(
            out,
            "deleted {deleted} checkpoints beyond the newest {keep} per workflow"
        )?;
    }
    Ok(())
}

/// `migrate`.
pub async fn migrate(
    target: &str,
    read_only: bool,
    out: &mut impl Write,
    action: MigrateAction,
) -> Result<()> {
    let store = db::connect(target, read_only).await?;
    let (applied, pending) = db::migration_status(store.connection()).await?;
    match action {
        MigrateAction::Status => {
            writeln!(out, "database {}", redact(target))?;
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
                    "nothing to apply; {} migrations applied",
                    applied.len()
                )?;
            } else {
                db::migrate(&store).await?;
                for name in &pending {
                    writeln!(out, "applied  {name}")?;
                }
            }
        }
    }
    Ok(())
}

/// `demo`.
pub async fn demo(store: &Store, out: &mut impl Write, target: &str, count: u64) -> Result<()> {
    let checkpoints = crate::demo::seed(store, count).await?;
    writeln!(
        out,
        "created {count} sample workflows with {checkpoints} checkpoints in {}",
        redact(target)
    )?;
    writeln!(
        out,
        "browse them with: wfadmin --database-url {}",
        redact(target)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::failed_workflow;

    async fn seeded() -> (Store, WorkflowState, Vec<Checkpoint>) {
        let store = db::open("sqlite::memory:", false).await.unwrap();
        let (state, checkpoints) = failed_workflow();
        store.save_workflow_state(&state).await.unwrap();
        for checkpoint in &checkpoints {
            store.create_checkpoint(checkpoint).await.unwrap();
        }
        (store, state, checkpoints)
    }

    #[tokio::test]
    async fn restore_asks_and_only_yes_restores() {
        let (store, state, checkpoints) = seeded().await;
        let oldest = checkpoints[1].id.to_string();
        let mut out = Vec::new();
        let err = restore(
            &store,
            &mut out,
            &mut "n\n".as_bytes(),
            true,
            &oldest,
            false,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("cancelled"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("status: failed -> running"), "{text}");
        assert!(text.ends_with("Restore? [y/N] "), "{text}");
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

        let mut out = Vec::new();
        restore(
            &store,
            &mut out,
            &mut "yes\n".as_bytes(),
            true,
            &oldest,
            false,
        )
        .await
        .unwrap();
        let now = store.load_workflow_state(&state.id).await.unwrap();
        assert_eq!(now.status, WorkflowStatus::Running);
        assert_eq!(now.steps.len(), 1);
    }

    #[tokio::test]
    async fn show_and_list_print_tables() {
        let (store, state, _) = seeded().await;
        let mut out = Vec::new();
        show(&store, &mut out, &state.workflow_id, false)
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

        let mut out = Vec::new();
        list(&store, &mut out, false, Some("failed"), 10, false)
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("rag-answer-0001"), "{text}");
        assert!(text.contains("2/3"), "{text}");
    }
}
