//! Errors when opening a store or losing its server: a wrong URL or path is
//! `Configuration`, an unreachable server is `Connection` (promptly) saying why, and no
//! error ever shows a password.

use std::future::Future;
use std::time::Duration;

use backend_suite::{
    Backend, Configured, configured, forwarder, open_postgres_at, test_database_url,
};
use llm_orchestrator_state::sea_orm::ConnectionTrait;
use llm_orchestrator_state::{
    AnyBackend, PostgresStateStore, SeaOrmStateStore, SqliteStateStore, StateStore,
    StateStoreBuilder, StateStoreError, StepState, WorkflowState, redact_url,
};

const SECRET: &str = "hunter2";

/// Fails the test if opening a store hangs instead of answering; never a timing assertion.
async fn answered<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within a minute"))
}

async fn connect_err(target: &str) -> StateStoreError {
    answered(target, StateStoreBuilder::new(target).connect())
        .await
        .map(|_| ())
        .expect_err(target)
}

fn assert_no_secret(err: &StateStoreError) {
    let shown = err.to_string();
    let debugged = format!("{err:?}");
    assert!(!shown.contains(SECRET), "password in error text: {shown}");
    assert!(!debugged.contains(SECRET), "password in {{:?}}: {debugged}");
}

#[tokio::test]
async fn malformed_urls_are_configuration_errors() {
    for target in [
        "postgres://u:hunter2@127.0.0.1:notaport/db",
        "postgres://u:hunter2@127.0.0.1:99999/db",
        "postgresql://u:hunter2@[::1/db",
        "postgres://u:hunter2@/db?sslmode=bogus",
        // Not taken for a SQLite file named after the URL, password and all.
        "postgres:/u:hunter2@127.0.0.1/db",
        "postgresql:u:hunter2@127.0.0.1",
        "u:hunter2@127.0.0.1/db",
        "",
        "   ",
    ] {
        let err = connect_err(target).await;
        assert!(
            matches!(err, StateStoreError::Configuration(_)),
            "{target:?}: {err:?}"
        );
        assert!(!err.is_transient(), "{target:?}");
        assert_no_secret(&err);
    }
}

#[tokio::test]
async fn a_password_a_url_should_have_encoded_is_still_never_shown() {
    for password in ["hun/ter2", "hun?ter2", "hun#ter2", "hun ter2", "hun@ter2"] {
        for target in [
            format!("postgres://u:{password}@127.0.0.1:notaport/db"),
            format!("postgres://u:{password}@127.0.0.1:1/db"),
        ] {
            let err = connect_err(&target).await;
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains(password), "{target:?}: {shown}");
                assert!(!shown.contains("ter2"), "{target:?}: {shown}");
            }
        }
    }
}

