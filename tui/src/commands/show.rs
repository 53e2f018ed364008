//! `wfadmin show`: one workflow with its steps.

use std::io::Write;

use llm_orchestrator_state::StateStore;
use serde_json::{Value, json};

use super::checkpoints::usage_text;
use super::list::{lease_words, summary_of};
use super::{lineage_lines, named_workflow, ordered_steps, print_json};
use crate::db::{self, Store};
use crate::error::Result;
use crate::format;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::failed_workflow;

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
}
