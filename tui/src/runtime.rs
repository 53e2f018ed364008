//! The interactive loop: draws the model, turns terminal events, task answers and ticks
//! into messages, and runs the effects `update` queues in spawned tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use llm_orchestrator_state::{ErrorKind, StateStore};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::app::{App, Effect, LoadedDetail, Message, WorkflowHistory, update};
use crate::commands::{CHECKPOINT_LIMIT, diff_sides, diff_title, lineage_lines, plan_rollback};
use crate::db::{Clock, Store};
use crate::diff::diff;
use crate::error::{AdminError, Result, WriteError};
use crate::format;
use crate::ui;

/// How often the loop ticks (auto refresh counts ticks).
const TICK: Duration = Duration::from_millis(250);

/// How long the UI waits for a read before it gives up and says so. A network or server
/// that stalls (packets vanish; nothing is refused) would otherwise leave a screen
/// "loading..." until TCP gives up, minutes later, and then blame the pool size. Above
/// the store's 5 s connect and acquire timeouts, whose own diagnoses (a refused
/// connection, a login that never finishes) come first and say more.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the UI until the user quits. The terminal is restored on return, on error and
/// on panic (`ratatui::init` installs the panic hook).
pub async fn run(store: Store, clock: Clock, database: String, read_only: bool) -> Result<()> {
    let mut terminal = ratatui::try_init()?;
    let mut app = App::new(database, read_only);
    app.clock = clock;
    let result = event_loop(&mut terminal, store, app).await;
    ratatui::try_restore()?;
    result
}

async fn event_loop(terminal: &mut DefaultTerminal, store: Store, mut app: App) -> Result<()> {
    let (sender, mut receiver) = unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let input = spawn_input_thread(sender.clone(), stop.clone());
    let mut ticks = tokio::time::interval(TICK);
    update(
        &mut app,
        Message::Resize {
            rows: terminal.size()?.height,
            cols: terminal.size()?.width,
        },
    );
    let result = loop {
        for effect in app.effects.drain(..) {
            spawn_effect(store.clone(), app.clock, effect, sender.clone());
        }
        if let Some(fatal) = &app.fatal {
            break Err(AdminError::new(fatal));
        }
        if app.quit {
            break Ok(());
        }
        if let Err(err) = terminal.draw(|frame| ui::view(&app, frame)) {
            break Err(AdminError::from(err));
        }
        let message = tokio::select! {
            Some(message) = receiver.recv() => message,
            _ = ticks.tick() => Message::Tick,
        };
        update(&mut app, message);
    };
    stop.store(true, Ordering::Relaxed);
    // The input thread notices `stop` within one poll interval.
    let _ = tokio::task::spawn_blocking(move || input.join()).await;
    result
}

/// Runs an effect in a task; if the task panics (a bug), the UI is told to stop rather
/// than wait for an answer that will never come.
fn spawn_effect(store: Store, clock: Clock, effect: Effect, sender: UnboundedSender<Message>) {
    tokio::spawn(async move {
        let task = tokio::spawn(execute(store, clock, effect, sender.clone()));
        if let Err(err) = task.await
            && err.is_panic()
        {
            let _ = sender.send(Message::Fatal(
                "internal error: a database task panicked (details above)".into(),
            ));
        }
    });
}

/// Reads terminal events on a thread of its own (crossterm's reads block) and forwards
/// them as messages.
fn spawn_input_thread(
    sender: UnboundedSender<Message>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => break,
            }
            let message = match event::read() {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => Message::Key(key),
                Ok(Event::Resize(cols, rows)) => Message::Resize { rows, cols },
                Ok(_) => continue,
                Err(_) => break,
            };
            if sender.send(message).is_err() {
                break;
            }
        }
    })
}

/// A result for the UI: its error as the operator reads it, password removed (once: see
/// [`AdminError`]).
fn text<T, E: Into<AdminError>>(
    result: std::result::Result<T, E>,
) -> std::result::Result<T, String> {
    result.map_err(|err| err.into().to_string())
}

/// A write's result for the UI: its error as the operator reads it (see [`text`]), with
/// the store's kind, which says whether the write may have been applied all the same.
fn written<T, E: Into<AdminError>>(
    result: std::result::Result<T, E>,
) -> std::result::Result<T, WriteError> {
    result.map_err(|err| WriteError::from(err.into()))
}

