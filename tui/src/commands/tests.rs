//! Tests of what `list` and `show` share (leases, tables), and the helpers the
//! subcommands' tests share.

use super::*;
use crate::fixtures::failed_workflow;
use llm_orchestrator_state::{Checkpoint, WorkflowStatus};
use serde_json::json;

/// The seeded store with one more workflow, `claimed-1`, claimed by `replica-9` for
/// `lease`.
async fn with_a_claimed_workflow(lease: std::time::Duration) -> Store {
    let (store, _, _) = seeded().await;
    let waiting = WorkflowState::new("claimed-1", "Claimed", None, json!({}));
    store.save_workflow_state(&waiting).await.unwrap();
    store.claim_workflows("replica-9", lease, 10).await.unwrap();
    store
}

/// What `list` prints (its table, or JSON) and its note, for this filter and limit,
/// counting by `clock`.
pub(super) async fn printed_list(
    store: &Store,
    clock: db::Clock,
    only: &ListFilter,
    limit: u64,
    as_json: bool,
) -> (String, String) {
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    list(store, clock, &mut out, &mut notes, only, limit, as_json)
        .await
        .unwrap();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(notes).unwrap(),
    )
}

/// What `list` prints for the first 10 workflows, by `clock`: its table, or JSON.
async fn first_ten(store: &Store, clock: db::Clock, as_json: bool) -> String {
    printed_list(store, clock, &ListFilter::default(), 10, as_json)
        .await
        .0
}

/// What `show` prints for `key`, by `clock`: text, or JSON.
async fn shown(store: &Store, clock: db::Clock, key: &str, as_json: bool) -> String {
    let mut out = Vec::new();
    show(store, clock, &mut out, &mut Vec::new(), key, as_json)
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn list_and_show_say_who_holds_the_lease_of_a_claimed_workflow() {
    let store = with_a_claimed_workflow(std::time::Duration::from_secs(60)).await;
    let now = db::Clock::default();
    let text = first_ten(&store, now, false).await;
    let header = text.lines().next().unwrap();
    assert!(header.contains(" CKPTS  LEASE  "), "{text}");
    let row = text
        .lines()
        .find(|line| line.contains("claimed-1"))
        .unwrap();
    assert!(row.contains(" replica-9 "), "{text}");

    let rows: Value = serde_json::from_str(&first_ten(&store, now, true).await).unwrap();
    let claimed = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["workflow_id"] == "claimed-1")
        .unwrap();
    assert_eq!(claimed["lease_owner"], "replica-9");
    assert!(claimed["lease_expires_at"].is_string(), "{claimed}");
    assert_eq!(claimed["lease_expired"], false, "{claimed}");

    // `show` says whose it is and until when, in text and JSON.
    let text = shown(&store, now, "claimed-1", false).await;
    assert!(
        text.contains("\nlease:        replica-9, until 20"),
        "{text}"
    );
    let shown: Value = serde_json::from_str(&shown(&store, now, "claimed-1", true).await).unwrap();
    assert_eq!(shown["lease_owner"], "replica-9");
    assert_eq!(shown["lease_expires_at"], claimed["lease_expires_at"]);
}

#[tokio::test]
async fn leases_are_counted_by_the_database_s_clock() {
    // A replica claimed a workflow for 2 minutes, by the database's clock. Were this
    // machine's clock 5 minutes behind (the database's 5 minutes ahead of it), its
    // own "now" would call the lease live for 7 more minutes; by the database's clock
    // it expired 3 minutes ago.
    let store = with_a_claimed_workflow(std::time::Duration::from_secs(120)).await;
    let ahead = db::Clock::with_offset(chrono::Duration::minutes(5));
    let line = |text: String, pick: fn(&str) -> bool| {
        text.lines().find(|line| pick(line)).unwrap().to_owned()
    };
    let row = async |clock| {
        line(first_ten(&store, clock, false).await, |l| {
            l.contains("claimed-1")
        })
    };
    assert!(row(db::Clock::default()).await.contains(" replica-9 "));
    let expired = row(ahead).await;
    assert!(expired.contains(" replica-9, expired 3m ago "), "{expired}");

    let lease = async |clock| {
        line(shown(&store, clock, "claimed-1", false).await, |l| {
            l.starts_with("lease:")
        })
    };
    assert!(
        lease(db::Clock::default())
            .await
            .contains("replica-9, until 20")
    );
    assert_eq!(
        lease(ahead).await,
        "lease:        replica-9, expired 3m ago"
    );
}

pub(super) async fn seeded() -> (Store, WorkflowState, Vec<Checkpoint>) {
    let store = db::open(&db::Target::new("sqlite::memory:")).await.unwrap();
    let (state, checkpoints) = failed_workflow();
    store.save_workflow_state(&state).await.unwrap();
    for checkpoint in &checkpoints {
        store.create_checkpoint(checkpoint).await.unwrap();
    }
    (store, state, checkpoints)
}

#[tokio::test]
async fn show_and_list_print_tables() {
    let (store, state, _) = seeded().await;
    let mut out = Vec::new();
    show(
        &store,
        db::Clock::default(),
        &mut out,
        &mut Vec::new(),
        &state.workflow_id,
        false,
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("error:        step tool_call failed"),
        "{text}"
    );
    // Steps in the order they ran.
    let retrieve = text.find("  retrieve").unwrap();
    let tool_call = text.find("  tool_call").unwrap();
    assert!(retrieve < tool_call, "{text}");
    // A short error stays in the table; nothing is listed below it.
    assert!(!text.contains("step errors:"), "{text}");

    let mut out = Vec::new();
    let failed = ListFilter {
        status: Some(WorkflowStatus::Failed),
        ..Default::default()
    };
    list(
        &store,
        db::Clock::default(),
        &mut out,
        &mut Vec::new(),
        &failed,
        10,
        false,
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("rag-answer-0001"), "{text}");
    assert!(text.contains("2/3"), "{text}");
}
