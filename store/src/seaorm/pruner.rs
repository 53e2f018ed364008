//! Pruning history in the background, on an interval.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::SeaOrmStateStore;
use crate::history::RetentionPolicy;
use crate::store::StateStore;

/// A tokio task that applies a [`RetentionPolicy`] every interval. It stops when
/// [`stop`](Self::stop)ped or dropped, between two prunes (a prune under way finishes or
/// rolls back as a whole).
///
/// ```
/// use std::time::Duration;
/// use llm_orchestrator_state::{RetentionPolicy, SqliteStateStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStateStore::new(":memory:").await?;
/// let policy = RetentionPolicy { keep_last: Some(20), ..Default::default() };
/// let pruner = store.spawn_pruner(policy, Duration::from_secs(3600));
/// // ... the orchestrator runs ...
/// pruner.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Pruner {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Pruner {
    /// Stops the task and waits for it to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl<B: 'static> SeaOrmStateStore<B> {
    /// Prunes with `policy` now and then every `every`, in a background task; failures are
    /// logged with `tracing` and retried at the next interval.
    pub fn spawn_pruner(&self, policy: RetentionPolicy, every: Duration) -> Pruner {
        let (stop, mut stopped) = watch::channel(false);
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    changed = stopped.changed() => {
                        if changed.is_err() || *stopped.borrow() {
                            return;
                        }
                    }
                }
                match store.prune(&policy, false).await {
                    Ok(report) => tracing::debug!(?report, "pruned history"),
                    Err(err) => tracing::warn!(error = %err, "pruning history failed"),
                }
            }
        });
        Pruner { stop, task }
    }
}