#[tokio::test]
async fn a_key_value_connection_string_is_refused_not_taken_for_a_file() {
    let target = "host=127.0.0.1 user=postgres password=hunter2 dbname=test";
    let err = connect_err(target).await;
    assert!(
        !std::path::Path::new(target).exists(),
        "a SQLite file was created"
    );
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(err.to_string().contains("postgres://"), "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn typed_constructors_refuse_the_other_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.db").display().to_string();
    let err = PostgresStateStore::new(&file, None, None)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(
        !std::path::Path::new(&file).exists(),
        "a SQLite file was created"
    );
    let err = SqliteStateStore::new("postgres://u:hunter2@127.0.0.1:1/db")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn unsupported_schemes_are_configuration_errors() {
    for target in [
        "mysql://u:hunter2@127.0.0.1:3306/workflows",
        "mariadb://u:hunter2@127.0.0.1/workflows",
        "redis://:hunter2@127.0.0.1",
    ] {
        let err = connect_err(target).await;
        assert!(
            matches!(err, StateStoreError::Configuration(_)),
            "{target:?}: {err:?}"
        );
        assert_no_secret(&err);
    }
}

#[tokio::test]
async fn sqlite_in_a_missing_folder_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no").join("such").join("folder");
    let file = missing.join("state.db");
    for target in [
        file.display().to_string(),
        format!("sqlite://{}", file.display()),
    ] {
        let err = connect_err(&target).await;
        assert!(
            matches!(err, StateStoreError::Configuration(_)),
            "{target:?}: {err:?}"
        );
    }
    let err = answered(
        "SqliteStateStore::new",
        SqliteStateStore::new(&file.display().to_string()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    // Nothing was created on the way.
    assert!(!missing.exists());
}

#[tokio::test]
async fn sqlite_files_and_urls_are_created_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    for (n, target) in [
        dir.path().join("plain.db").display().to_string(),
        format!("sqlite://{}", dir.path().join("url.db").display()),
        "sqlite::memory:".to_owned(),
        ":memory:".to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        let store = answered(&target, StateStoreBuilder::new(&target).connect())
            .await
            .unwrap_or_else(|err| panic!("{target}: {err}"));
        store.health_check().await.unwrap();
        let state = backend_suite::workflow(&format!("wf-{n}"));
        store.save_workflow_state(&state).await.unwrap();
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    }
    assert!(dir.path().join("plain.db").is_file());
    assert!(dir.path().join("url.db").is_file());
}

#[tokio::test]
async fn postgres_where_nothing_listens_is_a_connection_error() {
    for target in [
        "postgres://postgres@127.0.0.1:1/x",
        "postgresql://u:hunter2@127.0.0.1:1/x",
        "postgres://u:hunter2@127.0.0.1:1/x?password=hunter2&sslmode=disable",
        "postgres://u@127.0.0.1:1/x?sslmode=disable&password=hunter2",
    ] {
        // Short timeouts: sqlx retries a refused connection until the acquire timeout.
        let builder = StateStoreBuilder::new(target).acquire_timeout(Duration::from_secs(1));
        let err = answered(target, builder.connect())
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(err, StateStoreError::Connection(_)),
            "{target:?}: {err:?}"
        );
        assert!(err.is_transient());
        assert_no_secret(&err);
        // It says what happened, not only that time ran out: an operator then looks for a
        // server that is not running rather than one that is slow.
        assert!(
            err.to_string()
                .contains("127.0.0.1:1 refused the connection"),
            "{err}"
        );
        // The target as shown, then what happened: a masked password at the end of the
        // URL does not swallow the ": " after it.
        assert!(
            err.to_string()
                .contains(&format!("{}: 127.0.0.1:1", redact_url(target))),
            "{err}"
        );
    }
    // With the seed's constructor and default options.
    let err = answered(
        "PostgresStateStore::new",
        PostgresStateStore::new("postgresql://u:hunter2@127.0.0.1:1/x", Some(5), Some(20)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StateStoreError::Connection(_)), "{err:?}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_connection_error_after_the_connect_timeout() {
    // A listener that accepts TCP connections and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let target = format!("postgres://u:hunter2@127.0.0.1:{port}/x");
    let builder = StateStoreBuilder::new(&target)
        .connect_timeout(Duration::from_millis(500))
        .acquire_timeout(Duration::from_millis(500));
    let err = answered(&target, builder.connect())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Connection(_)), "{err:?}");
    assert_no_secret(&err);
    assert!(
        err.to_string().contains(&format!(
            "127.0.0.1:{port} accepts connections but the server did not finish logging in"
        )),
        "{err}"
    );
    silent.abort();
}

#[tokio::test]
async fn errors_from_a_live_server_do_not_show_the_password() {
    // The configured server, with a password added and a database that does not exist.
    let Configured {
        scheme,
        user_info,
        server,
        ..
    } = configured();
    let user = user_info
        .as_deref()
        .and_then(|info| info.split(':').next())
        .unwrap_or("postgres");
    let url = format!("{scheme}://{user}:{SECRET}@{server}/no_such_database_for_the_backend_suite");
    let err = connect_err(&url).await;
    assert_no_secret(&err);
}

