//! Command-line arguments.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, ValueEnum};
use llm_orchestrator_state::WorkflowStatus;

/// Find stuck or broken LLM workflows, see what each step did, and roll them back.
///
/// Without a subcommand it opens the interactive terminal UI.
#[derive(Debug, Parser)]
#[command(name = "wfadmin", version)]
pub struct Cli {
    /// Database: postgres://user@host/db, sqlite://file.db?mode=rwc, sqlite::memory: or a file path.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "./workflows.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// The Postgres schema the store's tables are in, if the application sets one
    /// (StateStoreBuilder::postgres_schema); the connection's search_path otherwise.
    #[arg(
        long,
        global = true,
        env = "WFADMIN_POSTGRES_SCHEMA",
        value_name = "SCHEMA"
    )]
    pub postgres_schema: Option<String>,

    /// Refuse every write (rollback, prune, pin, unpin, fork, import, migrate, demo).
    #[arg(long, global = true)]
    pub read_only: bool,

    /// What to do (default: the interactive UI).
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,
}

/// A subcommand of the command line (`wfadmin list`, `wfadmin rollback`...).
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Open the interactive terminal UI (the default).
    Tui,
    /// List workflows, active ones first.
    List {
        /// Only pending, running and paused workflows.
        #[arg(long)]
        active: bool,
        /// Only active workflows whose recovery lease expired: the replica that claimed
        /// them stopped renewing it, and they wait for recover_workflows (stuck).
        #[arg(long)]
        lease_expired: bool,
        /// Only workflows with this status, in any case.
        #[arg(long, ignore_case = true, value_parser = workflow_status())]
        status: Option<WorkflowStatus>,
        /// Most workflows to show (at least 1; a note on stderr says when more match).
        #[arg(long, default_value_t = 50, value_parser = at_least_one)]
        limit: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a workflow with its steps, by store uuid or orchestrator workflow_id.
    Show {
        /// The workflow's uuid, or its workflow_id (the most recent run is shown).
        workflow: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List a workflow's checkpoints, newest first.
    Checkpoints {
        /// The workflow's uuid, or its workflow_id.
        workflow: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deep diff of two checkpoints, or of a checkpoint and the workflow's current state.
    Diff {
        /// The older checkpoint's uuid.
        from: String,
        /// The newer checkpoint's uuid, or `current`.
        to: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a workflow the state of one of its checkpoints again. While a replica holds
    /// the workflow's lease the store refuses, unless you confirm after the warning or
    /// pass --override-lease: the lease then ends and the replica's next write under it
    /// is refused.
    // `restore`, its old name, still works (a hidden alias) so that scripts do not break.
    #[command(alias = "restore")]
    Rollback {
        /// The checkpoint's uuid.
        checkpoint: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Roll back even while a replica holds the workflow's lease, ending the lease.
        #[arg(long)]
        override_lease: bool,
    },
    /// Apply a retention policy: delete old finished workflows and surplus checkpoints.
    /// Pinned checkpoints are kept, except in a finished workflow that `--older-than`
    /// deletes: it goes with all its checkpoints, pinned ones too.
    Prune {
        /// Delete completed and failed workflows not updated for this long (30d, 12h, 90m, 2w).
        #[arg(long, value_parser = an_age)]
        older_than: Option<String>,
        /// Keep at least the newest N unpinned checkpoints of every workflow.
        #[arg(long)]
        keep_checkpoints: Option<u64>,
        /// Keep every checkpoint younger than this (1d, 12h).
        #[arg(long, value_parser = an_age)]
        keep_younger_than: Option<String>,
        /// Only print what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (without it, prune shows what would go and asks).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Print JSON instead of a table (the preview and question then go to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Pin a checkpoint with a label: pruning keeps it while its workflow stays (a
    /// finished workflow that `prune --older-than` deletes takes its pins too).
    Pin {
        /// The checkpoint's uuid.
        checkpoint: String,
        /// Why it matters ("before tool call", "approved by human").
        label: String,
    },
    /// Remove a checkpoint's pin.
    Unpin {
        /// The checkpoint's uuid.
        checkpoint: String,
    },
    /// Start a new pending workflow from a checkpoint's state, recording where it came from.
    Fork {
        /// The checkpoint's uuid.
        checkpoint: String,
        /// The new workflow's workflow_id.
        new_workflow_id: String,
    },
    /// Write a workflow with its steps and checkpoints as a JSON bundle.
    Export {
        /// The workflow's uuid, or its workflow_id.
        workflow: String,
        /// Write to this file instead of stdout (a new one: see --force).
        #[arg(long, short = 'o')]
        output: Option<std::path::PathBuf>,
        /// Replace the --output file if it exists (without it, an existing file is refused).
        #[arg(long, requires = "output")]
        force: bool,
    },
    /// Load a JSON bundle written by `export`, into any database.
    Import {
        /// The bundle file, or `-` for stdin.
        file: String,
        /// Give the workflow and its checkpoints new ids instead of keeping theirs.
        #[arg(long)]
        new_ids: bool,
    },
    /// Apply or show the database migrations.
    Migrate {
        /// `up` applies pending migrations, `status` lists them.
        #[arg(value_enum, default_value_t = MigrateAction::Up)]
        action: MigrateAction,
    },
    /// Fill the database with realistic sample workflows (creating the database, its
    /// tables and the --postgres-schema named, when missing).
    Demo {
        /// How many workflows to create.
        #[arg(long, default_value_t = 24, value_parser = at_least_one)]
        count: u64,
        /// Open the interactive UI on the database afterwards.
        #[arg(long)]
        open: bool,
        /// Add the sample workflows to a database that already holds workflows (without
        /// it, demo only fills an empty one: a second run would add a second set with the
        /// same workflow_ids).
        #[arg(long)]
        force: bool,
    },
}

/// A workflow status by its name in any case (`failed`, `FAILED`); clap refuses any
/// other word as a bad argument, listing the statuses.
fn workflow_status() -> impl TypedValueParser<Value = WorkflowStatus> {
    PossibleValuesParser::new(WorkflowStatus::ALL.map(WorkflowStatus::as_str))
        .try_map(|name| name.to_lowercase().parse::<WorkflowStatus>())
}

/// A count that must be 1 or more (`list --limit`: 0 would list nothing and read as
/// "no workflows").
fn at_least_one(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(err) => Err(err.to_string()),
    }
}

/// A retention age (`30d`), checked by clap so a bad one is a bad argument (exit code 2);
/// kept as written for the policy to parse.
fn an_age(text: &str) -> Result<String, String> {
    crate::format::parse_age(text)?;
    Ok(text.to_owned())
}

/// What `migrate` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MigrateAction {
    /// Apply pending migrations.
    Up,
    /// List applied and pending migrations.
    Status,
}

impl Cli {
    /// Refuses what clap cannot check alone, as a bad argument (exit code 2): a
    /// `--keep-checkpoints 0` that no other rule limits would delete every unpinned
    /// checkpoint of every workflow but the newest of an active one. (With
    /// `--keep-younger-than` it is meaningful: only the checkpoints older than that go.)
    pub fn validate(&self) -> Result<(), clap::Error> {
        if let Some(Subcommand::Prune {
            older_than: None,
            keep_checkpoints: None,
            keep_younger_than: None,
            ..
        }) = &self.subcommand
        {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::MissingRequiredArgument,
                "nothing to prune: give --older-than, --keep-checkpoints or \
                 --keep-younger-than\n",
            ));
        }
        if let Some(Subcommand::Prune {
            keep_checkpoints: Some(0),
            keep_younger_than: None,
            ..
        }) = &self.subcommand
        {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                "--keep-checkpoints 0 would delete every unpinned checkpoint of every \
                 workflow (an active one keeps only its newest); keep at least 1, or add \
                 --keep-younger-than to keep the recent ones\n",
            ));
        }
        Ok(())
    }
}

