//! Keeping passwords and over-long input out of every message.

/// Longest piece of a caller's text (an id, a name, a key) that an error message or an
/// admin tool's output quotes, in characters: a 10 MB id must not come back whole inside
/// every error about it.
pub const ECHO_CHARS: usize = 200;

/// `text` as an error or an admin tool quotes it: whole when it has at most
/// [`ECHO_CHARS`] characters, else its first [`ECHO_CHARS`] (cut between characters) and
/// how long the whole was.
///
/// ```
/// use llm_orchestrator_state::{ECHO_CHARS, echo};
/// assert_eq!(echo("order-1042"), "order-1042");
/// let long = "é".repeat(1_000);
/// assert_eq!(echo(&long), format!("{}… (2000 bytes)", "é".repeat(ECHO_CHARS)));
/// ```
pub fn echo(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(ECHO_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()).into(),
    }
}

/// Removes passwords from a text that may contain a connection URL or a `password=` pair.
///
/// A URL's user information runs to the last `@` before the next whitespace, so a
/// password with an unencoded `/`, `?` or `#` is masked too (a later `@` in the same word
/// masks more than needed, never less). For a connection target on its own, where even a
/// space may be part of the password, use [`redact_url`].
///
/// ```
/// use llm_orchestrator_state::redact;
/// assert_eq!(
///     redact("failed: postgres://app:s3cret@db:5432/prod"),
///     "failed: postgres://app:***@db:5432/prod"
/// );
/// assert_eq!(redact("host=db password=s3cret user=app"), "host=db password=*** user=app");
/// assert_eq!(redact("postgres://app:s3/c?r#t@db/prod"), "postgres://app:***@db/prod");
/// ```
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let word_end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        out.push_str(&mask_user_info(&tail[..word_end]));
        rest = &tail[word_end..];
    }
    out.push_str(rest);
    redact_pairs(&out)
}

/// A connection target (URL, path or `key=value` string) as the user wrote it, safe to
/// show: the password is masked even when it holds characters a URL should have encoded,
/// spaces included.
///
/// ```
/// use llm_orchestrator_state::redact_url;
/// assert_eq!(redact_url("postgres://app:s3 cr/et@db/prod"), "postgres://app:***@db/prod");
/// assert_eq!(redact_url("postgres://app@db/prod"), "postgres://app@db/prod");
/// assert_eq!(redact_url("host=db password=s3cret"), "host=db password=***");
/// ```
pub fn redact_url(target: &str) -> String {
    match target.find("://") {
        Some(start) => {
            let (head, tail) = target.split_at(start + 3);
            redact_pairs(&format!("{head}{}", mask_user_info(tail)))
        }
        None => redact_pairs(target),
    }
}

/// `user:password@rest` -> `user:***@rest`, taking the last `@` as the end of the user
/// information; unchanged when there is no `@` or no `:` before it.
pub(super) fn mask_user_info(after_scheme: &str) -> String {
    match after_scheme.rfind('@') {
        Some(at) => match after_scheme[..at].find(':') {
            Some(colon) => format!("{}***{}", &after_scheme[..=colon], &after_scheme[at..]),
            None => after_scheme.to_owned(),
        },
        None => after_scheme.to_owned(),
    }
}

/// `password=secret` (keyword/value connection strings, URL query parameters), with any
/// key that holds "password" in any case, percent-encoded or not (`?pass%77ord=`, which a
/// URL parser decodes to `password`).
pub(super) fn redact_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find('=') {
        let eq = search + found;
        search = eq + 1;
        // libpq allows spaces around `=`: `password = secret`.
        let key_end = text[..eq].trim_end().len();
        // The key runs back to the character before it, which may be several bytes long.
        let before_key = text[..key_end]
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '%')));
        let key_start = before_key.map_or(0, |(at, c)| at + c.len_utf8());
        // In a URL's query a value ends at `&`; in a keyword/value string only at a space.
        let in_query = matches!(before_key, Some((_, '?' | '&')));
        if !names_a_password(&text[key_start..key_end]) {
            continue;
        }
        let after_eq = text.len() - text[eq + 1..].trim_start().len();
        let value = &text[after_eq..];
        let value_len = match value.strip_prefix('\'') {
            // A quoted value runs to its closing quote (`\'` is a quote inside it).
            Some(quoted) => {
                let mut escaped = false;
                let close = quoted.char_indices().find(|&(_, c)| {
                    let closes = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    closes
                });
                close.map_or(value.len(), |(at, _)| at + 2)
            }
            None => value
                .find(|c: char| (in_query && c == '&') || c.is_whitespace())
                .unwrap_or(value.len()),
        };
        out.push_str(&text[copied..after_eq]);
        out.push_str("***");
        copied = after_eq + value_len;
        search = copied;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether a `key` of a `key=value` pair, percent-decoded, holds "password" in any case.
pub(super) fn names_a_password(key: &str) -> bool {
    let decoded = url::form_urlencoded::parse(key.as_bytes())
        .next()
        .map(|(decoded, _)| decoded.to_ascii_lowercase())
        .unwrap_or_default();
    decoded.contains("password")
}
