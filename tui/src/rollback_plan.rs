//! What a rollback to a checkpoint will change, worked out before anything is written.

use chrono::{DateTime, Utc};
use llm_orchestrator_state::admin::WorkflowSummary;
use llm_orchestrator_state::{
    Checkpoint, StateStoreError, StepStatus, WorkflowState, WorkflowStatus,
};
#[cfg(test)]
use serde_json::json;

use crate::diff::{Change, diff};

/// What happens to one step when the workflow goes back to a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum StepChange {
    /// The step exists now but not in the checkpoint: it is deleted.
    Disappears {
        /// The step.
        step_id: String,
        /// Its status now.
        status: StepStatus,
    },
    /// The step exists in the checkpoint but not now: it comes back.
    Returns {
        /// The step.
        step_id: String,
        /// Its status in the checkpoint.
        status: StepStatus,
    },
    /// The step exists in both and differs: it goes back to the checkpoint's version.
    GoesBack {
        /// The step.
        step_id: String,
        /// Its status now.
        from: StepStatus,
        /// Its status in the checkpoint.
        to: StepStatus,
    },
}

impl StepChange {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Self::Disappears { step_id, status } => {
                format!("step {step_id} ({status}) disappears")
            }
            Self::Returns { step_id, status } => format!("step {step_id} comes back ({status})"),
            Self::GoesBack { step_id, from, to } if from == to => {
                format!("step {step_id} goes back to its earlier {to} state")
            }
            Self::GoesBack { step_id, from, to } => {
                format!("step {step_id} goes back: {from} -> {to}")
            }
        }
    }
}

/// A replica's recovery lease on the workflow that had not run out when the plan was
/// made: that replica is running the workflow. The store refuses a plain rollback while
/// it lasts; a rollback the operator confirms anyway ends the lease, and the replica's
/// next write under it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLease {
    /// The replica (`claim_workflows`' owner).
    pub owner: String,
    /// When the lease runs out unless renewed (`None` if the store recorded no expiry).
    pub until: Option<DateTime<Utc>>,
}

impl LiveLease {
    /// The lease on the workflow `row` as of `now`, if a replica holds it and it has
    /// not expired (an expired one belongs to a replica that stopped: nobody runs it),
    /// whatever the workflow's status: the store refuses plain writes under any live
    /// lease, a finished workflow's too. Live if either clock says so, the database's
    /// when the row was read or this machine's now: a warning too many beats a rollback
    /// that fails, or overrides a lease, because this machine's clock runs ahead.
    pub fn of(row: &WorkflowSummary, now: DateTime<Utc>) -> Option<Self> {
        let owner = row.lease_owner.as_deref()?;
        let expired_here = row.lease_expires_at.is_some_and(|until| until < now);
        if row.lease_expired && expired_here {
            return None;
        }
        Some(Self {
            owner: owner.to_owned(),
            until: row.lease_expires_at,
        })
    }
}

/// Everything a rollback to one checkpoint changes in the stored workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPlan {
    /// The checkpoint rolled back to.
    pub checkpoint: Checkpoint,
    /// The workflow's current state: the checkpoint's own when the stored one cannot be
    /// read (see [`Self::unreadable`]), so that no change is listed against it.
    pub current: WorkflowState,
    /// The state the workflow will have.
    pub target: WorkflowState,
    /// `(now, after)` when the status changes.
    pub status: Option<(WorkflowStatus, WorkflowStatus)>,
    /// `(now, after)` when the workflow error changes.
    pub error: Option<(Option<String>, Option<String>)>,
    /// Steps that go back, disappear or return, by step id.
    pub steps: Vec<StepChange>,
    /// Context paths that change.
    pub context: Vec<Change>,
    /// The replica running the workflow, if one holds its lease (see [`Self::warning`]).
    pub live_lease: Option<LiveLease>,
    /// Why the workflow's stored state cannot be read, when it cannot (a corrupt row): the
    /// rollback replaces it whole, which repairs it.
    pub unreadable: Option<String>,
    /// Why the workflow cannot be rolled back to the checkpoint, when it holds no state of the
    /// workflow (its snapshot is the orchestrator's own JSON, or another workflow's
    /// state): the store refuses the rollback, so the plan changes nothing and says why.
    pub refused: Option<String>,
}

