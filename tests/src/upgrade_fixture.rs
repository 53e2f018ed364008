//! The data the upgrade test starts from: [`fill`] writes it through the public store API
//! (the example `fill_upgrade_fixture` runs it to make `tests/fixtures/upgrade`), and
//! [`reads`] is everything the public reads return about it, as one JSON document.
//!
//! The fixtures hold what [`fill`] wrote at the time they were made; changing [`fill`]
//! changes nothing until they are made again. [`reads`] runs both when they are made and
//! in the test, so it must keep returning the same document for the same rows: add reads
//! as new keys only together with fixtures made again.

use std::time::Duration;

use llm_orchestrator_state::admin::WorkflowQuery;
use llm_orchestrator_state::{
    Checkpoint, Result, SaveCondition, SeaOrmStateStore, StateStore, StateStoreError, StepState,
    StepStatus, WorkflowState, WorkflowStatus,
};
use serde_json::{Map, Value, json};

use crate::at;

/// The running workflow with a long history: 14 recorded steps, two of their checkpoints
/// pinned.
pub const LONG: &str = "wf-long";
/// The pending workflow forked from the fifth checkpoint of [`LONG`].
pub const FORK: &str = "wf-long-fork";
/// The running workflow a live lease of [`LEASE_OWNER`] holds.
pub const LEASED: &str = "wf-leased";
/// The paused workflow whose newest checkpoint is the orchestrator's own JSON
/// (`{"checkpoint": 3}`), not a workflow state.
pub const PAUSED: &str = "wf-paused";
/// The completed workflow with unicode everywhere and a context of about 100 KiB.
pub const UNICODE: &str = "wf-unicode";
/// The failed workflow with an error text and a failed step.
pub const FAILED: &str = "wf-failed";
/// The pending workflow with no steps and no checkpoints.
pub const PENDING: &str = "wf-pending";

/// Who holds the lease on [`LEASED`].
pub const LEASE_OWNER: &str = "replica-a";
/// The lease's length: the longest the store grants (3650 days), so the fixture's lease
/// stays live for ten years after the fixtures were made (until December 2036).
pub const LEASE_DURATION: Duration = Duration::from_secs(3650 * 24 * 3600);
/// The labels of the two pinned checkpoints of [`LONG`] (after its steps 3 and 10).
pub const PINS: [(&str, &str); 2] = [
    ("step-03", "before tool call"),
    ("step-10", "approved by human ✅"),
];
/// The step of [`LONG`] whose checkpoint [`FORK`] was forked from.
pub const FORKED_AT: &str = "step-05";
/// The text of the context of [`UNICODE`]: a little over 100 KiB.
pub const LARGE_TEXT_BYTES: usize = 100 * 1024;

/// Most checkpoints a workflow of the fixture has, and then some: one page reads them all.
const PAGE: u64 = 1000;

/// Fills an empty store: seven workflows in every status (the constants of this module
/// name them), steps with outputs, checkpoints recorded with steps and created directly,
/// pins, a live lease, a fork, unicode, a large context and an error text. Open the store
/// with `checkpoint_retention(None)`, or retention deletes most of the long history.
pub async fn fill(store: &SeaOrmStateStore) -> Result<()> {
    // First, while it is the only active workflow, so the claim takes it and no other.
    leased(store).await?;
    long_with_fork(store).await?;
    paused(store).await?;
    unicode(store).await?;
    failed(store).await?;
    let pending = new_workflow(PENDING, "Queued job", None, json!({}), 900);
    store.save_workflow_state(&pending).await
}

/// A workflow at fixed times (`seconds` after the harness's base instant), as saved.
fn new_workflow(
    workflow_id: &str,
    name: &str,
    user_id: Option<&str>,
    context: Value,
    seconds: i64,
) -> WorkflowState {
    let mut state = WorkflowState::new(workflow_id, name, user_id.map(str::to_owned), context);
    state.started_at = at(seconds, 0);
    state.updated_at = at(seconds, 0);
    state
}