/// A role or a database that does not exist on a live server is a configuration
/// error: no retry can help, so `is_transient` says so, and the server's words are kept.
#[tokio::test]
async fn a_login_the_server_refuses_is_a_configuration_error() {
    let Configured {
        scheme,
        user_info,
        server,
        ..
    } = configured();
    let user = user_info
        .as_deref()
        .and_then(|info| info.split(':').next())
        .unwrap_or("postgres");
    let database = configured().path;
    for (url, says) in [
        (
            format!("{scheme}://no_such_role_for_the_suite:{SECRET}@{server}/{database}"),
            "no_such_role_for_the_suite",
        ),
        (
            format!("{scheme}://{user}:{SECRET}@{server}/no_such_database_for_the_suite"),
            "no_such_database_for_the_suite",
        ),
    ] {
        let err = connect_err(&url).await;
        assert!(
            matches!(err, StateStoreError::Configuration(_)),
            "{}: {err:?}",
            redact_url(&url)
        );
        assert!(!err.is_transient(), "{err:?}");
        assert!(err.to_string().contains(says), "{err}");
        assert_no_secret(&err);
    }
}

#[tokio::test]
async fn an_invalid_postgres_schema_name_is_a_configuration_error() {
    for schema in [
        "",
        "1starts_with_digit",
        "has space",
        "quote\"d",
        &"s".repeat(64),
    ] {
        let builder = StateStoreBuilder::new(test_database_url()).postgres_schema(schema);
        let err = answered(schema, builder.connect())
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(err, StateStoreError::Configuration(_)),
            "{schema:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_read_only_store_where_there_is_no_store_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let read_only = |target: String| StateStoreBuilder::new(target).read_only(true).connect();

    // A mistyped path: not created, and said so.
    let missing = dir.path().join("typo.db");
    let err = read_only(missing.display().to_string())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists());

    // A database without the store's tables (another application's, or a new one).
    let empty = dir.path().join("empty.db");
    std::fs::File::create(&empty).unwrap();
    let err = read_only(empty.display().to_string())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(
        err.to_string().contains("none of the store's tables"),
        "{err}"
    );

    // Once migrated, the same file opens read-only, also after a newer version of the
    // store applied a migration this one does not know (a rolling deploy).
    let writer = StateStoreBuilder::new(empty.display().to_string())
        .connect()
        .await
        .unwrap();
    {
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        writer
            .connection()
            .execute_unprepared(
                "INSERT INTO seaql_migrations (version, applied_at) \
                 VALUES ('m20991231_000001_from_the_future', 0)",
            )
            .await
            .unwrap();
    }
    writer.close().await.unwrap();
    read_only(empty.display().to_string()).await.unwrap();
}

#[tokio::test]
async fn a_retention_of_zero_checkpoints_is_a_configuration_error() {
    // It would delete every checkpoint as it is taken, and recovery would redo each step.
    let err = StateStoreBuilder::new(":memory:")
        .checkpoint_retention(Some(0))
        .connect()
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(err.to_string().contains("checkpoint_retention"), "{err}");
    StateStoreBuilder::new(":memory:")
        .checkpoint_retention(Some(1))
        .connect()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_pool_of_no_connection_is_a_configuration_error() {
    let err = StateStoreBuilder::new(":memory:")
        .min_connections(50)
        .max_connections(0)
        .connect()
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(err.to_string().contains("max_connections"), "{err}");
    // A lower maximum lowers the minimum with it, so the options say what the pool does.
    let store = StateStoreBuilder::new(":memory:")
        .min_connections(50)
        .max_connections(4)
        .connect()
        .await
        .unwrap();
    let options = store.options();
    assert_eq!((options.min_connections, options.max_connections), (4, 4));
}

#[tokio::test]
async fn a_store_from_the_builder_is_typed_by_its_database() {
    let store = StateStoreBuilder::new(":memory:")
        .checkpoint_retention(Some(3))
        .connect()
        .await
        .unwrap();
    let err = store.clone().into_postgres().map(|_| ()).unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    let sqlite: SqliteStateStore = store.into_sqlite().unwrap();
    assert_eq!(sqlite.options().checkpoint_retention, Some(3));

    let store = StateStoreBuilder::new(test_database_url())
        .postgres_schema(format!("typed_{}", uuid::Uuid::new_v4().simple()))
        .connect()
        .await
        .unwrap();
    assert!(store.clone().into_sqlite().is_err());
    let postgres: PostgresStateStore = store.into_postgres().unwrap();
    postgres.health_check().await.unwrap();
    let schema = postgres.options().postgres_schema.clone().unwrap();
    use llm_orchestrator_state::sea_orm::ConnectionTrait;
    postgres
        .connection()
        .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_postgres_schema_where_it_cannot_apply_is_a_configuration_error() {
    // On SQLite there is no schema to put the tables in.
    let err = StateStoreBuilder::new(":memory:")
        .postgres_schema("tenant_a")
        .connect()
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");

    // A connection the application opened keeps its own search_path: the store would
    // put its tables in `public` while the caller believed them in `tenant_a`.
    let app_db = llm_orchestrator_state::sea_orm::Database::connect(test_database_url())
        .await
        .unwrap();
    let mut options = llm_orchestrator_state::StoreOptions::default();
    options.postgres_schema = Some("tenant_a".into());
    let err = SeaOrmStateStore::from_connection(app_db, options)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StateStoreError::Configuration(_)), "{err:?}");
    assert!(err.to_string().contains("search_path"), "{err}");
}

