//! End to end: the real binary in a real terminal (tmux), driven by keys. Navigate to a
//! workflow, open its checkpoints and a snapshot, roll back to one, quit; then the database
//! must hold the checkpoint's state and the process must have exited cleanly. And: pin a
//! checkpoint, fork from it, prune with the preview; then the database must hold the pin,
//! the fork with its lineage, and not the pruned workflow.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use llm_orchestrator_state::{
    Checkpoint, SqliteStateStore, StateStore, StepState, StepStatus, WorkflowState, WorkflowStatus,
};
use serde_json::json;

/// tmux, found on `PATH` as a shell would find it.
const TMUX: &str = "tmux";
const WAIT: Duration = Duration::from_secs(20);

/// A tmux server of our own (unique socket), killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A server for the test named `test` (tests of one process run at once).
    fn new(test: &str) -> Self {
        let found = Command::new(TMUX).arg("-V").output();
        assert!(
            found.is_ok_and(|out| out.status.success()),
            "tmux is needed on PATH for this test (apt-get install tmux)"
        );
        Self {
            socket: format!("wfadmin-e2e-{}-{test}", std::process::id()),
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new(TMUX)
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    /// Polls the screen until `check` accepts it, for up to [`WAIT`].
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        self.wait_within(WAIT, what, check)
    }

    /// [`Tmux::wait_for`] for what takes a refresh and a connection timeout or two.
    fn wait_for_long(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        self.wait_within(WAIT * 3, what, check)
    }

    fn wait_within(&self, limit: Duration, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_text(&self, text: &str) -> String {
        self.wait_for(text, |screen| screen.contains(text))
    }

    /// The line of the selected row (the table's highlight symbol).
    fn selected_line(screen: &str) -> Option<&str> {
        screen.lines().find(|line| line.starts_with("│> "))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // tmux leaves its socket file behind; remove it with the server.
        let socket = self.cmd(&["display-message", "-p", "#{socket_path}"]);
        let _ = self.cmd(&["kill-server"]);
        let path = String::from_utf8_lossy(&socket.stdout).trim().to_owned();
        if !path.is_empty() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A running workflow (listed first) and the failed one the test rolls back, with three
/// checkpoints. Returns the failed workflow and its oldest checkpoint.
async fn seed(path: &Path) -> (WorkflowState, Checkpoint) {
    let store = SqliteStateStore::new(path.to_str().unwrap()).await.unwrap();
    let mut other = WorkflowState::new("triage-e2e-other", "Triage", None, json!({}));
    other.mark_running();
    store.save_workflow_state(&other).await.unwrap();

    let mut state = WorkflowState::new(
        "rag-e2e-target",
        "Answer a question",
        Some("e2e".into()),
        json!({"question": "why?"}),
    );
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    let mut checkpoints = Vec::new();
    for (step_id, key) in [
        ("retrieve", "sources"),
        ("prompt", "draft"),
        ("tool_call", "links"),
    ] {
        let mut step = StepState::new(step_id);
        step.mark_running();
        step.mark_completed(json!({ "from": step_id }));
        state.upsert_step(step);
        state.context[key] = json!(format!("{step_id} output"));
        let checkpoint = Checkpoint::of(&state, step_id).unwrap();
        store.create_checkpoint(&checkpoint).await.unwrap();
        checkpoints.push(checkpoint);
        // Distinct timestamps, so "newest first" is well defined.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut summarise = StepState::new("summarise");
    summarise.mark_running();
    summarise.mark_failed("model returned an empty answer");
    state.upsert_step(summarise);
    state.mark_failed("summarise failed");
    store.save_workflow_state(&state).await.unwrap();
    store.close().await.unwrap();
    (state, checkpoints.remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigate_rollback_and_quit_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e2e.db");
    let (failed, oldest) = seed(&path).await;

    let tmux = Tmux::new("rollback");
    // The shell reports the exit status on the screen once the UI has left the
    // alternate screen, which is itself a check that the terminal was restored.
    let command = format!(
        "env -u DATABASE_URL {} --database-url {}; echo \"wfadmin exited with $?\"; sleep 60",
        env!("CARGO_BIN_EXE_wfadmin"),
        path.display()
    );
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "150",
        "-y",
        "40",
        &command,
        ";",
        "set-option",
        "-t",
        "e2e",
        "remain-on-exit",
        "on",
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );

    // The workflows table: active first, so the running one is selected first.
    tmux.wait_for("the table with the running workflow selected", |s| {
        s.contains("rag-e2e-target")
            && Tmux::selected_line(s).is_some_and(|line| line.contains("triage-e2e-other"))
    });
    tmux.keys(&["j"]);
    tmux.wait_for("the target selected", |s| {
        Tmux::selected_line(s).is_some_and(|line| line.contains("rag-e2e-target"))
    });

    // Its checkpoints, newest first: the oldest (after retrieve) is third.
    tmux.keys(&["c"]);
    tmux.wait_for_text("Checkpoints of rag-e2e-target");
    tmux.wait_for_text("tool_call");
    tmux.keys(&["j", "j"]);
    tmux.wait_for("the oldest checkpoint selected", |s| {
        Tmux::selected_line(s).is_some_and(|line| line.contains("retrieve"))
    });

    // Its snapshot, fetched when opened; Esc goes back to the list as it was.
    tmux.keys(&["Enter"]);
    tmux.wait_for("the oldest snapshot", |s| {
        s.contains("Snapshot after retrieve at")
            && s.contains(&oldest.id.to_string())
            && s.contains(r#""status": "running""#)
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the list again, the oldest still selected", |s| {
        s.contains("Checkpoints of rag-e2e-target")
            && Tmux::selected_line(s).is_some_and(|line| line.contains("retrieve"))
    });

    // Rollback asks first and says what changes.
    tmux.keys(&["R"]);
    // Wait for the whole question: a capture can catch a frame half drawn.
    tmux.wait_for("the rollback question with what changes", |s| {
        s.contains("Roll back to this checkpoint?")
            && s.contains("status: failed -> running")
            && s.contains("step summarise (failed) disappears")
            && s.contains("step prompt (completed) disappears")
            && s.contains("y: roll back")
    });
    tmux.keys(&["y"]);
    tmux.wait_for_text("rolled back rag-e2e-target");

    // Back to the table, then quit.
    tmux.keys(&["q"]);
    tmux.wait_for_text("triage-e2e-other");
    tmux.keys(&["q"]);
    let exited = tmux.wait_for_text("wfadmin exited with");
    assert!(
        exited.contains("wfadmin exited with 0"),
        "the process did not exit cleanly:\n{exited}"
    );

    let store = SqliteStateStore::new(path.to_str().unwrap()).await.unwrap();
    let mut now = store.load_workflow_state(&failed.id).await.unwrap();
    let expected = oldest.state().unwrap();
    assert!(now.updated_at > expected.updated_at);
    now.updated_at = expected.updated_at;
    assert_eq!(now, expected);
    assert_eq!(now.status, WorkflowStatus::Running);
    assert_eq!(now.steps.len(), 1);
    assert_eq!(now.steps["retrieve"].status, StepStatus::Completed);
    // Checkpoints are kept, and the newest is now one of the state rolled back (what a
    // recovery resumes from).
    let checkpoints = store.list_checkpoints(&failed.id, 10, 0).await.unwrap();
    assert_eq!(checkpoints.len(), 4);
    assert_eq!(
        checkpoints[0].state().unwrap(),
        store.load_workflow_state(&failed.id).await.unwrap()
    );
}

/// Starts the UI on the SQLite file at `path` in a new tmux session `e2e`.
fn start_ui(tmux: &Tmux, path: &Path) {
    start_ui_with(tmux, &format!("--database-url {}", path.display()));
}

/// Starts the UI with these arguments (a shell word list) in a new tmux session `e2e`.
fn start_ui_with(tmux: &Tmux, args: &str) {
    let command = format!(
        "env -u DATABASE_URL {} {args}; echo \"wfadmin exited with $?\"; sleep 60",
        env!("CARGO_BIN_EXE_wfadmin"),
    );
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "150",
        "-y",
        "40",
        &command,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_fork_and_prune_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e2e.db");
    let (failed, oldest) = seed(&path).await;
    // A workflow finished two months ago: the default prune policy deletes it.
    let store = SqliteStateStore::new(path.to_str().unwrap()).await.unwrap();
    let mut old = WorkflowState::new("old-e2e-done", "Old", None, json!({}));
    old.mark_running();
    old.mark_completed();
    let long_ago = llm_orchestrator_state::now() - chrono::Duration::days(60);
    old.started_at = long_ago;
    old.updated_at = long_ago;
    old.completed_at = Some(long_ago);
    store.save_workflow_state(&old).await.unwrap();
    store.close().await.unwrap();

    let tmux = Tmux::new("history");
    start_ui(&tmux, &path);
    tmux.wait_for("the table with the running workflow selected", |s| {
        s.contains("rag-e2e-target")
            && Tmux::selected_line(s).is_some_and(|line| line.contains("triage-e2e-other"))
    });
    tmux.keys(&["j"]);
    tmux.wait_for("the target selected", |s| {
        Tmux::selected_line(s).is_some_and(|line| line.contains("rag-e2e-target"))
    });
    tmux.keys(&["c"]);
    tmux.wait_for_text("total: 3 checkpoints");
    tmux.keys(&["j", "j"]);
    tmux.wait_for("the oldest checkpoint selected", |s| {
        Tmux::selected_line(s).is_some_and(|line| line.contains("retrieve"))
    });

    // Pin it with a label.
    tmux.keys(&["p"]);
    tmux.wait_for_text("Pin checkpoint");
    tmux.keys(&["-l", "keep this"]);
    tmux.wait_for_text("label: keep this_");
    tmux.keys(&["Enter"]);
    tmux.wait_for_text(&format!("pinned checkpoint {}: keep this", oldest.id));
    tmux.wait_for("the pin in the table and the totals", |s| {
        Tmux::selected_line(s).is_some_and(|line| line.contains("keep this"))
            && s.contains("total: 3 checkpoints")
            && s.contains("1 pinned")
    });

    // Fork from it.
    tmux.keys(&["F"]);
    tmux.wait_for_text("Fork checkpoint");
    tmux.keys(&["-l", "retry-e2e"]);
    tmux.wait_for_text("new workflow_id: retry-e2e_");
    tmux.keys(&["Enter"]);
    tmux.wait_for_text("forked retry-e2e (");

    // Prune: a preview first, then the report.
    tmux.keys(&["P"]);
    tmux.wait_for("the prune preview", |s| {
        s.contains("Prune old history?")
            && s.contains("would delete: 1 workflow,")
            && s.contains("y: prune")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the prune report", |s| {
        s.contains("Pruned") && s.contains("deleted: 1 workflow,")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the report closed", |s| !s.contains("any key closes"));

    // The workflow's detail shows its fork.
    tmux.keys(&["q"]);
    tmux.wait_for("the table", |s| {
        Tmux::selected_line(s).is_some_and(|line| line.contains("rag-e2e-target"))
    });
    tmux.keys(&["Enter"]);
    // (with the end of its uuid: forks can share a workflow_id)
    let from = format!(") from checkpoint {}", oldest.id);
    tmux.wait_for("the fork in the lineage", |s| {
        s.contains("fork retry-e2e (uuid …") && s.contains(&from)
    });
    tmux.keys(&["q"]);
    tmux.keys(&["q"]);
    let exited = tmux.wait_for_text("wfadmin exited with");
    assert!(
        exited.contains("wfadmin exited with 0"),
        "the process did not exit cleanly:\n{exited}"
    );

    let store = SqliteStateStore::new(path.to_str().unwrap()).await.unwrap();
    let infos = store
        .list_checkpoint_infos(&failed.id, 10, 0)
        .await
        .unwrap();
    let pinned: Vec<_> = infos.iter().filter(|i| i.pinned.is_some()).collect();
    assert_eq!(pinned.len(), 1);
    assert_eq!(pinned[0].id, oldest.id);
    assert_eq!(pinned[0].pinned.as_deref(), Some("keep this"));
    let fork = store
        .load_workflow_state_by_workflow_id("retry-e2e")
        .await
        .unwrap();
    assert_eq!(fork.status, WorkflowStatus::Pending);
    let lineage = store.lineage(&fork.id).await.unwrap();
    let origin = lineage.forked_from.unwrap();
    assert_eq!(
        (origin.workflow_state_id, origin.checkpoint_id),
        (failed.id, oldest.id)
    );
    assert!(store.load_workflow_state(&old.id).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_bar_says_postgres_went_away_and_recovers_when_it_is_back() {
    use backend_suite::{Backend, configured, forwarder};

    // The store's tables in a schema of their own, reached through a forwarder that plays
    // the server going down and coming back.
    let store = backend_suite::open(Backend::Postgres).await;
    let (_, schema) = store.postgres_location().unwrap();
    let mut state = WorkflowState::new("pg-e2e-running", "Answer", None, json!({}));
    state.mark_running();
    store.save_workflow_state(&state).await.unwrap();
    let server = configured();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let forwarding = forwarder(listener, server.server.clone());

    let tmux = Tmux::new("postgres-down");
    start_ui_with(
        &tmux,
        &format!(
            "--read-only --database-url '{}' --postgres-schema {schema}",
            server.through(port)
        ),
    );
    tmux.wait_for_text("pg-e2e-running");
    assert!(tmux.screen().contains(&format!("schema {schema}")));

    // Down: the next refresh (every 5 s) waits for a connection (5 s) and says why.
    forwarding.abort();
    let _ = forwarding.await;
    let down = tmux.wait_for_long("the server's absence", |screen| {
        screen.contains("refused the connection")
    });
    assert!(
        down.contains("is PostgreSQL running there?"),
        "the status bar says what to check:\n{down}"
    );
    assert!(down.contains("pg-e2e-running"), "the rows stay:\n{down}");

    // Back on the same port: the next refresh succeeds and the error goes by itself.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let forwarding = forwarder(listener, server.server.clone());
    state.workflow_name = "Answer, renamed while it was down".to_owned();
    store.save_workflow_state(&state).await.unwrap();
    let back = tmux.wait_for_long("the error to clear", |screen| {
        !screen.contains("error:") && screen.contains("renamed while")
    });
    assert!(back.contains("pg-e2e-running"), "{back}");
    tmux.keys(&["q"]);
    tmux.wait_for_text("wfadmin exited with 0");
    forwarding.abort();
}
