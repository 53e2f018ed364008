//! Pretty JSON as coloured lines: keys blue, strings green, numbers cyan, literals yellow.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

/// Draws pretty-printed JSON `lines` (see `format::pretty_lines`) in `block`, scrolled
/// `scroll` lines down; only the lines in view are coloured.
pub fn render(lines: &[String], scroll: usize, block: Block, frame: &mut Frame, area: Rect) {
    let height = block.inner(area).height;
    let visible: Vec<Line> = super::in_view(lines, scroll, height)
        .iter()
        .map(|text| line(text))
        .collect();
    frame.render_widget(Paragraph::new(visible).block(block), area);
}

/// One line of pretty-printed JSON, coloured.
pub fn line(raw: &str) -> Line<'static> {
    let indent_len = raw.len() - raw.trim_start().len();
    let (indent, rest) = raw.split_at(indent_len);
    let mut spans = vec![Span::raw(indent.to_owned())];
    let rest = match key_end(rest) {
        Some(end) => {
            spans.push(Span::styled(
                rest[..end].to_owned(),
                Style::new().fg(Color::Blue),
            ));
            spans.push(Span::raw(": "));
            rest[end..].trim_start_matches(": ")
        }
        None => rest,
    };
    let style = match rest.chars().next() {
        Some('"') => Style::new().fg(Color::Green),
        Some(c) if c == '-' || c.is_ascii_digit() => Style::new().fg(Color::Cyan),
        Some('t' | 'f') => Style::new().fg(Color::Yellow),
        Some('n') => Style::new().fg(Color::DarkGray),
        _ => Style::new(),
    };
    spans.push(Span::styled(rest.to_owned(), style));
    Line::from(spans)
}

/// Where the key of an object member ends (after its closing quote), if the line has one.
fn key_end(text: &str) -> Option<usize> {
    if !text.starts_with('"') {
        return None;
    }
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                return text[i + 1..].starts_with(": ").then_some(i + 1);
            }
            _ => escaped = false,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn lines(value: &Value) -> Vec<Line<'static>> {
        crate::format::pretty_lines(value)
            .iter()
            .map(|text| line(text))
            .collect()
    }

    fn spans(line: &Line) -> Vec<(String, Option<Color>)> {
        line.spans
            .iter()
            .map(|span| (span.content.to_string(), span.style.fg))
            .collect()
    }

    #[test]
    fn keys_and_values_get_their_colours() {
        let lines = lines(&json!({"a\"b": "x", "n": -1.5, "t": true, "z": null}));
        assert_eq!(lines.len(), 6);
        assert_eq!(
            spans(&lines[1]),
            vec![
                ("  ".into(), None),
                (r#""a\"b""#.into(), Some(Color::Blue)),
                (": ".into(), None),
                (r#""x","#.into(), Some(Color::Green)),
            ]
        );
        assert_eq!(spans(&lines[2])[3], ("-1.5,".into(), Some(Color::Cyan)));
        assert_eq!(spans(&lines[3])[3], ("true,".into(), Some(Color::Yellow)));
        assert_eq!(spans(&lines[4])[3], ("null".into(), Some(Color::DarkGray)));
    }

    #[test]
    fn strings_in_arrays_are_values_not_keys() {
        let lines = lines(&json!(["k: v"]));
        assert_eq!(
            spans(&lines[1])[1],
            (r#""k: v""#.into(), Some(Color::Green))
        );
    }
}