/// What the store logs at WARN while `during` runs (on this thread).
async fn warnings_during<T>(during: impl Future<Output = T>) -> (T, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let value = during.await;
    drop(guard);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (value, text)
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_at_read_committed_is_taken_with_a_warning() {
    use llm_orchestrator_state::StoreOptions;
    use llm_orchestrator_state::sea_orm::Database;
    let mut options = StoreOptions::default();
    options.run_migrations = false;

    let read_committed = Database::connect(test_database_url()).await.unwrap();
    let (store, logged) = warnings_during(SeaOrmStateStore::from_connection(
        read_committed,
        options.clone(),
    ))
    .await;
    store.unwrap();
    assert!(
        logged.contains("read committed") && logged.contains("repeatable read"),
        "{logged}"
    );

    let separator = if test_database_url().contains('?') {
        '&'
    } else {
        '?'
    };
    let repeatable = format!(
        "{}{separator}options=-c%20default_transaction_isolation%3Drepeatable%5C%20read",
        test_database_url()
    );
    let repeatable_read = Database::connect(repeatable).await.unwrap();
    let (store, logged) =
        warnings_during(SeaOrmStateStore::from_connection(repeatable_read, options)).await;
    store.unwrap();
    assert_eq!(logged, "");
}

#[test]
fn builders_and_options_do_not_show_the_password() {
    let builder =
        StateStoreBuilder::new("postgres://app:hunter2@db.example:5432/prod?password=hunter2");
    let shown = format!("{builder:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("db.example"), "{shown}");
}

#[tokio::test]
#[should_panic(
    expected = "cannot open the Postgres test database at postgres://postgres:***@127.0.0.1:1/test"
)]
async fn an_unreachable_test_database_fails_the_suite_instead_of_skipping() {
    open_postgres_at("postgres://postgres:hunter2@127.0.0.1:1/test", |builder| {
        builder.acquire_timeout(Duration::from_secs(1))
    })
    .await;
}

/// A store on the configured server reached through a forwarder that is then stopped:
/// to the store, a Postgres that went down while it ran. Also the forwarder's port.
async fn store_whose_server_went_away() -> (SeaOrmStateStore<AnyBackend>, u16) {
    let server = configured();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let forwarding = forwarder(listener, server.server.clone());
    let url = server.through(port);
    let store = StateStoreBuilder::new(&url)
        .run_migrations(false)
        .min_connections(1)
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    store.health_check().await.unwrap();
    forwarding.abort();
    let _ = forwarding.await;
    (store, port)
}

