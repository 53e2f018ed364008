//! Small text helpers shared by the CLI tables and the TUI.

use chrono::{DateTime, Utc};

/// `2026-11-25 22:15:02`, or `-`.
pub fn time(value: Option<DateTime<Utc>>) -> String {
    value.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
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
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|err| err.to_string());
    text.lines().map(str::to_owned).collect()
}

/// At most `width` characters, ending with `…` when cut.
pub fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` broken into lines at most `width` terminal cells wide: at spaces where it can,
/// inside a word longer than a line, and at its own line breaks (tabs become four spaces).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let options = textwrap::Options::new(width.max(1))
        .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit)
        .break_words(true);
    textwrap::wrap(&text.replace('\t', "    "), options)
        .into_iter()
        .map(String::from)
        .collect()
}

/// A plain-text table with a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
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

    #[test]
    fn tables_pad_columns() {
        let text = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(text, "A    BB\nxxx  y\n");
    }
}
