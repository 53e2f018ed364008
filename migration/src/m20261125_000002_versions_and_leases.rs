//! Concurrent replicas: a version on every workflow state (optimistic concurrency) and a
//! recovery lease with a fencing token. Existing rows start at version 1 with no lease.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `version`, `lease_owner`, `lease_expires_at` and `lease_token` to
/// `workflow_states`, one column per statement (SQLite alters one at a time).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            big_integer(WorkflowStates::Version).default(1).to_owned(),
            string_len_null(WorkflowStates::LeaseOwner, 255),
            timestamp_with_time_zone_null(WorkflowStates::LeaseExpiresAt),
            big_integer(WorkflowStates::LeaseToken)
                .default(0)
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WorkflowStates::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            WorkflowStates::LeaseToken,
            WorkflowStates::LeaseExpiresAt,
            WorkflowStates::LeaseOwner,
            WorkflowStates::Version,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WorkflowStates::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WorkflowStates {
    Table,
    Version,
    LeaseOwner,
    LeaseExpiresAt,
    LeaseToken,
}
