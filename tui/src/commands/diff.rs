//! `wfadmin diff`: a deep diff of two checkpoints, or of a checkpoint and the current state.

use std::io::Write;

use llm_orchestrator_state::{Checkpoint, StateStore};
use serde_json::{Value, json};

use super::print_json;
use crate::db::{self, Store};
use crate::diff::{Change, diff};
use crate::error::Result;
use crate::format;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
