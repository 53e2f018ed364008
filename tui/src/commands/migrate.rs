//! `wfadmin migrate`: apply or list the migrations.

use std::io::Write;

use crate::cli::MigrateAction;
use crate::db;
use crate::error::Result;
use crate::format;

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
