//! `sea-orm-cli migrate` entry point (`sea-orm-cli migrate up -d migration`), or
//! `cargo run -p llm-orchestrator-state-migration -- up|down|status|fresh`.

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
