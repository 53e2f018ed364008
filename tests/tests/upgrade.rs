//! Upgrading in place. A database at the schema of the first six migrations holds the rows
//! the store of that time wrote (`tests/fixtures/upgrade`, made by its `make.sh` through
//! `backend_suite::upgrade_fixture::fill`): workflows in every status, a long history,
//! pins, a live lease, a fork, a checkpoint holding the orchestrator's own JSON, unicode and
//! a large context. The store opens it as after an upgrade, migrating it to the newest
//! schema, whatever that is by now. Then every public read returns exactly what it returned
//! when the rows were written (`expected.json`), and the store goes on working on the old
//! rows: steps, checkpoints, rollback, retention, export and import, and the lease.

use std::time::Duration;

use backend_suite::upgrade_fixture::{
    FORK, LEASE_OWNER, LEASED, LONG, PAUSED, PINS, UNICODE, first_difference, large_text, reads,
};
use backend_suite::{Backend, TestDatabase, backend_tests};
use llm_orchestrator_state::admin::WorkflowQuery;
use llm_orchestrator_state::{
    Checkpoint, CheckpointInfo, PruneReport, RetentionPolicy, SeaOrmStateStore, StateStore,
    StateStoreError, StepState, StepStatus, StoreOptions, WorkflowState,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use uuid::Uuid;

backend_tests!(upgrades_in_place_and_loses_nothing);

/// The schema the fixtures were written at: the first six migrations.
const FIXTURE_SCHEMA: u32 = 6;

/// More checkpoints than any workflow here has: one page reads them all.
const PAGE: u64 = 1000;

/// One backend's fixture: its rows as SQL, and what the reads returned about them.
struct Fixture {
    data: &'static str,
    expected: &'static str,
}

fn fixture(backend: Backend) -> Fixture {
    match backend {
        Backend::Postgres => Fixture {
            data: include_str!("../fixtures/upgrade/postgres/data.sql"),
            expected: include_str!("../fixtures/upgrade/postgres/expected.json"),
        },
        Backend::SqliteMemory | Backend::SqliteFile => Fixture {
            data: include_str!("../fixtures/upgrade/sqlite/data.sql"),
            expected: include_str!("../fixtures/upgrade/sqlite/expected.json"),
        },
    }
}

async fn upgrades_in_place_and_loses_nothing(backend: Backend) {
    let fixture = fixture(backend);
    let database = TestDatabase::new(backend);
    let store = upgraded(&database, fixture.data).await;
    let expected: Value = serde_json::from_str(fixture.expected).expect("expected.json is JSON");
    let actual = reads(&store).await.expect("reading the upgraded store");
    if let Some(difference) = first_difference(&expected, &actual) {
        panic!("a read differs after the upgrade: {difference}");
    }

    let leased_before = &actual["workflows"][by_workflow_id(&store, LEASED).await.id.to_string()];
    the_lease_still_holds(&store).await;
    steps_and_checkpoints_go_on(&store).await;
    rollback_to_a_checkpoint_from_before_the_upgrade(&store).await;
    retention_and_pruning_keep_the_pins(&store).await;
    export_and_import_carry_everything(&store).await;
    claims_pass_the_leased_workflow_by(&store).await;

    // Its state, version and lease; not its checkpoints, which pruning went through.
    let leased = by_workflow_id(&store, LEASED).await;
    let after = reads(&store).await.expect("reading the store again");
    let leased_after = &after["workflows"][leased.id.to_string()];
    for key in ["state", "version", "lease_owner", "lease_expires_at"] {
        assert_eq!(
            first_difference(&leased_before[key], &leased_after[key]),
            None,
            "the leased workflow's {key} changed"
        );
    }
}

/// A store on `database` as an upgrade finds it: migrated to the fixture's schema, the
/// fixture's rows loaded, then opened the normal way, which migrates it to the newest
/// schema. Retention is off as when the rows were written, so only the calls that ask
/// for it delete checkpoints.
async fn upgraded(database: &TestDatabase, data: &str) -> SeaOrmStateStore {
    let db = database.connect_raw().await;
    Migrator::up(&db, Some(FIXTURE_SCHEMA))
        .await
        .expect("migrating to the fixture's schema");
    assert_eq!(applied(&db).await, FIXTURE_SCHEMA as usize);
    db.execute_unprepared(data)
        .await
        .expect("loading the fixture's rows");
    let store = match database.backend {
        // A :memory: database lives in its one connection: the store takes that over.
        Backend::SqliteMemory => {
            let mut options = StoreOptions::default();
            options.checkpoint_retention = None;
            SeaOrmStateStore::from_connection(db, options)
                .await
                .expect("opening the store over the upgraded connection")
        }
        Backend::SqliteFile | Backend::Postgres => {
            db.close().await.expect("closing the plain connection");
            database
                .connect(|builder| builder.checkpoint_retention(None))
                .await
        }
    };
    let pending = Migrator::get_pending_migrations(store.connection())
        .await
        .expect("listing pending migrations");
    assert!(pending.is_empty(), "the store left migrations pending");
    assert_eq!(
        applied(store.connection()).await,
        Migrator::migrations().len()
    );
    store
}

async fn applied(db: &DatabaseConnection) -> usize {
    Migrator::get_applied_migrations(db)
        .await
        .expect("listing applied migrations")
        .len()
}

async fn by_workflow_id(store: &SeaOrmStateStore, workflow_id: &str) -> WorkflowState {
    store
        .load_workflow_state_by_workflow_id(workflow_id)
        .await
        .unwrap_or_else(|err| panic!("loading {workflow_id}: {err}"))
}

async fn infos(store: &SeaOrmStateStore, id: Uuid) -> Vec<CheckpointInfo> {
    store.list_checkpoint_infos(&id, PAGE, 0).await.unwrap()
}

/// The lease the fixture's claim took still holds the workflow: a plain save and a plain
/// step are refused, naming the holder, and change nothing.
async fn the_lease_still_holds(store: &SeaOrmStateStore) {
    let leased = by_workflow_id(store, LEASED).await;
    let summary = store.workflow_summary(&leased.id).await.unwrap();
    assert_eq!(summary.lease_owner.as_deref(), Some(LEASE_OWNER));
    assert!(
        !summary.lease_expired,
        "the fixture's lease ran out at {:?}: it was the longest the store grants (ten \
         years from when the fixtures were made)",
        summary.lease_expires_at
    );
    let version = store.workflow_version(&leased.id).await.unwrap();

    let refused = store.save_workflow_state(&leased).await.unwrap_err();
    assert!(
        matches!(&refused, StateStoreError::Conflict(why) if why.contains(LEASE_OWNER)),
        "{refused:?}"
    );
    let mut copy = leased.clone();
    let refused = store
        .record_step(&mut copy, StepState::new("sneaked-in"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StateStoreError::Conflict(why) if why.contains(LEASE_OWNER)),
        "{refused:?}"
    );
    assert_eq!(copy, leased);
    assert_eq!(store.load_workflow_state(&leased.id).await.unwrap(), leased);
    assert_eq!(store.workflow_version(&leased.id).await.unwrap(), version);
}

/// A step recorded on an upgraded workflow, and checkpoints created on another, read back
/// as written.
async fn steps_and_checkpoints_go_on(store: &SeaOrmStateStore) {
    let mut long = by_workflow_id(store, LONG).await;
    let before = infos(store, long.id).await.len();
    let step = StepState {
        status: StepStatus::Completed,
        outputs: json!({"after": "the upgrade", "note": "über"}),
        ..StepState::new("after-upgrade")
    };
    let checkpoint = store.record_step(&mut long, step).await.unwrap();
    assert_eq!(
        store.get_checkpoint(&checkpoint.id).await.unwrap(),
        checkpoint
    );
    assert_eq!(store.load_workflow_state(&long.id).await.unwrap(), long);
    assert_eq!(checkpoint.state().unwrap(), long);
    assert_eq!(long.steps.len(), 15);
    assert_eq!(
        store.get_latest_checkpoint(&long.id).await.unwrap(),
        Some(checkpoint)
    );
    assert_eq!(infos(store, long.id).await.len(), before + 1);

    let paused = by_workflow_id(store, PAUSED).await;
    let of_state = Checkpoint::of(&paused, "after-upgrade").unwrap();
    let marker = Checkpoint::new(paused.id, "after-upgrade", json!({"checkpoint": 4}));
    for checkpoint in [&of_state, &marker] {
        store.create_checkpoint(checkpoint).await.unwrap();
        assert_eq!(
            &store.get_checkpoint(&checkpoint.id).await.unwrap(),
            checkpoint
        );
    }
    assert_eq!(
        store.restore_from_checkpoint(&of_state.id).await.unwrap(),
        paused
    );
    assert!(matches!(
        store.restore_from_checkpoint(&marker.id).await,
        Err(StateStoreError::InvalidInput(_))
    ));
}

/// A rollback to a checkpoint written before the upgrade makes its state the workflow's
/// again, and the newest checkpoint.
async fn rollback_to_a_checkpoint_from_before_the_upgrade(store: &SeaOrmStateStore) {
    let long = by_workflow_id(store, LONG).await;
    let old = infos(store, long.id)
        .await
        .into_iter()
        .find(|info| info.step_id == "step-04")
        .expect("the checkpoint after step 4");
    let old = store.get_checkpoint(&old.id).await.unwrap();
    let rolled = store.rollback_to_checkpoint(&old.id).await.unwrap();
    let mut want = old.state().unwrap();
    want.updated_at = rolled.updated_at;
    assert_eq!(rolled, want);
    assert_eq!(rolled.steps.len(), 4);
    assert_eq!(store.load_workflow_state(&long.id).await.unwrap(), rolled);
    let newest = store
        .get_latest_checkpoint(&long.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.step_id, "step-04");
    assert_eq!(newest.state().unwrap(), rolled);
}

/// `cleanup_old_checkpoints` and `prune` delete exactly the old unpinned checkpoints,
/// pinned ones stay with their labels, and a dry run deletes nothing.
async fn retention_and_pruning_keep_the_pins(store: &SeaOrmStateStore) {
    let long = by_workflow_id(store, LONG).await;
    let before = infos(store, long.id).await;
    let deleted = store.cleanup_old_checkpoints(&long.id, 3).await.unwrap();
    let kept = survivors(&before, 3);
    assert_eq!(deleted, (before.len() - kept.len()) as u64);
    let after = infos(store, long.id).await;
    assert_eq!(after, kept);
    let mut pins: Vec<_> = after
        .iter()
        .filter_map(|info| Some((info.step_id.as_str(), info.pinned.as_deref()?)))
        .collect();
    pins.sort_unstable();
    assert_eq!(pins, PINS);

    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..RetentionPolicy::default()
    };
    let query = WorkflowQuery {
        limit: PAGE,
        ..WorkflowQuery::default()
    };
    let mut workflows = Vec::new();
    let mut want = PruneReport::default();
    for row in store.workflow_page(&query).await.unwrap().rows {
        let before = infos(store, row.id).await;
        let kept = survivors(&before, 1);
        let gone = before.iter().filter(|info| !kept.contains(info));
        for info in gone {
            want.checkpoints += 1;
            want.bytes += info.size_bytes;
        }
        workflows.push((row.id, before, kept));
    }
    assert!(want.checkpoints > 0, "pruning has something to delete");
    let preview = store.prune(&policy, true).await.unwrap();
    assert_eq!(
        preview,
        PruneReport {
            dry_run: true,
            ..want
        }
    );
    for (id, before, _) in &workflows {
        assert_eq!(&infos(store, *id).await, before, "a dry run deleted");
    }
    assert_eq!(store.prune(&policy, false).await.unwrap(), want);
    for (id, _, kept) in &workflows {
        assert_eq!(&infos(store, *id).await, kept, "workflow {id}");
    }
}