impl Subcommand {
    /// Whether the command may create the database (a SQLite file) and the store's
    /// tables: it is about putting workflows in. (`migrate` creates them too, on its
    /// own path.) Every other command refuses a database without them.
    pub fn creates(&self) -> bool {
        matches!(self, Self::Demo { .. } | Self::Import { .. })
    }

    /// Whether the command may also create the `--postgres-schema` it names, as `migrate`
    /// does: `demo`, which is there to make a database to try things on. (`import` does
    /// not: a typo in the name would put a real workflow where nobody looks.)
    pub fn creates_schema(&self) -> bool {
        matches!(self, Self::Demo { .. })
    }

    /// Whether the command opens the interactive UI (which needs a terminal).
    pub fn opens_ui(&self) -> bool {
        matches!(self, Self::Tui | Self::Demo { open: true, .. })
    }

    /// The arguments that name a checkpoint (by uuid): a workflow's uuid given there by
    /// mistake is said so (see `commands::not_a_checkpoint`).
    pub fn checkpoint_args(&self) -> Vec<String> {
        match self {
            Self::Rollback { checkpoint, .. }
            | Self::Pin { checkpoint, .. }
            | Self::Unpin { checkpoint }
            | Self::Fork { checkpoint, .. } => vec![checkpoint.clone()],
            Self::Diff { from, to, .. } => vec![from.clone(), to.clone()],
            _ => Vec::new(),
        }
    }

