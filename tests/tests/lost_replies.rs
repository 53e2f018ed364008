//! A step whose write committed but whose reply never came back (the connection dropped in
//! between), sent again by the caller: stored once, and the first call's checkpoint comes
//! back. The loss is the store's fail point `step-reply-lost`; fail points are global to
//! the process, so this file holds one test, which runs every backend in turn.

use backend_suite::{Backend, open_with, step, workflow};
use llm_orchestrator_state::{StateStore, StateStoreError, StepStatus, StepWrite};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_sent_again_after_its_reply_was_lost_is_stored_once() {
    let scenario = fail::FailScenario::setup();
    for backend in Backend::ALL {
        let store = open_with(backend, |builder| builder.checkpoint_retention(None)).await;
        let mut state = workflow("lost-reply");
        state.mark_running();
        store.save_workflow_state(&state).await.expect("saving");
        let done = step("s1", StepStatus::Completed, json!({"answer": 42}));

        fail::cfg("step-reply-lost", "1*return").expect("arming the fail point");
        let mut copy = state.clone();
        let lost = store.record_step(&mut copy, done.clone()).await;
        assert!(
            matches!(lost, Err(StateStoreError::Connection(_))),
            "{backend:?}: {lost:?}"
        );
        assert_eq!(
            copy, state,
            "{backend:?}: an error leaves the copy as it was"
        );
        let stored = store.load_workflow_state(&state.id).await.expect("loading");
        assert!(
            stored.steps.contains_key("s1"),
            "{backend:?}: it did commit"
        );

        let again = store
            .record_step(&mut copy, done)
            .await
            .expect("sending it again");
        let checkpoints = store
            .list_checkpoints(&state.id, 100, 0)
            .await
            .expect("listing");
        assert_eq!(
            checkpoints,
            vec![again.clone()],
            "{backend:?}: one checkpoint"
        );
        assert_eq!(
            copy, stored,
            "{backend:?}: the copy is what the first call stored"
        );
        let versioned = store
            .load_workflow_state_versioned(&state.id)
            .await
            .expect("loading");
        assert_eq!(
            versioned.version, 2,
            "{backend:?}: one write after the save"
        );

        // A conditional write with a context patch, the same.
        let write = StepWrite::new().merge_context(json!({"seen": true}));
        let next = step("s2", StepStatus::Completed, json!(null));
        fail::cfg("step-reply-lost", "1*return").expect("arming the fail point");
        let before = copy.clone();
        let lost = store
            .record_step_with(&mut copy, next.clone(), &write)
            .await;
        assert!(
            matches!(lost, Err(StateStoreError::Connection(_))),
            "{backend:?}: {lost:?}"
        );
        assert_eq!(copy, before);
        let (checkpoint, version) = store
            .record_step_with(&mut copy, next, &write)
            .await
            .expect("sending it again");
        assert_eq!(version, 3, "{backend:?}");
        assert_eq!(copy.context["seen"], json!(true));
        let latest = store
            .get_latest_checkpoint(&state.id)
            .await
            .expect("reading")
            .expect("one");
        assert_eq!(latest, checkpoint);
        assert_eq!(
            store
                .list_checkpoints(&state.id, 100, 0)
                .await
                .expect("listing")
                .len(),
            2,
            "{backend:?}"
        );
    }
    fail::cfg("step-reply-lost", "off").expect("disarming");
    scenario.teardown();
}
