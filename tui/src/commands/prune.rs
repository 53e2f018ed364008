//! `wfadmin prune`: retention policies (from flags, or the text the UI edits), the preview, the question and the report.

use std::io::{BufRead, Write};

use llm_orchestrator_state::{PruneReport, RetentionPolicy, StateStore};
use serde_json::{Value, json};

use super::consent::Consent;
use super::print_json;
use crate::db::Store;
use crate::error::{AdminError, Result};
use crate::format;

/// The retention policy `prune`'s flags describe; at least one rule must be set.
pub fn retention_policy(
    older_than: Option<&str>,
    keep_checkpoints: Option<u64>,
    keep_younger_than: Option<&str>,
) -> Result<RetentionPolicy> {
    let age = |text: &str| retention_age(text).map_err(AdminError::new);
    let policy = RetentionPolicy {
        keep_last: keep_checkpoints.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        keep_younger_than: keep_younger_than.map(age).transpose()?,
        delete_finished_older_than: older_than.map(age).transpose()?,
    };
    if policy == RetentionPolicy::default() {
        return Err(AdminError::new(
            "nothing to prune: give --older-than, --keep-checkpoints or --keep-younger-than",
        ));
    }
    Ok(policy)
}

/// An age of a retention rule (`30d`, `12h`), as `prune`'s flags and the UI read it.
fn retention_age(text: &str) -> std::result::Result<std::time::Duration, String> {
    format::parse_age(text)?
        .to_std()
        .map_err(|_| format!("{text:?} is not a positive age"))
}

/// A policy as the UI's prune popup shows it for editing, one `rule=value` per flag of
/// `prune`, `off` for a rule not set: `older-than=30d keep-checkpoints=10 keep-younger-than=off`.
pub fn policy_text(policy: &RetentionPolicy) -> String {
    let age = |age: Option<std::time::Duration>| age.map_or_else(|| "off".to_owned(), format::age);
    format!(
        "older-than={} keep-checkpoints={} keep-younger-than={}",
        age(policy.delete_finished_older_than),
        policy
            .keep_last
            .map_or_else(|| "off".to_owned(), |keep| keep.to_string()),
        age(policy.keep_younger_than)
    )
}

/// Reads a policy written as [`policy_text`] writes it: the rules in any order, each at
/// most once, a rule left out or `off` not set (the names of the store's fields,
/// `delete-finished-older-than` and `keep-last`, are read too). It refuses what
/// `prune`'s flags refuse: no rule at all, and `keep-checkpoints=0` alone.
pub fn parse_policy_text(text: &str) -> std::result::Result<RetentionPolicy, String> {
    let mut policy = RetentionPolicy::default();
    let mut seen = Vec::new();
    for rule in text.split_whitespace() {
        let (name, value) = rule.split_once('=').ok_or_else(|| {
            format!(
                "{rule:?} is not rule=value (older-than=30d keep-checkpoints=10 \
                 keep-younger-than=1d; off turns a rule off)"
            )
        })?;
        let name = match name {
            "older-than" | "delete-finished-older-than" => "older-than",
            "keep-checkpoints" | "keep-last" => "keep-checkpoints",
            "keep-younger-than" => "keep-younger-than",
            _ => {
                return Err(format!(
                    "unknown rule {name:?}: the rules are older-than, keep-checkpoints \
                     and keep-younger-than"
                ));
            }
        };
        if seen.contains(&name) {
            return Err(format!("{name} is given twice"));
        }
        seen.push(name);
        let off = value == "off";
        let age = || {
            (!off)
                .then(|| retention_age(value).map_err(|err| format!("{name}: {err}")))
                .transpose()
        };
        match name {
            "older-than" => policy.delete_finished_older_than = age()?,
            "keep-younger-than" => policy.keep_younger_than = age()?,
            _ if off => policy.keep_last = None,
            _ => {
                let keep = value.parse::<usize>().map_err(|_| {
                    format!("keep-checkpoints: {value:?} is not a number of checkpoints (10)")
                })?;
                policy.keep_last = Some(keep);
            }
        }
    }
    if policy == RetentionPolicy::default() {
        return Err(
            "nothing to prune: set older-than, keep-checkpoints or keep-younger-than".into(),
        );
    }
    if policy.keep_last == Some(0) && policy.keep_younger_than.is_none() {
        return Err(
            "keep-checkpoints=0 would delete every unpinned checkpoint of every \
                    workflow (an active one keeps only its newest); keep at least 1, or \
                    set keep-younger-than to keep the recent ones"
                .into(),
        );
    }
    Ok(policy)
}

