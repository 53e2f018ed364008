//! The workload: a workflow state of a given size, changed the way an orchestrator changes
//! it after a step (status, context, one step), with text that does not compress to nothing.

use llm_orchestrator_state::{Checkpoint, StateStoreError, StepState, WorkflowState};
use serde_json::{Value, json};

/// Sizes of the workflow state the benchmark saves and checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Serialized size of the context JSON, in bytes (approximately).
    pub context_bytes: usize,
    /// Number of steps.
    pub steps: usize,
    /// Serialized size of each step's outputs JSON, in bytes (approximately).
    pub output_bytes: usize,
}

/// A small deterministic generator of lowercase words: text that looks like prose to a
/// compressor (Postgres TOAST compresses repetitive values to almost nothing, which would
/// flatter every write).
#[derive(Debug, Clone)]
pub struct Words(u64);

impl Words {
    /// A generator seeded with `seed` (any value; 0 is mapped to a non-zero state).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// About `len` bytes of space-separated lowercase words.
    pub fn text(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len + 12);
        while out.len() < len {
            let word_len = 2 + (self.next() % 9) as usize;
            for _ in 0..word_len {
                out.push((b'a' + (self.next() % 26) as u8) as char);
            }
            out.push(' ');
        }
        out.truncate(len);
        out
    }
}

/// Length of a JSON value once serialized.
pub fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value)
        .map(|bytes| bytes.len())
        .unwrap_or(0)
}

/// The id of the step at `index` (`step-00`, `step-01`, ...).
pub fn step_name(index: usize) -> String {
    format!("step-{index:02}")
}

impl Shape {
    fn context(&self, words: &mut Words, iteration: u64) -> Value {
        let mut context = json!({
            "iteration": iteration,
            "last_note": words.text(64),
            "model": "gpt-bench",
            "document": "",
        });
        let overhead = json_len(&context);
        context["document"] =
            Value::String(words.text(self.context_bytes.saturating_sub(overhead)));
        context
    }

    fn outputs(&self, words: &mut Words, iteration: u64) -> Value {
        let mut outputs = json!({"iteration": iteration, "tokens": 42, "text": ""});
        let overhead = json_len(&outputs);
        outputs["text"] = Value::String(words.text(self.output_bytes.saturating_sub(overhead)));
        outputs
    }

    /// A running workflow with every step completed once.
    pub fn new_state(&self, workflow_id: &str, words: &mut Words) -> WorkflowState {
        let mut state = WorkflowState::new(
            workflow_id,
            "bench workflow",
            Some("bench-user".into()),
            self.context(words, 0),
        );
        state.mark_running();
        for index in 0..self.steps {
            let mut step = StepState::new(step_name(index));
            step.mark_running();
            step.mark_completed(self.outputs(words, 0));
            state.upsert_step(step);
        }
        state
    }

    /// The serialized snapshot of a checkpoint of a fresh state of this shape: what the
    /// floor inserts when no single-task phase ran to provide one.
    pub fn snapshot(&self) -> Result<String, StateStoreError> {
        let state = self.new_state("bench-snapshot", &mut Words::new(7));
        let checkpoint = Checkpoint::of(&state, step_name(0))?;
        Ok(serde_json::to_string(&checkpoint.snapshot)?)
    }

    /// What an orchestrator does between two saves: one step re-runs with new outputs,
    /// the context changes, and the status flips between running and paused (both active).
    /// The context is patched, not regenerated, so the change costs little outside the store.
    pub fn advance(&self, state: &mut WorkflowState, iteration: u64, words: &mut Words) {
        if self.steps > 0 {
            let name = step_name((iteration % self.steps as u64) as usize);
            let mut step = state
                .steps
                .remove(&name)
                .unwrap_or_else(|| StepState::new(name));
            step.mark_running();
            step.mark_completed(self.outputs(words, iteration));
            state.upsert_step(step);
        }
        state.context["iteration"] = json!(iteration);
        state.context["last_note"] = Value::String(words.text(64));
        if iteration.is_multiple_of(2) {
            state.mark_running();
        } else {
            state.mark_paused();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_shape_serializes_to_about_8_kib() {
        let shape = Shape {
            context_bytes: 4096,
            steps: 10,
            output_bytes: 200,
        };
        let mut words = Words::new(1);
        let mut state = shape.new_state("wf", &mut words);
        let before = serde_json::to_value(&state).unwrap();
        let size = json_len(&before);
        assert!((7_000..9_500).contains(&size), "{size}");
        assert!((4_000..4_200).contains(&json_len(&state.context)));
        shape.advance(&mut state, 1, &mut words);
        assert_ne!(serde_json::to_value(&state).unwrap(), before);
        assert_eq!(state.steps.len(), 10);
    }
}
