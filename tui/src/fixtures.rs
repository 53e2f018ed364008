//! Fixed test data (ids, times) so snapshots and assertions are stable.

use chrono::{DateTime, Duration, Utc};
use llm_orchestrator_state::admin::{StatusCounts, WorkflowPage, WorkflowSummary};
use llm_orchestrator_state::{
    Checkpoint, CheckpointInfo, CheckpointUsage, StepState, StepStatus, WorkflowState,
    WorkflowStatus,
};
use serde_json::json;
use uuid::Uuid;

use crate::app::{App, Message, update};

/// 2026-11-25 09:00:00 UTC.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A failed RAG workflow with three steps, and checkpoints after the first two.
pub fn failed_workflow() -> (WorkflowState, Vec<Checkpoint>) {
    let start = t0();
    let mut state = WorkflowState::new(
        "rag-answer-0001",
        "Answer a support question",
        Some("alice".into()),
        json!({"question": "How do I rotate my API key?", "model": "gpt-4o-mini"}),
    );
    state.id = Uuid::from_u128(0x0001);
    state.started_at = start;
    state.status = WorkflowStatus::Running;
    let mut checkpoints = Vec::new();
    let steps = [
        (
            "retrieve",
            json!({"chunks": 2}),
            "sources",
            json!(["a.md", "b.md"]),
        ),
        (
            "prompt",
            json!({"tokens": 1843}),
            "draft",
            json!("Open Settings"),
        ),
    ];
    for (n, (id, outputs, key, value)) in steps.into_iter().enumerate() {
        let mut step = StepState::new(id);
        step.status = StepStatus::Completed;
        step.started_at = Some(start + Duration::seconds(n as i64 * 10));
        step.completed_at = Some(start + Duration::seconds(n as i64 * 10 + 3));
        step.outputs = outputs;
        state.steps.insert(id.into(), step);
        state.context[key] = value;
        state.updated_at = start + Duration::seconds(n as i64 * 10 + 3);
        checkpoints.push(Checkpoint {
            id: Uuid::from_u128(0x100 + n as u128),
            workflow_state_id: state.id,
            step_id: id.into(),
            timestamp: state.updated_at,
            snapshot: serde_json::to_value(&state).unwrap(),
        });
    }
    let mut tool = StepState::new("tool_call");
    tool.status = StepStatus::Failed;
    tool.started_at = Some(start + Duration::seconds(20));
    tool.completed_at = Some(start + Duration::seconds(50));
    tool.retry_count = 2;
    tool.error = Some("check_links timed out".into());
    state.steps.insert("tool_call".into(), tool);
    state.status = WorkflowStatus::Failed;
    state.error = Some("step tool_call failed: check_links timed out".into());
    state.updated_at = start + Duration::seconds(50);
    state.completed_at = Some(state.updated_at);
    checkpoints.reverse(); // newest first, as the store lists them
    (state, checkpoints)
}

/// A checkpoint of `state` whose snapshot is the orchestrator's own JSON, not a workflow
/// state, taken after its last step: newer than [`failed_workflow`]'s checkpoints.
pub fn own_json_checkpoint(state: &WorkflowState) -> Checkpoint {
    Checkpoint {
        id: Uuid::from_u128(0x102),
        workflow_state_id: state.id,
        step_id: "tool_call".into(),
        timestamp: t0() + Duration::seconds(50),
        snapshot: json!({"checkpoint": 3, "cursor": {"page": 7, "seen": ["a.md", "b.md"]}}),
    }
}

/// A checkpoint's snapshot size in bytes, as compact JSON (what the store records).
pub fn snapshot_size(checkpoint: &Checkpoint) -> u64 {
    serde_json::to_string(&checkpoint.snapshot).map_or(0, |text| text.len() as u64)
}