/// A policy in words: `finished workflows older than 30d; keep the newest 10 checkpoints`.
pub fn describe_policy(policy: &RetentionPolicy) -> String {
    let mut rules = Vec::new();
    if let Some(age) = policy.delete_finished_older_than {
        rules.push(format!(
            "completed or failed workflows not updated for {}",
            format::age(age)
        ));
    }
    if let Some(keep) = policy.keep_last {
        rules.push(format!("checkpoints beyond the newest {keep} per workflow"));
    }
    if let Some(age) = policy.keep_younger_than {
        rules.push(format!("checkpoints older than {}", format::age(age)));
    }
    let mut text = rules.join("; ");
    if policy.keep_last.is_some() && policy.keep_younger_than.is_some() {
        text.push_str(" (a checkpoint goes only if both rules let it go)");
    }
    // Pins only protect checkpoints from the checkpoint rules: a finished workflow that
    // `--older-than` deletes takes every checkpoint it has, pinned ones too.
    if policy.delete_finished_older_than.is_some() {
        text.push_str(
            "; pinned checkpoints of the workflows that stay are kept\
             ; a deleted workflow takes all its checkpoints, pinned ones too",
        );
    } else {
        text.push_str("; pinned checkpoints are kept");
    }
    text
}

/// `prune`'s report as text: what went (or would go) under which rules.
fn write_prune_report(
    out: &mut impl Write,
    heading: &str,
    policy: &RetentionPolicy,
    report: &PruneReport,
) -> Result<()> {
    writeln!(out, "{heading}: {}", describe_policy(policy))?;
    write!(
        out,
        "{}",
        format::table(
            &["WORKFLOWS", "CHECKPOINTS", "BYTES"],
            &[vec![
                report.workflows.to_string(),
                report.checkpoints.to_string(),
                format::size(report.bytes),
            ]]
        )
    )?;
    Ok(())
}

/// `prune --json`'s policy, its ages in whole seconds under keys that say so
/// (`"delete_finished_older_than_secs": 2592000` for `--older-than 30d`), not serde's
/// `{"secs": .., "nanos": ..}` of a `Duration`; `null` for a rule not given.
fn policy_json(policy: &RetentionPolicy) -> Value {
    let secs = |age: Option<std::time::Duration>| age.map(|age| age.as_secs());
    json!({
        "keep_last": policy.keep_last,
        "keep_younger_than_secs": secs(policy.keep_younger_than),
        "delete_finished_older_than_secs": secs(policy.delete_finished_older_than),
    })
}