/// A Postgres URL may name the server by an IPv6 address in brackets, as URLs write it
/// (`postgres://app@[::1]:5432/db`). sqlx alone looks the brackets up as a host name and
/// fails at once.
#[tokio::test]
async fn a_postgres_url_with_an_ipv6_address_connects() {
    use llm_orchestrator_state::sea_orm::ConnectionTrait;
    let server = configured();
    let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
        panic!("this machine has no IPv6 loopback to test on");
    };
    let port = listener.local_addr().unwrap().port();
    let forwarding = forwarder(listener, server.server.clone());
    let url = server.through(port).replace("127.0.0.1", "[::1]");
    let schema = format!("t_ipv6_{}", uuid::Uuid::new_v4().simple());
    let store = StateStoreBuilder::new(&url)
        .postgres_schema(schema.clone())
        .max_connections(2)
        .connect()
        .await;
    let store = store.unwrap_or_else(|err| panic!("{url}: {err}"));
    let state = WorkflowState::new("wf-ipv6", "IPv6", None, serde_json::json!({}));
    store.save_workflow_state(&state).await.unwrap();
    let loaded = store.load_workflow_state(&state.id).await;
    store
        .connection()
        .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
    forwarding.abort();
    assert_eq!(loaded.unwrap(), state);
}

/// Runs `operation` until it says the server at `port` refuses connections: the pooled
/// connection may fail first (it was cut), then the pool connects anew and is refused
/// until its timeout. Fails the test when three tries never say so.
async fn says_it_refuses_connections<T: std::fmt::Debug, F>(
    what: &str,
    port: u16,
    mut operation: impl FnMut() -> F,
) where
    F: Future<Output = Result<T, StateStoreError>>,
{
    let mut errors = Vec::new();
    for _ in 0..3 {
        let err = answered(what, operation()).await.unwrap_err();
        assert!(
            matches!(err, StateStoreError::Connection(_)),
            "{what}: {err:?}"
        );
        let shown = err.to_string();
        errors.push(shown.clone());
        if shown.contains(&format!("127.0.0.1:{port} refused the connection")) {
            return;
        }
    }
    panic!("{what} never said the server refuses connections: {errors:#?}");
}

#[tokio::test]
async fn a_health_check_after_the_server_went_away_says_it_refuses_connections() {
    let (store, port) = store_whose_server_went_away().await;
    says_it_refuses_connections("health_check", port, || store.health_check()).await;
}

#[tokio::test]
async fn store_operations_after_the_server_went_away_say_it_refuses_connections() {
    // Not only "the pool timed out", which sends an operator looking for a slow server.
    let (store, port) = store_whose_server_went_away().await;
    let state = WorkflowState::new("wf-gone", "Gone", None, serde_json::json!({}));
    let everything = llm_orchestrator_state::admin::WorkflowQuery::default();
    says_it_refuses_connections("save_workflow_state", port, || {
        store.save_workflow_state(&state)
    })
    .await;
    says_it_refuses_connections("load_workflow_state", port, || {
        store.load_workflow_state(&state.id)
    })
    .await;
    says_it_refuses_connections("record_step", port, || {
        let mut state = state.clone();
        let store = &store;
        async move {
            store
                .record_step(&mut state, StepState::new("retrieve"))
                .await
        }
    })
    .await;
    says_it_refuses_connections("list_active_workflows", port, || {
        store.list_active_workflows()
    })
    .await;
    says_it_refuses_connections("get_latest_checkpoint", port, || {
        store.get_latest_checkpoint(&state.id)
    })
    .await;
    says_it_refuses_connections("begin", port, || async { store.begin().await.map(drop) }).await;
    says_it_refuses_connections("workflow_page", port, || store.workflow_page(&everything)).await;
    says_it_refuses_connections("status_counts", port, || store.status_counts()).await;
    says_it_refuses_connections("workflow_version", port, || {
        store.workflow_version(&state.id)
    })
    .await;
    says_it_refuses_connections("claim_workflows", port, || {
        store.claim_workflows("replica-1", Duration::from_secs(30), 10)
    })
    .await;
    says_it_refuses_connections("list_checkpoint_infos", port, || {
        store.list_checkpoint_infos(&state.id, 10, 0)
    })
    .await;
    let policy = llm_orchestrator_state::RetentionPolicy {
        keep_last: Some(5),
        ..Default::default()
    };
    says_it_refuses_connections("prune", port, || store.prune(&policy, true)).await;
}

