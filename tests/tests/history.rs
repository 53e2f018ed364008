//! History on every backend: pins, checkpoint sizes and usage, pruning by policy (and
//! its dry run), forks with lineage, size budgets, export and import across backends.

use std::time::Duration;

use backend_suite::{Backend, at, backend_tests, open, open_with, workflow};
use llm_orchestrator_state::{
    Checkpoint, RetentionPolicy, StateStore, StateStoreError, StepState, WorkflowState,
    WorkflowStatus,
};
use serde_json::json;

backend_tests!(
    pinned_checkpoints_survive_retention_and_cleanup,
    checkpoint_infos_carry_size_and_pin,
    checkpoint_infos_carry_the_workflow_status_of_each_snapshot,
    the_status_migration_fills_checkpoints_taken_before_it,
    pinning_an_unknown_checkpoint_is_not_found,
    prune_dry_run_reports_exactly_what_prune_deletes,
    prune_keeps_young_and_pinned_checkpoints,
    prune_never_takes_what_an_active_workflow_would_resume_from,
    background_pruner_prunes_and_stops,
    fork_creates_a_pending_copy_with_lineage_both_ways,
    fork_of_an_unknown_checkpoint_is_not_found,
    export_and_import_round_trip_into_sqlite,
    import_with_new_ids_keeps_checkpoints_restorable,
    workflow_checkpoint_budget_refuses_and_keeps_nothing,
    import_keeps_a_checkpoint_of_another_identity_as_written,
);

/// A running workflow with `count` checkpoints, one second apart from 2026-01-01.
async fn with_checkpoints(
    store: &llm_orchestrator_state::SeaOrmStateStore,
    workflow_id: &str,
    count: i64,
) -> (WorkflowState, Vec<Checkpoint>) {
    let mut state = workflow(workflow_id);
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    let mut created = Vec::new();
    for n in 0..count {
        let mut checkpoint = Checkpoint::of(&state, format!("step-{n}")).unwrap();
        checkpoint.timestamp = at(n, 0);
        store.create_checkpoint(&checkpoint).await.unwrap();
        created.push(checkpoint);
    }
    (state, created)
}

fn step_ids(checkpoints: &[Checkpoint]) -> Vec<&str> {
    checkpoints.iter().map(|c| c.step_id.as_str()).collect()
}

async fn pinned_checkpoints_survive_retention_and_cleanup(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(Some(2))).await;
    let (state, created) = with_checkpoints(&store, "wf-pins", 1).await;
    store
        .pin_checkpoint(&created[0].id, "approved by human")
        .await
        .unwrap();
    for n in 1..5 {
        let mut checkpoint = Checkpoint::of(&state, format!("step-{n}")).unwrap();
        checkpoint.timestamp = at(n, 0);
        store.create_checkpoint(&checkpoint).await.unwrap();
    }
    // The two newest unpinned, plus the pinned one, which takes no place among them.
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert_eq!(step_ids(&kept), ["step-4", "step-3", "step-0"]);

    // Keeping none: the pinned one stays, and so does the newest, which the running
    // workflow would be recovered from.
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 0).await.unwrap(),
        1
    );
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert_eq!(step_ids(&kept), ["step-4", "step-0"]);

    store.unpin_checkpoint(&created[0].id).await.unwrap();
    assert_eq!(
        store.cleanup_old_checkpoints(&state.id, 0).await.unwrap(),
        1
    );
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert_eq!(step_ids(&kept), ["step-4"]);
}

