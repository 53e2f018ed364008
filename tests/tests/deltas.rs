//! Checkpoints stored as changes from a base snapshot, on every backend: every read gives
//! back the whole snapshot, on either side of a base boundary, from another store handle,
//! after retention, clean-up, rollback, fork and export/import; the rows hold changes,
//! not copies of the state; one unreadable base fails its own checkpoints only; and a
//! base deleted under a store is replaced, not patched against.

use backend_suite::{Backend, TestStore, backend_tests, open_with, stored_texts, workflow};
use llm_orchestrator_state::{
    Checkpoint, SeaOrmStateStore, StateStore, StateStoreError, StepState, StepStatus, StepWrite,
    WorkflowState,
};
use serde_json::json;
use uuid::Uuid;

backend_tests!(
    every_checkpoint_reads_back_whole_on_both_sides_of_each_base,
    rows_hold_changes_not_copies_of_the_state,
    another_store_handle_reads_and_extends_the_same_history,
    retention_and_clean_up_keep_the_bases_the_kept_checkpoints_need,
    rollback_fork_and_export_import_work_from_changes,
    an_unreadable_base_fails_its_own_checkpoints_only,
    a_base_deleted_under_the_store_is_replaced,
    every_one_stores_each_checkpoint_whole,
    the_workflow_row_holds_its_context_as_a_change_too,
    writers_on_two_handles_and_a_clean_up_racing_them_lose_nothing,
    migrating_down_past_bases_keeps_the_database_writable,
);

/// At most this many checkpoints per base in these tests.
const EVERY: u32 = 4;

async fn open_chat(backend: Backend, retention: Option<usize>) -> TestStore {
    open_with(backend, |builder| {
        builder
            .full_snapshot_every(EVERY)
            .checkpoint_retention(retention)
    })
    .await
}

/// A running chat whose context starts with 16 KiB of instructions, saved.
async fn chat(store: &SeaOrmStateStore, workflow_id: &str) -> WorkflowState {
    let mut state = workflow(workflow_id);
    state.context = json!({
        "instructions": "Answer briefly. ".repeat(1024),
        "messages": [],
    });
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    state
}

/// One turn of the chat: a message of about 1 KiB appended to the context, recorded as
/// step `turn-<n>`. Returns the checkpoint the store took.
async fn turn(store: &SeaOrmStateStore, state: &mut WorkflowState, n: usize) -> Checkpoint {
    let message = format!(
        "turn {n}: {}",
        "the model said something useful. ".repeat(32)
    );
    state.context["messages"]
        .as_array_mut()
        .expect("messages is an array")
        .push(json!(message));
    let mut step = StepState::new(format!("turn-{n}"));
    step.status = StepStatus::Completed;
    step.outputs = json!({"tokens": n * 10});
    store.record_step(state, step).await.unwrap()
}

async fn turns(
    store: &SeaOrmStateStore,
    state: &mut WorkflowState,
    range: std::ops::Range<usize>,
) -> Vec<Checkpoint> {
    let mut taken = Vec::new();
    for n in range {
        taken.push(turn(store, state, n).await);
    }
    taken
}

/// How many rows of `table` belong to the workflow, counted with plain SQL.
async fn rows(store: &SeaOrmStateStore, table: &str, id: Uuid) -> usize {
    let sql = format!("SELECT 'row' AS r FROM {table} WHERE workflow_state_id = {{}}");
    stored_texts(store, &sql, "r", id).await.len()
}

/// How many of the workflow's checkpoint rows hold a change from a base.
async fn changes(store: &SeaOrmStateStore, id: Uuid) -> usize {
    let sql = "SELECT 'row' AS r FROM checkpoints WHERE workflow_state_id = {} \
               AND base_id IS NOT NULL";
    stored_texts(store, sql, "r", id).await.len()
}

/// The bytes of JSON text in each of the workflow's checkpoint rows, by checkpoint id.
async fn stored_bytes(store: &SeaOrmStateStore, id: Uuid) -> Vec<usize> {
    let length = match store.connection().get_database_backend() {
        sea_orm::DbBackend::Postgres => "octet_length(CAST(snapshot AS text))",
        _ => "length(snapshot)",
    };
    let sql = format!(
        "SELECT CAST({length} AS TEXT) AS n FROM checkpoints WHERE workflow_state_id = {{}}"
    );
    stored_texts(store, &sql, "n", id)
        .await
        .iter()
        .map(|n| n.parse().unwrap())
        .collect()
}

