//! Schema migrations for `llm-orchestrator-state`.
//!
//! The store applies these itself on start-up; operators can also run them with
//! `DATABASE_URL=... sea-orm-cli migrate up -d migration`.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261125_000002_versions_and_leases;
mod m20261125_000003_history;
mod m20261130_000001_lz4_compression;
mod m20261130_000002_checkpoint_status;
mod m20261207_000001_status_in_any_case;
mod m20261207_000002_checkpoint_bases;

/// Every migration of the schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261125_000002_versions_and_leases::Migration),
            Box::new(m20261125_000003_history::Migration),
            Box::new(m20261130_000001_lz4_compression::Migration),
            Box::new(m20261130_000002_checkpoint_status::Migration),
            Box::new(m20261207_000001_status_in_any_case::Migration),
            Box::new(m20261207_000002_checkpoint_bases::Migration),
        ]
    }
}