/// What the UI says about a read the database did not answer within `limit`.
fn stalled(limit: Duration) -> String {
    format!(
        "the database did not answer within {} s (network or server stalled?)",
        limit.as_secs()
    )
}

/// Whether `err` is the store's "every connection of the pool stayed in use"
/// ([`ErrorKind::PoolExhausted`]). In the UI, whose reads take milliseconds, that means
/// the connections are held by reads the database never answered (abandoned at
/// [`READ_TIMEOUT`], each still waiting on its connection): the same stall, not a pool
/// too small for the operator to fix.
fn pool_held_by_stalled_reads(err: &AdminError) -> bool {
    err.kind() == Some(ErrorKind::PoolExhausted)
}

/// The answer of `read`, or an error saying the database stalled when it takes longer
/// than `limit` (the read is dropped) or when the pool is held by reads that did.
async fn read_within<T, E: Into<AdminError>>(
    limit: Duration,
    read: impl Future<Output = std::result::Result<T, E>>,
) -> std::result::Result<T, String> {
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            let err = err.into();
            if pool_held_by_stalled_reads(&err) {
                Err(stalled(limit))
            } else {
                text(Err(err))
            }
        }
        Err(_elapsed) => Err(stalled(limit)),
    }
}

/// What the checkpoints screen lists: the checkpoints without their snapshots, and the
/// totals. Two small queries however large the snapshots are.
async fn checkpoint_infos(
    store: &Store,
    id: uuid::Uuid,
) -> Result<(
    Vec<llm_orchestrator_state::CheckpointInfo>,
    llm_orchestrator_state::CheckpointUsage,
)> {
    let infos = store
        .list_checkpoint_infos(&id, CHECKPOINT_LIMIT, 0)
        .await?;
    Ok((infos, store.checkpoint_usage(&id).await?))
}

async fn history(store: &Store, clock: Clock, id: uuid::Uuid) -> Result<WorkflowHistory> {
    let usage = store.checkpoint_usage(&id).await?;
    let lineage = store.lineage(&id).await?;
    let summary = match store.workflow_summary(&id).await {
        Ok(row) => Some(row),
        Err(llm_orchestrator_state::StateStoreError::NotFound(_)) => None,
        Err(err) => return Err(err.into()),
    };
    Ok(WorkflowHistory {
        usage,
        lineage: lineage_lines(store, &lineage, false).await,
        summary,
        read_at: Some(clock.now()),
    })
}

/// A workflow for the detail screen, with its version, printed. One whose stored context
/// or steps cannot be read comes as damaged, from its list row, with why: the operator
/// sees it, and its checkpoints to roll it back to, instead of an error.
async fn load_detail(store: &Store, id: uuid::Uuid) -> Result<LoadedDetail> {
    match store.load_workflow_state_versioned(&id).await {
        Ok(loaded) => print_detail(loaded.value, Some(loaded.version)).await,
        Err(err) if err.is_unreadable_data() => {
            let row = store.workflow_summary(&id).await?;
            let version = store.workflow_version(&id).await?;
            Ok(LoadedDetail::damaged(&row, Some(version), err.to_string()))
        }
        Err(err) => Err(err.into()),
    }
}

/// Rolls back to a checkpoint, ending a live lease on its workflow if `override_lease`;
/// the rolled-back workflow printed (its version is not returned: the refresh after a
/// rollback reads it).
async fn roll_back(
    store: &Store,
    checkpoint: uuid::Uuid,
    override_lease: bool,
) -> Result<LoadedDetail> {
    let state = if override_lease {
        store
            .rollback_to_checkpoint_overriding_lease(&checkpoint)
            .await?
    } else {
        store.rollback_to_checkpoint(&checkpoint).await?
    };
    print_detail(state, None).await
}

/// Pretty-prints the detail's JSON (the context and every step's outputs) on a blocking
/// thread: a third of a second for a 5 MB context (debug build), which would otherwise
/// hold the UI thread (in `update`) or an async worker that other queries need. A panic
/// there is passed on, so that the task fails as a bug (see [`spawn_effect`]), not as an
/// error message.
async fn print_detail(
    state: llm_orchestrator_state::WorkflowState,
    version: Option<i64>,
) -> Result<LoadedDetail> {
    match tokio::task::spawn_blocking(move || LoadedDetail::print(state, version)).await {
        Ok(detail) => Ok(detail),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(AdminError::new(format!("printing the workflow: {err}"))),
    }
}

