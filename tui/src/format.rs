//! Small text helpers shared by the CLI tables and the TUI.

use std::borrow::Cow;
use std::io::Write;

use chrono::{DateTime, Utc};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// `text` safe to put on a terminal: every control character (ESC, CR, BEL, backspace,
/// line breaks, tabs, the C1 controls) and every bidirectional override or isolate
/// written as its Rust escape (`\u{1b}`, `\r`, `\n`, `\u{202e}`), so that stored data
/// (from LLMs and tools) cannot retitle the terminal, clear the screen, move the cursor or
/// show its characters in another order than stored, and the operator sees what is
/// really there. The CLI and the TUI show every stored string through this (ratatui alone
/// would silently drop the controls). Multi-line texts are split into lines first (see
/// [`printable_lines`]).
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if is_bidi_control(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// What [`printable`] escapes.
fn unsafe_on_terminal(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// The characters that reorder the text around them when shown (Unicode's bidirectional
/// marks, embeddings, overrides and isolates): "Trojan Source" text reads differently
/// from what is stored.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// The lines of `text` (split at `\n` or `\r\n`), each made [`printable`]: a lone `\r`
/// or any other control character is shown escaped.
pub fn printable_lines(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.lines().map(printable)
}

/// `value` as pretty JSON that is safe on a terminal and still parses to `value`: serde
/// escapes the controls below U+0020, and the ones it leaves raw (DEL and the C1
/// controls, which some terminals obey) are written as JSON escapes (`\u009b`).
pub fn json_pretty(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|err| err.to_string());
    if !text.chars().any(raw_in_json) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw_in_json(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The characters serde_json writes raw that a terminal obeys: DEL, the C1 controls and
/// the bidirectional controls (see [`printable`]).
fn raw_in_json(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}') || is_bidi_control(c)
}

/// A writer that passes text on with its control characters shown escaped (see
/// [`printable`]), keeping only its line breaks: the last guard of the CLI's output,
/// whatever a command prints. JSON passes unchanged (serde escapes control characters).
pub struct PrintableWriter<W: Write> {
    inner: W,
    /// The start of a UTF-8 character cut between two writes.
    partial: Vec<u8>,
}

impl<W: Write> PrintableWriter<W> {
    /// Guards `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            partial: Vec::new(),
        }
    }
}

impl<W: Write> Write for PrintableWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        let bytes = std::mem::take(&mut self.partial);
        // Keep an incomplete character at the end for the next write; anything else
        // that is not UTF-8 is shown as U+FFFD rather than passed raw.
        let complete = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            Err(_) => bytes.len(),
        };
        let text = String::from_utf8_lossy(&bytes[..complete]);
        for (n, line) in text.split('\n').enumerate() {
            if n > 0 {
                self.inner.write_all(b"\n")?;
            }
            self.inner.write_all(printable(line).as_bytes())?;
        }
        self.partial = bytes[complete..].to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `2026-11-25 22:15:02`, or `-`.