impl RollbackPlan {
    /// The plan for rolling `current` back to the state held by `checkpoint`; when it
    /// holds no state of the workflow, a plan that changes nothing and says why
    /// ([`Self::refused`]).
    pub fn new(current: WorkflowState, checkpoint: Checkpoint) -> crate::error::Result<Self> {
        let target = match checkpoint.state_of(&current) {
            Ok(target) => target,
            Err(StateStoreError::InvalidInput(why)) => {
                return Ok(Self {
                    checkpoint,
                    target: current.clone(),
                    current,
                    status: None,
                    error: None,
                    steps: Vec::new(),
                    context: Vec::new(),
                    live_lease: None,
                    unreadable: None,
                    refused: Some(why.into()),
                });
            }
            Err(err) => return Err(err.into()),
        };
        let status = (current.status != target.status).then_some((current.status, target.status));
        let error =
            (current.error != target.error).then(|| (current.error.clone(), target.error.clone()));
        let mut ids: Vec<&String> = current.steps.keys().chain(target.steps.keys()).collect();
        ids.sort();
        ids.dedup();
        let steps = ids
            .into_iter()
            .filter_map(|id| match (current.steps.get(id), target.steps.get(id)) {
                (Some(now), None) => Some(StepChange::Disappears {
                    step_id: id.clone(),
                    status: now.status,
                }),
                (None, Some(then)) => Some(StepChange::Returns {
                    step_id: id.clone(),
                    status: then.status,
                }),
                (Some(now), Some(then)) if now != then => Some(StepChange::GoesBack {
                    step_id: id.clone(),
                    from: now.status,
                    to: then.status,
                }),
                _ => None,
            })
            .collect();
        let context = diff(&current.context, &target.context)
            .into_iter()
            .map(prefix_context)
            .collect();
        Ok(Self {
            checkpoint,
            current,
            target,
            status,
            error,
            steps,
            context,
            live_lease: None,
            unreadable: None,
            refused: None,
        })
    }

    /// The plan for rolling back to `checkpoint` a workflow whose stored state cannot be
    /// read (`error` says why): every part of it becomes the checkpoint's.
    pub fn over_unreadable(
        checkpoint: Checkpoint,
        error: &llm_orchestrator_state::StateStoreError,
    ) -> crate::error::Result<Self> {
        let target = checkpoint.state()?;
        let mut plan = Self::new(target, checkpoint)?;
        plan.unreadable = Some(error.to_string());
        Ok(plan)
    }

    /// The plan, knowing that `lease` holds the workflow (or that nobody does).
    pub fn with_live_lease(mut self, lease: Option<LiveLease>) -> Self {
        self.live_lease = lease;
        self
    }

    /// What the operator must know before saying yes, if anything: a replica holds the
    /// workflow's lease, so it is running it, and rolling back takes the workflow from it.
    /// Nothing for a plan that rolls back nothing ([`Self::refused`]).
    pub fn warning(&self) -> Option<String> {
        if self.refused.is_some() {
            return None;
        }
        let lease = self.live_lease.as_ref()?;
        let until = lease.until.map_or_else(String::new, |until| {
            format!(" until {} UTC", crate::format::time(Some(until)))
        });
        Some(format!(
            "WARNING: {} holds this workflow's lease{until}: it is running it; rolling back \
             ends its lease and refuses its next write",
            lease.owner
        ))
    }

    /// True when the rollback changes nothing but `updated_at`.
    pub fn is_noop(&self) -> bool {
        self.refused.is_none()
            && self.unreadable.is_none()
            && self.status.is_none()
            && self.error.is_none()
            && self.steps.is_empty()
            && self.context.is_empty()
    }

