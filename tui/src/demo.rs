//! `demo`: realistic sample workflows of an LLM orchestrator, so a new user sees something.

use chrono::{DateTime, Duration, Utc};
use llm_orchestrator_state::{
    Checkpoint, StateStore, StepState, StepStatus, WorkflowState, WorkflowStatus, now,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::db::Store;
use crate::error::Result;

/// One step of a sample workflow: its id, what it outputs, and what it adds to the context.
struct StepSpec {
    id: &'static str,
    outputs: Value,
    context_key: &'static str,
    context_value: Value,
    millis: i64,
}

struct Template {
    prefix: &'static str,
    name: &'static str,
    context: Value,
    steps: Vec<StepSpec>,
    failure: &'static str,
}

fn templates() -> Vec<Template> {
    vec![
        Template {
            prefix: "rag-answer",
            name: "Answer a support question (RAG)",
            context: json!({"question": "How do I rotate my API key?", "model": "gpt-4o-mini", "top_k": 4}),
            steps: vec![
                StepSpec {
                    id: "retrieve",
                    outputs: json!({"chunks": [
                        {"doc": "docs/security/api-keys.md", "score": 0.91},
                        {"doc": "docs/account/settings.md", "score": 0.77}
                    ]}),
                    context_key: "sources",
                    context_value: json!(["docs/security/api-keys.md", "docs/account/settings.md"]),
                    millis: 420,
                },
                StepSpec {
                    id: "prompt",
                    outputs: json!({"model": "gpt-4o-mini", "prompt_tokens": 1843, "completion_tokens": 212,
                        "text": "Open Settings > API keys, create a new key, update your clients, then revoke the old key."}),
                    context_key: "draft",
                    context_value: json!(
                        "Open Settings > API keys, create a new key, update your clients, then revoke the old key."
                    ),
                    millis: 3_150,
                },
                StepSpec {
                    id: "tool_call",
                    outputs: json!({"tool": "check_links", "arguments": {"urls": ["https://example.invalid/settings"]}, "result": {"ok": 1, "broken": 0}}),
                    context_key: "links_checked",
                    context_value: json!(true),
                    millis: 880,
                },
                StepSpec {
                    id: "summarise",
                    outputs: json!({"answer": "Create a new key under Settings > API keys, deploy it, then revoke the old one.", "tokens": 48}),
                    context_key: "answer",
                    context_value: json!(
                        "Create a new key under Settings > API keys, deploy it, then revoke the old one."
                    ),
                    millis: 1_240,
                },
            ],
            failure: "OpenAI API returned 429 Too Many Requests (rate limit), gave up after 3 attempts",
        },
        Template {
            prefix: "ticket-triage",
            name: "Triage an incoming ticket",
            context: json!({"ticket": {"id": 48213, "subject": "Invoice charged twice", "channel": "email"}, "model": "claude-3-5-haiku"}),
            steps: vec![
                StepSpec {
                    id: "classify",
                    outputs: json!({"label": "billing", "confidence": 0.94}),
                    context_key: "label",
                    context_value: json!("billing"),
                    millis: 690,
                },
                StepSpec {
                    id: "retrieve",
                    outputs: json!({"customer": {"plan": "team", "invoices": 2}, "similar_tickets": [47002, 46871]}),
                    context_key: "customer_plan",
                    context_value: json!("team"),
                    millis: 310,
                },
                StepSpec {
                    id: "tool_call",
                    outputs: json!({"tool": "billing.refund", "arguments": {"invoice": "INV-2291", "amount_cents": 4900}, "result": {"status": "refunded"}}),
                    context_key: "refund",
                    context_value: json!({"invoice": "INV-2291", "amount_cents": 4900}),
                    millis: 1_530,
                },
                StepSpec {
                    id: "summarise",
                    outputs: json!({"reply": "We refunded the duplicate charge of $49.00; it shows within 5 days."}),
                    context_key: "reply",
                    context_value: json!(
                        "We refunded the duplicate charge of $49.00; it shows within 5 days."
                    ),
                    millis: 960,
                },
            ],
            failure: "billing.refund timed out after 30s (upstream 504)",
        },
        Template {
            prefix: "doc-summary",
            name: "Summarise a long report",
            context: json!({"document": "s3://reports/q3-earnings.pdf", "pages": 84, "model": "llama-3.1-70b"}),
            steps: vec![
                StepSpec {
                    id: "retrieve",
                    outputs: json!({"pages": 84, "chunks": 37, "bytes": 412_338}),
                    context_key: "chunks",
                    context_value: json!(37),
                    millis: 2_400,
                },
                StepSpec {
                    id: "prompt",
                    outputs: json!({"partial_summaries": 37, "prompt_tokens": 58_112, "completion_tokens": 6_020}),
                    context_key: "partials",
                    context_value: json!(37),
                    millis: 48_500,
                },
                StepSpec {
                    id: "summarise",
                    outputs: json!({"summary": "Revenue grew 12% year on year; margins fell on higher GPU costs; guidance unchanged."}),
                    context_key: "summary",
                    context_value: json!(
                        "Revenue grew 12% year on year; margins fell on higher GPU costs; guidance unchanged."
                    ),
                    millis: 5_200,
                },
            ],
            failure: "context length exceeded (131072 tokens) on chunk 23",
        },
    ]
}

const USERS: [&str; 4] = ["alice", "bob", "ops-bot", "carol"];
const STATUSES: [WorkflowStatus; 6] = [
    WorkflowStatus::Completed,
    WorkflowStatus::Running,
    WorkflowStatus::Failed,
    WorkflowStatus::Paused,
    WorkflowStatus::Completed,
    WorkflowStatus::Pending,
];

/// A sample workflow and the checkpoints taken along the way, all timestamps from `start`.
pub fn sample(index: u64, start: DateTime<Utc>) -> (WorkflowState, Vec<Checkpoint>) {
    let templates = templates();
    let template = &templates[(index % templates.len() as u64) as usize];
    let status = STATUSES[(index % STATUSES.len() as u64) as usize];
    let mut state = WorkflowState::new(
        format!("{}-{:04}", template.prefix, index + 1),
        template.name,
        Some(USERS[(index % USERS.len() as u64) as usize].to_owned()),
        template.context.clone(),
    );
    state.id = Uuid::now_v7();
    state.started_at = start;
    state.updated_at = start;
    let mut clock = start + Duration::milliseconds(150);
    let mut checkpoints = Vec::new();
    let done = match status {
        WorkflowStatus::Completed => template.steps.len(),
        WorkflowStatus::Pending => 0,
        _ => 1 + (index as usize / STATUSES.len()) % (template.steps.len() - 1),
    };
    if status != WorkflowStatus::Pending {
        state.status = WorkflowStatus::Running;
    }
    for spec in &template.steps[..done] {
        let mut step = StepState::new(spec.id);
        step.status = StepStatus::Completed;
        step.started_at = Some(clock);
        clock += Duration::milliseconds(spec.millis);
        step.completed_at = Some(clock);
        step.outputs = spec.outputs.clone();
        state.steps.insert(spec.id.to_owned(), step);
        state.context[spec.context_key] = spec.context_value.clone();
        state.updated_at = clock;
        checkpoints.push(Checkpoint {
            id: Uuid::now_v7(),
            workflow_state_id: state.id,
            step_id: spec.id.to_owned(),
            timestamp: clock,
            snapshot: serde_json::to_value(&state).unwrap_or(Value::Null),
        });
        clock += Duration::milliseconds(40);
    }
    let next = template.steps.get(done);
    match (status, next) {
        (WorkflowStatus::Completed, _) => {
            state.status = WorkflowStatus::Completed;
            state.completed_at = Some(clock);
        }
        (WorkflowStatus::Running, Some(spec)) => {
            let mut step = StepState::new(spec.id);
            step.status = StepStatus::Running;
            step.started_at = Some(clock);
            state.steps.insert(spec.id.to_owned(), step);
        }
        (WorkflowStatus::Failed, Some(spec)) => {
            let mut step = StepState::new(spec.id);
            step.status = StepStatus::Failed;
            step.started_at = Some(clock);
            clock += Duration::milliseconds(spec.millis * 3);
            step.completed_at = Some(clock);
            step.retry_count = 2;
            step.error = Some(template.failure.to_owned());
            let failure = format!("step {} failed: {}", spec.id, template.failure);
            state.steps.insert(spec.id.to_owned(), step);
            state.context["partial"] = json!(true);
            state.status = WorkflowStatus::Failed;
            state.error = Some(failure);
            state.completed_at = Some(clock);
        }
        (WorkflowStatus::Paused, _) => {
            state.status = WorkflowStatus::Paused;
            state.context["awaiting"] =
                json!({"approval_by": "human-reviewer", "reason": "refund above $25"});
        }
        _ => {}
    }
    state.updated_at = clock;
    (state, checkpoints)
}

/// Writes `count` sample workflows, spread over the last hours; in a database without
/// other active workflows, up to three of them are claimed by replicas (one of which
/// crashed). Returns how many checkpoints were written.
pub async fn seed(store: &Store, count: u64) -> Result<u64> {
    use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend};
    // Sample data is not worth an fsync per transaction: SQLite seeds 100,000 workflows in
    // about a minute instead of many. The store's SQLite pool has one connection, so the
    // setting applies to every write below and ends with the process.
    if store.connection().get_database_backend() == DbBackend::Sqlite {
        store
            .connection()
            .execute_unprepared("PRAGMA synchronous = OFF")
            .await?;
    }
    // Claims take the oldest active workflows of the database: only when all of them
    // will be the demo's own.
    let others_active = store.status_counts().await?.active() > 0;
    let now = now();
    let mut written = 0;
    for index in 0..count {
        let minutes_ago = i64::try_from(count - index).unwrap_or(i64::MAX / 8) * 7;
        let start = now - Duration::minutes(minutes_ago);
        let (state, checkpoints) = sample(index, start);
        store.save_workflow_state(&state).await?;
        for checkpoint in &checkpoints {
            store.create_checkpoint(checkpoint).await?;
            written += 1;
        }
    }
    // Replicas at work: two workflows held by a live one, and one whose replica stopped
    // renewing its lease (it crashed), waiting for `recover_workflows`.
    if !others_active {
        let hour = std::time::Duration::from_secs(3_600);
        store.claim_workflows("worker-1", hour, 2).await?;
        store
            .claim_workflows("worker-2", std::time::Duration::from_millis(1), 1)
            .await?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_claims_only_in_a_database_of_its_own() {
        use llm_orchestrator_state::admin::WorkflowQuery;
        let leases = async |store: &Store| {
            let page = store
                .workflow_page(&WorkflowQuery {
                    limit: 1_000,
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut owners: Vec<String> = page
                .rows
                .into_iter()
                .filter_map(|row| row.lease_owner)
                .collect();
            owners.sort();
            owners
        };
        let fresh = crate::db::open(&crate::db::Target::new("sqlite::memory:"))
            .await
            .unwrap();
        seed(&fresh, 12).await.unwrap();
        assert_eq!(leases(&fresh).await, ["worker-1", "worker-1", "worker-2"]);

        // A database with a workflow of someone else's: nobody's lease is taken.
        let shared = crate::db::open(&crate::db::Target::new("sqlite::memory:"))
            .await
            .unwrap();
        let theirs = WorkflowState::new("theirs", "Not the demo's", None, serde_json::json!({}));
        shared.save_workflow_state(&theirs).await.unwrap();
        seed(&shared, 12).await.unwrap();
        assert!(leases(&shared).await.is_empty());
    }

    #[test]
    fn samples_cover_every_status_with_checkpoints() {
        let start = now();
        let samples: Vec<_> = (0..12).map(|i| sample(i, start)).collect();
        for status in WorkflowStatus::ALL {
            assert!(samples.iter().any(|(s, _)| s.status == status), "{status}");
        }
        for (state, checkpoints) in &samples {
            if state.status == WorkflowStatus::Completed {
                assert!(checkpoints.len() >= 3);
            }
            for checkpoint in checkpoints {
                assert_eq!(checkpoint.state().unwrap().id, state.id);
            }
            if state.status == WorkflowStatus::Failed {
                assert!(state.error.is_some());
                assert!(state.steps.values().any(|s| s.error.is_some()));
            }
        }
    }
}
