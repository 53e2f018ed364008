//! What the user wrote to name a database (a Postgres URL or key-value string, a SQLite
//! URL or path, `:memory:`), parsed into connect options or refused with an error that
//! says why and never shows a password.

use crate::error::ConfigProblem;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::SqliteConnectOptions;

use crate::error::{Result, StateStoreError, redact, redact_url};

/// Where a store's data lives, parsed from what the user wrote.
pub(super) enum Target {
    Postgres(Box<PgConnectOptions>),
    Sqlite(Box<SqliteConnectOptions>),
}

pub(super) fn parse_target(target: &str) -> Result<Target> {
    let parsed = classify(target)?;
    if let Target::Sqlite(options) = &parsed
        && !is_memory_target(target)
    {
        check_parent_folder(options.get_filename())?;
    }
    Ok(parsed)
}

/// The SQLite file a store opened at `target` would use: `None` for a Postgres URL or an
/// in-memory database, `Configuration` (password hidden) for a target the store refuses.
/// For tools that look at the file before connecting (does it exist yet?), so that they
/// read a target exactly as the store does.
///
/// ```
/// use std::path::PathBuf;
/// use llm_orchestrator_state::sqlite_file;
/// assert_eq!(sqlite_file("sqlite://data/w.db?mode=rwc")?, Some(PathBuf::from("data/w.db")));
/// assert_eq!(sqlite_file("postgres://app@db/prod")?, None);
/// assert!(sqlite_file("postgres:/app:secret@db/prod").is_err()); // not a file name
/// # Ok::<(), llm_orchestrator_state::StateStoreError>(())
/// ```
pub fn sqlite_file(target: &str) -> Result<Option<PathBuf>> {
    Ok(match classify(target)? {
        Target::Sqlite(_) if is_memory_target(target) => None,
        Target::Sqlite(options) => Some(options.get_filename().to_path_buf()),
        Target::Postgres(_) => None,
    })
}

/// What `target` names, without looking at the file system.
fn classify(target: &str) -> Result<Target> {
    let config_err =
        |why: String| StateStoreError::configuration(ConfigProblem::InvalidTarget, redact(&why));
    let trimmed = target.trim();
    let shown = crate::error::echo(&redact_url(trimmed)).into_owned();
    if trimmed.is_empty() {
        return Err(config_err("empty database URL or path".into()));
    }
    if let Some(rest) = strip_prefix_ignoring_case(trimmed, "postgres://")
        .or_else(|| strip_prefix_ignoring_case(trimmed, "postgresql://"))
    {
        // URL schemes are case-insensitive (`Postgres://`); sqlx wants it in lower case.
        let url = format!("postgres://{rest}");
        let parsed = url::Url::parse(&url)
            .map_err(|err| config_err(format!("malformed Postgres URL {shown}: {err}")))?;
        let mut options = PgConnectOptions::from_str(&url)
            .map_err(|err| config_err(format!("malformed Postgres URL {shown}: {err}")))?;
        // sqlx keeps the brackets of an IPv6 address (`[::1]`) and then fails to resolve
        // it as a host name.
        if let Some(url::Host::Ipv6(address)) = parsed.host()
            && options.get_host().starts_with('[')
        {
            options = options.host(&address.to_string());
        }
        return Ok(Target::Postgres(Box::new(options)));
    }
    // Anything else would be taken for a SQLite file: a Postgres URL missing its `//`
    // would then be created as a file named after it, and shown, password and all, in
    // every error about that file.
    if ["postgres:", "postgresql:", "postgres/", "postgresql/"]
        .iter()
        .any(|prefix| strip_prefix_ignoring_case(trimmed, prefix).is_some())
    {
        return Err(config_err(format!(
            "malformed Postgres URL {}: it must start with postgres:// (a SQLite file of \
             that name: start the path with ./)",
            hide_userinfo(trimmed)
        )));
    }
    if let Some(hidden) = looks_like_userinfo(trimmed) {
        return Err(config_err(format!(
            "{hidden} looks like user:password@host without a scheme: use postgres://... (a \
             SQLite file of that name: start the path with ./)"
        )));
    }
    if is_memory_target(trimmed) {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|err| config_err(err.to_string()))?;
        return Ok(Target::Sqlite(Box::new(options)));
    }
    if trimmed.starts_with("sqlite:") {
        let mut options = SqliteConnectOptions::from_str(trimmed)
            .map_err(|err| config_err(format!("malformed SQLite URL {shown}: {err}")))?;
        names_a_file(&options, trimmed)?;
        if !trimmed.contains("mode=") {
            options = options.create_if_missing(true);
        }
        return Ok(Target::Sqlite(Box::new(options)));
    }
    if looks_like_key_value(trimmed) {
        return Err(config_err(format!(
            "{shown} is a key=value connection string, which the store does not read: use a \
             postgres:// URL (a SQLite file with `=` in its name: start the path with ./)"
        )));
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(config_err(format!(
            "unsupported database URL scheme {:?}: use postgres://, sqlite:// or a file path",
            crate::error::echo(scheme)
        )));
    }
    let options = SqliteConnectOptions::new()
        .filename(trimmed)
        .create_if_missing(true);
    names_a_file(&options, trimmed)?;
    Ok(Target::Sqlite(Box::new(options)))
}