/// What the store says about `checkpoints` without their snapshots, with the oldest
/// pinned as "approved by human"; and their totals.
pub fn checkpoint_infos(checkpoints: &[Checkpoint]) -> (Vec<CheckpointInfo>, CheckpointUsage) {
    let last = checkpoints.len().saturating_sub(1);
    let infos: Vec<CheckpointInfo> = checkpoints
        .iter()
        .enumerate()
        .map(|(n, c)| CheckpointInfo {
            id: c.id,
            workflow_state_id: c.workflow_state_id,
            step_id: c.step_id.clone(),
            timestamp: c.timestamp,
            size_bytes: snapshot_size(c),
            pinned: (n == last).then(|| "approved by human".to_owned()),
            workflow_status: c
                .snapshot
                .get("status")
                .and_then(|status| status.as_str())
                .and_then(|status| status.parse().ok()),
        })
        .collect();
    let usage = CheckpointUsage {
        count: infos.len() as u64,
        bytes: infos.iter().map(|i| i.size_bytes).sum(),
        pinned: infos.iter().filter(|i| i.pinned.is_some()).count() as u64,
    };
    (infos, usage)
}

/// Summary rows for the workflows table: one per status.
pub fn summaries() -> Vec<WorkflowSummary> {
    WorkflowStatus::ALL
        .iter()
        .enumerate()
        .map(|(n, status)| WorkflowSummary {
            id: Uuid::from_u128(n as u128 + 1),
            workflow_id: format!("wf-{:04}", n + 1),
            workflow_name: format!("Sample {status} workflow"),
            status: *status,
            user_id: (n % 2 == 0).then(|| "alice".to_owned()),
            started_at: t0() + Duration::minutes(n as i64),
            updated_at: t0() + Duration::minutes(n as i64 + 5),
            completed_at: None,
            error: None,
            steps_done: n as u64,
            steps_total: 4,
            checkpoint_count: n as u64,
            lease_owner: None,
            lease_expires_at: None,
            lease_expired: false,
        })
        .collect()
}

/// Counts matching [`summaries`].
pub fn counts() -> StatusCounts {
    StatusCounts {
        by_status: WorkflowStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 1))
            .collect(),
        lease_expired: 0,
    }
}

/// An app with [`summaries`] loaded, as the runtime would leave it.
pub fn loaded_app() -> App {
    let mut app = App::new("sqlite://workflows.db", false);
    let request = app.workflows.request;
    app.effects.clear();
    update(
        &mut app,
        Message::WorkflowsLoaded {
            request,
            append: false,
            result: Ok(WorkflowPage {
                rows: summaries(),
                next: None,
            }),
            at: t0() + Duration::hours(1),
        },
    );
    update(&mut app, Message::CountsLoaded(Ok(counts())));
    app
}

/// More lines than a `u16` scroll position could reach: the long texts below.
pub const LONG: usize = 80_000;

/// `{"messages": ["line 0", ..., "line {LONG - 1}"]}`: pretty-printed, `"line n"` is on
/// line `n + 2` of `LONG + 4`.
pub fn long_json() -> serde_json::Value {
    let messages: Vec<String> = (0..LONG).map(|n| format!("line {n}")).collect();
    json!({ "messages": messages })
}

/// [`failed_workflow`] with a context and a first step's outputs of [`long_json`], and
/// its newest checkpoint's snapshot too.
pub fn long_workflow() -> (WorkflowState, Vec<Checkpoint>) {
    let (mut state, mut checkpoints) = failed_workflow();
    state.context = long_json();
    if let Some(step) = state.steps.get_mut("retrieve") {
        step.outputs = long_json();
    }
    checkpoints[0].snapshot = long_json();
    (state, checkpoints)
}

/// Presses `d` on the checkpoints screen (newest checkpoint selected, nothing marked) and
/// delivers its answer: [`LONG`] added lines, `context.messages[0..LONG]`.
pub fn open_long_diff(app: &mut App) {
    let changes = (0..LONG)
        .map(|n| crate::diff::Change::Added {
            path: format!("context.messages[{n}]"),
            new: json!(n),
        })
        .collect();
    let (_, checkpoints) = failed_workflow();
    update(
        app,
        Message::Key(ratatui::crossterm::event::KeyEvent::new(
            ratatui::crossterm::event::KeyCode::Char('d'),
            ratatui::crossterm::event::KeyModifiers::NONE,
        )),
    );
    update(
        app,
        Message::DiffLoaded {
            from: checkpoints[0].id,
            to: None,
            result: Ok(("long".into(), changes)),
        },
    );
}
