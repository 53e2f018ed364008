//! Workflows are found by status in any case (`RUNNING` is running, as the store reads
//! it): the status index becomes one on `lower(status)`, which those filters use.

use sea_orm_migration::prelude::*;

/// Replaces the `(status, updated_at)` index of `workflow_states` with one on
/// `(lower(status), updated_at)`.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The same statement on both databases: sea-query's index builder takes columns only.
const CREATE_LOWER: &str = "CREATE INDEX idx_workflow_states_lower_status_updated_at \
                            ON workflow_states (lower(status), updated_at)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(CREATE_LOWER)
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_workflow_states_status_updated_at")
                    .table(WorkflowStates::Table)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_workflow_states_status_updated_at")
                    .table(WorkflowStates::Table)
                    .col(WorkflowStates::Status)
                    .col(WorkflowStates::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_workflow_states_lower_status_updated_at")
                    .table(WorkflowStates::Table)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WorkflowStates {
    Table,
    Status,
    UpdatedAt,
}
