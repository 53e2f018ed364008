//! The schema documented in docs/schema.md is what the migrations create, column for column and
//! index for index, on every backend: people write SQL and dashboards against it.

use std::collections::BTreeMap;

use backend_suite::{Backend, backend_tests, open};
use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};

backend_tests!(the_documented_schema_is_the_migrated_schema);

/// Each table's columns in order, and its index names, from docs/schema.md's SQL block.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: Vec<String>,
    indexes: Vec<String>,
}

fn documented() -> BTreeMap<String, Table> {
    let page = include_str!("../../docs/schema.md");
    let sql = page
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the SQL block of docs/schema.md");
    let mut tables = BTreeMap::<String, Table>::new();
    let mut current = None;
    for line in sql.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["CREATE", "TABLE", name, ..] => current = Some(name.to_string()),
            [");", ..] => current = None,
            ["CREATE", "INDEX", index, "ON", table, ..] => tables
                .entry(table.to_string())
                .or_default()
                .indexes
                .push(index.to_string()),
            ["PRIMARY", ..] | [] => {}
            [column, ..] => {
                if let Some(table) = &current {
                    tables
                        .entry(table.clone())
                        .or_default()
                        .columns
                        .push(column.to_string());
                }
            }
        }
    }
    tables
}

async fn names(db: &impl ConnectionTrait, sql: &str, table: &str) -> Vec<String> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn the_documented_schema_is_the_migrated_schema(backend: Backend) {
    let store = open(backend).await;
    let db = store.connection();
    let (columns, indexes) = match db.get_database_backend() {
        DbBackend::Postgres => (
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = $1 AND indexname NOT LIKE '%_pkey' ORDER BY indexname",
        ),
        _ => (
            "SELECT name FROM pragma_table_info(?) ORDER BY cid",
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? \
             AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
        ),
    };
    let documented = documented();
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        [
            "checkpoint_bases",
            "checkpoints",
            "step_states",
            "workflow_states"
        ]
    );
    for (table, doc) in documented {
        let mut doc_indexes = doc.indexes.clone();
        doc_indexes.sort();
        let migrated = Table {
            columns: names(db, columns, &table).await,
            indexes: names(db, indexes, &table).await,
        };
        assert_eq!(
            migrated,
            Table {
                columns: doc.columns,
                indexes: doc_indexes,
            },
            "{table}: the migrated table (left) and docs/schema.md (right) differ"
        );
    }
}