async fn checkpoint_infos_carry_size_and_pin(backend: Backend) {
    let store = open(backend).await;
    let (state, created) = with_checkpoints(&store, "wf-infos", 3).await;
    store
        .pin_checkpoint(&created[1].id, "before tool call")
        .await
        .unwrap();
    assert_eq!(
        store.get_checkpoint(&created[1].id).await.unwrap(),
        created[1]
    );
    let infos = store
        .list_checkpoint_infos(&state.id, 100, 0)
        .await
        .unwrap();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[0].id, created[2].id);
    assert_eq!(infos[1].pinned.as_deref(), Some("before tool call"));
    assert_eq!(infos[0].pinned, None);
    for (info, checkpoint) in infos.iter().zip(created.iter().rev()) {
        let json_len = serde_json::to_vec(&checkpoint.snapshot).unwrap().len() as u64;
        assert_eq!(info.size_bytes, json_len);
        assert_eq!(info.timestamp, checkpoint.timestamp);
        assert_eq!(info.step_id, checkpoint.step_id);
    }
    let usage = store.checkpoint_usage(&state.id).await.unwrap();
    assert_eq!(usage.count, 3);
    assert_eq!(usage.pinned, 1);
    assert_eq!(usage.bytes, infos.iter().map(|i| i.size_bytes).sum::<u64>());
    let none = store.checkpoint_usage(&uuid::Uuid::new_v4()).await.unwrap();
    assert_eq!(none.count, 0);
    // One checkpoint's info, read alone, is the same as in the page.
    for info in &infos {
        assert_eq!(&store.checkpoint_info(&info.id).await.unwrap(), info);
    }
    let unknown = uuid::Uuid::new_v4();
    assert!(matches!(
        store.checkpoint_info(&unknown).await,
        Err(StateStoreError::NotFound(msg)) if msg.contains(&unknown.to_string())
    ));
}

/// Checkpoints of one workflow as it goes running -> paused -> failed, through every
/// path that writes one (with and without retention, `record_step`), and one whose
/// snapshot is not a workflow state at all. Returns the workflow's id.
async fn checkpoints_through_statuses(
    store: &llm_orchestrator_state::SeaOrmStateStore,
) -> uuid::Uuid {
    let mut state = workflow("wf-statuses");
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    store
        .create_checkpoint(&Checkpoint::of(&state, "a").unwrap())
        .await
        .unwrap();
    state.mark_paused();
    store.save_workflow_state(&state).await.unwrap();
    store
        .create_checkpoint(&Checkpoint::of(&state, "b").unwrap())
        .await
        .unwrap();
    state.mark_failed("the model timed out");
    let mut step = StepState::new("c");
    step.mark_failed("timeout");
    store.record_step(&mut state, step).await.unwrap();
    let odd = Checkpoint::new(state.id, "odd", json!({"status": "x".repeat(60), "n": 1}));
    store.create_checkpoint(&odd).await.unwrap();
    state.id
}

fn statuses(
    infos: &[llm_orchestrator_state::CheckpointInfo],
) -> Vec<(&str, Option<WorkflowStatus>)> {
    infos
        .iter()
        .map(|info| (info.step_id.as_str(), info.workflow_status))
        .collect()
}

const EXPECTED_STATUSES: [(&str, Option<WorkflowStatus>); 4] = [
    ("odd", None),
    ("c", Some(WorkflowStatus::Failed)),
    ("b", Some(WorkflowStatus::Paused)),
    ("a", Some(WorkflowStatus::Running)),
];

async fn checkpoint_infos_carry_the_workflow_status_of_each_snapshot(backend: Backend) {
    for retention in [Some(10), None] {
        let store = open_with(backend, |b| b.checkpoint_retention(retention)).await;
        let id = checkpoints_through_statuses(&store).await;
        let infos = store.list_checkpoint_infos(&id, 100, 0).await.unwrap();
        assert_eq!(
            statuses(&infos),
            EXPECTED_STATUSES,
            "retention {retention:?}"
        );
    }
}

