//! `wfadmin`: the admin terminal UI and CLI of llm-orchestrator-state. Find a stuck or
//! broken workflow, see what each step did, and roll it back to a good checkpoint.

mod app;
mod cli;
mod commands;
mod db;
mod demo;
mod diff;
mod error;
#[cfg(test)]
mod fixtures;
mod format;
mod output_file;
mod rollback_plan;
mod runtime;
mod ui;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Subcommand};
use crate::error::{AdminError, Result};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = cli.validate() {
        err.exit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            // An error can quote stored data (a workflow id, a database's message).
            let message = err.to_string();
            let lines: Vec<_> = format::printable_lines(&message).collect();
            eprintln!("error: {}", lines.join("\n"));
            ExitCode::FAILURE
        }
    }
}

/// Logs (the store's spans, SeaORM's statements) go to stderr when `RUST_LOG` asks for
/// them (`RUST_LOG=sqlx=debug wfadmin list`), and never while the UI owns the terminal.
fn init_logging(subcommand: &Subcommand) {
    let interactive = subcommand.opens_ui();
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() else {
        return;
    };
    if !interactive {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            // Its fallback report of a failed write is `eprintln!`, which panics when
            // stderr is a closed pipe; on the SQLite worker thread that would hang us.
            .log_internal_errors(false)
            .init();
    }
}