    /// The plan as lines for people, most important first (the [`Self::warning`], if
    /// any, then what changes), with the control characters of stored strings (ids,
    /// errors, context keys, the lease owner) shown escaped.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.warning().into_iter().collect();
        if let Some(why) = &self.refused {
            lines.extend([
                format!(
                    "Cannot roll back workflow {} ({}) to checkpoint {} taken after step {} \
                     at {}:",
                    self.current.workflow_id,
                    self.current.id,
                    self.checkpoint.id,
                    self.checkpoint.step_id,
                    self.checkpoint.timestamp.format("%Y-%m-%d %H:%M:%S UTC"),
                ),
                why.clone(),
                "nothing is rolled back; the checkpoint keeps its JSON as it is (open it to \
                 read it)"
                    .to_owned(),
            ]);
            return lines
                .into_iter()
                .map(|line| crate::format::printable(&line).into_owned())
                .collect();
        }
        lines.push(format!(
            "Roll back workflow {} ({}) to checkpoint {} taken after step {} at {}:",
            self.current.workflow_id,
            self.current.id,
            self.checkpoint.id,
            self.checkpoint.step_id,
            self.checkpoint.timestamp.format("%Y-%m-%d %H:%M:%S UTC"),
        ));
        if let Some(why) = &self.unreadable {
            lines.push(format!(
                "the workflow's stored state cannot be read ({why}): it becomes the \
                 checkpoint's state whole (status {}, {}), which repairs it",
                self.target.status,
                crate::format::count(self.target.steps.len() as u64, "step", "steps")
            ));
        }
        if let Some((from, to)) = self.status {
            lines.push(format!("status: {from} -> {to}"));
        }
        if let Some((from, to)) = &self.error {
            lines.push(format!(
                "error: {} -> {}",
                from.as_deref().unwrap_or("none"),
                to.as_deref().unwrap_or("none")
            ));
        }
        lines.extend(self.steps.iter().map(StepChange::describe));
        lines.extend(self.context.iter().map(Change::describe));
        if self.is_noop() {
            lines.push("nothing changes except updated_at".into());
        }
        lines.push(
            "then a checkpoint of this state becomes the newest (recovery resumes from it)".into(),
        );
        lines
            .into_iter()
            .map(|line| crate::format::printable(&line).into_owned())
            .collect()
    }
}

