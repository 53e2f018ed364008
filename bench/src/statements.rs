//! Counts the SQL statements (each one a round trip to Postgres, or a trip to SQLite's
//! worker thread) that one store call sends, from sqlx's own `sqlx::query` events.
//!
//! Counting is switched on only around one untimed call per operation: while it is off,
//! the filter says no and sqlx does not even format its event, so timed calls pay nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

static COUNTING: AtomicBool = AtomicBool::new(false);
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The layer that records statement summaries while counting is on. Install it with
/// [`layer`], which puts the on/off filter in front of it.
struct Recorder;

struct SummaryField(Option<String>);

impl Visit for SummaryField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "summary" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut summary = SummaryField(None);
        event.record(&mut summary);
        if let Ok(mut seen) = SEEN.lock() {
            seen.push(summary.0.unwrap_or_else(|| "?".into()));
        }
    }
}

/// The statement-recording layer with its per-layer filter (asked on every event, so it
/// can be switched on and off at run time).
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let filter = tracing_subscriber::filter::dynamic_filter_fn(|meta, _cx| {
        meta.target() == "sqlx::query" && COUNTING.load(Ordering::Relaxed)
    })
    .with_callsite_filter(|meta| {
        if meta.target() == "sqlx::query" {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    });
    Recorder.with_filter(filter)
}

/// Runs `call` with statement recording on and returns its result and the statements it
/// sent, in order. Only meaningful when nothing else talks to the store meanwhile.
pub async fn record<F, T>(call: F) -> (T, Vec<String>)
where
    F: std::future::Future<Output = T>,
{
    // sqlx logs a statement when it is finished with it, which for SQLite happens on its
    // worker thread and can come after the caller already has the rows: wait for those.
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(30);
    tokio::time::sleep(SETTLE).await;
    if let Ok(mut seen) = SEEN.lock() {
        seen.clear();
    }
    COUNTING.store(true, Ordering::SeqCst);
    let out = call.await;
    tokio::time::sleep(SETTLE).await;
    COUNTING.store(false, Ordering::SeqCst);
    let seen = SEEN
        .lock()
        .map(|mut seen| std::mem::take(&mut *seen))
        .unwrap_or_default();
    (out, seen)
}