/// A step finished in `status` at fixed times, with `outputs`.
fn finished_step(step_id: &str, status: StepStatus, outputs: Value, seconds: i64) -> StepState {
    StepState {
        status,
        started_at: Some(at(seconds, 250_000)),
        completed_at: Some(at(seconds + 4, 125)),
        outputs,
        ..StepState::new(step_id)
    }
}

async fn leased(store: &SeaOrmStateStore) -> Result<()> {
    let mut state = new_workflow(
        LEASED,
        "Nightly report",
        Some("ops@example.com"),
        json!({"report": "nightly", "date": "2026-01-01"}),
        0,
    );
    state.status = WorkflowStatus::Running;
    store.save_workflow_state(&state).await?;
    let collect = finished_step("collect", StepStatus::Completed, json!({"rows": 1250}), 10);
    store.record_step(&mut state, collect).await?;
    let claims = store
        .claim_workflows(LEASE_OWNER, LEASE_DURATION, 10)
        .await?;
    let [claim] = claims.as_slice() else {
        return Err(StateStoreError::Other(
            format!(
                "the claim took {} workflows, not just {LEASED}",
                claims.len()
            )
            .into(),
        ));
    };
    let lease = SaveCondition::Lease(claim.lease.clone());
    let summarise = finished_step(
        "summarise",
        StepStatus::Completed,
        json!({"summary": "all green", "tokens": 812}),
        20,
    );
    store.record_step_if(&mut state, summarise, &lease).await?;
    Ok(())
}

async fn long_with_fork(store: &SeaOrmStateStore) -> Result<()> {
    let mut state = new_workflow(
        LONG,
        "Research agent",
        Some("researcher-7"),
        json!({
            "topic": "tides",
            "limits": {"max_tokens": 4096, "temperature": 0.7, "top_p": 1.0},
            "numbers": [0, -1, 1.5e-7, 0.1, 1.0000000000000002, 9007199254740993u64, i64::MIN],
            "empty": {"list": [], "object": {}, "null": null, "flag": false},
        }),
        100,
    );
    state.status = WorkflowStatus::Running;
    store.save_workflow_state(&state).await?;
    let mut pinned = Vec::new();
    let mut fork_from = None;
    for n in 1..=14_i64 {
        let step_id = format!("step-{n:02}");
        let seconds = 100 + 10 * n;
        let step = match n {
            7 => StepState {
                error: Some("search API answered 429: rate limited".into()),
                retry_count: 2,
                ..finished_step(&step_id, StepStatus::Failed, json!(null), seconds)
            },
            9 => finished_step(&step_id, StepStatus::Skipped, json!(null), seconds),
            _ => finished_step(
                &step_id,
                StepStatus::Completed,
                json!({"n": n, "tokens": n * 137, "summary": format!("finding {n}")}),
                seconds,
            ),
        };
        let checkpoint = store.record_step(&mut state, step).await?;
        if let Some((_, label)) = PINS.iter().find(|(at_step, _)| *at_step == step_id) {
            pinned.push((checkpoint.id, *label));
        }
        if step_id == FORKED_AT {
            fork_from = Some(checkpoint.id);
        }
    }
    for (id, label) in pinned {
        store.pin_checkpoint(&id, label).await?;
    }
    let fork_from = fork_from.ok_or_else(|| StateStoreError::Other("no fork point".into()))?;
    store.fork_from_checkpoint(&fork_from, FORK).await?;
    Ok(())
}