/// Runs one effect against the store and sends its answer, leases as of `clock` (the
/// database's); a read gives up after [`READ_TIMEOUT`].
pub async fn execute(store: Store, clock: Clock, effect: Effect, sender: UnboundedSender<Message>) {
    execute_within(store, clock, effect, sender, READ_TIMEOUT).await;
}

/// [`execute`], with reads giving up after `limit`. Writes (restore, pin, fork, prune)
/// are not cut short: one abandoned may still commit, and their errors already say so.
async fn execute_within(
    store: Store,
    clock: Clock,
    effect: Effect,
    sender: UnboundedSender<Message>,
    limit: Duration,
) {
    let message = match effect {
        Effect::LoadWorkflows {
            request,
            query,
            append,
        } => Message::WorkflowsLoaded {
            request,
            append,
            result: read_within(limit, store.workflow_page(&query)).await,
            at: clock.now(),
        },
        Effect::LoadCounts => {
            Message::CountsLoaded(read_within(limit, store.status_counts()).await)
        }
        Effect::LoadDetail(id) => Message::DetailLoaded {
            workflow_state_id: id,
            result: read_within(limit, load_detail(&store, id)).await,
        },
        Effect::CheckDetailVersion(id) => Message::DetailVersion {
            workflow_state_id: id,
            result: read_within(limit, store.workflow_version(&id)).await,
        },
        Effect::LoadCheckpointInfos(id) => Message::CheckpointInfosLoaded {
            workflow_state_id: id,
            result: read_within(limit, checkpoint_infos(&store, id)).await,
        },
        Effect::LoadSnapshot(id) => Message::SnapshotLoaded {
            checkpoint: id,
            result: read_within(limit, async {
                let checkpoint = store.get_checkpoint(&id).await?;
                Ok::<_, llm_orchestrator_state::StateStoreError>(format::pretty_lines(
                    &checkpoint.snapshot,
                ))
            })
            .await,
        },
        Effect::LoadHistory(id) => Message::HistoryLoaded {
            workflow_state_id: id,
            result: read_within(limit, history(&store, clock, id)).await,
        },
        Effect::SetPin { checkpoint, label } => {
            let result = match &label {
                Some(label) => store.pin_checkpoint(&checkpoint, label).await,
                None => store.unpin_checkpoint(&checkpoint).await,
            };
            Message::PinSet {
                checkpoint,
                label,
                result: written(result),
            }
        }
        Effect::Fork {
            checkpoint,
            new_workflow_id,
        } => Message::Forked {
            checkpoint,
            result: written(
                store
                    .fork_from_checkpoint(&checkpoint, &new_workflow_id)
                    .await,
            ),
        },
        // The preview is a read; the prune itself a write.
        Effect::Prune {
            policy,
            dry_run: true,
        } => Message::Pruned {
            policy,
            dry_run: true,
            result: read_within(limit, store.prune(&policy, true))
                .await
                .map_err(WriteError::from),
        },
        Effect::Prune { policy, dry_run } => Message::Pruned {
            policy,
            dry_run,
            result: written(store.prune(&policy, dry_run).await),
        },
        Effect::Diff { from, to } => {
            let to_text = to.map_or_else(|| "current".to_owned(), |id| id.to_string());
            Message::DiffLoaded {
                from,
                to,
                result: read_within(limit, async {
                    let (old, new) = diff_sides(&store, &from.to_string(), &to_text).await?;
                    Ok::<_, AdminError>((diff_title(&old, &new), diff(&old.value, &new.value)))
                })
                .await,
            }
        }
        Effect::PlanRollback(id) => Message::RollbackPlanned {
            checkpoint: id,
            result: read_within(limit, async {
                Ok::<_, AdminError>(Box::new(plan_rollback(&store, clock, id).await?))
            })
            .await,
        },
        Effect::Rollback(id) => Message::RolledBack(written(roll_back(&store, id, false).await)),
        Effect::RollbackOverridingLease(id) => {
            Message::RolledBack(written(roll_back(&store, id, true).await))
        }
        Effect::Discard(old) => {
            // Nothing to answer; a panic while freeing would be a bug, reported as one.
            if let Err(err) = tokio::task::spawn_blocking(move || drop(old)).await
                && err.is_panic()
            {
                std::panic::resume_unwind(err.into_panic());
            }
            return;
        }
    };
    // The loop may have ended; the answer is then not needed.
    let _ = sender.send(message);
}