async fn assert_reads_back(store: &SeaOrmStateStore, id: Uuid, taken: &[Checkpoint]) {
    for checkpoint in taken {
        assert_eq!(
            &store.get_checkpoint(&checkpoint.id).await.unwrap(),
            checkpoint,
            "checkpoint {} ({})",
            checkpoint.id,
            checkpoint.step_id
        );
    }
    let newest_first: Vec<Checkpoint> = taken.iter().rev().cloned().collect();
    let listed = store
        .list_checkpoints(&id, taken.len() as u64 + 5, 0)
        .await
        .unwrap();
    assert_eq!(listed, newest_first);
    // Pages that start and end inside a base's run.
    for offset in 0..taken.len() {
        let page = store.list_checkpoints(&id, 3, offset as u64).await.unwrap();
        let end = (offset + 3).min(newest_first.len());
        assert_eq!(page, newest_first[offset..end], "page at offset {offset}");
    }
    assert_eq!(
        store.get_latest_checkpoint(&id).await.unwrap().as_ref(),
        taken.last()
    );
}

async fn every_checkpoint_reads_back_whole_on_both_sides_of_each_base(backend: Backend) {
    let store = open_chat(backend, None).await;
    let mut state = chat(&store, "chat-boundaries").await;
    // 13 turns: bases at turns 0, 4, 8 and 12, so reads at the last checkpoint of a base,
    // the first of the next, and one alone on its base.
    let taken = turns(&store, &mut state, 0..13).await;
    assert_eq!(rows(&store, "checkpoint_bases", state.id).await, 4);
    assert_eq!(changes(&store, state.id).await, 13);
    assert_reads_back(&store, state.id, &taken).await;
    for (n, checkpoint) in taken.iter().enumerate() {
        let held = checkpoint.state_of(&state).unwrap();
        assert_eq!(held.context["messages"].as_array().unwrap().len(), n + 1);
        assert_eq!(held.steps.len(), n + 1);
        assert_eq!(
            store.restore_from_checkpoint(&checkpoint.id).await.unwrap(),
            held
        );
    }
    // The workflow as stored is the newest checkpoint's state.
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

async fn rows_hold_changes_not_copies_of_the_state(backend: Backend) {
    let store = open_chat(backend, None).await;
    let mut state = chat(&store, "chat-volume").await;
    let taken = turns(&store, &mut state, 0..12).await;
    let whole: usize = taken
        .iter()
        .map(|checkpoint| checkpoint.snapshot.to_string().len())
        .sum();
    let stored: usize = stored_bytes(&store, state.id).await.iter().sum();
    // Each row holds the turns since its base (at most 3 of about 1.1 KiB), not the
    // 17 KiB and more of the whole state; the bases hold one state per 4 checkpoints.
    assert!(
        stored * 4 < whole,
        "checkpoint rows hold {stored} bytes for {whole} bytes of snapshots"
    );
    for bytes in stored_bytes(&store, state.id).await {
        assert!(bytes < 5 * 1024, "a checkpoint row of {bytes} bytes");
    }
}

async fn another_store_handle_reads_and_extends_the_same_history(backend: Backend) {
    let store = open_chat(backend, None).await;
    let Some(builder) = store.builder_for_same_database() else {
        return; // `:memory:`: no other store sees the database.
    };
    let other = builder
        .full_snapshot_every(EVERY)
        .checkpoint_retention(None)
        .connect()
        .await
        .unwrap();
    let mut state = chat(&store, "chat-two-handles").await;
    let mut taken = turns(&store, &mut state, 0..6).await;
    // The other handle knows no base yet: it starts its own, and its checkpoints and the
    // first handle's read back the same from either.
    taken.extend(turns(&other, &mut state, 6..11).await);
    taken.extend(turns(&store, &mut state, 11..14).await);
    assert_reads_back(&store, state.id, &taken).await;
    assert_reads_back(&other, state.id, &taken).await;
}

async fn retention_and_clean_up_keep_the_bases_the_kept_checkpoints_need(backend: Backend) {
    let store = open_chat(backend, Some(3)).await;
    let mut state = chat(&store, "chat-retention").await;
    let taken = turns(&store, &mut state, 0..21).await;
    assert_reads_back(&store, state.id, &taken[18..]).await;
    assert_eq!(rows(&store, "checkpoints", state.id).await, 3);
    // Turns 18 to 20 need the bases of turns 16 and 20; older ones were deleted as each
    // new base was written.
    let bases = rows(&store, "checkpoint_bases", state.id).await;
    assert!(bases <= 3, "{bases} bases kept for 3 checkpoints");

    let deleted = store.cleanup_old_checkpoints(&state.id, 1).await.unwrap();
    assert_eq!(deleted, 2);
    assert_reads_back(&store, state.id, &taken[20..]).await;
    assert_eq!(rows(&store, "checkpoint_bases", state.id).await, 1);

    // And the history goes on from there.
    let next = turn(&store, &mut state, 21).await;
    assert_eq!(store.get_checkpoint(&next.id).await.unwrap(), next);
}

async fn rollback_fork_and_export_import_work_from_changes(backend: Backend) {
    let store = open_chat(backend, None).await;
    let mut state = chat(&store, "chat-operator").await;
    let taken = turns(&store, &mut state, 0..10).await;

    let forked = store
        .fork_from_checkpoint(&taken[6].id, "chat-operator-fork")
        .await
        .unwrap();
    assert_eq!(forked.context, taken[6].state_of(&state).unwrap().context);

    let bundle = store.export_workflow(&state.id).await.unwrap();
    let exported: Vec<&Checkpoint> = bundle.checkpoints.iter().map(|c| &c.checkpoint).collect();
    let newest_first: Vec<&Checkpoint> = taken.iter().rev().collect();
    assert_eq!(exported, newest_first);
    let imported = store.import_workflow(&bundle, true).await.unwrap();
    let copies = store.list_checkpoints(&imported.id, 20, 0).await.unwrap();
    assert_eq!(copies.len(), taken.len());
    for (copy, original) in copies.iter().zip(newest_first) {
        assert_eq!(copy.snapshot["context"], original.snapshot["context"]);
        assert_eq!(copy.snapshot["steps"], original.snapshot["steps"]);
    }

    let rolled_back = store.rollback_to_checkpoint(&taken[5].id).await.unwrap();
    let held = taken[5].state_of(&state).unwrap();
    assert_eq!(rolled_back.context, held.context);
    assert_eq!(rolled_back.steps, held.steps);
    let mut state = store.load_workflow_state(&state.id).await.unwrap();
    assert_eq!(state, rolled_back);
    // Turns after the rollback are stored and read back like any.
    let after = turns(&store, &mut state, 6..9).await;
    assert_reads_back(
        &store,
        state.id,
        &store
            .list_checkpoints(&state.id, 100, 0)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(
        store
            .get_latest_checkpoint(&state.id)
            .await
            .unwrap()
            .as_ref(),
        after.last()
    );
}

async fn an_unreadable_base_fails_its_own_checkpoints_only(backend: Backend) {
    let store = open_chat(backend, None).await;
    let mut state = chat(&store, "chat-damaged").await;
    let taken = turns(&store, &mut state, 0..3).await;
    // A checkpoint of the orchestrator's own, too small to need a base.
    let own = Checkpoint::new(state.id, "own", json!({"checkpoint": 3}));
    store.create_checkpoint(&own).await.unwrap();
    let damaged = backend_suite::execute_sql(
        &store,
        "UPDATE checkpoint_bases SET snapshot = '[1]' WHERE workflow_state_id = {}",
        state.id,
    )
    .await;
    assert_eq!(damaged, 1);

    // The checkpoint that started the base is the base as it now is (any JSON is a
    // snapshot); the changes stored against it no longer apply, and say so.
    let mut first = taken[0].clone();
    first.snapshot = json!([1]);
    assert_eq!(store.get_checkpoint(&first.id).await.unwrap(), first);
    for checkpoint in &taken[1..] {
        match store.get_checkpoint(&checkpoint.id).await {
            Err(StateStoreError::Serialization(why)) => {
                assert!(why.contains(&checkpoint.id.to_string()), "{why}");
            }
            other => panic!("a checkpoint on a damaged base read as {other:?}"),
        }
    }
    // The page serves what it can read.
    let listed = store.list_checkpoints(&state.id, 10, 0).await.unwrap();
    assert_eq!(listed, vec![own.clone(), first]);
    assert_eq!(store.get_checkpoint(&own.id).await.unwrap(), own);
    // The workflow's context is stored against that base too: its load says so, and a
    // listing serves the other workflows and reports this one apart.
    match store.load_workflow_state(&state.id).await {
        Err(StateStoreError::Serialization(why)) => {
            assert!(why.contains(&state.id.to_string()), "{why}");
        }
        other => panic!("a workflow on a damaged base loaded as {other:?}"),
    }
    let healthy = chat(&store, "chat-healthy").await;
    let report = store.list_active_workflows_report().await.unwrap();
    assert_eq!(report.workflows, vec![healthy]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].id, state.id);
}

async fn a_base_deleted_under_the_store_is_replaced(backend: Backend) {
    let store = open_chat(backend, None).await;
    let mut state = chat(&store, "chat-base-gone").await;
    turns(&store, &mut state, 0..2).await;
    // A whole save (which stores the context whole), then another store (or an operator)
    // deleted every checkpoint and base of the workflow: this store's next checkpoint
    // must not be a change from a base that is gone.
    store.save_workflow_state(&state).await.unwrap();
    for sql in [
        "DELETE FROM checkpoints WHERE workflow_state_id = {}",
        "DELETE FROM checkpoint_bases WHERE workflow_state_id = {}",
    ] {
        backend_suite::execute_sql(&store, sql, state.id).await;
    }
    let taken = turns(&store, &mut state, 2..5).await;
    assert_reads_back(&store, state.id, &taken).await;
    assert_eq!(rows(&store, "checkpoint_bases", state.id).await, 1);
}

async fn every_one_stores_each_checkpoint_whole(backend: Backend) {
    let store = open_with(backend, |builder| {
        builder.full_snapshot_every(1).checkpoint_retention(None)
    })
    .await;
    let mut state = chat(&store, "chat-whole").await;
    let taken = turns(&store, &mut state, 0..5).await;
    assert_reads_back(&store, state.id, &taken).await;
    assert_eq!(rows(&store, "checkpoint_bases", state.id).await, 0);
    assert_eq!(changes(&store, state.id).await, 0);

    // Zero is refused: a checkpoint needs a whole snapshot somewhere.
    let Some(builder) = store.builder_for_same_database() else {
        return;
    };
    match builder.full_snapshot_every(0).connect().await {
        Err(StateStoreError::Configuration(_)) => {}
        other => panic!("full_snapshot_every(0) gave {other:?}"),
    }
}

async fn the_workflow_row_holds_its_context_as_a_change_too(backend: Backend) {
    let store = open_chat(backend, Some(2)).await;
    let mut state = chat(&store, "chat-context").await;
    turns(&store, &mut state, 0..10).await;
    let context_bytes = state.context.to_string().len();
    assert!(context_bytes > 26_000, "{context_bytes}");
    // The row holds the turns since its base, not the 27 KiB context.
    let sql = "SELECT CAST(context AS TEXT) AS c FROM workflow_states WHERE id = {} \
               AND context_base_id IS NOT NULL";
    let stored = stored_texts(&store, sql, "c", state.id).await;
    assert_eq!(stored.len(), 1, "the context is stored against a base");
    assert!(stored[0].len() < 4 * 1024, "{} bytes", stored[0].len());
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.list_active_workflows().await.unwrap(),
        vec![state.clone()]
    );
    // Retention deleted the checkpoints of older bases; the one the context needs stays.
    store.cleanup_old_checkpoints(&state.id, 1).await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

    // A whole save stores the context whole again; the next steps go back to changes.
    state.context["note"] = json!("saved whole");
    store.save_workflow_state(&state).await.unwrap();
    assert_eq!(
        stored_texts(&store, sql, "c", state.id).await.len(),
        0,
        "a whole save stores the context whole"
    );
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    turns(&store, &mut state, 10..12).await;
    assert_eq!(stored_texts(&store, sql, "c", state.id).await.len(), 1);
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

    // Deleting the finished workflow takes its bases with it, the one its row's context
    // is stored against included.
    state.mark_completed();
    turns(&store, &mut state, 12..14).await;
    assert_eq!(stored_texts(&store, sql, "c", state.id).await.len(), 1);
    let deleted = store
        .delete_old_states(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(rows(&store, "checkpoint_bases", state.id).await, 0);
}

async fn writers_on_two_handles_and_a_clean_up_racing_them_lose_nothing(backend: Backend) {
    let store = open_chat(backend, None).await;
    let Some(builder) = store.builder_for_same_database() else {
        return; // `:memory:`: no second handle, so no second cache of bases.
    };
    let other = builder
        .full_snapshot_every(2)
        .checkpoint_retention(None)
        .connect()
        .await
        .unwrap();
    let state = chat(&store, "chat-race").await;
    // Two handles, each remembering its own bases, record steps of one workflow while a
    // third call keeps deleting all but the newest checkpoint, and with them the bases
    // nobody needs: a handle's base may go between its read of it and its write.
    // The first records each step with a whole context (one statement when its copy is
    // current, on Postgres), the second with a merge patch (always in a transaction).
    let writer = |handle: SeaOrmStateStore, name: &'static str, patch: bool| {
        let id = state.id;
        tokio::spawn(async move {
            let mut taken = Vec::new();
            for n in 0..12 {
                let mut copy = handle.load_workflow_state(&id).await.unwrap();
                // Each step adds its own key (a merge patch applied to the stored
                // context): a whole context from a stale copy would be last writer wins.
                let message = format!("{name} {n}: {}", "words ".repeat(180));
                let note = json!({ "notes": { format!("{name}-{n}"): &message } });
                let mut step = StepState::new(format!("{name}-{n}"));
                step.status = StepStatus::Completed;
                let checkpoint = if patch {
                    let write = StepWrite::new().merge_context(note);
                    let recorded = handle.record_step_with(&mut copy, step, &write).await;
                    recorded.map(|(checkpoint, _version)| checkpoint)
                } else {
                    copy.context["notes"][format!("{name}-{n}")] = json!(message);
                    handle.record_step(&mut copy, step).await
                };
                taken.push(checkpoint.unwrap_or_else(|err| panic!("{name} {n}: {err}")));
            }
            taken
        })
    };
    let first = writer(store.clone(), "first", false);
    let second = writer(other.clone(), "second", true);
    let cleaner = {
        let store = store.clone();
        let id = state.id;
        tokio::spawn(async move {
            for _ in 0..40 {
                store.cleanup_old_checkpoints(&id, 1).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut taken = first.await.unwrap();
    taken.extend(second.await.unwrap());
    cleaner.await.unwrap();

    // Every step is in the workflow, which loads, and what is left of the history reads.
    let stored = store.load_workflow_state(&state.id).await.unwrap();
    for checkpoint in &taken {
        assert!(
            stored.steps.contains_key(&checkpoint.step_id),
            "{}",
            checkpoint.step_id
        );
    }
    // (Which notes the context keeps is last writer wins between the first writer's whole
    // contexts and everything else, as documented; the steps all stay.)
    for checkpoint in store.list_checkpoints(&state.id, 100, 0).await.unwrap() {
        let original = taken
            .iter()
            .find(|taken| taken.id == checkpoint.id)
            .unwrap();
        assert_eq!(&checkpoint, original);
    }
    assert_eq!(other.load_workflow_state(&state.id).await.unwrap(), stored);
}

async fn migrating_down_past_bases_keeps_the_database_writable(backend: Backend) {
    use migration::MigratorTrait as _;
    let store = open_chat(backend, None).await;
    let mut state = chat(&store, "chat-down").await;
    turns(&store, &mut state, 0..3).await;
    // Refused while rows are stored as changes from a base: they would be lost.
    let refused = migration::Migrator::down(store.connection(), Some(1)).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|err| err.to_string().contains("stored as changes")),
        "{refused:?}"
    );
    // Once no row is (the workflow saved whole, its history cleared), it goes down, and
    // what older code writes and deletes is still accepted.
    store.save_workflow_state(&state).await.unwrap();
    backend_suite::execute_sql(
        &store,
        "DELETE FROM checkpoints WHERE workflow_state_id = {}",
        state.id,
    )
    .await;
    migration::Migrator::down(store.connection(), Some(1))
        .await
        .unwrap();
    let deleted = backend_suite::execute_sql(
        &store,
        "DELETE FROM workflow_states WHERE id = {}",
        state.id,
    )
    .await;
    assert_eq!(deleted, 1);
    // And up again, the store works as before.
    migration::Migrator::up(store.connection(), None)
        .await
        .unwrap();
    let mut again = chat(&store, "chat-up-again").await;
    let taken = turns(&store, &mut again, 0..5).await;
    assert_reads_back(&store, again.id, &taken).await;
}
