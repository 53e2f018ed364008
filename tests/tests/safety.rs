//! Bad input and bad data on every backend: size limits, corrupted rows, read-only
//! stores, and strings that look like SQL.

use backend_suite::{Backend, backend_tests, backend_tests_for, open, open_with, workflow};
use llm_orchestrator_state::sea_orm::ConnectionTrait;
use llm_orchestrator_state::{
    Checkpoint, SaveCondition, StateStore, StateStoreError, StepState, WorkflowState,
};
use serde_json::json;
use std::time::Duration;

backend_tests!(
    json_over_the_size_limit_is_refused_and_nothing_is_stored,
    a_sixteen_megabyte_context_round_trips,
    an_unknown_status_in_a_row_is_invalid_state_and_hides_no_other_workflow,
    sql_looking_strings_are_stored_verbatim,
);
backend_tests_for!(mod sqlite_file_only = SqliteFile: invalid_json_in_a_sqlite_row_is_a_serialization_error);
backend_tests_for!(mod read_only_sqlite_file = SqliteFile: a_read_only_store_refuses_every_write);
backend_tests_for!(mod sqlite_sync = SqliteFile: sqlite_files_sync_as_configured);
backend_tests_for!(mod read_only_postgres = Postgres: a_read_only_store_refuses_every_write);

