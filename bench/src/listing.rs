//! `list_active_workflows` with 1,000, 10,000, 100,000 active workflows in the table.
//!
//! The rows are bulk-inserted through the entity crate (`insert_many`, a few thousand rows
//! per statement), not saved one by one: filling the table is not what is measured.

use std::error::Error;
use std::time::Instant;

use chrono::Duration as TimeDelta;
use entity::{step_states, workflow_states};
use futures::{StreamExt, TryStreamExt};
use llm_orchestrator_state::sea_orm::ActiveValue::Set;
use llm_orchestrator_state::sea_orm::{
    ColumnTrait, ConnectionTrait as _, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, TransactionTrait,
};
use llm_orchestrator_state::{SeaOrmStateStore, StateStore, WorkflowStatus, now};
use serde_json::json;
use uuid::Uuid;

use crate::report::{Errors, Row};
use crate::statements;
use crate::stats::Samples;
use crate::workload::{Shape, Words};

/// Workflows per insert transaction (the step rows are split to stay under SQLite's
/// 32,766 bound parameters per statement).
const WORKFLOWS_PER_CHUNK: usize = 1000;
const STEP_ROWS_PER_STATEMENT: usize = 3000;

fn active_names() -> Vec<&'static str> {
    WorkflowStatus::ACTIVE.iter().map(|s| s.as_str()).collect()
}

async fn count_active(db: &DatabaseConnection) -> Result<u64, Box<dyn Error>> {
    Ok(workflow_states::Entity::find()
        .filter(workflow_states::Column::Status.is_in(active_names()))
        .count(db)
        .await?)
}

