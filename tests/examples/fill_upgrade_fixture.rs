//! Fills an empty database with the upgrade test's data and writes what the public reads
//! return about it:
//!
//! ```text
//! cargo run -p backend-suite --example fill_upgrade_fixture -- <database> <expected.json>
//! ```
//!
//! `<database>` is anything the store opens (a SQLite file path, a `postgres://` URL, whose
//! default schema is used). `tests/fixtures/upgrade/make.sh` runs it and dumps the rows;
//! see [`backend_suite::upgrade_fixture`] for what it writes. Only the public store API
//! writes the rows, so the program keeps compiling as the schema changes; what it writes
//! is the fixture only at the schema the fixtures were frozen at.

use std::process::ExitCode;

use backend_suite::upgrade_fixture::{fill, reads};
use llm_orchestrator_state::StateStoreBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, expected] = args.as_slice() else {
        eprintln!("usage: fill_upgrade_fixture <database> <expected.json>");
        return ExitCode::from(2);
    };
    match run(target, expected).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fill_upgrade_fixture: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(target: &str, expected: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Retention off: the long history is part of the fixture.
    let store = StateStoreBuilder::new(target)
        .checkpoint_retention(None)
        .connect()
        .await?;
    let stored = store.status_counts().await?.total();
    if stored != 0 {
        return Err(
            format!("the database holds {stored} workflows already: give an empty one").into(),
        );
    }
    fill(&store).await?;
    let document = reads(&store).await?;
    std::fs::write(expected, serde_json::to_string_pretty(&document)? + "\n")?;
    store.close().await?;
    Ok(())
}