async fn the_status_migration_fills_checkpoints_taken_before_it(backend: Backend) {
    use llm_orchestrator_state::sea_orm::ConnectionTrait;
    use migration::MigratorTrait;

    let store = open(backend).await;
    let id = checkpoints_through_statuses(&store).await;
    // A row whose JSON is corrupt (possible on SQLite only) must not stop the migration.
    if backend != Backend::Postgres {
        store
            .connection()
            .execute_unprepared(
                "UPDATE checkpoints SET snapshot = '{not json' WHERE step_id = 'odd'",
            )
            .await
            .unwrap();
    }
    // Back to the schema before the column, then forward again: the column is filled from
    // the snapshots stored meanwhile.
    migration::Migrator::down(store.connection(), Some(1))
        .await
        .unwrap();
    migration::Migrator::up(store.connection(), None)
        .await
        .unwrap();
    let infos = store.list_checkpoint_infos(&id, 100, 0).await.unwrap();
    assert_eq!(statuses(&infos), EXPECTED_STATUSES);
}

async fn pinning_an_unknown_checkpoint_is_not_found(backend: Backend) {
    let store = open(backend).await;
    let unknown = uuid::Uuid::new_v4();
    assert!(matches!(
        store.get_checkpoint(&unknown).await,
        Err(StateStoreError::NotFound(_))
    ));
    assert!(matches!(
        store.pin_checkpoint(&unknown, "x").await,
        Err(StateStoreError::NotFound(_))
    ));
    assert!(matches!(
        store.unpin_checkpoint(&unknown).await,
        Err(StateStoreError::NotFound(_))
    ));
    let (_, created) = with_checkpoints(&store, "wf-pin-bad", 1).await;
    assert!(matches!(
        store.pin_checkpoint(&created[0].id, "").await,
        Err(StateStoreError::InvalidInput(_))
    ));
}

async fn prune_dry_run_reports_exactly_what_prune_deletes(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let (active, _) = with_checkpoints(&store, "wf-active", 6).await;
    let (mut finished, _) = with_checkpoints(&store, "wf-finished", 3).await;
    finished.mark_completed();
    finished.updated_at = at(0, 0); // long ago
    store.save_workflow_state(&finished).await.unwrap();
    let before_active = store.checkpoint_usage(&active.id).await.unwrap();
    let before_finished = store.checkpoint_usage(&finished.id).await.unwrap();

    let policy = RetentionPolicy {
        keep_last: Some(2),
        keep_younger_than: None,
        delete_finished_older_than: Some(Duration::from_secs(24 * 3600)),
    };
    let preview = store.prune(&policy, true).await.unwrap();
    assert!(preview.dry_run);
    assert_eq!(preview.workflows, 1);
    assert_eq!(preview.checkpoints, 4 + 3);
    assert_eq!(
        store.checkpoint_usage(&active.id).await.unwrap(),
        before_active,
        "a dry run deletes nothing"
    );

    let done = store.prune(&policy, false).await.unwrap();
    assert!(!done.dry_run);
    assert_eq!(
        (done.workflows, done.checkpoints, done.bytes),
        (preview.workflows, preview.checkpoints, preview.bytes)
    );
    let after_active = store.checkpoint_usage(&active.id).await.unwrap();
    assert_eq!(after_active.count, 2);
    assert_eq!(
        done.bytes,
        before_active.bytes - after_active.bytes + before_finished.bytes
    );
    assert!(matches!(
        store.load_workflow_state(&finished.id).await,
        Err(StateStoreError::NotFound(_))
    ));
    // Nothing left to prune.
    let again = store.prune(&policy, false).await.unwrap();
    assert_eq!((again.workflows, again.checkpoints), (0, 0));
}

async fn prune_keeps_young_and_pinned_checkpoints(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let (state, created) = with_checkpoints(&store, "wf-young", 4).await;
    store
        .pin_checkpoint(&created[0].id, "keep me")
        .await
        .unwrap();
    let fresh = Checkpoint::of(&state, "fresh").unwrap(); // now
    store.create_checkpoint(&fresh).await.unwrap();

    let policy = RetentionPolicy {
        keep_last: Some(0),
        keep_younger_than: Some(Duration::from_secs(3600)),
        delete_finished_older_than: None,
    };
    let report = store.prune(&policy, false).await.unwrap();
    assert_eq!(report.checkpoints, 3);
    let kept = store.list_checkpoints(&state.id, 100, 0).await.unwrap();
    assert_eq!(step_ids(&kept), ["fresh", "step-0"]);
    // An empty policy deletes nothing.
    let nothing = store
        .prune(&RetentionPolicy::default(), false)
        .await
        .unwrap();
    assert_eq!((nothing.workflows, nothing.checkpoints), (0, 0));
}