/// `prune`: previews the policy (`dry_run`), or applies it and prints what went. Unless
/// `consent` says `--yes`, it first prints what would go and asks, like `rollback`; a
/// refusal or a no deletes nothing. With `as_json` the preview and the question go to
/// `notes` (stderr), so that stdout holds only the JSON report.
pub async fn prune(
    store: &Store,
    out: &mut impl Write,
    notes: &mut impl Write,
    consent: Consent<'_, impl BufRead>,
    policy: &RetentionPolicy,
    dry_run: bool,
    as_json: bool,
) -> Result<()> {
    let report = if dry_run || consent.yes {
        store.prune(policy, dry_run).await?
    } else {
        let preview = store.prune(policy, true).await?;
        let mut asked: &mut dyn Write = if as_json { notes } else { out };
        write_prune_report(&mut asked, "would delete", policy, &preview)?;
        if preview.workflows == 0 && preview.checkpoints == 0 {
            // Nothing to ask about; and nothing deleted, whatever appeared since.
            writeln!(asked, "nothing to delete")?;
            if !as_json {
                return Ok(());
            }
            PruneReport {
                dry_run: false,
                ..preview
            }
        } else {
            consent.ask(
                &mut asked,
                "Prune?",
                "not pruning: stdin is not a terminal; pass --yes to confirm (--dry-run \
                 only previews)",
                "prune cancelled; nothing deleted",
            )?;
            store.prune(policy, false).await?
        }
    };
    if as_json {
        return print_json(
            out,
            &json!({ "policy": policy_json(policy), "report": report }),
        );
    }
    let heading = if dry_run {
        "would delete (dry run)"
    } else {
        "deleted"
    };
    write_prune_report(out, heading, policy, &report)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::commands::tests::seeded;

    #[test]
    fn a_policy_reads_back_as_the_popup_writes_it_and_bad_text_says_why() {
        let day = std::time::Duration::from_secs(86_400);
        let policy = RetentionPolicy {
            keep_last: Some(10),
            keep_younger_than: None,
            delete_finished_older_than: Some(30 * day),
        };
        let text = policy_text(&policy);
        assert_eq!(
            text,
            "older-than=30d keep-checkpoints=10 keep-younger-than=off"
        );
        assert_eq!(parse_policy_text(&text), Ok(policy));
        assert_eq!(
            parse_policy_text("keep-last=3 keep-younger-than=7d delete-finished-older-than=off"),
            Ok(RetentionPolicy {
                keep_last: Some(3),
                keep_younger_than: Some(7 * day),
                delete_finished_older_than: None,
            })
        );
        assert_eq!(
            parse_policy_text("keep-younger-than=12h"),
            Ok(RetentionPolicy {
                keep_younger_than: Some(day / 2),
                ..RetentionPolicy::default()
            }),
            "a rule left out is off"
        );
        for (text, error) in [
            (
                "older-than=30x",
                "older-than: unknown unit \"x\" in \"30x\"",
            ),
            ("older-than=30", "older-than: \"30\" has no unit"),
            (
                "keep-checkpoints=ten",
                "keep-checkpoints: \"ten\" is not a number",
            ),
            ("keep=10", "unknown rule \"keep\""),
            ("older-than 30d", "\"older-than\" is not rule=value"),
            ("older-than=1d older-than=2d", "older-than is given twice"),
            ("", "nothing to prune"),
            ("older-than=off keep-checkpoints=off", "nothing to prune"),
            (
                "keep-checkpoints=0",
                "keep-checkpoints=0 would delete every unpinned",
            ),
        ] {
            let got = parse_policy_text(text).unwrap_err();
            assert!(got.starts_with(error), "{text:?}: {got}");
        }
    }

    #[tokio::test]
    async fn prune_shows_what_would_go_asks_and_only_yes_deletes() {
        let (store, state, _) = seeded().await;
        let policy = RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        };
        let count = async || store.checkpoint_usage(&state.id).await.unwrap().count;
        let run = async |answer: &str, interactive: bool, yes: bool, as_json: bool| {
            let (mut out, mut notes) = (Vec::new(), Vec::new());
            let consent = Consent {
                input: &mut answer.as_bytes(),
                interactive,
                yes,
            };
            let result = prune(
                &store, &mut out, &mut notes, consent, &policy, false, as_json,
            )
            .await;
            let text = |bytes| String::from_utf8(bytes).unwrap();
            (result, text(out), text(notes))
        };

        // No: the preview and the question, then nothing deleted.
        let (result, out, _) = run("n\n", true, false, false).await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "prune cancelled; nothing deleted"
        );
        assert!(
            out.starts_with("would delete: checkpoints beyond the newest 1 per workflow"),
            "{out}"
        );
        assert!(out.contains("\n0          1            555 B\n"), "{out}");
        assert!(out.ends_with("Prune? [y/N] "), "{out}");
        assert_eq!(count().await, 2);

        // No terminal and no --yes: refused, nothing deleted.
        let (result, out, _) = run("y\n", false, false, false).await;
        let err = result.unwrap_err().to_string();
        assert!(
            err.starts_with("not pruning: stdin is not a terminal; pass --yes"),
            "{err}"
        );
        assert!(out.starts_with("would delete: "), "{out}");
        assert_eq!(count().await, 2);

        // --json: stdout is only the report; the preview and the question on stderr.
        let (result, out, notes) = run("yes\n", true, false, true).await;
        result.unwrap();
        let report: Value = serde_json::from_str(&out).expect(&out);
        assert_eq!(report["report"]["checkpoints"], 1);
        assert_eq!(report["report"]["dry_run"], false);
        assert!(notes.starts_with("would delete: "), "{notes}");
        assert!(notes.ends_with("Prune? [y/N] "), "{notes}");
        assert_eq!(count().await, 1);

        // Nothing left to delete: said, not asked.
        let (result, out, _) = run("", true, false, false).await;
        result.unwrap();
        assert!(out.ends_with("nothing to delete\n"), "{out}");
    }

    #[tokio::test]
    async fn prune_with_yes_deletes_without_asking() {
        let (store, state, _) = seeded().await;
        let policy = RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        };
        let mut out = Vec::new();
        let consent = Consent {
            input: &mut "".as_bytes(),
            interactive: false,
            yes: true,
        };
        prune(
            &store,
            &mut out,
            &mut Vec::new(),
            consent,
            &policy,
            false,
            false,
        )
        .await
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("deleted: "), "{out}");
        assert!(!out.contains("[y/N]"), "{out}");
        let usage = store.checkpoint_usage(&state.id).await.unwrap();
        assert_eq!(usage.count, 1);
    }
}
