//! Databases: URLs, passwords, missing files and tables, `--read-only`, Postgres schemas.

use super::*;

#[test]
fn read_only_refuses_writes_and_never_creates_a_database() {
    let db = Db::new();
    for args in [
        vec!["--read-only", "demo"],
        vec!["--read-only", "migrate"],
        vec!["--read-only", "prune", "--older-than", "1d"],
        vec!["--read-only", "pin", "x", "label"],
        vec!["--read-only", "unpin", "x"],
        vec!["--read-only", "fork", "x", "wf"],
        vec!["--read-only", "import", "-"],
    ] {
        let out = db.run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    }
    let out = db.run(&["--read-only", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!db.path.exists());
}

#[test]
fn reads_of_a_database_that_is_not_there_fail_and_create_nothing() {
    // A mistyped path: not an empty database that says "(no workflows)".
    let db = Db::new();
    let shown = db.path.display().to_string();
    for args in [
        vec!["list"],
        vec!["show", "wf-1"],
        vec!["checkpoints", "wf-1"],
        vec!["prune", "--older-than", "1d", "--dry-run"],
        vec!["export", "wf-1"],
        // The UI, too, before it takes the terminal.
        vec![],
    ] {
        let out = db.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "error: SQLite database {shown} does not exist (a typo? `wfadmin migrate` \
                 creates it)\n"
            ),
            "{args:?}"
        );
        assert!(!db.path.exists(), "{args:?} created it");
    }
    // No DATABASE_URL: ./workflows.db of the folder it runs in is not created either.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .arg("list")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("./workflows.db does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("workflows.db").exists());

    // A file without the tables (an empty one): said so, and left without them.
    std::fs::write(&db.path, b"").unwrap();
    let out = db.run(&["list"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        format!("error: no workflow tables in {shown}; run `wfadmin migrate` to create them\n")
    );
    assert!(!db.run(&["list"]).status.success(), "still none");
    // What creates them: demo, import, migrate.
    assert!(db.run(&["migrate"]).status.success());
    assert_eq!(
        stdout(&db.run(&["list"])),
        "STATUS  WORKFLOW_ID  NAME  USER  STARTED (UTC)  UPDATED (UTC)  STEPS  CKPTS  LEASE  ID\n\
         (no workflows)\n"
    );
}

