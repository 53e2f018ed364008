//! Checkpoints stored as changes: a checkpoint may hold, instead of its whole snapshot, a
//! JSON Patch (RFC 6902) from a *base*, a full snapshot kept once in `checkpoint_bases`
//! for several checkpoints of its workflow. Reading a checkpoint then reads its row and
//! its base's, two rows whatever the workflow's history, and a step no longer writes a
//! copy of the whole state.
//!
//! A workflow row may hold its context the same way: `workflow_states.context_base_id`
//! names the base, and `context` holds the patch from that base's context, so a step
//! does not rewrite a long conversation's whole context either.
//!
//! Existing checkpoints and workflows keep their whole snapshot and context (`base_id`,
//! `context_base_id` NULL) and read as before.
//! A base is deleted with its workflow; the store deletes one no checkpoint needs any
//! more. Going down is refused while any checkpoint or context is stored as a change (it
//! would be lost). SQLite cannot drop a column that has a foreign key, so there down
//! leaves `checkpoints.base_id` and `workflow_states.context_base_id` (nullable, unused by
//! older code) in place, and the empty `checkpoint_bases` they refer to: SQLite refuses
//! writes that check a reference to a table that is gone.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::{prelude::*, schema::*};

/// Creates `checkpoint_bases` and adds `checkpoints.base_id` and
/// `workflow_states.context_base_id`, which refer to it.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The two columns that refer to a base: table, column, foreign key, index.
const REFERENCES: [(&str, &str, &str, &str); 2] = [
    (
        "checkpoints",
        "base_id",
        "fk_checkpoints_base_id",
        "idx_checkpoints_base_id",
    ),
    (
        "workflow_states",
        "context_base_id",
        "fk_workflow_states_context_base_id",
        "idx_workflow_states_context_base_id",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(CheckpointBases::Table)
                    .if_not_exists()
                    .col(uuid(CheckpointBases::Id).primary_key())
                    .col(uuid(CheckpointBases::WorkflowStateId))
                    .col(json_binary(CheckpointBases::Snapshot))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_checkpoint_bases_workflow_state_id")
                            .from(CheckpointBases::Table, CheckpointBases::WorkflowStateId)
                            .to(WorkflowStates::Table, WorkflowStates::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_checkpoint_bases_workflow_state_id")
                    .table(CheckpointBases::Table)
                    .col(CheckpointBases::WorkflowStateId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        if backend == DbBackend::Postgres {
            // Same compression as the other snapshot columns (see the lz4 migration).
            manager
                .get_connection()
                .execute_unprepared(
                    "DO $$ BEGIN \
                       IF EXISTS (SELECT 1 FROM pg_settings \
                                  WHERE name = 'default_toast_compression' \
                                  AND 'lz4' = ANY(enumvals)) THEN \
                         ALTER TABLE checkpoint_bases ALTER COLUMN snapshot SET COMPRESSION lz4; \
                       END IF; \
                     END $$",
                )
                .await?;
        }

        for (table, column, foreign_key, index) in REFERENCES {
            if !manager.has_column(table, column).await? {
                let add = Table::alter()
                    .table(Alias::new(table))
                    .add_column(uuid_null(Alias::new(column)))
                    .to_owned();
                match backend {
                    // SQLite adds a column with its reference in one statement only.
                    DbBackend::Sqlite => {
                        let sql = format!(
                            "{} REFERENCES \"checkpoint_bases\" (\"id\")",
                            add.to_string(SqliteQueryBuilder)
                        );
                        manager.get_connection().execute_unprepared(&sql).await?;
                    }
                    _ => {
                        manager.alter_table(add).await?;
                        manager
                            .create_foreign_key(
                                ForeignKey::create()
                                    .name(foreign_key)
                                    .from(Alias::new(table), Alias::new(column))
                                    .to(CheckpointBases::Table, CheckpointBases::Id)
                                    .to_owned(),
                            )
                            .await?;
                    }
                }
            }
            // Which rows still need a base (the store's clean-up of bases asks it).
            manager
                .create_index(
                    Index::create()
                        .name(index)
                        .table(Alias::new(table))
                        .col(Alias::new(column))
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let backend = manager.get_database_backend();
        for (table, column, _, _) in REFERENCES {
            let changes = conn
                .query_one_raw(Statement::from_string(
                    backend,
                    format!("SELECT count(*) AS n FROM {table} WHERE {column} IS NOT NULL"),
                ))
                .await?
                .map(|row| row.try_get::<i64>("", "n"))
                .transpose()?
                .unwrap_or(0);
            if changes > 0 {
                return Err(DbErr::Migration(format!(
                    "{changes} rows of {table} are stored as changes from a base snapshot, \
                     which the schema before this migration cannot hold; going down would \
                     lose them"
                )));
            }
        }
        for (table, column, foreign_key, index) in REFERENCES {
            manager
                .drop_index(
                    Index::drop()
                        .name(index)
                        .table(Alias::new(table))
                        .to_owned(),
                )
                .await?;
            if backend != DbBackend::Sqlite {
                manager
                    .drop_foreign_key(
                        ForeignKey::drop()
                            .name(foreign_key)
                            .table(Alias::new(table))
                            .to_owned(),
                    )
                    .await?;
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(table))
                            .drop_column(Alias::new(column))
                            .to_owned(),
                    )
                    .await?;
            }
        }
        // SQLite keeps the columns, whose references need their table: with foreign keys
        // on, SQLite refuses any write that checks a reference to a table that is gone
        // (a new checkpoint, a deleted workflow). It stays, empty.
        if backend != DbBackend::Sqlite {
            manager
                .drop_table(Table::drop().table(CheckpointBases::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum CheckpointBases {
    Table,
    Id,
    WorkflowStateId,
    Snapshot,
}

#[derive(DeriveIden)]
enum WorkflowStates {
    Table,
    Id,
}