    /// Whether the command writes to the database.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Self::Rollback { .. }
                | Self::Prune { dry_run: false, .. }
                | Self::Pin { .. }
                | Self::Unpin { .. }
                | Self::Fork { .. }
                | Self::Import { .. }
                | Self::Migrate {
                    action: MigrateAction::Up
                }
                | Self::Demo { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_is_accepted_before_and_after_the_subcommand() {
        let before = Cli::try_parse_from(["wfadmin", "--database-url", "a.db", "list"]).unwrap();
        let after = Cli::try_parse_from(["wfadmin", "list", "--database-url", "a.db"]).unwrap();
        assert_eq!(before.database_url, "a.db");
        assert_eq!(after.database_url, "a.db");
    }

    #[test]
    fn keeping_no_checkpoints_is_refused_unless_an_age_keeps_the_recent_ones() {
        let check = |args: &[&str]| Cli::try_parse_from(args).unwrap().validate();
        let err = check(&["w", "prune", "--keep-checkpoints", "0"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("--keep-checkpoints 0 would delete every unpinned checkpoint"),
            "{err}"
        );
        let with_age = [
            "w",
            "prune",
            "--older-than",
            "30d",
            "--keep-checkpoints",
            "0",
        ];
        assert!(check(&with_age).is_err());
        assert!(check(&["w", "prune", "--keep-checkpoints", "0", "--dry-run"]).is_err());
        check(&[
            "w",
            "prune",
            "--keep-checkpoints",
            "0",
            "--keep-younger-than",
            "1d",
        ])
        .unwrap();
        check(&["w", "prune", "--keep-checkpoints", "1"]).unwrap();
        check(&["w", "list"]).unwrap();
    }

    #[test]
    fn list_status_is_a_status_in_any_case_and_anything_else_a_bad_argument() {
        let status = |word: &str| match Cli::try_parse_from(["w", "list", "--status", word]) {
            Ok(Cli {
                subcommand: Some(Subcommand::List { status, .. }),
                ..
            }) => Ok(status),
            Ok(other) => panic!("{other:?}"),
            Err(err) => Err(err),
        };
        assert_eq!(status("failed").unwrap(), Some(WorkflowStatus::Failed));
        assert_eq!(status("FAILED").unwrap(), Some(WorkflowStatus::Failed));
        assert_eq!(status("Paused").unwrap(), Some(WorkflowStatus::Paused));
        let err = status("bogus").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("[possible values: pending, running, paused, completed, failed]"),
            "{text}"
        );
    }

    #[test]
    fn a_list_limit_of_zero_is_a_bad_argument() {
        let err = Cli::try_parse_from(["w", "list", "--limit", "0"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("must be at least 1"), "{err}");
        assert!(Cli::try_parse_from(["w", "list", "--limit", "-3"]).is_err());
        let one = Cli::try_parse_from(["w", "list", "--limit", "1"]).unwrap();
        assert!(matches!(
            one.subcommand,
            Some(Subcommand::List { limit: 1, .. })
        ));
    }

    #[test]
    fn restore_is_a_hidden_alias_of_rollback() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().subcommand.unwrap();
        for name in ["rollback", "restore"] {
            let Subcommand::Rollback {
                checkpoint, yes, ..
            } = parse(&["w", name, "x", "--yes"])
            else {
                panic!("{name} is not rollback");
            };
            assert_eq!((checkpoint.as_str(), yes), ("x", true));
        }
        let mut help = Vec::new();
        <Cli as clap::CommandFactory>::command()
            .write_long_help(&mut help)
            .unwrap();
        let help = String::from_utf8(help).unwrap();
        assert!(help.contains("  rollback "), "{help}");
        assert!(!help.contains("restore"), "{help}");
    }

    #[test]
    fn writes_are_known() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().subcommand.unwrap();
        assert!(parse(&["w", "rollback", "x"]).writes());
        assert!(parse(&["w", "prune", "--older-than", "1d"]).writes());
        assert!(!parse(&["w", "prune", "--older-than", "1d", "--dry-run"]).writes());
        assert!(parse(&["w", "migrate"]).writes());
        assert!(!parse(&["w", "migrate", "status"]).writes());
        assert!(!parse(&["w", "list"]).writes());
        assert!(parse(&["w", "pin", "x", "label"]).writes());
        assert!(parse(&["w", "unpin", "x"]).writes());
        assert!(parse(&["w", "fork", "x", "wf-2"]).writes());
        assert!(parse(&["w", "import", "-"]).writes());
        assert!(!parse(&["w", "export", "x"]).writes());
    }
}
