//! History that stays useful: checkpoint sizes and pins, and where a forked workflow came
//! from. Existing checkpoints get their size computed from their snapshot.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `size_bytes` and `pinned_label` to `checkpoints`, and
/// `forked_from_workflow_state_id` / `forked_from_checkpoint_id` to `workflow_states`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            big_integer(Checkpoints::SizeBytes).default(0).to_owned(),
            string_len_null(Checkpoints::PinnedLabel, 255),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Checkpoints::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            uuid_null(WorkflowStates::ForkedFromWorkflowStateId),
            uuid_null(WorkflowStates::ForkedFromCheckpointId),
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
        // Sizes of the checkpoints that exist already: the length of their JSON text.
        let length = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => "octet_length(snapshot::text)",
            _ => "length(CAST(snapshot AS BLOB))",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!("UPDATE checkpoints SET size_bytes = {length}"))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workflow_states_forked_from")
                    .table(WorkflowStates::Table)
                    .col(WorkflowStates::ForkedFromWorkflowStateId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_workflow_states_forked_from")
                    .table(WorkflowStates::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            WorkflowStates::ForkedFromCheckpointId,
            WorkflowStates::ForkedFromWorkflowStateId,
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
        for column in [Checkpoints::PinnedLabel, Checkpoints::SizeBytes] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Checkpoints::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Checkpoints {
    Table,
    SizeBytes,
    PinnedLabel,
}

#[derive(DeriveIden)]
enum WorkflowStates {
    Table,
    ForkedFromWorkflowStateId,
    ForkedFromCheckpointId,
}