async fn run(cli: Cli) -> Result<()> {
    let target = db::Target {
        url: &cli.database_url,
        read_only: cli.read_only,
        // An empty WFADMIN_POSTGRES_SCHEMA (unset in a script) means none.
        postgres_schema: cli
            .postgres_schema
            .as_deref()
            .filter(|schema| !schema.is_empty()),
    };
    let read_only = cli.read_only;
    let subcommand = cli.subcommand.unwrap_or(Subcommand::Tui);
    init_logging(&subcommand);
    if read_only && subcommand.writes() {
        return Err(AdminError::new(
            "refusing to write: --read-only is set (nothing was changed)",
        ));
    }
    // The UI says first that its database is not there (the bigger mistake), which opening
    // it finds without touching the terminal; but `demo --open` would create one, so it
    // asks for the terminal before.
    if subcommand.opens_ui() && subcommand.creates() {
        needs_a_terminal()?;
    }
    let stdout = std::io::stdout();
    // Whatever a subcommand prints, stored data cannot send the terminal escape sequences.
    let mut out = format::PrintableWriter::new(stdout.lock());
    if let Subcommand::Migrate { action } = subcommand {
        return commands::migrate(&target, &mut out, action).await;
    }
    let store = if subcommand.creates() {
        db::open_or_create(&target, subcommand.creates_schema()).await?
    } else {
        db::open(&target).await?
    };
    if subcommand.opens_ui()
        && let Err(err) = needs_a_terminal()
    {
        db::close(store).await;
        return Err(err);
    }
    // Leases run by the database's clock; "expired 3m ago" must too.
    let clock = db::Clock::of(&store);
    if !subcommand.opens_ui()
        && let Some(warning) = clock.warning()
    {
        eprintln!("warning: {warning}");
    }
    let checkpoint_args = subcommand.checkpoint_args();
    let result = match subcommand {
        Subcommand::Tui => runtime::run(store.clone(), clock, target.shown(), read_only).await,
        Subcommand::List {
            active,
            lease_expired,
            status,
            limit,
            json,
        } => {
            let only = commands::ListFilter {
                active,
                lease_expired,
                status,
            };
            commands::list(
                &store,
                clock,
                &mut out,
                &mut std::io::stderr(),
                &only,
                limit,
                json,
            )
            .await
        }
        Subcommand::Show { workflow, json } => {
            commands::show(
                &store,
                clock,
                &mut out,
                &mut std::io::stderr(),
                &workflow,
                json,
            )
            .await
        }
        Subcommand::Checkpoints { workflow, json } => {
            commands::checkpoints(&store, &mut out, &mut std::io::stderr(), &workflow, json).await
        }
        Subcommand::Diff { from, to, json } => {
            commands::diff_command(&store, &mut out, &from, &to, json).await
        }
        Subcommand::Rollback {
            checkpoint,
            yes,
            override_lease,
        } => {
            let interactive = commands::stdin_is_terminal();
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            commands::rollback(
                &store,
                clock,
                &mut out,
                &mut input,
                interactive,
                &checkpoint,
                commands::Consented {
                    yes,
                    override_lease,
                },
            )
            .await
        }
        Subcommand::Prune {
            older_than,
            keep_checkpoints,
            keep_younger_than,
            dry_run,
            yes,
            json,
        } => match commands::retention_policy(
            older_than.as_deref(),
            keep_checkpoints,
            keep_younger_than.as_deref(),
        ) {
            Ok(policy) => {
                let stdin = std::io::stdin();
                let consent = commands::Consent {
                    input: &mut stdin.lock(),
                    interactive: commands::stdin_is_terminal(),
                    yes,
                };
                let mut notes = std::io::stderr();
                commands::prune(
                    &store, &mut out, &mut notes, consent, &policy, dry_run, json,
                )
                .await
            }
            Err(err) => Err(err),
        },
        Subcommand::Pin { checkpoint, label } => {
            commands::pin(&store, &mut out, &checkpoint, &label).await
        }
        Subcommand::Unpin { checkpoint } => commands::unpin(&store, &mut out, &checkpoint).await,
        Subcommand::Fork {
            checkpoint,
            new_workflow_id,
        } => commands::fork(&store, &mut out, &checkpoint, &new_workflow_id).await,
        Subcommand::Export {
            workflow,
            output,
            force,
        } => {
            let mut notes = std::io::stderr();
            let output = output
                .as_deref()
                .map(|path| commands::OutputFile { path, force });
            commands::export(&store, &mut out, &mut notes, &workflow, output).await
        }
        Subcommand::Import { file, new_ids } => match read_input(&file) {
            Ok(text) => {
                let source = if file == "-" { "stdin" } else { &file };
                commands::import(&store, &mut out, &text, source, new_ids).await
            }
            Err(err) => Err(err),
        },
        Subcommand::Demo { count, open, force } => {
            match commands::demo(&store, &mut out, &target, count, force, open).await {
                Ok(()) if open => match out.flush() {
                    Ok(()) => runtime::run(store.clone(), clock, target.shown(), read_only).await,
                    Err(err) => Err(err.into()),
                },
                done => done,
            }
        }
        Subcommand::Migrate { .. } => Ok(()),
    };
    let result = commands::not_a_checkpoint(&store, &checkpoint_args, result).await;
    // Closed whatever happened, output that could not be written included.
    let flushed = out.flush();
    db::close(store).await;
    result?;
    Ok(flushed?)
}

/// The UI draws on stdout and reads keys from stdin: with either one a pipe, a file or
/// nothing (cron), it would write escape codes into the pipe, wait on a blank screen or
/// fail with an obscure I/O error. Say so before touching the terminal.
fn needs_a_terminal() -> Result<()> {
    let not_terminals: Vec<&str> = [
        ("stdin", std::io::stdin().is_terminal()),
        ("stdout", std::io::stdout().is_terminal()),
    ]
    .into_iter()
    .filter(|(_, is_terminal)| !is_terminal)
    .map(|(name, _)| name)
    .collect();
    if not_terminals.is_empty() {
        return Ok(());
    }
    Err(AdminError::new(format!(
        "the interactive UI needs a terminal ({} {} not one); in scripts use a subcommand \
         such as `wfadmin list` (`wfadmin --help` lists them)",
        not_terminals.join(" and "),
        if not_terminals.len() == 1 {
            "is"
        } else {
            "are"
        },
    )))
}

/// A file's text, or stdin's for `-`.
fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|err| AdminError::new(format!("cannot read stdin: {err}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(file)
        .map_err(|err| AdminError::new(format!("cannot read {file}: {err}")))
}
