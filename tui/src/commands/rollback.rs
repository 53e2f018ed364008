//! `wfadmin rollback` (formerly `restore`): the plan of what changes, the question, the rollback.

use std::io::{BufRead, Write};

use llm_orchestrator_state::StateStore;

use super::consent::Consent;
use super::list::summary_of;
use crate::db::{self, Store};
use crate::error::{AdminError, Result};
use crate::format;
use crate::rollback_plan::{LiveLease, RollbackPlan};

/// The plan for rolling back to a checkpoint, with the replica that holds the workflow's
/// lease if one does (it would overwrite the rollback).
pub async fn plan_rollback(
    store: &Store,
    clock: db::Clock,
    checkpoint_id: uuid::Uuid,
) -> Result<RollbackPlan> {
    let checkpoint = store.get_checkpoint(&checkpoint_id).await?;
    let workflow_state_id = checkpoint.workflow_state_id;
    // A workflow whose stored JSON cannot be read is what a rollback repairs.
    let plan = match store.load_workflow_state(&workflow_state_id).await {
        Ok(current) => RollbackPlan::new(current, checkpoint)?,
        Err(err) if err.is_unreadable_data() => RollbackPlan::over_unreadable(checkpoint, &err)?,
        Err(err) => return Err(err.into()),
    };
    let lease = summary_of(store, workflow_state_id)
        .await?
        .and_then(|row| LiveLease::of(&row, clock.now()));
    Ok(plan.with_live_lease(lease))
}

/// What the operator said on `rollback`'s command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Consented {
    /// `--yes`: do not ask.
    pub yes: bool,
    /// `--override-lease`: roll back even while a replica holds the workflow's lease.
    pub override_lease: bool,
}

