//! `wfadmin checkpoints`: a workflow's checkpoints, newest first, with their totals.

use std::io::Write;

use llm_orchestrator_state::{CheckpointUsage, StateStore};
use serde_json::json;

use super::{CHECKPOINT_LIMIT, named_summary, print_json};
use crate::db::Store;
use crate::error::Result;
use crate::format;

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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::commands::tests::seeded;
    use llm_orchestrator_state::Checkpoint;

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
}