#[cfg(test)]
mod tests {
    use llm_orchestrator_state::Checkpoint;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use uuid::Uuid;

    use super::*;
    use crate::app::Screen;
    use crate::fixtures::{failed_workflow, loaded_app};
    use crate::format;

    #[test]
    fn a_pool_held_by_stalled_reads_is_told_by_its_kind() {
        let store = |kind| {
            AdminError::from(llm_orchestrator_state::StateStoreError::new(
                kind,
                "pool timed out: all 4 connections to database \"x\" stayed in use for 5s",
            ))
        };
        assert!(pool_held_by_stalled_reads(&store(ErrorKind::PoolExhausted)));
        assert!(!pool_held_by_stalled_reads(&store(
            ErrorKind::ConnectionFailed
        )));
    }

    #[test]
    fn the_status_bar_shows_a_store_error_as_the_store_wrote_it() {
        // The store masked the password already; masking again took the ": " after it.
        let url = "postgres://app@db/prod?password=s3cret";
        let err = llm_orchestrator_state::StateStoreError::Connection(
            format!(
                "cannot connect to {}: refused",
                llm_orchestrator_state::redact_url(url)
            )
            .into(),
        );
        assert_eq!(
            text::<(), _>(Err(err)),
            Err(
                "connection error: cannot connect to postgres://app@db/prod?password=***: \
                 refused"
                    .to_owned()
            )
        );
    }

    async fn seeded() -> (Store, Vec<Checkpoint>) {
        let store = crate::db::open(&crate::db::Target::new("sqlite::memory:"))
            .await
            .unwrap();
        let (state, checkpoints) = failed_workflow();
        store.save_workflow_state(&state).await.unwrap();
        for checkpoint in &checkpoints {
            store.create_checkpoint(checkpoint).await.unwrap();
        }
        (store, checkpoints)
    }

    async fn answer(store: &Store, effect: Effect) -> Message {
        answer_if_any(store, effect).await.unwrap()
    }

    /// The answer to `effect`, or `None` for one that has none (a discard).
    async fn answer_if_any(store: &Store, effect: Effect) -> Option<Message> {
        let (sender, mut receiver) = unbounded_channel();
        execute(store.clone(), Clock::default(), effect, sender).await;
        receiver.recv().await
    }

    /// Runs what `update` queued, and what the answers queue, as the loop would; returns
    /// the effects run.
    async fn settle(store: &Store, app: &mut App) -> Vec<Effect> {
        let mut ran = Vec::new();
        while !app.effects.is_empty() {
            for effect in std::mem::take(&mut app.effects) {
                ran.push(effect.clone());
                if let Some(message) = answer_if_any(store, effect).await {
                    update(app, message);
                }
            }
        }
        ran
    }

