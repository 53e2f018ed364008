//! `wfadmin export`: a workflow with its steps and checkpoints as a JSON bundle.

use std::io::Write;

use llm_orchestrator_state::StateStore;

use super::named_workflow;
use crate::db::Store;
use crate::error::Result;
use crate::format;
use crate::output_file;

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
