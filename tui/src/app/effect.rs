//! The side effects `update` asks the event loop to perform.

use llm_orchestrator_state::RetentionPolicy;
use llm_orchestrator_state::admin::WorkflowQuery;
use uuid::Uuid;

use super::LoadedDetail;
#[cfg(doc)]
use super::Message;

/// A side effect `update` asks the event loop (the runtime) to perform: each runs in a
/// spawned task and answers with a [`Message`]
/// (all but [`Effect::Discard`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A page of workflows; `append` adds it below the loaded rows.
    LoadWorkflows {
        /// Request number, echoed back.
        request: u64,
        /// What to load.
        query: WorkflowQuery,
        /// Add below the loaded rows instead of replacing them.
        append: bool,
    },
    /// Counts per status.
    LoadCounts,
    /// One workflow in full with its version, its context and every step's outputs
    /// printed in the task: on opening it, on `r`, and when an automatic refresh finds its
    /// version changed.
    LoadDetail(Uuid),
    /// Only the version a workflow is stored at (one small query, no JSON): what an
    /// automatic refresh of the detail screen asks first.
    CheckDetailVersion(Uuid),
    /// A workflow's checkpoints without their snapshots (id, step, time, size, pin), and
    /// its totals: what the checkpoints screen lists.
    LoadCheckpointInfos(Uuid),
    /// One checkpoint with its snapshot, by checkpoint id: when the user opens it.
    LoadSnapshot(Uuid),
    /// A workflow's checkpoint totals and lineage.
    LoadHistory(Uuid),
    /// Pin a checkpoint with a label, or unpin it (`None`).
    SetPin {
        /// The checkpoint.
        checkpoint: Uuid,
        /// The label, or `None` to unpin.
        label: Option<String>,
    },
    /// A new workflow from a checkpoint.
    Fork {
        /// The checkpoint.
        checkpoint: Uuid,
        /// The new workflow's workflow_id.
        new_workflow_id: String,
    },
    /// Prune with a policy, or only report what it would delete.
    Prune {
        /// The policy.
        policy: RetentionPolicy,
        /// Only report.
        dry_run: bool,
    },
    /// Diff a checkpoint with another one, or with the current state (`None`).
    Diff {
        /// The older side.
        from: Uuid,
        /// The newer side, or the workflow's current state.
        to: Option<Uuid>,
    },
    /// Work out what rolling back to a checkpoint changes.
    PlanRollback(Uuid),
    /// Roll back to a checkpoint.
    Rollback(Uuid),
    /// Roll back to a checkpoint of a workflow a replica holds the lease on, which the
    /// operator confirmed after being warned: the lease ends (its holder is fenced).
    RollbackOverridingLease(Uuid),
    /// Free a workflow the detail screen no longer shows, off the UI thread: dropping a
    /// 6 MB context and its printed lines takes tens of milliseconds (debug build). No
    /// answer.
    Discard(Box<LoadedDetail>),
}