#[tokio::test]
async fn a_pool_whose_connections_are_all_in_use_says_so_not_that_the_server_is_down() {
    let store = StateStoreBuilder::new(test_database_url())
        .run_migrations(false)
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let holding = store.begin().await.unwrap();
    let id = uuid::Uuid::now_v7();
    for err in [
        answered("load", store.load_workflow_state(&id))
            .await
            .unwrap_err(),
        answered("health_check", store.health_check())
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, StateStoreError::Connection(_)), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains("pool timed out: all 1 connections"),
            "{shown}"
        );
        assert!(shown.contains("stayed in use"), "{shown}");
    }
    holding.rollback().await.unwrap();
    store.health_check().await.unwrap();
}

#[tokio::test]
async fn a_postgres_error_never_shows_the_data_of_a_row() {
    use llm_orchestrator_state::sea_orm::ConnectionTrait;
    let store = backend_suite::open(backend_suite::Backend::Postgres).await;
    // A constraint an operator added: Postgres details its violation with the whole row.
    store
        .connection()
        .execute_unprepared(
            "ALTER TABLE workflow_states ADD CONSTRAINT no_private \
             CHECK (context::text NOT LIKE '%PRIVATE%')",
        )
        .await
        .unwrap();
    let state = WorkflowState::new(
        "wf-private",
        "Private",
        None,
        serde_json::json!({"prompt": "PRIVATE PROMPT TEXT"}),
    );
    let err = store.save_workflow_state(&state).await.unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, StateStoreError::Database(_)), "{err:?}");
    assert!(
        shown.contains("no_private") && shown.contains("23514"),
        "{shown}"
    );
    assert!(!shown.contains("PROMPT TEXT"), "{shown}");
}

#[tokio::test]
async fn a_sqlite_store_blocked_by_its_own_open_transaction_says_so() {
    let store = StateStoreBuilder::new(":memory:")
        .acquire_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let state = WorkflowState::new("wf-held", "Held", None, serde_json::json!({}));
    let tx = store.begin().await.unwrap();
    tx.save_workflow_state(&state).await.unwrap();
    // The store's one connection is the transaction's until it ends.
    let err = answered(
        "a call beside an open transaction",
        store.load_workflow_state(&state.id),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StateStoreError::Connection(_)), "{err:?}");
    assert!(err.to_string().contains("StoreTransaction"), "{err}");
    tx.commit().await.unwrap();
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

#[tokio::test]
async fn a_sqlite_file_another_writer_holds_is_a_conflict_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("shared.db").display().to_string();
    let holder = StateStoreBuilder::new(target.clone())
        .connect()
        .await
        .unwrap();
    let waiter = StateStoreBuilder::new(target).connect().await.unwrap();
    let state = WorkflowState::new("wf-shared", "Shared", None, serde_json::json!({}));
    waiter.save_workflow_state(&state).await.unwrap();

    // Another process (here another store on the same file) holds the write lock past
    // SQLite's busy timeout (5 s).
    let tx = holder.begin().await.unwrap();
    let mut changed = state.clone();
    changed.mark_failed("must not be written");
    let err = answered(
        "a save while another writer holds the file",
        waiter.save_workflow_state(&changed),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StateStoreError::Conflict(_)), "{err:?}");
    assert!(
        err.is_transient() && err.to_string().contains("locked"),
        "{err}"
    );
    tx.rollback().await.unwrap();

    assert_eq!(waiter.load_workflow_state(&state.id).await.unwrap(), state);
    waiter.save_workflow_state(&changed).await.unwrap();
}

