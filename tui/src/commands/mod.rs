//! The non-interactive subcommands: human tables by default, `--json` for scripts.
//!
//! One file per subcommand (`list.rs` for `wfadmin list`, ...); this one holds what
//! several of them share: finding a workflow by uuid or workflow_id, saying that a uuid
//! is a checkpoint's (or a workflow's), a lineage in words, steps in run order.

use std::io::Write;

use llm_orchestrator_state::admin::WorkflowSummary;
use llm_orchestrator_state::{Lineage, StateStore, WorkflowState};
use serde_json::Value;

use crate::db::{self, Store};
use crate::error::{AdminError, Result};
use crate::format;

mod checkpoints;
mod consent;
mod demo;
mod diff;
mod export;
mod fork;
mod import;
mod list;
mod migrate;
mod pin;
mod prune;
mod rollback;
mod show;
#[cfg(test)]
mod tests;

pub use checkpoints::{checkpoints, usage_text};
pub use consent::{Consent, stdin_is_terminal};
pub use demo::demo;
pub use diff::{diff_command, diff_sides, diff_title};
pub use export::{OutputFile, export};
pub use fork::fork;
pub use import::import;
pub use list::{ListFilter, lease_of, lease_words, list};
pub use migrate::migrate;
pub use pin::{pin, unpin};
pub use prune::{describe_policy, parse_policy_text, policy_text, prune, retention_policy};
pub use rollback::{Consented, plan_rollback, rollback};
pub use show::show;

/// Most checkpoints a command loads for one workflow.
pub const CHECKPOINT_LIMIT: u64 = 1000;

fn print_json(out: &mut impl Write, value: &Value) -> Result<()> {
    writeln!(out, "{}", format::json_pretty(value))?;
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
