//! The workflow's status in each checkpoint as a column of its own, so a list of
//! checkpoints can show it without reading (and, on Postgres, decompressing) every
//! snapshot. Existing checkpoints get it from their snapshot's `"status"`.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `checkpoints.workflow_status` and fills it from the snapshots already stored.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Checkpoints::Table)
                    .add_column(string_len_null(Checkpoints::WorkflowStatus, 50))
                    .to_owned(),
            )
            .await?;
        // A snapshot whose "status" is not a string of at most 50 characters (it need not
        // be a workflow state at all) gets NULL; on SQLite a row whose JSON is corrupt too,
        // rather than failing the migration (CASE evaluates its branches in order).
        let status = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "CASE WHEN jsonb_typeof(snapshot -> 'status') = 'string' \
                      AND length(snapshot ->> 'status') <= 50 \
                 THEN snapshot ->> 'status' END"
            }
            _ => {
                "CASE WHEN json_valid(snapshot) THEN \
                   CASE WHEN json_type(snapshot, '$.status') = 'text' \
                         AND length(json_extract(snapshot, '$.status')) <= 50 \
                   THEN json_extract(snapshot, '$.status') END \
                 END"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE checkpoints SET workflow_status = {status}"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Checkpoints::Table)
                    .drop_column(Checkpoints::WorkflowStatus)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Checkpoints {
    Table,
    WorkflowStatus,
}