    /// A TCP link to the test Postgres server that can stall like a network losing
    /// packets: while stalled it accepts connections and takes what is sent, but passes
    /// nothing on; once unstalled it passes on what it held (as TCP would retransmit it).
    struct StallingLink {
        port: u16,
        stalled: tokio::sync::watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    impl StallingLink {
        async fn to(server: String) -> Self {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let (stalled, gate) = tokio::sync::watch::channel(false);
            let pump = |mut from: tokio::net::tcp::OwnedReadHalf,
                        mut to: tokio::net::tcp::OwnedWriteHalf,
                        mut gate: tokio::sync::watch::Receiver<bool>| async move {
                let mut buffer = vec![0; 64 * 1024];
                while let Ok(n @ 1..) = from.read(&mut buffer).await {
                    if gate.wait_for(|stalled| !*stalled).await.is_err()
                        || to.write_all(&buffer[..n]).await.is_err()
                    {
                        break;
                    }
                }
            };
            let task = tokio::spawn(async move {
                let mut links = tokio::task::JoinSet::new();
                while let Ok((inbound, _)) = listener.accept().await {
                    let Ok(outbound) = tokio::net::TcpStream::connect(&server).await else {
                        continue;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    links.spawn(pump(in_read, out_write, gate.clone()));
                    links.spawn(pump(out_read, in_write, gate.clone()));
                }
            });
            Self {
                port,
                stalled,
                task,
            }
        }

        fn stall(&self, stalled: bool) {
            self.stalled.send_replace(stalled);
        }
    }

    impl Drop for StallingLink {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn answer_within(store: &Store, effect: Effect, limit: Duration) -> Message {
        let (sender, mut receiver) = unbounded_channel();
        execute_within(store.clone(), Clock::default(), effect, sender, limit).await;
        receiver.recv().await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_database_is_said_within_the_limit_and_a_refresh_works_once_it_answers() {
        use backend_suite::{Backend, configured};
        let tables = backend_suite::open(Backend::Postgres).await;
        let (_, schema) = tables.postgres_location().unwrap();
        let (state, _) = failed_workflow();
        tables.save_workflow_state(&state).await.unwrap();
        let link = StallingLink::to(configured().server).await;
        let url = configured().through(link.port);
        let target = crate::db::Target {
            postgres_schema: Some(schema),
            ..crate::db::Target::new(&url)
        };
        let store = crate::db::open(&target).await.unwrap();
        let counted = |message: Message| match message {
            Message::CountsLoaded(result) => result.map(|counts| counts.total()),
            other => panic!("not counts: {other:?}"),
        };
        assert_eq!(counted(answer(&store, Effect::LoadCounts).await), Ok(1));
        // As after a while of use: the pool holds its 4 connections.
        use llm_orchestrator_state::sea_orm::ConnectionTrait;
        let busy = (0..4).map(|_| {
            store
                .connection()
                .execute_unprepared("SELECT pg_sleep(0.5)")
        });
        for result in futures::future::join_all(busy).await {
            result.unwrap();
        }

        // Stalled: every read, however many the screens start at once, gives up and says
        // why, instead of loading until TCP gives up.
        link.stall(true);
        let limit = Duration::from_secs(2);
        let reads = (0..6).map(|_| answer_within(&store, Effect::LoadCounts, limit));
        let answers =
            tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(reads))
                .await
                .expect("every read gave up");
        for message in answers {
            assert_eq!(counted(message), Err(stalled(limit)));
        }
        // The reads given up on still hold the pool's connections (sqlx waits for each
        // to answer before reusing it), so the next read waits for one (5 s) and the
        // store says "all 4 connections stayed in use ...; allow more (max_connections)",
        // which an operator cannot act on. The UI says the database stalled.
        let answer_at_the_limit = answer(&store, Effect::LoadCounts);
        let message = tokio::time::timeout(Duration::from_secs(60), answer_at_the_limit)
            .await
            .expect("the read gave up");
        assert_eq!(counted(message), Err(stalled(READ_TIMEOUT)));

        // Answering again: the next refresh works.
        link.stall(false);
        assert_eq!(counted(answer(&store, Effect::LoadCounts).await), Ok(1));
    }

    fn key(app: &mut App, code: KeyCode) {
        update(app, Message::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    #[tokio::test]
    async fn the_ui_counts_leases_by_the_database_s_clock_and_says_when_ours_is_off() {
        // A replica claimed a workflow for 2 minutes by the database's clock, which runs
        // 5 minutes ahead of this machine's: by the database's clock it expired 3 minutes
        // ago, though this machine's own "now" would call it live.
        let (store, _) = seeded().await;
        let waiting = llm_orchestrator_state::WorkflowState::new(
            "claimed-1",
            "Claimed",
            None,
            serde_json::json!({}),
        );
        store.save_workflow_state(&waiting).await.unwrap();
        store
            .claim_workflows("replica-9", Duration::from_secs(120), 10)
            .await
            .unwrap();
        let mut app = App::new("sqlite::memory:", false);
        app.clock = Clock::with_offset(chrono::Duration::minutes(5));
        while !app.effects.is_empty() {
            for effect in std::mem::take(&mut app.effects) {
                let (sender, mut receiver) = unbounded_channel();
                execute(store.clone(), app.clock, effect, sender).await;
                if let Some(message) = receiver.recv().await {
                    update(&mut app, message);
                }
            }
        }
        let read_at = app.last_refresh.unwrap();
        let ahead = read_at - llm_orchestrator_state::now() - chrono::Duration::minutes(5);
        assert!(ahead.abs() < chrono::Duration::seconds(5), "{ahead}");
        // The screen, and its row of the claimed workflow.
        let drawn = |app: &App| {
            let mut terminal =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 12)).unwrap();
            terminal.draw(|frame| ui::view(app, frame)).unwrap();
            let text = terminal.backend().to_string();
            let row = text
                .lines()
                .find(|line| line.contains("claimed-1"))
                .unwrap()
                .to_owned();
            (text, row)
        };
        let (text, row) = drawn(&app);
        assert!(row.contains("replica-9 expired"), "{text}");
        assert!(
            text.contains(" this machine's clock is 5m00s behind the database's "),
            "{text}"
        );
        // By this machine's clock the lease looked live, and nothing was said.
        app.clock = Clock::default();
        app.last_refresh = Some(llm_orchestrator_state::now());
        let (text, row) = drawn(&app);
        assert!(!row.contains("expired"), "{text}");
        assert!(!text.contains("this machine's clock"), "{text}");
    }

    #[tokio::test]
    async fn the_list_is_infos_and_a_snapshot_comes_by_id() {
        let (store, checkpoints) = seeded().await;
        let workflow = checkpoints[0].workflow_state_id;
        let Message::CheckpointInfosLoaded { result, .. } =
            answer(&store, Effect::LoadCheckpointInfos(workflow)).await
        else {
            panic!("not the infos");
        };
        let (infos, usage) = result.unwrap();
        let ids: Vec<Uuid> = infos.iter().map(|info| info.id).collect();
        assert_eq!(ids, vec![checkpoints[0].id, checkpoints[1].id]);
        assert_eq!(usage.count, 2);

        let message = answer(&store, Effect::LoadSnapshot(checkpoints[1].id)).await;
        let Message::SnapshotLoaded { checkpoint, result } = message else {
            panic!("not a snapshot");
        };
        assert_eq!(checkpoint, checkpoints[1].id);
        assert_eq!(
            result.unwrap(),
            format::pretty_lines(&checkpoints[1].snapshot)
        );

        let missing = Uuid::from_u128(0xdead);
        let message = answer(&store, Effect::LoadSnapshot(missing)).await;
        assert_eq!(
            message,
            Message::SnapshotLoaded {
                checkpoint: missing,
                result: Err(format!("not found: checkpoint {missing}")),
            }
        );
    }

    #[tokio::test]
    async fn a_checkpoint_of_the_orchestrators_own_json_opens_and_is_not_rolled_back_to() {
        let (store, _) = seeded().await;
        let (state, _) = failed_workflow();
        let stored = store.load_workflow_state(&state.id).await.unwrap();
        let own = crate::fixtures::own_json_checkpoint(&state);
        store.create_checkpoint(&own).await.unwrap();

        // Listed, and opened: its JSON as written.
        let mut app = loaded_app();
        key(&mut app, KeyCode::Char('c'));
        settle(&store, &mut app).await;
        let listed = app.checkpoints.as_ref().unwrap().list.as_ref().unwrap();
        assert_eq!(listed[0].id, own.id);
        assert_eq!(listed[0].workflow_status, None);
        key(&mut app, KeyCode::Enter);
        settle(&store, &mut app).await;
        let view = app.snapshot.as_ref().unwrap();
        assert_eq!(
            view.lines.as_ref().unwrap(),
            &format::pretty_lines(&own.snapshot)
        );

        // R from its snapshot: the plan says why it cannot be rolled back to; y does nothing.
        key(&mut app, KeyCode::Char('R'));
        settle(&store, &mut app).await;
        let Some(crate::app::Popup::ConfirmRollback { plan, .. }) = &app.popup else {
            panic!("no plan: {:?}", app.error);
        };
        let why = plan.refused.clone().unwrap();
        assert!(why.contains("holds no state of workflow state"), "{why}");
        assert!(why.contains("not a workflow state"), "{why}");
        key(&mut app, KeyCode::Char('y'));
        assert_eq!(settle(&store, &mut app).await, []);

        // Asked directly, the store refuses a restore and a fork alike.
        let Message::RolledBack(Err(err)) = answer(&store, Effect::Rollback(own.id)).await else {
            panic!("rolled back");
        };
        assert!(err.contains("holds no state of workflow state"), "{err}");
        let fork = Effect::Fork {
            checkpoint: own.id,
            new_workflow_id: "from-own-json".into(),
        };
        let Message::Forked {
            result: Err(err), ..
        } = answer(&store, fork).await
        else {
            panic!("forked");
        };
        assert!(err.contains("holds no state of workflow state"), "{err}");
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), stored);
        assert_eq!(store.get_checkpoint(&own.id).await.unwrap(), own);
    }