#[tokio::test]
async fn a_url_scheme_in_capitals_is_still_postgres() {
    let url = test_database_url();
    let shouted = url.replacen("postgres://", "Postgres://", 1);
    assert_ne!(shouted, url, "TEST_DATABASE_URL is a postgres:// URL");
    let store = answered(
        "a Postgres:// URL",
        StateStoreBuilder::new(shouted)
            .postgres_schema(format!("t_{}", uuid::Uuid::new_v4().simple()))
            .run_migrations(false)
            .create_postgres_schema(false)
            .connect(),
    )
    .await;
    // It reached the server: the schema it names is missing there, not a bad scheme.
    let err = store.map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("does not exist in"), "{err}");
}

/// SQLite refusing a write because the database cannot be written (here the connection
/// was switched to `query_only`, which SQLite answers as it does a read-only file, folder
/// or mount: "attempt to write a readonly database") is `ReadOnly`, not a bare
/// `Database` error, and nothing is written.
async fn a_sqlite_database_that_refuses_writes_is_read_only(backend: Backend) {
    let store = backend_suite::open(backend).await;
    let state = backend_suite::workflow("wf-refused");
    store.save_workflow_state(&state).await.unwrap();
    store
        .connection()
        .execute_unprepared("PRAGMA query_only = ON")
        .await
        .unwrap();
    let mut changed = state.clone();
    changed.mark_failed("must not be written");
    let err = store.save_workflow_state(&changed).await.unwrap_err();
    assert!(matches!(err, StateStoreError::ReadOnly(_)), "{err:?}");
    assert!(!err.is_transient(), "{err:?}");
    let mut stepped = state.clone();
    let err = store
        .record_step(&mut stepped, StepState::new("s1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StateStoreError::ReadOnly(_)), "{err:?}");
    assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
}

backend_suite::backend_tests_for!(
    mod sqlite_memory = SqliteMemory: a_sqlite_database_that_refuses_writes_is_read_only
);
backend_suite::backend_tests_for!(
    mod sqlite_file = SqliteFile: a_sqlite_database_that_refuses_writes_is_read_only
);

/// A SQLite URL that names no file would have SQLite keep the data in a temporary
/// database (an empty file name) or in memory, gone when the store closes, while every
/// call succeeds: it is `Configuration`, saying to write `:memory:` for that. The
/// documented in-memory targets still open, and a file whose name starts with `file:`
/// is reached by starting its path with `./`.
#[tokio::test]
async fn a_sqlite_url_that_names_no_file_is_a_configuration_error() {
    for target in [
        "sqlite://",
        "sqlite:",
        " sqlite:// ",
        "sqlite://?mode=rwc",
        "sqlite:?mode=rwc",
        "sqlite://?mode=memory",
        "sqlite://x.db?mode=memory",
        "sqlite://:memory:?cache=shared",
        "sqlite://file::memory:",
        "sqlite://file:",
        "file::memory:",
        "file:",
        "file:?mode=memory",
    ] {
        let err = connect_err(target).await;
        assert!(
            matches!(err, StateStoreError::Configuration(_)),
            "{target:?}: {err:?}"
        );
        assert!(err.to_string().contains(":memory:"), "{target:?}: {err}");
        let err = answered(target, SqliteStateStore::new(target))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StateStoreError::Configuration(_)),
            "{target:?}: {err:?}"
        );
        assert_eq!(llm_orchestrator_state::sqlite_file(target), Err(err));
    }
    for target in [":memory:", "sqlite::memory:", "sqlite://:memory:"] {
        let store = answered(target, SqliteStateStore::new(target))
            .await
            .unwrap_or_else(|err| panic!("{target}: {err}"));
        let state = backend_suite::workflow("wf-memory");
        store.save_workflow_state(&state).await.unwrap();
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);
    }
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("file:named.db");
    let store = answered(
        "a file named file:...",
        SqliteStateStore::new(&named.display().to_string()),
    )
    .await
    .unwrap();
    store
        .save_workflow_state(&backend_suite::workflow("wf-named"))
        .await
        .unwrap();
    store.close().await.unwrap();
    assert!(named.is_file());
}