/// What retention keeping the newest `keep` unpinned checkpoints leaves of `infos`
/// (newest first): those and every pinned one, in their order.
fn survivors(infos: &[CheckpointInfo], keep: usize) -> Vec<CheckpointInfo> {
    let mut unpinned = 0;
    infos
        .iter()
        .filter(|info| {
            info.pinned.is_some() || {
                unpinned += 1;
                unpinned <= keep
            }
        })
        .cloned()
        .collect()
}

/// Upgraded workflows export with their checkpoints, pins and origin, and import again
/// under new ids as they were.
async fn export_and_import_carry_everything(store: &SeaOrmStateStore) {
    for workflow_id in [UNICODE, LONG, FORK] {
        let original = by_workflow_id(store, workflow_id).await;
        let bundle = store.export_workflow(&original.id).await.unwrap();
        assert_eq!(bundle.workflow, original);
        let listed = store.list_checkpoints(&original.id, PAGE, 0).await.unwrap();
        let bundled: Vec<_> = bundle
            .checkpoints
            .iter()
            .map(|b| b.checkpoint.clone())
            .collect();
        assert_eq!(bundled, listed);
        let lineage = store.lineage(&original.id).await.unwrap();
        assert_eq!(bundle.forked_from, lineage.forked_from);

        let copy = store.import_workflow(&bundle, true).await.unwrap();
        assert_ne!(copy.id, original.id);
        assert_eq!(
            WorkflowState {
                id: original.id,
                ..copy.clone()
            },
            original
        );
        assert_eq!(store.load_workflow_state(&copy.id).await.unwrap(), copy);
        let copied = store.list_checkpoints(&copy.id, PAGE, 0).await.unwrap();
        assert_eq!(copied.len(), listed.len());
        for (copied, listed) in copied.iter().zip(&listed) {
            assert_eq!(
                (&copied.step_id, copied.timestamp),
                (&listed.step_id, listed.timestamp)
            );
            let mut state = copied.state().unwrap();
            assert_eq!(state.id, copy.id);
            state.id = original.id;
            assert_eq!(state, listed.state().unwrap());
        }
        let pins = |infos: Vec<CheckpointInfo>| -> Vec<_> {
            infos.into_iter().map(|info| info.pinned).collect()
        };
        assert_eq!(
            pins(infos(store, copy.id).await),
            pins(infos(store, original.id).await)
        );
        assert_eq!(
            store.lineage(&copy.id).await.unwrap().forked_from,
            lineage.forked_from
        );
    }
    let unicode = by_workflow_id(store, UNICODE).await;
    assert_eq!(unicode.context["document"], json!(large_text()));
}

/// Another replica's claim takes the other active workflows and leaves the leased one to
/// its holder.
async fn claims_pass_the_leased_workflow_by(store: &SeaOrmStateStore) {
    let leased = by_workflow_id(store, LEASED).await;
    let claims = store
        .claim_workflows("replica-b", Duration::from_secs(60), PAGE)
        .await
        .unwrap();
    assert!(!claims.is_empty(), "the other active workflows are free");
    assert!(claims.iter().all(|claim| claim.state.id != leased.id));
    let summary = store.workflow_summary(&leased.id).await.unwrap();
    assert_eq!(summary.lease_owner.as_deref(), Some(LEASE_OWNER));
}
