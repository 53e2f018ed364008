//! The seed schema: workflow states, their steps, and checkpoints.
//!
//! Column names are those docs/schema.md documents. JSON columns are `jsonb` on Postgres
//! and text on SQLite. Child rows cascade when their workflow is deleted.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `workflow_states`, `step_states` and `checkpoints` with their indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkflowStates::Table)
                    .col(uuid(WorkflowStates::Id).primary_key())
                    .col(string_len(WorkflowStates::WorkflowId, 255))
                    .col(string_len(WorkflowStates::WorkflowName, 255))
                    .col(string_len(WorkflowStates::Status, 50))
                    .col(string_len_null(WorkflowStates::UserId, 255))
                    .col(timestamp_with_time_zone(WorkflowStates::StartedAt))
                    .col(timestamp_with_time_zone(WorkflowStates::UpdatedAt))
                    .col(timestamp_with_time_zone_null(WorkflowStates::CompletedAt))
                    .col(json_binary(WorkflowStates::Context))
                    .col(text_null(WorkflowStates::Error))
                    .to_owned(),
            )
            .await?;
        // load_workflow_state_by_workflow_id: newest row for a workflow_id.
        manager
            .create_index(
                Index::create()
                    .name("idx_workflow_states_workflow_id_updated_at")
                    .table(WorkflowStates::Table)
                    .col(WorkflowStates::WorkflowId)
                    .col(WorkflowStates::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        // list_active_workflows and delete_old_states filter on status, then updated_at.
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
            .create_table(
                Table::create()
                    .table(StepStates::Table)
                    .col(uuid(StepStates::WorkflowStateId))
                    .col(string_len(StepStates::StepId, 255))
                    .col(string_len(StepStates::Status, 50))
                    .col(timestamp_with_time_zone_null(StepStates::StartedAt))
                    .col(timestamp_with_time_zone_null(StepStates::CompletedAt))
                    .col(json_binary_null(StepStates::Outputs))
                    .col(text_null(StepStates::Error))
                    .col(integer(StepStates::RetryCount).default(0))
                    .primary_key(
                        Index::create()
                            .col(StepStates::WorkflowStateId)
                            .col(StepStates::StepId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_step_states_workflow_state_id")
                            .from(StepStates::Table, StepStates::WorkflowStateId)
                            .to(WorkflowStates::Table, WorkflowStates::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Checkpoints::Table)
                    .col(uuid(Checkpoints::Id).primary_key())
                    .col(uuid(Checkpoints::WorkflowStateId))
                    .col(string_len(Checkpoints::StepId, 255))
                    .col(timestamp_with_time_zone(Checkpoints::Timestamp))
                    .col(json_binary(Checkpoints::Snapshot))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_checkpoints_workflow_state_id")
                            .from(Checkpoints::Table, Checkpoints::WorkflowStateId)
                            .to(WorkflowStates::Table, WorkflowStates::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // get_latest_checkpoint / list_checkpoints / retention: newest first per workflow.
        manager
            .create_index(
                Index::create()
                    .name("idx_checkpoints_workflow_state_id_timestamp")
                    .table(Checkpoints::Table)
                    .col(Checkpoints::WorkflowStateId)
                    .col(Checkpoints::Timestamp)
                    .col(Checkpoints::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Checkpoints::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(StepStates::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WorkflowStates::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WorkflowStates {
    Table,
    Id,
    WorkflowId,
    WorkflowName,
    Status,
    UserId,
    StartedAt,
    UpdatedAt,
    CompletedAt,
    Context,
    Error,
}

#[derive(DeriveIden)]
enum StepStates {
    Table,
    WorkflowStateId,
    StepId,
    Status,
    StartedAt,
    CompletedAt,
    Outputs,
    Error,
    RetryCount,
}

#[derive(DeriveIden)]
enum Checkpoints {
    Table,
    Id,
    WorkflowStateId,
    StepId,
    Timestamp,
    Snapshot,
}