async fn json_over_the_size_limit_is_refused_and_nothing_is_stored(backend: Backend) {
    let store = open_with(backend, |b| b.max_json_bytes(1_000)).await;
    let mut state = workflow("wf-size");
    state.context = json!({"text": "x".repeat(500)});
    store.save_workflow_state(&state).await.unwrap();

    let mut big = state.clone();
    big.context = json!({"text": "x".repeat(1_000)});
    let err = store.save_workflow_state(&big).await.unwrap_err();
    assert!(matches!(err, StateStoreError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("max_json_bytes"), "{err}");

    let mut big_outputs = state.clone();
    let mut step = StepState::new("s");
    step.mark_completed(json!("y".repeat(2_000)));
    big_outputs.upsert_step(step.clone());
    assert!(matches!(
        store.save_workflow_state(&big_outputs).await,
        Err(StateStoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.record_step(&mut state.clone(), step).await,
        Err(StateStoreError::InvalidInput(_))
    ));
    let huge_snapshot = Checkpoint::new(state.id, "s", json!({"blob": "z".repeat(2_000)}));
    assert!(matches!(
        store.create_checkpoint(&huge_snapshot).await,
        Err(StateStoreError::InvalidInput(_))
    ));

    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(store.get_latest_checkpoint(&state.id).await.unwrap(), None);
}

async fn a_sixteen_megabyte_context_round_trips(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-16mb");
    let chunk = "0123456789abcdef".repeat(64); // 1 KiB
    state.context = json!({"pages": vec![chunk; 16 * 1024]});
    store.save_workflow_state(&state).await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    let checkpoint = store
        .record_step(&mut state, StepState::new("after-16mb"))
        .await
        .unwrap();
    assert_eq!(
        store.restore_from_checkpoint(&checkpoint.id).await.unwrap(),
        state
    );
}

/// Runs SQL on the store's own connection, as someone editing the database by hand would.
async fn corrupt(store: &llm_orchestrator_state::SeaOrmStateStore, sql: &str) {
    store.connection().execute_unprepared(sql).await.unwrap();
}

async fn an_unknown_status_in_a_row_is_invalid_state_and_hides_no_other_workflow(backend: Backend) {
    let store = open(backend).await;
    let mut good = workflow("wf-good");
    good.mark_running();
    store.save_workflow_state(&good).await.unwrap();
    let mut bad = workflow("wf-bad-status");
    bad.mark_running();
    store.save_workflow_state(&bad).await.unwrap();
    let mut bad_step = workflow("wf-bad-step");
    bad_step.upsert_step(StepState::new("s"));
    store.save_workflow_state(&bad_step).await.unwrap();

    corrupt(
        &store,
        "UPDATE workflow_states SET status = 'exploded' WHERE workflow_id = 'wf-bad-status'",
    )
    .await;
    corrupt(&store, "UPDATE step_states SET status = 'melted'").await;

    let err = store.load_workflow_state(&bad.id).await.unwrap_err();
    assert!(matches!(err, StateStoreError::InvalidState(_)), "{err}");
    assert!(err.to_string().contains("exploded"), "{err}");
    let err = store.load_workflow_state(&bad_step.id).await.unwrap_err();
    assert!(matches!(err, StateStoreError::InvalidState(_)), "{err}");

    let active = store.list_active_workflows().await.unwrap();
    assert_eq!(active, [good]);
}

async fn invalid_json_in_a_sqlite_row_is_a_serialization_error(backend: Backend) {
    let store = open(backend).await;
    let mut good = workflow("wf-good");
    good.upsert_step(StepState::new("s"));
    store.save_workflow_state(&good).await.unwrap();
    let bad_context = workflow("wf-bad-context");
    store.save_workflow_state(&bad_context).await.unwrap();
    let mut bad_outputs = workflow("wf-bad-outputs");
    let mut step = StepState::new("s");
    step.mark_completed(json!({"ok": true}));
    bad_outputs.upsert_step(step);
    store.save_workflow_state(&bad_outputs).await.unwrap();

    corrupt(
        &store,
        "UPDATE workflow_states SET context = '{not json' WHERE workflow_id = 'wf-bad-context'",
    )
    .await;
    corrupt(
        &store,
        "UPDATE step_states SET outputs = '[1, 2' WHERE outputs IS NOT NULL",
    )
    .await;

    for id in [bad_context.id, bad_outputs.id] {
        let err = store.load_workflow_state(&id).await.unwrap_err();
        assert!(matches!(err, StateStoreError::Serialization(_)), "{err}");
    }
    assert_eq!(store.list_active_workflows().await.unwrap(), [good.clone()]);
    assert_eq!(store.load_workflow_state(&good.id).await.unwrap(), good);
}

async fn sqlite_files_sync_as_configured(backend: Backend) {
    use llm_orchestrator_state::SqliteSync;
    use llm_orchestrator_state::sea_orm::{DbBackend, Statement};
    let store = open(backend).await;
    let synchronous = |store: llm_orchestrator_state::SeaOrmStateStore| async move {
        let row = store
            .connection()
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA synchronous",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    };
    assert_eq!(synchronous(store.store.clone()).await, 2, "FULL by default");
    let normal = store
        .builder_for_same_database()
        .unwrap()
        .sqlite_sync(SqliteSync::Normal)
        .connect()
        .await
        .unwrap();
    let state = workflow("wf-normal");
    normal.save_workflow_state(&state).await.unwrap();
    assert_eq!(synchronous(normal).await, 1, "NORMAL when asked");
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

async fn sql_looking_strings_are_stored_verbatim(backend: Backend) {
    let store = open(backend).await;
    let nasty = "x'); DROP TABLE workflow_states; --";
    let mut state = WorkflowState::new(
        nasty,
        "Robert'); DELETE FROM checkpoints WHERE ('1'='1",
        Some("\" OR 1=1 --".into()),
        json!({"q": "SELECT * FROM step_states; /* */", "k'ey": "v\"al"}),
    );
    let mut step = StepState::new("'; UPDATE step_states SET status='failed'; --");
    step.mark_failed("\\'; --");
    state.upsert_step(step);
    store.save_workflow_state(&state).await.unwrap();
    store
        .record_step(&mut state, StepState::new("%_\\ LIKE"))
        .await
        .unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store
            .load_workflow_state_by_workflow_id(nasty)
            .await
            .unwrap(),
        state
    );
    // A LIKE pattern is not a wildcard either.
    assert!(matches!(
        store.load_workflow_state_by_workflow_id("x%").await,
        Err(StateStoreError::NotFound(_))
    ));
}

async fn a_read_only_store_refuses_every_write(backend: Backend) {
    let store = open(backend).await;
    let mut state = workflow("wf-read-only");
    state.mark_running();
    let checkpoint = store
        .record_step(&mut state, StepState::new("a"))
        .await
        .unwrap();
    let reader = store
        .builder_for_same_database()
        .unwrap()
        .read_only(true)
        .connect()
        .await
        .unwrap();

    // Reads work.
    assert_eq!(reader.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        reader.list_active_workflows().await.unwrap(),
        [state.clone()]
    );
    reader.health_check().await.unwrap();

    // Every write is refused by the store itself.
    let mut changed = state.clone();
    changed.mark_failed("must not be written");
    let refused = |result: Result<(), StateStoreError>| {
        assert!(
            matches!(result, Err(StateStoreError::ReadOnly(_))),
            "{result:?}"
        )
    };
    refused(reader.save_workflow_state(&changed).await);
    refused(
        reader
            .record_step(&mut changed.clone(), StepState::new("b"))
            .await
            .map(drop),
    );
    refused(
        reader
            .create_checkpoint(&Checkpoint::of(&changed, "b").unwrap())
            .await,
    );
    refused(
        reader
            .rollback_to_checkpoint(&checkpoint.id)
            .await
            .map(drop),
    );
    refused(reader.delete_old_states(chrono::Utc::now()).await.map(drop));
    refused(reader.cleanup_old_checkpoints(&state.id, 0).await.map(drop));
    refused(
        reader
            .save_workflow_state_if(&changed, &SaveCondition::Version(1))
            .await
            .map(drop),
    );
    refused(
        reader
            .claim_workflows("admin", Duration::from_secs(1), 10)
            .await
            .map(drop),
    );
    // And by the database, for anything that gets past the store.
    assert!(
        reader
            .connection()
            .execute_unprepared("DELETE FROM checkpoints")
            .await
            .is_err()
    );
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    assert_eq!(
        store.get_latest_checkpoint(&state.id).await.unwrap(),
        Some(checkpoint)
    );
}

mod fuzz {
    //! Arbitrary input through the API, valid or not: every call returns `Ok` or a typed
    //! error, never a panic; a refused save stores nothing, an accepted one loads back.

    use super::*;
    use backend_suite::backend_sync_tests;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::Value;

    backend_sync_tests!(arbitrary_input_never_panics_and_never_half_writes);

    /// Any text, NUL and over-long included.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,8}",
            "[a-z\\x00]{0,4}",
            (0usize..400).prop_map(|n| "é".repeat(n)),
            any::<String>(),
        ]
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            any_text().prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 64, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((any_text(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn any_state() -> impl Strategy<Value = (WorkflowState, Vec<(String, Value)>)> {
        (
            any_text(),
            any_text(),
            proptest::option::of(any_text()),
            any_json(),
            prop::collection::vec((any_text(), any_json()), 0..4),
        )
            .prop_map(|(id, name, user, context, steps)| {
                (WorkflowState::new(id, name, user, context), steps)
            })
    }

    fn arbitrary_input_never_panics_and_never_half_writes(backend: Backend) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let store = runtime.block_on(open(backend));
        let cases = if backend == Backend::Postgres { 48 } else { 96 };
        let mut runner = TestRunner::new(Config::with_cases(cases));
        runner
            .run(&any_state(), |(mut state, steps)| {
                runtime.block_on(async {
                    for (step_id, outputs) in steps {
                        let mut step = StepState::new(step_id);
                        step.mark_completed(outputs);
                        state.steps.insert(step.step_id.clone(), step);
                    }
                    match store.save_workflow_state(&state).await {
                        Ok(()) => {
                            prop_assert_eq!(
                                store.load_workflow_state(&state.id).await.unwrap(),
                                state.clone()
                            );
                        }
                        Err(StateStoreError::InvalidInput(_)) => {
                            prop_assert!(matches!(
                                store.load_workflow_state(&state.id).await,
                                Err(StateStoreError::NotFound(_))
                            ));
                        }
                        Err(other) => prop_assert!(false, "untyped failure: {other}"),
                    }
                    let lookup = store
                        .load_workflow_state_by_workflow_id(&state.workflow_id)
                        .await;
                    prop_assert!(matches!(
                        lookup,
                        Ok(_)
                            | Err(StateStoreError::NotFound(_) | StateStoreError::InvalidInput(_))
                    ));
                    let checkpoint = Checkpoint::new(
                        state.id,
                        state.workflow_name.clone(),
                        state.context.clone(),
                    );
                    let created = store.create_checkpoint(&checkpoint).await;
                    prop_assert!(
                        matches!(
                            created,
                            Ok(())
                                | Err(
                                    StateStoreError::InvalidInput(_) | StateStoreError::NotFound(_)
                                )
                        ),
                        "{:?}",
                        created
                    );
                    Ok(())
                })
            })
            .unwrap();
    }
}

mod tls {
    //! `sslmode` in a Postgres URL is honoured (rustls): `require` encrypts, `verify-full`
    //! refuses a server whose certificate it cannot verify (the local server's is the
    //! distribution's self-signed "snakeoil" one), `disable` does not encrypt.

    use backend_suite::test_database_url;
    use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
    use llm_orchestrator_state::{StateStoreBuilder, StateStoreError};

    fn with_sslmode(mode: &str) -> String {
        let url = test_database_url();
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}sslmode={mode}")
    }

    async fn encrypted(url: String) -> Result<bool, StateStoreError> {
        let store = StateStoreBuilder::new(url)
            .run_migrations(false)
            .min_connections(1)
            .max_connections(1)
            .connect()
            .await?;
        let row = store
            .connection()
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ))
            .await
            .unwrap()
            .unwrap();
        Ok(row.try_get_by_index::<bool>(0).unwrap())
    }

    #[tokio::test]
    async fn sslmode_is_honoured() {
        // The local server must have TLS on for this test to say anything.
        assert!(
            encrypted(with_sslmode("require")).await.unwrap(),
            "require did not encrypt"
        );
        assert!(!encrypted(with_sslmode("disable")).await.unwrap());
        let err = encrypted(with_sslmode("verify-full")).await.unwrap_err();
        assert!(matches!(err, StateStoreError::Connection(_)), "{err}");
    }
}

mod refused_access {
    //! Access the database refuses: a SQLite file that cannot be written (immutable, which
    //! even root cannot write), and a Postgres server that refuses the password.

    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::process::Command;

    use llm_orchestrator_state::{StateStore, StateStoreBuilder, StateStoreError, WorkflowState};
    use serde_json::json;

    /// Makes a file immutable (`chattr +i`) and mutable again when dropped.
    struct Immutable(std::path::PathBuf);
    impl Immutable {
        fn new(path: &std::path::Path) -> Option<Self> {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .ok()?
                .success();
            ok.then(|| Self(path.to_owned()))
        }
    }
    impl Drop for Immutable {
        fn drop(&mut self) {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        }
    }

    /// An immutable SQLite file (`chattr +i`) opened for writing: the write is `ReadOnly`,
    /// in SQLite's words, and nothing stored is lost.
    #[tokio::test]
    async fn a_sqlite_file_that_cannot_be_written_is_a_clear_error_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.db");
        let target = path.display().to_string();
        let state = WorkflowState::new("wf-locked", "n", None, json!({"kept": true}));
        {
            let store = StateStoreBuilder::new(target.clone())
                .connect()
                .await
                .unwrap();
            store.save_workflow_state(&state).await.unwrap();
            store.close().await.unwrap();
        }
        let Some(guard) = Immutable::new(&path) else {
            panic!("chattr +i is needed for this test (e2fsprogs, ext4 and root)");
        };
        let mut changed = state.clone();
        changed.mark_failed("must not be written");
        let outcome = match StateStoreBuilder::new(target.clone()).connect().await {
            Err(err) => Err(err),
            Ok(store) => store.save_workflow_state(&changed).await,
        };
        let err = outcome.expect_err("a write to an immutable file succeeded");
        assert!(matches!(err, StateStoreError::ReadOnly(_)), "{err:?}");
        assert!(
            err.to_string().contains("readonly")
                || err.to_string().contains("read-only")
                || err.to_string().contains("permitted"),
            "unclear: {err}"
        );
        drop(guard);
        let store = StateStoreBuilder::new(target).connect().await.unwrap();
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    }

    /// A SQLite database in a folder nobody may write (an operator's copy of someone
    /// else's database, say): SQLite cannot create its `-wal` and `-shm` files there.
    /// Read-only, the store reads it all the same; for writing it says why it cannot,
    /// and what to do, instead of "attempt to write a readonly database".
    #[tokio::test]
    async fn a_sqlite_file_in_a_folder_that_cannot_be_written_opens_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("theirs.db");
        let target = path.display().to_string();
        let state = WorkflowState::new("wf-theirs", "n", None, json!({"kept": true}));
        // A copy taken while the database was open: its last commit is only in the -wal.
        let copied = tempfile::tempdir().unwrap();
        let copy = copied.path().join("theirs.db");
        {
            let store = StateStoreBuilder::new(target.clone())
                .connect()
                .await
                .unwrap();
            store.save_workflow_state(&state).await.unwrap();
            std::fs::copy(&path, &copy).unwrap();
            std::fs::copy(
                dir.path().join("theirs.db-wal"),
                copied.path().join("theirs.db-wal"),
            )
            .unwrap();
            store.close().await.unwrap();
        }
        // A database with an empty -wal beside it: a process may have it open, writing.
        let in_use = tempfile::tempdir().unwrap();
        std::fs::copy(&path, in_use.path().join("theirs.db")).unwrap();
        std::fs::write(in_use.path().join("theirs.db-wal"), b"").unwrap();
        let (Some(guard), Some(copy_guard), Some(in_use_guard)) = (
            Immutable::new(dir.path()),
            Immutable::new(copied.path()),
            Immutable::new(in_use.path()),
        ) else {
            panic!("chattr +i is needed for this test (e2fsprogs, ext4 and root)");
        };
        let read_only = StateStoreBuilder::new(target.clone())
            .read_only(true)
            .connect()
            .await;
        let loaded = match &read_only {
            Ok(store) => Some(store.load_workflow_state(&state.id).await),
            Err(_) => None,
        };
        let writable = StateStoreBuilder::new(target.clone()).connect().await;
        // Read as an immutable file, the copy would look as it was before that commit.
        let copy_read = StateStoreBuilder::new(copy.display().to_string())
            .read_only(true)
            .connect()
            .await;
        let in_use_read =
            StateStoreBuilder::new(in_use.path().join("theirs.db").display().to_string())
                .read_only(true)
                .connect()
                .await;
        drop((guard, copy_guard, in_use_guard));

        for (what, read) in [
            ("a copy without its -wal", copy_read),
            ("one in use", in_use_read),
        ] {
            let err = read.map(|_| ()).expect_err(what);
            assert!(
                matches!(err, StateStoreError::Configuration(_)),
                "{what}: {err:?}"
            );
            assert!(err.to_string().contains("-wal"), "{what}: {err}");
        }

        let loaded = loaded.unwrap_or_else(|| panic!("read-only open: {:?}", read_only.err()));
        assert_eq!(loaded.unwrap(), state);
        let err = writable.map(|_| ()).expect_err("opened for writing");
        assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
        assert!(
            err.to_string().contains("opened for writing") && err.to_string().contains("read-only"),
            "{err}"
        );
    }

    /// A server that answers any login with "password authentication failed".
    fn refusing_server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(8) {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 1024];
                // An SSLRequest (8 bytes, code 80877103) gets "N"; then the startup message.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if n >= 8 && buf[4..8] == [0x04, 0xd2, 0x16, 0x2f] {
                        let _ = stream.write_all(b"N");
                        continue;
                    }
                    let mut fields = Vec::new();
                    for (tag, value) in [
                        (b'S', "FATAL"),
                        (b'V', "FATAL"),
                        (b'C', "28P01"),
                        (b'M', "password authentication failed for user \"app\""),
                    ] {
                        fields.push(tag);
                        fields.extend_from_slice(value.as_bytes());
                        fields.push(0);
                    }
                    fields.push(0);
                    let mut message = vec![b'E'];
                    message.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
                    message.extend_from_slice(&fields);
                    let _ = stream.write_all(&message);
                    break;
                }
            }
        });
        port
    }

    #[tokio::test]
    async fn a_wrong_postgres_password_is_a_configuration_error_without_the_password() {
        let port = refusing_server();
        let url = format!("postgres://app:hunter2@127.0.0.1:{port}/workflows?sslmode=prefer");
        let err = StateStoreBuilder::new(url)
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect()
            .await
            .expect_err("the server refuses every login");
        // Trying again cannot help: it is the configuration that is wrong.
        assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
        assert!(!err.is_transient(), "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("password authentication failed"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