async fn paused(store: &SeaOrmStateStore) -> Result<()> {
    let mut state = new_workflow(
        PAUSED,
        "Approval flow",
        Some("reviewer"),
        json!({"request": {"amount": 1200.5, "currency": "EUR"}}),
        400,
    );
    state.status = WorkflowStatus::Paused;
    let draft = finished_step(
        "draft",
        StepStatus::Completed,
        json!({"text": "Please approve."}),
        410,
    );
    state.steps.insert(draft.step_id.clone(), draft);
    let wait = StepState {
        status: StepStatus::Running,
        started_at: Some(at(420, 0)),
        ..StepState::new("wait-for-approval")
    };
    state.steps.insert(wait.step_id.clone(), wait);
    state.updated_at = at(420, 500);
    store.save_workflow_state(&state).await?;
    let mut of_state = Checkpoint::of(&state, "draft")?;
    of_state.timestamp = at(421, 0);
    store.create_checkpoint(&of_state).await?;
    // The orchestrator's own JSON, newest: recovery resumes from the stored state.
    let mut marker = Checkpoint::new(state.id, "wait-for-approval", json!({"checkpoint": 3}));
    marker.timestamp = at(422, 0);
    store.create_checkpoint(&marker).await
}

/// Text of at least [`LARGE_TEXT_BYTES`] bytes, in several scripts.
pub fn large_text() -> String {
    let mut text = String::with_capacity(LARGE_TEXT_BYTES + 128);
    let mut line = 0;
    while text.len() < LARGE_TEXT_BYTES {
        line += 1;
        text.push_str(&format!(
            "{line:05} the quick brown fox · der schnelle braune Fuchs · 素早い茶色の狐 · \
             الثعلب البني السريع · 🦊\n"
        ));
    }
    text
}

async fn unicode(store: &SeaOrmStateStore) -> Result<()> {
    let mut state = new_workflow(
        UNICODE,
        "Übersetzung · 翻訳 · ترجمة 🚀",
        Some("zoë"),
        json!({
            "document": large_text(),
            "languages": ["de", "ja", "ar"],
            "notes": "naïve café — “quotes”, 'apostrophes', \\backslash\\, tab\tand\nnewline",
            "emoji": "👩🏽‍🔬 🏳️‍🌈 e\u{301}",
            "bidi": "\u{202e}txet\u{202c}",
            "bell": "\u{7}",
        }),
        500,
    );
    state.status = WorkflowStatus::Running;
    store.save_workflow_state(&state).await?;
    let translate = finished_step(
        "translate",
        StepStatus::Completed,
        json!({"de": "Guten Tag, Welt", "ja": "こんにちは世界", "ar": "مرحبا بالعالم"}),
        510,
    );
    store.record_step(&mut state, translate).await?;
    state.status = WorkflowStatus::Completed;
    state.completed_at = Some(state.updated_at);
    store.save_workflow_state(&state).await
}

async fn failed(store: &SeaOrmStateStore) -> Result<()> {
    let mut state = new_workflow(
        FAILED,
        "Invoice extraction",
        Some("billing"),
        json!({"invoice": "INV-0042.pdf"}),
        700,
    );
    state.status = WorkflowStatus::Running;
    store.save_workflow_state(&state).await?;
    let fetch = finished_step("fetch", StepStatus::Completed, json!({"bytes": 52311}), 710);
    store.record_step(&mut state, fetch).await?;
    let extract = StepState {
        error: Some("tool call timed out after 30 s".into()),
        retry_count: 3,
        ..finished_step("extract", StepStatus::Failed, json!(null), 720)
    };
    store.record_step(&mut state, extract).await?;
    state.status = WorkflowStatus::Failed;
    state.completed_at = Some(state.updated_at);
    state.error = Some(
        "extract: tool call timed out after 30 s\nupstream said: 504 «Gateway Timeout»".into(),
    );
    store.save_workflow_state(&state).await
}