    #[tokio::test]
    async fn opening_a_pruned_checkpoint_reports_it_and_lists_what_is_left() {
        let (store, checkpoints) = seeded().await;
        let mut app = loaded_app();
        update(&mut app, Message::Key(KeyEvent::from(KeyCode::Char('c'))));
        settle(&store, &mut app).await;
        assert_eq!(
            app.checkpoints
                .as_ref()
                .unwrap()
                .list
                .as_ref()
                .unwrap()
                .len(),
            2
        );

        // The newest opens and loads.
        key(&mut app, KeyCode::Enter);
        settle(&store, &mut app).await;
        let view = app.snapshot.as_ref().unwrap();
        assert_eq!(view.info.id, checkpoints[0].id);
        assert!(view.lines.as_ref().unwrap().len() > 10);
        key(&mut app, KeyCode::Esc);

        // The oldest is deleted while the list shows it; opening it says so.
        store
            .cleanup_old_checkpoints(&checkpoints[0].workflow_state_id, 1)
            .await
            .unwrap();
        key(&mut app, KeyCode::Char('j'));
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.screen(), Screen::Snapshot);
        settle(&store, &mut app).await;
        assert_eq!(app.screen(), Screen::Checkpoints);
        assert_eq!(
            app.error,
            Some(format!(
                "cannot open the snapshot: not found: checkpoint {}",
                checkpoints[1].id
            ))
        );
        let view = app.checkpoints.as_ref().unwrap();
        let ids: Vec<Uuid> = view.list.iter().flatten().map(|info| info.id).collect();
        assert_eq!(ids, vec![checkpoints[0].id]);
        assert_eq!(view.selected, 0);
    }