pub fn time(value: Option<DateTime<Utc>>) -> String {
    value.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// `2026-11-25 22:15:02 UTC`, or `-`: a time on a line of its own, where the zone costs
/// no column (tables say `(UTC)` in their header instead).
pub fn time_utc(value: Option<DateTime<Utc>>) -> String {
    match value {
        Some(_) => format!("{} UTC", time(value)),
        None => "-".to_owned(),
    }
}

/// `11-25 22:15:02` (no year), for narrow table columns.
pub fn short_time(value: DateTime<Utc>) -> String {
    value.format("%m-%d %H:%M:%S").to_string()
}

/// How long between two instants: `850ms`, `12.3s`, `4m05s`, `2h03m`, or `-`.
pub fn duration(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    let (Some(start), Some(end)) = (start, end) else {
        return "-".to_owned();
    };
    let millis = (end - start).num_milliseconds().max(0);
    match millis {
        0..1_000 => format!("{millis}ms"),
        1_000..60_000 => format!("{:.1}s", millis as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", millis / 60_000, (millis / 1000) % 60),
        _ => format!("{}h{:02}m", millis / 3_600_000, (millis / 60_000) % 60),
    }
}

/// `1 step`, `0 steps`, `2 steps`: a number and its noun, singular for one.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// `512 B`, `1.5 KiB`, `2.0 MiB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// `value` pretty-printed, one entry per line. The TUI prints a value once, when it
/// arrives, and keeps these lines: a context or snapshot can be megabytes.
pub fn pretty_lines(value: &serde_json::Value) -> Vec<String> {
    json_pretty(value).lines().map(str::to_owned).collect()
}

/// How many terminal cells `text` takes: two for a CJK character or an emoji, none for
/// a combining accent (what the terminal and ratatui count, not characters).
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// The longest start of `text` at most `width` cells wide, and its width. It is cut
/// between what the terminal draws as one symbol (a grapheme: an emoji with its
/// variation selector or joined family, a letter with its accents, a flag), each as
/// wide as [`width`] says.
fn head(text: &str, width: usize) -> (&str, usize) {
    let mut used = 0;
    for (at, symbol) in text.grapheme_indices(true) {
        let cells = self::width(symbol);
        if used + cells > width {
            return (&text[..at], used);
        }
        used += cells;
    }
    (text, used)
}

/// The longest end of `text` at most `width` cells wide, and its width (cut between
/// graphemes, as [`head`]).
fn tail(text: &str, width: usize) -> (&str, usize) {
    let mut used = 0;
    for (at, symbol) in text.grapheme_indices(true).rev() {
        let cells = self::width(symbol);
        if used + cells > width {
            return (&text[at + symbol.len()..], used);
        }
        used += cells;
    }
    (text, used)
}

/// At most `width` terminal cells, ending with `…` when cut (a wide character that
/// would straddle the edge goes too).
pub fn cut(text: &str, width: usize) -> String {
    // Not `width(text)`: `text` can be megabytes of step outputs, and a cut reads only
    // what it keeps.
    if head(text, width).0.len() == text.len() {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    format!("{}…", head(text, width - 1).0)
}

/// At most `width` terminal cells; when cut, its start and its end with `…` between: ids
/// such as `customer-onboarding-pipeline-000123` differ at their end, which [`cut`]
/// would drop. The end gets the larger half (and a cell a wide character left over).
pub fn cut_middle(text: &str, width: usize) -> String {
    if self::width(text) <= width {
        return text.to_owned();
    }
    let Some(kept) = width.checked_sub(1) else {
        return String::new();
    };
    let (end, end_width) = tail(text, kept - kept / 2);
    let (start, _) = head(&text[..text.len() - end.len()], kept - end_width);
    format!("{start}…{end}")
}

/// `text` broken into lines at most `width` terminal cells wide: at spaces where it can,
/// inside a word longer than a line, and at its own line breaks (tabs become four spaces,
/// other control characters are shown escaped, see [`printable`]).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let options = textwrap::Options::new(width.max(1))
        .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit)
        .break_words(true);
    text.replace("\r\n", "\n")
        .split('\n')
        .flat_map(|line| {
            let line = printable(&line.replace('\t', "    ")).into_owned();
            textwrap::wrap(&line, &options)
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A plain-text table with a header, columns padded to their widest cell; each cell is
/// [`printable`] (a line break in a cell would also start a false row).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| printable(cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in &rows {
        for (column, cell) in widths.iter_mut().zip(row) {
            *column = (*column).max(width(cell));
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, column)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i + 1 < widths.len() {
                out.push_str(&" ".repeat(column - width(cell) + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// How long ago, roughly, for people: `45s`, `3m`, `2h`, `4d` (the largest whole unit).
pub fn ago(elapsed: chrono::Duration) -> String {
    let secs = elapsed.num_seconds().max(0);
    for (unit, length) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= length {
            return format!("{}{unit}", secs / length);
        }
    }
    format!("{secs}s")
}

/// An age as `parse_age` reads it: `30d`, `12h`, `90m`, `45s` (the largest exact unit).
pub fn age(age: std::time::Duration) -> String {
    let secs = age.as_secs();
    for (unit, length) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= length && secs.is_multiple_of(length) {
            return format!("{}{unit}", secs / length);
        }
    }
    format!("{secs}s")
}

/// A retention age like `30d`, `12h`, `90m`, `2w` or `45s`.
pub fn parse_age(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit: use s, m, h, d or w (30d)"))?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number (30d)"))?;
    let duration = match unit {
        "s" => chrono::Duration::try_seconds(number),
        "m" => chrono::Duration::try_minutes(number),
        "h" => chrono::Duration::try_hours(number),
        "d" => chrono::Duration::try_days(number),
        "w" => chrono::Duration::try_weeks(number),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use s, m, h, d or w"
            ));
        }
    };
    duration.ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("30d").unwrap(), chrono::Duration::days(30));
        assert_eq!(parse_age("2w").unwrap(), chrono::Duration::days(14));
        assert_eq!(parse_age("90m").unwrap(), chrono::Duration::minutes(90));
        assert!(parse_age("30").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("3y").is_err());
        for text in ["30d", "2w", "90m", "12h", "45s"] {
            assert_eq!(age(parse_age(text).unwrap().to_std().unwrap()), text);
        }
    }

    #[test]
    fn durations_sizes_and_cuts() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let after = |ms| Some(start + chrono::Duration::milliseconds(ms));
        assert_eq!(duration(Some(start), after(850)), "850ms");
        assert_eq!(duration(Some(start), after(12_340)), "12.3s");
        assert_eq!(duration(Some(start), after(245_000)), "4m05s");
        assert_eq!(duration(Some(start), after(7_380_000)), "2h03m");
        assert_eq!(duration(None, after(1)), "-");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn a_cut_in_the_middle_keeps_the_end_that_tells_ids_apart() {
        let id = "customer-onboarding-pipeline-000123";
        assert_eq!(cut_middle(id, 20), "customer-…ine-000123");
        assert_eq!(cut_middle(id, 20).chars().count(), 20);
        assert_ne!(
            cut_middle(id, 12),
            cut_middle("customer-onboarding-pipeline-000124", 12)
        );
        assert_eq!(cut_middle(id, 35), id);
        assert_eq!(cut_middle("abcdef", 2), "…f");
        assert_eq!(cut_middle("abcdef", 1), "…");
        assert_eq!(cut_middle("abcdef", 0), "");
        assert_eq!(cut_middle("ünïcödé", 5), "ün…dé");
    }

    #[test]
    fn symbols_of_several_characters_are_cut_whole() {
        // An emoji with its variation selector takes two cells, as the table counts it.
        let hearts = "❤\u{fe0f}❤\u{fe0f}❤\u{fe0f}❤\u{fe0f}";
        let cut_hearts = super::cut(hearts, 4);
        assert_eq!(cut_hearts, "❤\u{fe0f}…");
        assert!(width(&super::cut(hearts, 4)) <= 4);
        assert!(
            width(&cut_middle(hearts, 4)) <= 4,
            "{}",
            cut_middle(hearts, 4)
        );
        // A family joined by zero-width joiners, a flag, a letter with its accent: never
        // split, so no dangling joiner, half flag or accent on the "…".
        let family = "👨\u{200d}👩\u{200d}👧";
        assert_eq!(width(family), 2);
        assert_eq!(
            super::cut(&format!("{family}{family}{family}"), 5),
            format!("{family}{family}…")
        );
        assert_eq!(super::cut(&format!("{family}ab"), 3), format!("{family}…"));
        assert_eq!(cut_middle("🇯🇵🇫🇷🇩🇪", 5), "🇯🇵…🇩🇪");
        assert_eq!(cut_middle("abcde\u{301}", 4), "a…de\u{301}");
        assert_eq!(cut_middle("abcde\u{301}", 1), "…");
    }

    #[test]
    fn wide_characters_count_the_cells_they_take() {
        // CJK characters and emoji take two cells each: cut by cells, the end that tells
        // ids apart stays, and the "…" says something was cut.
        let id = "請求書-処理-パイプライン-長い名前-🚀-0021";
        assert_eq!(width(id), 41);
        let cut = cut_middle(id, 20);
        assert_eq!(cut, "請求書-処…前-🚀-0021");
        assert!(width(&cut) <= 20, "{cut}");
        assert_ne!(
            cut_middle(id, 20),
            cut_middle("請求書-処理-パイプライン-長い名前-🚀-0022", 20)
        );
        // A wide character never straddles the edge: the cell is left empty instead.
        assert_eq!(cut_middle("漢字漢字漢字", 6), "漢…字");
        assert_eq!(cut_middle("漢字漢字漢字", 12), "漢字漢字漢字");
        assert_eq!(super::cut("漢字漢字漢字", 6), "漢字…");
        assert_eq!(super::cut("漢字漢字", 7), "漢字漢…");
        assert_eq!(super::cut("漢字漢字", 8), "漢字漢字");
        // Table columns line up on the terminal, not by characters.
        let text = table(
            &["ID", "NAME"],
            &[
                vec!["請求書-0021".into(), "invoice".into()],
                vec!["wf-1".into(), "plain".into()],
            ],
        );
        let columns: Vec<usize> = text
            .lines()
            .map(|line| width(&line[..line.find(['N', 'i', 'p']).unwrap()]))
            .collect();
        assert_eq!(columns, [13, 13, 13], "{text}");
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_inside_long_words_and_keeps_every_character() {
        let error = "context length exceeded (131072 tokens) on chunk 23";
        let lines = wrap(error, 20);
        assert_eq!(
            lines,
            ["context length", "exceeded (131072", "tokens) on chunk 23"]
        );
        assert_eq!(lines.join(" "), error);
        // A path breaks after its slashes; the text's own breaks and indents stay.
        assert_eq!(
            wrap("at s3://reports/q3.pdf\n\tretry", 9),
            ["at s3://", "reports/", "q3.pdf", "    retry"]
        );
        // A word longer than a line with nowhere to break fills lines.
        assert_eq!(wrap("0123456789abc", 5), ["01234", "56789", "abc"]);
        // Wide characters count two cells.
        assert_eq!(wrap("超时了吗", 5), ["超时", "了吗"]);
    }

    #[test]
    fn ago_is_the_largest_whole_unit() {
        let ago = |secs| super::ago(chrono::Duration::seconds(secs));
        assert_eq!(
            [
                ago(-5),
                ago(45),
                ago(60),
                ago(179),
                ago(7_200),
                ago(200_000)
            ],
            ["0s", "45s", "1m", "2m", "2h", "2d"]
        );
    }

    /// What the review found in stored data: a window title and a colour, a screen
    /// clear, and a C1 CSI (0x9b), which some terminals take for ESC [.
    const HOSTILE: &str = "evil\x1b]0;PWNED\x07\x1b[31mRED\r\x1b[2J\u{9b}2J";

    #[test]
    fn control_characters_are_shown_escaped_and_nothing_else_changes() {
        assert_eq!(
            printable(HOSTILE),
            r"evil\u{1b}]0;PWNED\u{7}\u{1b}[31mRED\r\u{1b}[2J\u{9b}2J"
        );
        assert!(!printable(HOSTILE).chars().any(char::is_control));
        assert_eq!(printable("a\nb\tc\0"), r"a\nb\tc\0");
        assert!(matches!(printable("plain, ünïcode 超时"), Cow::Borrowed(_)));
        let lines: Vec<_> = printable_lines("one\r\ntwo\rthree\n").collect();
        assert_eq!(lines, ["one", r"two\rthree"]);
        // Wrapped text (the TUI's errors) keeps its line breaks and escapes the rest.
        assert_eq!(wrap("a\x1b[2Jb\nc\r", 40), [r"a\u{1b}[2Jb", r"c\r"]);
        // Table cells cannot start a false row.
        let text = table(&["A"], &[vec!["x\ny".into()]]);
        assert_eq!(text, "A\nx\\ny\n");
    }

    #[test]
    fn the_printable_writer_escapes_whatever_is_written_through_it_but_line_breaks() {
        let mut out = PrintableWriter::new(Vec::new());
        writeln!(out, "user: {HOSTILE}").unwrap();
        // A character cut between two writes arrives whole; a C1 control cut so too.
        let bytes = "é\u{9b}".as_bytes();
        for byte in bytes {
            out.write_all(&[*byte]).unwrap();
        }
        out.write_all(b"\n").unwrap();
        let text = String::from_utf8(out.inner).unwrap();
        assert_eq!(
            text,
            "user: evil\\u{1b}]0;PWNED\\u{7}\\u{1b}[31mRED\\r\\u{1b}[2J\\u{9b}2J\né\\u{9b}\n"
        );
        // JSON passes unchanged, and still parses to what was stored.
        let value = serde_json::json!({ "user": HOSTILE, "del": "\u{7f}" });
        let json = json_pretty(&value);
        assert!(
            json.contains(r#"\u009b2J""#) && json.contains(r#""\u007f""#),
            "{json}"
        );
        let mut out = PrintableWriter::new(Vec::new());
        out.write_all(json.as_bytes()).unwrap();
        let written = String::from_utf8(out.inner).unwrap();
        assert_eq!(written, json);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&written).unwrap(),
            value
        );
    }

    #[test]
    fn bidirectional_overrides_are_shown_escaped_in_text_and_json() {
        // Shown raw, the override would display "txt.exe" as "exe.txt".
        let stored = "invoice\u{202e}txt.exe \u{2066}x\u{2069} \u{200f}";
        assert_eq!(
            printable(stored),
            r"invoice\u{202e}txt.exe \u{2066}x\u{2069} \u{200f}"
        );
        let value = serde_json::json!({ "name": stored });
        let json = json_pretty(&value);
        assert!(!json.chars().any(is_bidi_control), "{json}");
        assert!(json.contains(r"\u202e"), "{json}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            value
        );
        // Right-to-left text itself is left alone.
        assert!(matches!(printable("שלום مرحبا"), Cow::Borrowed(_)));
    }

    #[test]
    fn counts_of_one_are_singular() {
        let steps = |n| count(n, "step", "steps");
        assert_eq!(
            [steps(0), steps(1), steps(2)],
            ["0 steps", "1 step", "2 steps"]
        );
    }

    #[test]
    fn tables_pad_columns() {
        let text = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(text, "A    BB\nxxx  y\n");
    }
}