#[test]
fn bad_urls_fail_clearly_without_showing_the_password() {
    for url in [
        "postgres://app:hunter2@localhost:notaport/db",
        "mysql://app:hunter2@localhost/db",
        "postgres://app:hunter2@127.0.0.1:1/db",
        "/no/such/folder/w.db",
        // A Postgres URL missing its `//`: not a SQLite file to report (or create, for
        // `demo`) under its own name, password and all.
        "postgres:/app:hunter2@db.internal/prod",
        "postgresql:app:hunter2@127.0.0.1",
        "app:hunter2@127.0.0.1/db",
    ] {
        let dir = tempfile::tempdir().unwrap();
        for command in ["list", "demo"] {
            let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
                .args(["--database-url", url, command])
                .env_remove("DATABASE_URL")
                .current_dir(dir.path())
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{url}: {err}");
            assert!(err.starts_with("error: "), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
            assert!(!err.contains("panicked"), "{url}: {err}");
        }
        let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(created.is_empty(), "{url}: created {created:?}");
    }
}

#[test]
fn a_password_in_the_query_is_hidden_and_the_message_still_reads() {
    // The store masks it (`?password=***`) and says why after ": "; wfadmin must not
    // redact that again, which took the ": " for part of the password.
    let server = backend_suite::configured();
    let user = server
        .user_info
        .as_ref()
        .map(|info| format!("{info}@"))
        .unwrap_or_default();
    let url = format!(
        "{}://{user}{}/wfadmin_no_such_database?password=hunter2",
        server.scheme, server.server
    );
    let shown = llm_orchestrator_state::redact_url(&url);
    assert!(shown.ends_with("?password=***"), "{shown}");
    for command in ["list", "migrate"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
            .args(["--database-url", &url, command])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with(&format!(
                "error: configuration error: cannot connect to {shown}: "
            )),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}

#[test]
fn database_url_comes_from_the_environment() {
    let db = Db::demo();
    let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .args(["list", "--json"])
        .env("DATABASE_URL", format!("sqlite://{}", db.path.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_opens_the_tables_an_application_keeps_in_its_own_schema() {
    use backend_suite::Backend;
    use llm_orchestrator_state::{StateStore, WorkflowState};

    // The application's store: StateStoreBuilder::postgres_schema.
    let store = backend_suite::open(Backend::Postgres).await;
    let (url, schema) = store.postgres_location().unwrap();
    let state = WorkflowState::new("in-its-schema", "Answer", None, serde_json::json!({}));
    store.save_workflow_state(&state).await.unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wfadmin"))
            .args(["--database-url", url])
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("WFADMIN_POSTGRES_SCHEMA")
            .output()
            .unwrap()
    };

    let out = run(&["--postgres-schema", schema, "--read-only", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["workflow_id"], "in-its-schema", "{rows}");
    let out = run(&["--postgres-schema", schema, "show", "in-its-schema"]);
    assert!(
        stdout(&out).contains(&state.id.to_string()),
        "{}",
        stderr(&out)
    );
    // The environment names it as well.
    let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .args(["--database-url", url, "--read-only", "list", "--json"])
        .env("WFADMIN_POSTGRES_SCHEMA", schema)
        .output()
        .unwrap();
    assert!(stdout(&out).contains("in-its-schema"), "{}", stderr(&out));

    // A schema that is not there (a typo): said so in wfadmin's words (not the builder's
    // "create_postgres_schema is off"), with how to create it, read-only or not, and
    // nothing created. `import` does not create it either.
    let missing = format!("{schema}_typo");
    let shown = llm_orchestrator_state::redact_url(url);
    let bundle = tempfile::NamedTempFile::new().unwrap();
    let bundle_path = bundle.path().to_str().unwrap();
    for (args, after) in [
        (vec!["list"], ""),
        (vec!["--read-only", "list"], " without --read-only"),
        (vec!["import", bundle_path], ""),
    ] {
        let mut all = vec!["--postgres-schema", &missing];
        all.extend(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "error: the Postgres schema \"{missing}\" does not exist in {shown}; check the \
                 name, or create it with `wfadmin --postgres-schema {missing} migrate`{after}\n"
            ),
            "{all:?}"
        );
    }
    let schema_exists = async |name: &str| {
        use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
        !store
            .connection()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT nspname FROM pg_namespace WHERE nspname = $1",
                [name.into()],
            ))
            .await
            .unwrap()
            .is_empty()
    };
    assert!(!schema_exists(&missing).await, "the schema was not created");
    // `migrate status` only reports: it says the schema is missing and creates none.
    let out = run(&["--postgres-schema", &missing, "migrate", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: the Postgres schema \"{missing}\" does not exist in {shown}; check the \
             name, or create it with `wfadmin --postgres-schema {missing} migrate`\n"
        )
    );
    assert!(
        !schema_exists(&missing).await,
        "migrate status created the schema"
    );
    // `migrate` creates it, and then it opens.
    let out = run(&["--postgres-schema", &missing, "migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[
        "--postgres-schema",
        &missing,
        "--read-only",
        "list",
        "--json",
    ]);
    assert_eq!(stdout(&out).trim(), "[]", "{}", stderr(&out));
    let dropped = {
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        store
            .connection()
            .execute_unprepared(&format!("DROP SCHEMA \"{missing}\" CASCADE"))
            .await
    };
    dropped.unwrap();

    // `demo` is there to make a database to try things on: like `migrate`, it creates the
    // schema it is given, then its tables and the sample workflows.
    let sample = format!("{schema}_demo");
    let out = run(&["--postgres-schema", &sample, "demo", "--count", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.starts_with("created 3 sample workflows with "),
        "{said}"
    );
    assert!(
        said.contains(&format!(" in {shown} schema {sample}\n")),
        "{said}"
    );
    let out = run(&["--postgres-schema", &sample, "list", "--json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{}", stderr(&out));
    let dropped = {
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        store
            .connection()
            .execute_unprepared(&format!("DROP SCHEMA \"{sample}\" CASCADE"))
            .await
    };
    dropped.unwrap();

    // A schema without the store's tables (another application's): reads, and the UI,
    // say so and create none there.
    let empty = format!("{schema}_empty");
    let sql = |sql: String| {
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        let connection = store.connection().clone();
        async move { connection.execute_unprepared(&sql).await.unwrap() }
    };
    sql(format!("CREATE SCHEMA \"{empty}\"")).await;
    for args in [vec!["list"], vec!["show", "in-its-schema"], vec![]] {
        let mut all = vec!["--postgres-schema", &empty];
        all.extend(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: no workflow tables in postgres://"),
            "{err}"
        );
        assert!(
            err.ends_with(&format!(
                " schema {empty}; run `wfadmin migrate` to create them\n"
            )),
            "{err}"
        );
    }
    let tables = {
        use llm_orchestrator_state::sea_orm::{ConnectionTrait, DbBackend, Statement};
        store
            .connection()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT tablename FROM pg_tables WHERE schemaname = $1",
                [empty.clone().into()],
            ))
            .await
            .unwrap()
    };
    assert!(tables.is_empty(), "no tables were created");
    sql(format!("DROP SCHEMA \"{empty}\" CASCADE")).await;

    // A SQLite database has no schemas; an empty variable names none.
    let db = Db::new();
    let out = Command::new(env!("CARGO_BIN_EXE_wfadmin"))
        .args(["--database-url"])
        .arg(&db.path)
        .args(["migrate"])
        .env("WFADMIN_POSTGRES_SCHEMA", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = Db::new();
    let out = wfadmin(&db.path, &["--postgres-schema", "app", "list"]);
    let invalid = run(&["--postgres-schema", "tenant-a", "list"]);
    assert!(
        stderr(&invalid).contains("invalid Postgres schema name \"tenant-a\""),
        "{}",
        stderr(&invalid)
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--postgres-schema (or WFADMIN_POSTGRES_SCHEMA) is for a Postgres"),
        "{}",
        stderr(&out)
    );
    assert!(!db.path.exists(), "nothing was created");
}

#[test]
fn read_only_on_an_empty_database_says_to_migrate() {
    let db = Db::new();
    std::fs::File::create(&db.path).unwrap();
    let out = db.run(&["--read-only", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let shown = db.path.display();
    assert_eq!(
        stderr(&out),
        format!(
            "error: no workflow tables in {shown}; run `wfadmin migrate` without --read-only \
             to create them\n"
        )
    );
}
