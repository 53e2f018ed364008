//! LangGraph's checkpoint savers measured in the same run on the same data
//! (`bench/peer/langgraph_peer.py`), so the store is compared with its Python peer at the
//! same moment on the same machine, never against a number from another day.

use std::error::Error;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::report::Row;
use crate::stats::Samples;

/// Where the script lives, from the bench's own manifest folder.
fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peer/langgraph_peer.py")
}

/// What the peer phase needs to know.
pub struct Settings<'a> {
    /// The Python interpreter that has the savers installed (`bench/peer/setup.sh`).
    pub python: &'a str,
    /// `sqlite-memory`, `sqlite-file` or `postgres`.
    pub backend: &'a str,
    /// The serialized workflow snapshot the store's checkpoints held in this run.
    pub snapshot: &'a str,
    /// Measured and warm-up calls per operation.
    pub iterations: usize,
    /// Unmeasured calls before.
    pub warmup: usize,
    /// A folder for the SQLite file (sqlite-file).
    pub folder: Option<&'a Path>,
    /// The Postgres URL (postgres); the script makes its own schema and drops it.
    pub url: Option<&'a str>,
}

/// Runs the peer on `settings.backend` and returns one row per operation
/// (`peer: LangGraph put`, `... get_tuple (latest)`, `... get_tuple (by id)`), with the
/// durability settings the saver ran under in `settings`.
pub fn run(settings: &Settings<'_>) -> Result<Vec<Row>, Box<dyn Error>> {
    let snapshot_file = tempfile_with(settings.snapshot)?;
    let mut command = Command::new(settings.python);
    command
        .arg(script())
        .args(["--backend", settings.backend])
        .arg("--snapshot")
        .arg(snapshot_file.path())
        .args(["--iterations", &settings.iterations.to_string()])
        .args(["--warmup", &settings.warmup.to_string()]);
    if let Some(folder) = settings.folder {
        command.arg("--folder").arg(folder);
    }
    if let Some(url) = settings.url {
        command.args(["--url", url]);
    }
    let output = command.output().map_err(|err| {
        format!(
            "cannot run {} for the LangGraph peer ({err}); install it with bench/peer/setup.sh",
            settings.python
        )
    })?;
    if !output.status.success() {
        return Err(format!(
            "the LangGraph peer failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let parsed: Value = serde_json::from_str(line)?;
        if parsed["kind"] != "peer" {
            continue;
        }
        let mut samples = Samples::with_capacity(settings.iterations);
        for micros in parsed["micros"].as_array().into_iter().flatten() {
            let micros = micros.as_f64().unwrap_or(0.0);
            samples.push(std::time::Duration::from_secs_f64(micros / 1e6));
        }
        let op = parsed["op"].as_str().unwrap_or("peer: ?");
        let mut row = Row::new(settings.backend, op, samples.summary(None));
        if let Some(durability) = parsed["settings"].as_str() {
            row = row.with("settings", durability);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A temporary file holding `text`, removed when dropped.
fn tempfile_with(text: &str) -> std::io::Result<tempfile::NamedTempFile> {
    use std::io::Write as _;
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file)
}
