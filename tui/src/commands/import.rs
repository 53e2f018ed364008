//! `wfadmin import`: a bundle written by `export`, into any database.

use std::io::Write;

use llm_orchestrator_state::{StateStore, WorkflowBundle};

use crate::db::Store;
use crate::error::{AdminError, Result};
use crate::format;

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