    #[tokio::test]
    async fn the_version_check_answers_the_stored_version_and_not_found_when_gone() {
        let (store, _) = seeded().await;
        let (mut state, _) = failed_workflow();
        let stored = store
            .load_workflow_state_versioned(&state.id)
            .await
            .unwrap();
        let check = || Effect::CheckDetailVersion(state.id);
        assert_eq!(
            answer(&store, check()).await,
            Message::DetailVersion {
                workflow_state_id: state.id,
                result: Ok(stored.version),
            }
        );
        state.context["answer"] = "Open Settings".into();
        store.save_workflow_state(&state).await.unwrap();
        assert_eq!(
            answer(&store, check()).await,
            Message::DetailVersion {
                workflow_state_id: state.id,
                result: Ok(stored.version + 1),
            }
        );

        // Deleted: the same error a full read shows today.
        store
            .delete_old_states(crate::fixtures::t0() + chrono::Duration::days(1))
            .await
            .unwrap();
        let Message::DetailLoaded {
            result: Err(full), ..
        } = answer(&store, Effect::LoadDetail(state.id)).await
        else {
            panic!("not an error");
        };
        assert_eq!(full, format!("not found: workflow state {}", state.id));
        assert_eq!(
            answer(&store, check()).await,
            Message::DetailVersion {
                workflow_state_id: state.id,
                result: Err(full),
            }
        );
    }

    #[tokio::test]
    async fn a_workflow_whose_row_is_unreadable_opens_as_damaged_and_a_restore_repairs_it() {
        let (store, checkpoints) = seeded().await;
        let (state, _) = failed_workflow();
        assert_eq!(backend_suite::corrupt::context(&store, state.id).await, 1);

        // Opened: its list row, marked damaged with why, instead of an error.
        let Message::DetailLoaded {
            result: Ok(loaded), ..
        } = answer(&store, Effect::LoadDetail(state.id)).await
        else {
            panic!("not a workflow");
        };
        let why = loaded.damaged.clone().unwrap_or_default();
        assert!(why.starts_with("serialization error"), "{why:?}");
        assert_eq!(
            (&loaded.state.workflow_id, loaded.state.status),
            (&state.workflow_id, state.status)
        );
        // Its checkpoints, the plan and the restore all work, and repair it.
        let Message::CheckpointInfosLoaded {
            result: Ok((infos, _)),
            ..
        } = answer(&store, Effect::LoadCheckpointInfos(state.id)).await
        else {
            panic!("no checkpoints");
        };
        assert_eq!(infos.len(), checkpoints.len());
        let target = checkpoints[0].id;
        let Message::RollbackPlanned {
            result: Ok(plan), ..
        } = answer(&store, Effect::PlanRollback(target)).await
        else {
            panic!("no plan");
        };
        assert!(plan.unreadable.is_some(), "{plan:?}");
        let Message::RolledBack(Ok(rolled_back)) = answer(&store, Effect::Rollback(target)).await
        else {
            panic!("not rolled back");
        };
        assert_eq!(rolled_back.damaged, None);
        assert_eq!(
            store.load_workflow_state(&state.id).await.unwrap(),
            rolled_back.state
        );
    }