/// `Configuration` for a SQLite target other than `:memory:` that names no file of its
/// own: SQLite would put the data in a temporary database (an empty file name:
/// `sqlite://`, `sqlite:`, `sqlite://?mode=rwc`) or in memory (`mode=memory`,
/// `file::memory:`), where it is gone when the store closes, and every call would
/// succeed meanwhile. The store opens files with SQLite's URI file names on, so a name
/// beginning with `file:` is a URI that may name either, or a file other than the one
/// written: it is refused too, with the way to write a file of that name.
fn names_a_file(options: &SqliteConnectOptions, target: &str) -> Result<()> {
    let shown = redact_url(target);
    let file = options.get_filename().as_os_str().as_encoded_bytes();
    let memory = ":memory: (an in-memory database, gone when the store closes)";
    // A plain path's `?` is part of the file's name; a URL's starts its query.
    let query = target
        .strip_prefix("sqlite:")
        .and_then(|url| url.split_once('?'));
    let asks_for_memory = query.is_some_and(|(_, query)| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(key, value)| key == "mode" && value == "memory")
    });
    if asks_for_memory {
        return Err(StateStoreError::configuration(
            ConfigProblem::InvalidTarget,
            format!(
                "{shown} asks for an in-memory database with mode=memory: write {memory}, or \
             a file path for data that outlives the store"
            ),
        ));
    }
    if file.is_empty() {
        return Err(StateStoreError::configuration(
            ConfigProblem::InvalidTarget,
            format!(
                "{shown} names no database file: SQLite would write to a temporary database \
             that is deleted when the store closes; give a file path \
             (sqlite://data/workflows.db, ./workflows.db) or {memory}"
            ),
        ));
    }
    if file.starts_with(b"file:") {
        return Err(StateStoreError::configuration(
            ConfigProblem::InvalidTarget,
            format!(
                "{shown} is a SQLite URI file name (file:...), which the store does not take: \
             it may mean a temporary or in-memory database; write a file path (for a file \
             whose name begins with file:, start it with ./) or {memory}"
            ),
        ));
    }
    Ok(())
}

/// `text` without `prefix`, compared in any case.
fn strip_prefix_ignoring_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `target` (a Postgres URL missing its `//`) with the password of its `user:password@`
/// replaced by `***`: `postgres:/app:secret@db/x` -> `postgres:/app:***@db/x`.
fn hide_userinfo(target: &str) -> String {
    let Some(at) = target.rfind('@') else {
        return target.to_owned();
    };
    // The user starts after the last `/` before the `@`, or after the scheme's `:`.
    let start = target[..at]
        .rfind('/')
        .or_else(|| target.find(':'))
        .map_or(0, |i| i + 1);
    match target[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &target[..start + colon], &target[at..]),
        None => target.to_owned(),
    }
}

/// `user:password@host...` with no scheme (`app:secret@db/prod`), shown with the
/// password hidden; `None` for anything else, such as a path (`./a:b@c`, `/srv/x@y`,
/// `C:\\x@y`).
fn looks_like_userinfo(target: &str) -> Option<String> {
    let at = target.rfind('@')?;
    let (user, password) = target[..at].split_once(':')?;
    let plain = !user.is_empty() && !user.contains(['/', '\\', '.']);
    let pathlike = password.starts_with(['/', '\\']);
    (plain && !pathlike).then(|| format!("{user}:***{}", &target[at..]))
}

/// A private in-memory SQLite database.
pub(super) fn is_memory_target(target: &str) -> bool {
    matches!(
        target.trim(),
        ":memory:" | "sqlite::memory:" | "sqlite://:memory:"
    )
}

/// `host=db user=app password=...` (libpq's other form), which would otherwise be taken
/// for the name of a SQLite file, password and all.
fn looks_like_key_value(target: &str) -> bool {
    const KEYS: [&str; 7] = [
        "host=",
        "hostaddr=",
        "port=",
        "dbname=",
        "user=",
        "password=",
        "sslmode=",
    ];
    // libpq allows spaces around `=`: `host = db password = secret`.
    let joined: Vec<&str> = target.split('=').map(str::trim).collect();
    joined.join("=").split_whitespace().any(|word| {
        let word = word.to_ascii_lowercase();
        KEYS.iter().any(|key| word.starts_with(key))
    })
}

/// Whether `target` names a Postgres database (else SQLite); why not, if it names none.
pub(crate) fn is_postgres_target(target: &str) -> Result<bool> {
    Ok(matches!(parse_target(target)?, Target::Postgres(_)))
}

fn check_parent_folder(file: &Path) -> Result<()> {
    match file.parent() {
        Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => {
            Err(StateStoreError::configuration(
                ConfigProblem::DatabaseMissing,
                format!(
                    "the folder {} of SQLite database {} does not exist",
                    folder.display(),
                    file.display()
                ),
            ))
        }
        _ => Ok(()),
    }
}