fn prefix_context(change: Change) -> Change {
    let path = |p: String| {
        if p == "$" {
            "context".to_owned()
        } else if p.starts_with('[') {
            format!("context{p}")
        } else {
            format!("context.{p}")
        }
    };
    match change {
        Change::Added { path: p, new } => Change::Added { path: path(p), new },
        Change::Removed { path: p, old } => Change::Removed { path: path(p), old },
        Change::Changed { path: p, old, new } => Change::Changed {
            path: path(p),
            old,
            new,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_orchestrator_state::StepState;

    #[test]
    fn plan_lists_status_steps_and_context_paths() {
        let mut state = WorkflowState::new("wf-1", "Answer", None, json!({"question": "q"}));
        state.mark_running();
        let mut retrieve = StepState::new("retrieve");
        retrieve.mark_completed(json!({"chunks": 3}));
        state.upsert_step(retrieve);
        let checkpoint = Checkpoint::of(&state, "retrieve").unwrap();

        let mut prompt = StepState::new("prompt");
        prompt.mark_failed("rate limited");
        state.upsert_step(prompt);
        state.context["answer"] = json!("partial");
        state.mark_failed("prompt failed");

        let plan = RollbackPlan::new(state, checkpoint).unwrap();
        assert_eq!(
            plan.status,
            Some((WorkflowStatus::Failed, WorkflowStatus::Running))
        );
        assert_eq!(
            plan.steps,
            vec![StepChange::Disappears {
                step_id: "prompt".into(),
                status: StepStatus::Failed
            }]
        );
        assert_eq!(plan.context.len(), 1);
        assert_eq!(plan.context[0].path(), "context.answer");
        let text = plan.lines().join("\n");
        assert!(text.contains("status: failed -> running"), "{text}");
        assert!(text.contains("step prompt (failed) disappears"), "{text}");
        assert!(text.contains("error: prompt failed -> none"), "{text}");
        assert!(!plan.is_noop());
    }

    #[test]
    fn a_live_lease_is_the_first_line_and_an_expired_or_finished_one_is_not_mentioned() {
        use crate::fixtures::{failed_workflow, summaries, t0};
        let (state, checkpoints) = failed_workflow();
        let plan = || RollbackPlan::new(state.clone(), checkpoints[1].clone()).unwrap();
        let mut row = summaries()[1].clone(); // running
        row.lease_owner = Some("worker-1".into());
        row.lease_expires_at = Some(t0() + chrono::Duration::seconds(42));

        let live = plan().with_live_lease(LiveLease::of(&row, t0()));
        let lines = live.lines();
        assert_eq!(
            lines[0],
            "WARNING: worker-1 holds this workflow's lease until 2026-11-25 09:00:42 UTC: it \
             is running it; rolling back ends its lease and refuses its next write"
        );
        assert!(lines[1].starts_with("Roll back workflow"), "{lines:?}");
        assert_eq!(live.warning().as_deref(), Some(lines[0].as_str()));

        // Expired: its replica stopped; nobody runs the workflow.
        let later = t0() + chrono::Duration::seconds(43);
        row.lease_expired = true;
        assert_eq!(LiveLease::of(&row, later), None);
        // Expired on this machine's clock only (it runs ahead of the database's): still
        // live as far as anyone knows.
        row.lease_expired = false;
        assert!(LiveLease::of(&row, later).is_some());
        // Expired on the database's clock only (this machine's runs behind): likewise.
        row.lease_expired = true;
        assert!(LiveLease::of(&row, t0()).is_some());
        row.lease_expired = false;
        // Finished, its lease not run out: the store refuses a plain write all the same.
        row.status = WorkflowStatus::Failed;
        assert!(LiveLease::of(&row, t0()).is_some());
        // Released: nobody's.
        row.lease_owner = None;
        assert_eq!(LiveLease::of(&row, t0()), None);
        let plain = plan().with_live_lease(None);
        assert_eq!(plain.warning(), None);
        assert!(plain.lines()[0].starts_with("Roll back workflow"));
    }

    #[test]
    fn a_checkpoint_of_the_workflow_under_another_name_rolls_back_nothing_and_says_why() {
        use crate::fixtures::{failed_workflow, summaries, t0};
        let (state, checkpoints) = failed_workflow();
        let mut renamed = checkpoints[1].clone();
        renamed.snapshot["workflow_name"] = json!("Someone else's");
        let mut row = summaries()[1].clone();
        row.lease_owner = Some("worker-1".into());
        row.lease_expires_at = Some(t0() + chrono::Duration::seconds(42));
        let plan = RollbackPlan::new(state.clone(), renamed)
            .unwrap()
            .with_live_lease(LiveLease::of(&row, t0()));
        let why = plan.refused.clone().unwrap();
        assert!(why.contains("workflow_name \"Someone else's\""), "{why}");
        // Nothing changes, so no lease warning either: the refusal comes first.
        assert_eq!((plan.target.clone(), plan.warning()), (state, None));
        assert!(!plan.is_noop());
        let lines = plan.lines();
        assert!(
            lines[0].starts_with("Cannot roll back workflow"),
            "{lines:?}"
        );
        assert_eq!(lines[1], why);
    }

    #[test]
    fn rolling_back_to_the_current_state_is_a_noop() {
        let state = WorkflowState::new("wf-1", "Answer", None, json!({}));
        let checkpoint = Checkpoint::of(&state, "start").unwrap();
        let plan = RollbackPlan::new(state, checkpoint).unwrap();
        assert!(plan.is_noop());
        let lines = plan.lines();
        assert!(
            lines[lines.len() - 2].contains("nothing changes"),
            "{lines:?}"
        );
        assert!(
            lines[lines.len() - 1].contains("becomes the newest"),
            "{lines:?}"
        );
    }
}
