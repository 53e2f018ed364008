//! `wfadmin pin` and `wfadmin unpin`.

use std::io::Write;

use llm_orchestrator_state::StateStore;

use crate::db::{self, Store};
use crate::error::Result;
use crate::format;

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