/// Everything the public reads return about every stored workflow, keyed by id:
/// `load_workflow_state`, the version of `load_workflow_state_versioned`, the lease's
/// owner and expiry and the counts of the admin summary, `list_checkpoints` (with their
/// snapshots), `list_checkpoint_infos`, `checkpoint_usage`, the newest checkpoint's id and
/// `lineage`; `get_checkpoint` of every checkpoint; the active workflows in the order
/// `list_active_workflows` gives them; the run `load_workflow_state_by_workflow_id` finds;
/// and the counts per status.
///
/// Nothing in it depends on when it is read: whether a lease has expired by now is left
/// out (the upgrade test checks the fixture's lease apart), and everything else is a
/// stored value.
pub async fn reads(store: &SeaOrmStateStore) -> Result<Value> {
    let query = WorkflowQuery {
        limit: PAGE,
        ..WorkflowQuery::default()
    };
    let rows = store.workflow_page(&query).await?.rows;
    let mut workflows = Map::new();
    let mut checkpoints = Map::new();
    let mut latest_runs = Map::new();
    for row in &rows {
        let id = row.id;
        let state = store.load_workflow_state(&id).await?;
        let versioned = store.load_workflow_state_versioned(&id).await?;
        if versioned.value != state {
            return Err(StateStoreError::Other(
                format!("workflow {id}: the versioned load differs from the plain one").into(),
            ));
        }
        let listed = store.list_checkpoints(&id, PAGE, 0).await?;
        for checkpoint in &listed {
            let got = store.get_checkpoint(&checkpoint.id).await?;
            checkpoints.insert(checkpoint.id.to_string(), serde_json::to_value(&got)?);
        }
        let latest = store.get_latest_checkpoint(&id).await?;
        let latest_run = store
            .load_workflow_state_by_workflow_id(&row.workflow_id)
            .await?;
        latest_runs.insert(row.workflow_id.clone(), json!(latest_run.id));
        let infos = store.list_checkpoint_infos(&id, PAGE, 0).await?;
        let usage = store.checkpoint_usage(&id).await?;
        let lineage = store.lineage(&id).await?;
        workflows.insert(
            id.to_string(),
            json!({
                "state": serde_json::to_value(&state)?,
                "version": versioned.version,
                "lease_owner": row.lease_owner,
                "lease_expires_at": row.lease_expires_at,
                "steps_done": row.steps_done,
                "steps_total": row.steps_total,
                "checkpoint_count": row.checkpoint_count,
                "checkpoints": serde_json::to_value(&listed)?,
                "checkpoint_infos": serde_json::to_value(&infos)?,
                "usage": serde_json::to_value(usage)?,
                "latest_checkpoint": latest.map(|checkpoint| checkpoint.id),
                "lineage": serde_json::to_value(&lineage)?,
            }),
        );
    }
    let active: Vec<_> = store
        .list_active_workflows()
        .await?
        .iter()
        .map(|state| state.id)
        .collect();
    Ok(json!({
        "workflows": workflows,
        "checkpoints": checkpoints,
        "active": active,
        "latest_runs": latest_runs,
        "status_counts": store.status_counts().await?.by_status,
    }))
}

/// Where two JSON documents first differ, as a path (`/workflows/<id>/state/context`)
/// with both values shortened, or `None` when they are equal: a readable failure for
/// documents too large to print.
pub fn first_difference(expected: &Value, actual: &Value) -> Option<String> {
    fn shortened(value: &Value) -> String {
        let text = value.to_string();
        match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
            None => text,
        }
    }
    fn walk(path: String, expected: &Value, actual: &Value) -> Option<String> {
        match (expected, actual) {
            (Value::Object(left), Value::Object(right)) => {
                for key in left.keys().chain(right.keys()) {
                    let (Some(l), Some(r)) = (left.get(key), right.get(key)) else {
                        return Some(format!(
                            "{path}/{key}: expected {}, got {}",
                            left.get(key).map_or("nothing".into(), shortened),
                            right.get(key).map_or("nothing".into(), shortened)
                        ));
                    };
                    if let Some(found) = walk(format!("{path}/{key}"), l, r) {
                        return Some(found);
                    }
                }
                None
            }
            (Value::Array(left), Value::Array(right)) if left.len() == right.len() => left
                .iter()
                .zip(right)
                .enumerate()
                .find_map(|(index, (l, r))| walk(format!("{path}/{index}"), l, r)),
            _ if expected == actual => None,
            _ => Some(format!(
                "{path}: expected {}, got {}",
                shortened(expected),
                shortened(actual)
            )),
        }
    }
    walk(String::new(), expected, actual)
}
