//! `wfadmin demo`: fill a database with sample workflows.

use std::io::Write;

use llm_orchestrator_state::redact_url;

use crate::db::{self, Store};
use crate::error::{AdminError, Result};
use crate::format;

/// `demo`: fills an empty database; one that holds workflows already (a second run, or
/// a real one) only with `force`, since a second set repeats the first one's
/// workflow_ids.
pub async fn demo(
    store: &Store,
    out: &mut impl Write,
    target: &db::Target<'_>,
    count: u64,
    force: bool,
    open: bool,
) -> Result<()> {
    let held = store.status_counts().await?.total();
    if held > 0 && !force && open {
        // `demo --open` again (the Quick start's command, run twice): the samples are there.
        writeln!(
            out,
            "{} already holds {}; opening it without adding more (--force adds them)",
            target.shown(),
            format::count(held, "workflow", "workflows"),
        )?;
        return Ok(());
    }
    if held > 0 && !force {
        return Err(AdminError::already_redacted(format!(
            "{} already holds {}; demo only fills an empty database (nothing was added): \
             browse it with `{}`, or pass --force to add {} anyway",
            target.shown(),
            format::count(held, "workflow", "workflows"),
            browse_command(target),
            format::count(count, "sample workflow", "sample workflows"),
        )));
    }
    let checkpoints = crate::demo::seed(store, count).await?;
    writeln!(
        out,
        "created {} with {} in {}",
        format::count(count, "sample workflow", "sample workflows"),
        format::count(checkpoints, "checkpoint", "checkpoints"),
        target.shown()
    )?;
    if target.in_memory() {
        // A command run later opens a new, empty in-memory database.
        writeln!(
            out,
            "the database is in memory: the sample workflows are gone when {}; to keep \
             them, give a file: {} --database-url demo.db demo{}",
            if open {
                "wfadmin exits"
            } else {
                "this command ends"
            },
            invocation(),
            if open { " --open" } else { "" },
        )?;
    } else {
        writeln!(out, "browse them with: {}", browse_command(target))?;
    }
    Ok(())
}

/// The command that opens the UI on `target` (password hidden).
fn browse_command(target: &db::Target<'_>) -> String {
    let schema = target
        .postgres_schema
        .map(|schema| format!(" --postgres-schema {schema}"))
        .unwrap_or_default();
    format!(
        "{} --database-url {}{schema}",
        invocation(),
        redact_url(target.url)
    )
}

/// How the user can run this binary again from where they stand: `wfadmin` when that
/// name on `PATH` is this program (installed with `cargo install --path tui`), else the
/// path of this executable, relative to the working directory when it lies below it
/// (`target/debug/wfadmin` after `cargo run`).
fn invocation() -> String {
    let Ok(exe) = std::env::current_exe().and_then(|exe| exe.canonicalize()) else {
        return "wfadmin".to_owned();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join("wfadmin")
                .canonicalize()
                .is_ok_and(|found| found == exe)
        })
    });
    if on_path {
        return "wfadmin".to_owned();
    }
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| exe.clone());
    shown.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `demo --open` run again (the Quick start's command, twice) opens the samples
    /// already there instead of refusing, and adds none.
    #[tokio::test]
    async fn demo_open_on_a_database_with_workflows_opens_it_as_it_is() {
        let target = db::Target::new("sqlite::memory:");
        let store = db::open(&target).await.unwrap();
        demo(&store, &mut Vec::new(), &target, 3, false, true)
            .await
            .unwrap();
        let mut out = Vec::new();
        demo(&store, &mut out, &target, 3, false, true)
            .await
            .unwrap();
        assert_eq!(store.status_counts().await.unwrap().total(), 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "sqlite::memory: already holds 3 workflows; opening it without adding more \
             (--force adds them)\n"
        );
        // Without --open it is still refused.
        let refused = demo(&store, &mut Vec::new(), &target, 3, false, false).await;
        assert!(refused.is_err());
    }
}