async fn prune_never_takes_what_an_active_workflow_would_resume_from(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    // Checkpoints from 2026-01-01: older than any age rule. One workflow paused since
    // (an approval that never came), one finished.
    let (mut paused, created) = with_checkpoints(&store, "wf-paused", 4).await;
    paused.status = WorkflowStatus::Paused;
    store.save_workflow_state(&paused).await.unwrap();
    let (mut finished, _) = with_checkpoints(&store, "wf-done", 3).await;
    finished.mark_completed();
    store.save_workflow_state(&finished).await.unwrap();

    for policy in [
        RetentionPolicy {
            keep_younger_than: Some(Duration::from_secs(60)),
            ..RetentionPolicy::default()
        },
        RetentionPolicy {
            keep_last: Some(0),
            ..RetentionPolicy::default()
        },
    ] {
        let preview = store.prune(&policy, true).await.unwrap();
        let report = store.prune(&policy, false).await.unwrap();
        assert_eq!(report.checkpoints, preview.checkpoints, "{policy:?}");
        // The paused workflow keeps the checkpoint it would resume from; the finished one
        // keeps none.
        let kept = store.list_checkpoints(&paused.id, 100, 0).await.unwrap();
        assert_eq!(kept, [created[3].clone()], "{policy:?}");
        assert_eq!(
            store.get_latest_checkpoint(&paused.id).await.unwrap(),
            Some(created[3].clone())
        );
        assert!(
            store
                .list_checkpoints(&finished.id, 100, 0)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

async fn background_pruner_prunes_and_stops(backend: Backend) {
    let store = open_with(backend, |b| b.checkpoint_retention(None)).await;
    let (state, _) = with_checkpoints(&store, "wf-pruner", 5).await;
    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let pruner = store.spawn_pruner(policy, Duration::from_millis(20));
    let mut pruned = false;
    for _ in 0..250 {
        if store.checkpoint_usage(&state.id).await.unwrap().count == 1 {
            pruned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pruned, "the background pruner did not prune");
    pruner.stop().await;
    // Stopped: new checkpoints stay.
    with_checkpoints(&store, "wf-after-stop", 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = store
        .load_workflow_state_by_workflow_id("wf-after-stop")
        .await
        .unwrap();
    assert_eq!(store.checkpoint_usage(&after.id).await.unwrap().count, 3);
}

async fn fork_creates_a_pending_copy_with_lineage_both_ways(backend: Backend) {
    let store = open(backend).await;
    let mut source = workflow("wf-source");
    source.mark_running();
    let mut step = StepState::new("draft");
    step.mark_completed(json!({"text": "v1"}));
    let checkpoint = store.record_step(&mut source, step).await.unwrap();
    source.mark_failed("the model went off the rails");
    store.save_workflow_state(&source).await.unwrap();

    let fork = store
        .fork_from_checkpoint(&checkpoint.id, "wf-source-retry")
        .await
        .unwrap();
    assert_ne!(fork.id, source.id);
    assert_eq!(fork.workflow_id, "wf-source-retry");
    assert_eq!(fork.status, WorkflowStatus::Pending);
    assert_eq!(fork.error, None);
    assert_eq!(fork.completed_at, None);
    assert_eq!(fork.steps, checkpoint.state().unwrap().steps);
    assert_eq!(fork.context, source.context);
    assert_eq!(store.load_workflow_state(&fork.id).await.unwrap(), fork);
    // The source is untouched.
    assert_eq!(store.load_workflow_state(&source.id).await.unwrap(), source);

    let from = store.lineage(&fork.id).await.unwrap();
    let origin = from.forked_from.unwrap();
    assert_eq!(
        (origin.workflow_state_id, origin.checkpoint_id),
        (source.id, checkpoint.id)
    );
    let of_source = store.lineage(&source.id).await.unwrap();
    assert_eq!(of_source.forked_from, None);
    assert_eq!(of_source.forks, [(fork.id, checkpoint.id)]);
    assert!(matches!(
        store.lineage(&uuid::Uuid::new_v4()).await,
        Err(StateStoreError::NotFound(_))
    ));
}

async fn fork_of_an_unknown_checkpoint_is_not_found(backend: Backend) {
    let store = open(backend).await;
    assert!(matches!(
        store
            .fork_from_checkpoint(&uuid::Uuid::new_v4(), "wf-x")
            .await,
        Err(StateStoreError::NotFound(_))
    ));
    let (_, created) = with_checkpoints(&store, "wf-fork-bad", 1).await;
    assert!(matches!(
        store.fork_from_checkpoint(&created[0].id, "").await,
        Err(StateStoreError::InvalidInput(_))
    ));
}

async fn export_and_import_round_trip_into_sqlite(backend: Backend) {
    let source = open(backend).await;
    let (mut state, created) = with_checkpoints(&source, "wf-export", 3).await;
    source
        .pin_checkpoint(&created[0].id, "golden")
        .await
        .unwrap();
    let mut step = StepState::new("s");
    step.mark_completed(json!({"ok": "yes ✓"}));
    source.record_step(&mut state, step).await.unwrap();
    let bundle = source.export_workflow(&state.id).await.unwrap();
    assert_eq!(bundle.workflow, state);
    assert_eq!(bundle.checkpoints.len(), 4);

    // Through JSON text, as the CLI writes it, into a developer's SQLite database.
    let text = serde_json::to_string(&bundle).unwrap();
    let bundle: llm_orchestrator_state::WorkflowBundle = serde_json::from_str(&text).unwrap();
    let target = open(Backend::SqliteMemory).await;
    let imported = target.import_workflow(&bundle, false).await.unwrap();
    assert_eq!(imported, state);
    assert_eq!(target.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        target.list_checkpoints(&state.id, 100, 0).await.unwrap(),
        source.list_checkpoints(&state.id, 100, 0).await.unwrap()
    );
    let infos = target
        .list_checkpoint_infos(&state.id, 100, 0)
        .await
        .unwrap();
    assert_eq!(
        infos
            .iter()
            .filter(|i| i.pinned.as_deref() == Some("golden"))
            .count(),
        1
    );
    assert_eq!(target.export_workflow(&state.id).await.unwrap(), bundle);
    // The same ids twice: a conflict, nothing half-imported.
    assert!(matches!(
        target.import_workflow(&bundle, false).await,
        Err(StateStoreError::Conflict(_))
    ));
    assert_eq!(target.checkpoint_usage(&state.id).await.unwrap().count, 4);
}

async fn import_with_new_ids_keeps_checkpoints_restorable(backend: Backend) {
    let store = open(backend).await;
    let (state, _) = with_checkpoints(&store, "wf-copy", 2).await;
    let bundle = store.export_workflow(&state.id).await.unwrap();
    let copy = store.import_workflow(&bundle, true).await.unwrap();
    assert_ne!(copy.id, state.id);
    let checkpoints = store.list_checkpoints(&copy.id, 100, 0).await.unwrap();
    assert_eq!(checkpoints.len(), 2);
    for checkpoint in checkpoints {
        let restored = store.restore_from_checkpoint(&checkpoint.id).await.unwrap();
        assert_eq!(restored.id, copy.id);
    }
    // The original is still there, unchanged.
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

async fn workflow_checkpoint_budget_refuses_and_keeps_nothing(backend: Backend) {
    let store = open_with(backend, |b| {
        b.checkpoint_retention(None)
            .checkpoint_budgets(Some(10), Some(100), Some(5_000))
    })
    .await;
    let mut state = workflow("wf-budget");
    state.context = json!({"blob": "b".repeat(1_500)});
    store.save_workflow_state(&state).await.unwrap();
    let mut accepted = 0;
    let err = loop {
        let checkpoint = Checkpoint::of(&state, format!("step-{accepted}")).unwrap();
        match store.create_checkpoint(&checkpoint).await {
            Ok(()) => accepted += 1,
            Err(err) => break err,
        }
        assert!(accepted < 10, "the budget never refused");
    };
    assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err}");
    assert!(
        err.to_string().contains("max_workflow_checkpoint_bytes"),
        "{err}"
    );
    let usage = store.checkpoint_usage(&state.id).await.unwrap();
    assert_eq!(usage.count, accepted);
    assert!(usage.bytes <= 5_000);
    // record_step is held to the same budget, and leaves the state as it was.
    let before = store.load_workflow_state(&state.id).await.unwrap();
    assert!(matches!(
        store
            .record_step(&mut state.clone(), StepState::new("x"))
            .await,
        Err(StateStoreError::InvalidInput(_))
    ));
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), before);
}

/// A rollback holds its checkpoint: a prune that would delete it waits until the rollback
/// has committed (Postgres row lock; SQLite's single writer gives the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_under_rollback_is_not_pruned_until_the_rollback_commits() {
    let store = open_with(Backend::Postgres, |b| b.checkpoint_retention(None)).await;
    let (_, created) = with_checkpoints(&store, "wf-rollback-prune", 3).await;
    let target = created[0].clone();

    let tx = store.begin().await.unwrap();
    let restored = tx.rollback_to_checkpoint(&target.id).await.unwrap();
    assert_eq!(restored.id, target.workflow_state_id);

    let other = store.reopen().await.unwrap();
    let policy = RetentionPolicy {
        keep_last: Some(0),
        ..Default::default()
    };
    let prune = tokio::spawn(async move { other.prune(&policy, false).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !prune.is_finished(),
        "the prune went through while the rollback still held its checkpoint"
    );
    tx.commit().await.unwrap();
    let report = prune.await.unwrap().unwrap();
    // All but the newest, which the running workflow would resume from.
    assert_eq!(report.checkpoints, 2);
}

/// A bundle whose checkpoint snapshot names another workflow than the bundle's (edited
/// by hand, or put together from two exports) is imported with that snapshot as written,
/// not re-pointed at the copy; restoring that checkpoint is refused, since it would turn
/// the workflow into another.
async fn import_keeps_a_checkpoint_of_another_identity_as_written(backend: Backend) {
    let store = open(backend).await;
    let (state, _) = with_checkpoints(&store, "wf-bundle-identity", 2).await;
    let bundle = store.export_workflow(&state.id).await.unwrap();

    let mut edited = bundle.clone();
    edited.checkpoints[0].checkpoint.snapshot["workflow_name"] = json!("Someone else's");
    let copy = store.import_workflow(&edited, true).await.unwrap();
    let checkpoints = store.list_checkpoints(&copy.id, 10, 0).await.unwrap();
    assert_eq!(checkpoints.len(), 2);
    let snapshots: Vec<_> = checkpoints.iter().map(|c| &c.snapshot).collect();
    assert!(
        snapshots.contains(&&edited.checkpoints[0].checkpoint.snapshot),
        "{snapshots:?}"
    );
    for checkpoint in checkpoints {
        let restored = store.restore_from_checkpoint(&checkpoint.id).await;
        if checkpoint.snapshot == edited.checkpoints[0].checkpoint.snapshot {
            let err = restored.unwrap_err();
            assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err:?}");
            assert!(err.to_string().contains("holds no state of"), "{err}");
        } else {
            assert_eq!(restored.unwrap().id, copy.id);
        }
    }
}