    #[tokio::test]
    async fn two_forks_to_one_workflow_id_are_told_apart_in_the_lineage() {
        let (store, checkpoints) = seeded().await;
        let (state, _) = failed_workflow();
        let id = "customer-onboarding-pipeline-000123";
        let mut forks = Vec::new();
        for _ in 0..2 {
            let fork = store
                .fork_from_checkpoint(&checkpoints[0].id, id)
                .await
                .unwrap();
            forks.push(fork.id);
        }
        let message = answer(&store, Effect::LoadHistory(state.id)).await;
        let Message::HistoryLoaded {
            result: Ok(history),
            ..
        } = message
        else {
            panic!("not a history: {message:?}");
        };
        assert_eq!(history.lineage.len(), 2, "{:?}", history.lineage);
        assert_ne!(history.lineage[0], history.lineage[1]);
        for fork in forks {
            let end = &fork.simple().to_string()[24..];
            let line = format!(
                "fork {id} (uuid …{end}) from checkpoint {}",
                checkpoints[0].id
            );
            assert!(history.lineage.contains(&line), "{:?}", history.lineage);
        }
    }

    #[tokio::test]
    async fn a_full_read_arrives_printed_with_its_version() {
        let (store, _) = seeded().await;
        let (state, _) = failed_workflow();
        let stored = store
            .load_workflow_state_versioned(&state.id)
            .await
            .unwrap();
        let message = answer(&store, Effect::LoadDetail(state.id)).await;
        let Message::DetailLoaded {
            workflow_state_id,
            result: Ok(loaded),
        } = message
        else {
            panic!("not a workflow: {message:?}");
        };
        assert_eq!(workflow_state_id, state.id);
        assert_eq!(loaded.state, stored.value);
        assert_eq!(loaded.version, Some(stored.version));
        assert_eq!(loaded.context_lines, format::pretty_lines(&state.context));
        // Every step's outputs, in run order: selecting a step prints nothing.
        assert_eq!(
            loaded.outputs_lines,
            ["retrieve", "prompt", "tool_call"]
                .map(|step| { format::pretty_lines(&state.steps[step].outputs) })
        );
    }

    #[tokio::test]
    async fn an_automatic_refresh_reads_the_workflow_again_only_after_a_write() {
        let (store, _) = seeded().await;
        let (mut state, _) = failed_workflow();
        let mut app = loaded_app();
        key(&mut app, KeyCode::Enter);
        settle(&store, &mut app).await;
        let shown = app.detail.clone().unwrap();
        assert_eq!(shown.context_lines, format::pretty_lines(&state.context));

        // Nothing written: one version check, the same view.
        for _ in 0..crate::app::REFRESH_TICKS {
            update(&mut app, Message::Tick);
        }
        assert!(app.effects.contains(&Effect::CheckDetailVersion(state.id)));
        let ran = settle(&store, &mut app).await;
        assert!(
            !ran.iter()
                .any(|effect| matches!(effect, Effect::LoadDetail { .. })),
            "{ran:?}"
        );
        // The same view (the history is read again at every refresh: its read time moves).
        let timeless = |view: &crate::app::DetailView| {
            let mut view = view.clone();
            if let Some(history) = view.history.as_mut() {
                history.read_at = None;
            }
            view
        };
        assert_eq!(app.detail.as_ref().map(timeless), Some(timeless(&shown)));

        // A save: the next refresh brings the new context, printed.
        state.context = serde_json::json!({"answer": "Open Settings"});
        store.save_workflow_state(&state).await.unwrap();
        for _ in 0..crate::app::REFRESH_TICKS {
            update(&mut app, Message::Tick);
        }
        let ran = settle(&store, &mut app).await;
        let detail = app.detail.as_ref().unwrap();
        assert_eq!(detail.context_lines, format::pretty_lines(&state.context));
        assert_eq!(detail.version, shown.version.map(|v| v + 1));
        // What it showed before is freed by the runtime, not by `update`.
        assert!(ran.iter().any(|effect| matches!(
            effect,
            Effect::Discard(old) if old.context_lines == shown.context_lines
        )));
    }
}
