//! `wfadmin fork`: a new workflow from a checkpoint.

use std::io::Write;

use llm_orchestrator_state::StateStore;

use crate::db::{self, Store};
use crate::error::Result;
use crate::format;

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