// Field by field from the default: the entities gain columns (with database defaults)
// as the schema grows, and this must build against each version.
#[allow(clippy::field_reassign_with_default)]
async fn insert_chunk(
    db: DatabaseConnection,
    shape: Shape,
    first: usize,
    count: usize,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut words = Words::new(first as u64 + 99);
    let template = shape.new_state("template", &mut words);
    let base = now().fixed_offset();
    let mut workflows = Vec::with_capacity(count);
    let mut steps = Vec::with_capacity(count * shape.steps);
    for index in first..first + count {
        let id = Uuid::now_v7();
        let updated = base - TimeDelta::microseconds(index as i64);
        let mut workflow = workflow_states::ActiveModel::default();
        workflow.id = Set(id);
        workflow.workflow_id = Set(format!("bench-list-{index}"));
        workflow.workflow_name = Set("bench listed workflow".into());
        workflow.status = Set(WorkflowStatus::Running.as_str().into());
        workflow.user_id = Set(Some("bench-user".into()));
        workflow.started_at = Set(updated);
        workflow.updated_at = Set(updated);
        workflow.completed_at = Set(None);
        workflow.context = Set(template.context.clone());
        workflow.error = Set(None);
        workflows.push(workflow);
        for step in template.steps.values() {
            let mut row = step_states::ActiveModel::default();
            row.workflow_state_id = Set(id);
            row.step_id = Set(step.step_id.clone());
            row.status = Set(step.status.as_str().into());
            row.started_at = Set(step.started_at.map(|t| t.fixed_offset()));
            row.completed_at = Set(step.completed_at.map(|t| t.fixed_offset()));
            row.outputs = Set(Some(step.outputs.clone()));
            row.error = Set(None);
            row.retry_count = Set(0);
            steps.push(row);
        }
    }
    let txn = db.begin().await?;
    workflow_states::Entity::insert_many(workflows)
        .exec_without_returning(&txn)
        .await?;
    let mut steps = steps.into_iter().peekable();
    while steps.peek().is_some() {
        let batch: Vec<_> = steps.by_ref().take(STEP_ROWS_PER_STATEMENT).collect();
        step_states::Entity::insert_many(batch)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Fills the table up to each size in turn (ascending) and times the listing.
pub async fn run(
    store: &SeaOrmStateStore,
    backend: &str,
    sizes: &[usize],
    shape: Shape,
    rows: &mut Vec<Row>,
) -> Result<(), Box<dyn Error>> {
    let db = store.connection().clone();
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    let mut next_index = 0;
    for size in sizes {
        let active = count_active(&db).await? as usize;
        if active > size {
            // The row is named after what was listed, not what was asked.
            eprintln!(
                "note: {active} workflows are active already (earlier phases), more than the \
                 list size {size}: listing {active}"
            );
        }
        let missing = size.saturating_sub(active);
        let fill_started = Instant::now();
        let chunks: Vec<(usize, usize)> = (0..missing)
            .step_by(WORKFLOWS_PER_CHUNK)
            .map(|offset| {
                (
                    next_index + offset,
                    WORKFLOWS_PER_CHUNK.min(missing - offset),
                )
            })
            .collect();
        next_index += missing;
        futures::stream::iter(chunks)
            .map(|(first, count)| insert_chunk(db.clone(), shape, first, count))
            .buffer_unordered(4)
            .try_collect::<Vec<()>>()
            .await
            .map_err(|err| err.to_string())?;
        let fill_seconds = fill_started.elapsed().as_secs_f64();
        let expected = count_active(&db).await? as usize;
        if backend == "postgres" {
            // What autovacuum does within a minute of these inserts: statistics for the
            // planner, so the listing is measured with the plan a live database gets.
            db.execute_unprepared("ANALYZE workflow_states, step_states, checkpoints")
                .await?;
        }

        let iterations = (100_000 / size.max(1)).clamp(3, 20);
        let mut samples = Samples::with_capacity(iterations);
        let mut errors = Errors::default();
        store.list_active_workflows().await?; // warm-up
        for _ in 0..iterations {
            let started = Instant::now();
            let result = store.list_active_workflows().await;
            let elapsed = started.elapsed();
            match result {
                Ok(listed) => {
                    samples.push(elapsed);
                    let ordered = listed
                        .windows(2)
                        .all(|pair| pair[0].updated_at >= pair[1].updated_at);
                    let steps_ok = listed
                        .iter()
                        .filter(|state| state.workflow_id.starts_with("bench-list-"))
                        .all(|state| state.steps.len() == shape.steps);
                    if listed.len() != expected || !ordered || !steps_ok {
                        errors.add("wrong_result");
                        eprintln!(
                            "warning: list_active_workflows returned {} of {expected} (ordered {ordered}, steps {steps_ok})",
                            listed.len()
                        );
                    }
                }
                Err(err) => errors.add_error(&err),
            }
        }
        let (result, sent) = statements::record(store.list_active_workflows()).await;
        result?;
        rows.push(
            Row::new(
                backend,
                format!("list_active_workflows[{expected}]"),
                samples.summary(None),
            )
            .statements(sent)
            .errors(errors)
            .with("active_workflows", expected)
            .with("fill_seconds", (fill_seconds * 10.0).round() / 10.0)
            .with(
                "listed_shape",
                json!({"context_bytes": shape.context_bytes, "steps": shape.steps,
                       "output_bytes": shape.output_bytes}),
            ),
        );
        rows.extend(pages(store, backend, expected, iterations).await?);
    }
    Ok(())
}

/// The size of the first page the paginated listing is timed at.
pub const FIRST: u64 = 100;

/// The paginated listing at `expected` active workflows: the first page of 100 (how a
/// recovery loop starts), and a walk through all of them in pages of 1,000, checked to
/// return each workflow once.
async fn pages(
    store: &SeaOrmStateStore,
    backend: &str,
    expected: usize,
    iterations: usize,
) -> Result<Vec<Row>, Box<dyn Error>> {
    const WALK: u64 = 1000;
    let mut first = Samples::with_capacity(iterations);
    let mut errors = Errors::default();
    store.list_active_workflows_page(None, FIRST).await?; // warm-up
    for _ in 0..iterations.max(10) {
        let started = Instant::now();
        let result = store.list_active_workflows_page(None, FIRST).await;
        let elapsed = started.elapsed();
        match result {
            Ok(page) if page.workflows.len() == expected.min(FIRST as usize) => first.push(elapsed),
            Ok(_) => errors.add("wrong_result"),
            Err(err) => errors.add_error(&err),
        }
    }
    let (result, sent) = statements::record(store.list_active_workflows_page(None, FIRST)).await;
    result?;
    let first_row = Row::new(
        backend,
        format!("list_active_workflows_page[{expected}] first {FIRST}"),
        first.summary(None),
    )
    .statements(sent)
    .errors(errors);

    let mut walks = Samples::with_capacity(3);
    let mut errors = Errors::default();
    for _ in 0..3 {
        let started = Instant::now();
        let mut after = None;
        let mut seen = std::collections::HashSet::with_capacity(expected);
        let mut duplicates = 0;
        loop {
            let page = store
                .list_active_workflows_page(after.as_ref(), WALK)
                .await?;
            for state in &page.workflows {
                if !seen.insert(state.id) {
                    duplicates += 1;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        walks.push(started.elapsed());
        if seen.len() != expected || duplicates > 0 {
            errors.add("wrong_result");
            eprintln!(
                "warning: paging returned {} distinct of {expected} ({duplicates} repeated)",
                seen.len()
            );
        }
    }
    let walk_row = Row::new(
        backend,
        format!("list_active_workflows_page[{expected}] walk by {WALK}"),
        walks.summary(None),
    )
    .errors(errors)
    .with("pages", expected.div_ceil(WALK as usize));
    Ok(vec![first_row, walk_row])
}
