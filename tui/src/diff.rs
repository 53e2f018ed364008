//! Deep diff of two JSON documents by path: what was added, removed or changed.

use serde_json::{Map, Value, json};

/// One difference between two documents, at one path.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Present only in the new document.
    Added {
        /// Where (`steps.retrieve.outputs`, `context.messages[2]`).
        path: String,
        /// The new value.
        new: Value,
    },
    /// Present only in the old document.
    Removed {
        /// Where.
        path: String,
        /// The old value.
        old: Value,
    },
    /// Present in both with different values (scalars, or values of different types).
    Changed {
        /// Where.
        path: String,
        /// The old value.
        old: Value,
        /// The new value.
        new: Value,
    },
}

impl Change {
    /// The path of the change.
    #[cfg(test)]
    pub fn path(&self) -> &str {
        match self {
            Self::Added { path, .. } | Self::Removed { path, .. } | Self::Changed { path, .. } => {
                path
            }
        }
    }

    /// One line for people: `~ context.answer: "a" -> "b"` (a key's control characters
    /// shown escaped; values are JSON, escaped already).
    pub fn describe(&self) -> String {
        let line = match self {
            Self::Added { path, new } => format!("+ {path}: {}", compact(new)),
            Self::Removed { path, old } => format!("- {path}: {}", compact(old)),
            Self::Changed { path, old, new } => {
                format!("~ {path}: {} -> {}", compact(old), compact(new))
            }
        };
        crate::format::printable(&line).into_owned()
    }

    /// The change as JSON for scripts: `{"op": "changed", "path": .., "old": .., "new": ..}`.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Added { path, new } => json!({"op": "added", "path": path, "new": new}),
            Self::Removed { path, old } => json!({"op": "removed", "path": path, "old": old}),
            Self::Changed { path, old, new } => {
                json!({"op": "changed", "path": path, "old": old, "new": new})
            }
        }
    }
}

/// A value on one line, long strings and documents cut to 120 characters (the control
/// characters serde leaves raw shown escaped).
pub fn compact(value: &Value) -> String {
    let text = crate::format::printable(&value.to_string()).into_owned();
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(117).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Every difference from `old` to `new`, in path order: objects are compared key by key
/// (order-insensitive), arrays index by index, anything else by value.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk("", old, new, &mut changes);
    changes
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => objects(path, old, new, out),
        (Value::Array(old), Value::Array(new)) => {
            for index in 0..old.len().max(new.len()) {
                let child = format!("{path}[{index}]");
                match (old.get(index), new.get(index)) {
                    (Some(a), Some(b)) => walk(&child, a, b, out),
                    (Some(a), None) => out.push(Change::Removed {
                        path: child,
                        old: a.clone(),
                    }),
                    (None, Some(b)) => out.push(Change::Added {
                        path: child,
                        new: b.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Change::Changed {
            path: if path.is_empty() {
                "$".into()
            } else {
                path.into()
            },
            old: a.clone(),
            new: b.clone(),
        }),
    }
}

fn objects(path: &str, old: &Map<String, Value>, new: &Map<String, Value>, out: &mut Vec<Change>) {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let child = join(path, key);
        match (old.get(key), new.get(key)) {
            (Some(a), Some(b)) => walk(&child, a, b, out),
            (Some(a), None) => out.push(Change::Removed {
                path: child,
                old: a.clone(),
            }),
            (None, Some(b)) => out.push(Change::Added {
                path: child,
                new: b.clone(),
            }),
            (None, None) => {}
        }
    }
}

/// `parent.key`, or `parent["odd key"]` when the key is not a plain identifier.
fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::String(key.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_documents_have_no_changes() {
        let doc = json!({"a": [1, {"b": null}], "c": "x"});
        assert!(diff(&doc, &doc.clone()).is_empty());
    }

    #[test]
    fn reports_added_removed_and_changed_by_path() {
        let old = json!({"context": {"answer": "draft", "tokens": 10, "gone": true}, "status": "running"});
        let new = json!({"context": {"answer": "final", "tokens": 10, "sources": ["a"]}, "status": "completed"});
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Changed {
                    path: "context.answer".into(),
                    old: json!("draft"),
                    new: json!("final")
                },
                Change::Removed {
                    path: "context.gone".into(),
                    old: json!(true)
                },
                Change::Added {
                    path: "context.sources".into(),
                    new: json!(["a"])
                },
                Change::Changed {
                    path: "status".into(),
                    old: json!("running"),
                    new: json!("completed")
                },
            ]
        );
    }

    #[test]
    fn arrays_compare_by_index_and_keys_are_quoted_when_needed() {
        let old = json!({"messages": [{"role": "user"}, {"role": "assistant"}], "a b": 1});
        let new = json!({"messages": [{"role": "system"}], "a b": 2});
        let paths: Vec<String> = diff(&old, &new).iter().map(Change::describe).collect();
        assert_eq!(
            paths,
            vec![
                r#"~ ["a b"]: 1 -> 2"#,
                r#"~ messages[0].role: "user" -> "system""#,
                r#"- messages[1]: {"role":"assistant"}"#,
            ]
        );
    }

    #[test]
    fn type_changes_and_roots_are_changes() {
        assert_eq!(
            diff(&json!(1), &json!("1")),
            vec![Change::Changed {
                path: "$".into(),
                old: json!(1),
                new: json!("1")
            }]
        );
        let change = &diff(&json!({"a": {"b": 1}}), &json!({"a": [1]}))[0];
        assert_eq!(change.path(), "a");
        assert_eq!(change.to_json()["op"], "changed");
    }

    #[test]
    fn long_values_are_cut_for_display() {
        let long = json!("x".repeat(500));
        assert!(compact(&long).ends_with("..."));
        assert_eq!(compact(&long).chars().count(), 120);
    }
}