/// `rollback`: prints the plan, asks unless `yes`, then rolls back. While a replica holds
/// the workflow's lease, the rollback ends that lease when the operator confirmed after
/// the plan's warning or passed `--override-lease`; with `--yes` alone it is refused,
/// naming the holder, before anything is written.
pub async fn rollback(
    store: &Store,
    clock: db::Clock,
    out: &mut impl Write,
    input: &mut impl BufRead,
    interactive: bool,
    checkpoint: &str,
    consented: Consented,
) -> Result<()> {
    let Consented {
        yes,
        override_lease,
    } = consented;
    let id = db::parse_uuid("checkpoint", checkpoint)?;
    let plan = plan_rollback(store, clock, id).await?;
    for line in plan.lines() {
        writeln!(out, "{line}")?;
    }
    if plan.refused.is_some() {
        return Err(AdminError::new(
            "not rolling back: the checkpoint holds no state of this workflow; nothing changed",
        ));
    }
    if let Some(lease) = plan.live_lease.as_ref().filter(|_| yes && !override_lease) {
        return Err(AdminError::new(format!(
            "not rolling back: {} holds the workflow's lease (it is running it); pass \
             --override-lease to roll back anyway and end its lease",
            format::printable(&lease.owner)
        )));
    }
    if !yes {
        let consent = Consent {
            input,
            interactive,
            yes,
        };
        consent.ask(
            out,
            "Roll back?",
            "not rolling back: stdin is not a terminal; pass --yes to confirm",
            "rollback cancelled; nothing changed",
        )?;
    }
    // Confirmed under the warning, or told to: the lease ends with the rollback. A lease
    // taken since the plan was read still refuses a plain rollback.
    let state = if override_lease || plan.live_lease.is_some() {
        store.rollback_to_checkpoint_overriding_lease(&id).await?
    } else {
        store.rollback_to_checkpoint(&id).await?
    };
    tracing::info!(checkpoint_id = %id, workflow_state_id = %state.id, "rolled back");
    writeln!(
        out,
        "rolled back workflow {} ({}) to checkpoint {}: status {}, {}",
        format::printable(&state.workflow_id),
        state.id,
        id,
        state.status,
        format::count(state.steps.len() as u64, "step", "steps")
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::commands::tests::seeded;
    use llm_orchestrator_state::SaveCondition;
    use llm_orchestrator_state::WorkflowStatus;

    #[tokio::test]
    async fn rollback_asks_and_only_yes_rolls_back() {
        let (store, state, checkpoints) = seeded().await;
        let oldest = checkpoints[1].id.to_string();
        let mut out = Vec::new();
        let err = rollback(
            &store,
            db::Clock::default(),
            &mut out,
            &mut "n\n".as_bytes(),
            true,
            &oldest,
            Consented::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("cancelled"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("status: failed -> running"), "{text}");
        assert!(text.ends_with("Roll back? [y/N] "), "{text}");
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

        let mut out = Vec::new();
        rollback(
            &store,
            db::Clock::default(),
            &mut out,
            &mut "yes\n".as_bytes(),
            true,
            &oldest,
            Consented::default(),
        )
        .await
        .unwrap();
        let now = store.load_workflow_state(&state.id).await.unwrap();
        assert_eq!(now.status, WorkflowStatus::Running);
        assert_eq!(now.steps.len(), 1);
    }

    #[tokio::test]
    async fn rollback_warns_first_when_a_replica_holds_the_lease() {
        let (store, mut state, checkpoints) = seeded().await;
        let oldest = checkpoints[1].id.to_string();
        let first_line = async |store: &Store| {
            let mut out = Vec::new();
            rollback(
                store,
                db::Clock::default(),
                &mut out,
                &mut "n\n".as_bytes(),
                true,
                &oldest,
                Consented::default(),
            )
            .await
            .unwrap_err();
            String::from_utf8(out)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_owned()
        };
        // Failed, nobody's: no warning.
        assert!(first_line(&store).await.starts_with("Roll back workflow"));

        // Running again, claimed by a live replica.
        state.status = WorkflowStatus::Running;
        state.error = None;
        store.save_workflow_state(&state).await.unwrap();
        let claims = store
            .claim_workflows("worker-1", std::time::Duration::from_secs(600), 10)
            .await
            .unwrap();
        let until = format::time(Some(claims[0].lease.expires_at));
        assert_eq!(
            first_line(&store).await,
            format!(
                "WARNING: worker-1 holds this workflow's lease until {until} UTC: it is \
                 running it; rolling back ends its lease and refuses its next write"
            )
        );
        // The TUI's plan says it too (the same plan, read by the same function).
        let plan = plan_rollback(&store, db::Clock::default(), checkpoints[1].id)
            .await
            .unwrap();
        assert_eq!(plan.live_lease.unwrap().owner, "worker-1");

        // Released: nobody runs it; no warning.
        store.release_lease(&claims[0].lease).await.unwrap();
        assert!(first_line(&store).await.starts_with("Roll back workflow"));
    }

    /// While a replica holds the lease, `--yes` alone rolls back nothing and says how to
    /// override; a yes after the warning, or `--override-lease`, rolls back and ends the
    /// lease, so the replica's next write under it is refused.
    #[tokio::test]
    async fn rollback_over_a_live_lease_needs_consent_and_fences_the_holder() {
        let (store, mut state, checkpoints) = seeded().await;
        let oldest = checkpoints[1].id.to_string();
        state.status = WorkflowStatus::Running;
        state.error = None;
        store.save_workflow_state(&state).await.unwrap();
        let claim = async || {
            store
                .claim_workflows("worker-1", std::time::Duration::from_secs(600), 10)
                .await
                .unwrap()
                .remove(0)
        };
        let rolled_back = async |answer: &str, consented: Consented| {
            let mut out = Vec::new();
            rollback(
                &store,
                db::Clock::default(),
                &mut out,
                &mut answer.as_bytes(),
                true,
                &oldest,
                consented,
            )
            .await
        };
        let claimed = claim().await;

        let yes = Consented {
            yes: true,
            override_lease: false,
        };
        let err = rolled_back("", yes).await.unwrap_err().to_string();
        assert!(
            err.contains("worker-1") && err.contains("--override-lease"),
            "{err}"
        );
        assert_eq!(store.load_workflow_state(&state.id).await.unwrap(), state);

        // Confirmed after the warning: rolled back, and the replica is fenced.
        rolled_back("y\n", Consented::default()).await.unwrap();
        let after = store.load_workflow_state(&state.id).await.unwrap();
        assert_eq!(after.steps.len(), 1);
        let mut late = claimed.state.clone();
        late.mark_paused();
        let fenced = store
            .save_workflow_state_if(&late, &SaveCondition::Lease(claimed.lease))
            .await;
        assert!(
            matches!(
                fenced,
                Err(llm_orchestrator_state::StateStoreError::Conflict(_))
            ),
            "{fenced:?}"
        );

        // Claimed again: --yes --override-lease rolls back without asking.
        let claimed = claim().await;
        let forced = Consented {
            yes: true,
            override_lease: true,
        };
        rolled_back("", forced).await.unwrap();
        assert!(
            store
                .renew_lease(&claimed.lease, std::time::Duration::from_secs(60))
                .await
                .is_err()
        );
    }
}
