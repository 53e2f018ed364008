//! Checkpoints stored as changes from a base snapshot.
//!
//! A *base* is a full snapshot of a workflow, kept once in `checkpoint_bases`. A
//! checkpoint row holds either its whole snapshot (`base_id` NULL: rows written before
//! bases existed, imported or forked ones, tiny snapshots, `full_snapshot_every` 1) or
//! the RFC 6902 JSON Patch that turns its base into its snapshot. So reading a
//! checkpoint reads two rows, whatever the workflow's history, and a checkpoint deleted
//! by retention never takes another's snapshot with it: checkpoints depend on bases, not
//! on each other.
//!
//! The store remembers, per workflow, the last base it wrote ([`Bases`]) and diffs each
//! new checkpoint against it; it writes a new base every
//! [`StoreOptions::full_snapshot_every`](crate::StoreOptions::full_snapshot_every)
//! checkpoints, or sooner when the patch grows to half the snapshot. Bases are immutable,
//! so a patch against one is right for as long as the base is stored, and the foreign
//! key from `checkpoints.base_id` makes the database refuse a patch whose base was
//! deleted: that write is then made again with a base of its own ([`Form::NewBase`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use entity::{checkpoint_bases, checkpoints, workflow_states};
use sea_orm::sea_query::{Alias, DeleteStatement, Expr, ExprTrait as _, Query};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryTrait as _};
use serde_json::Value;
use uuid::Uuid;

use crate::backend::{Db, Write};
use crate::error::{Result, StateStoreError};
use crate::model::Checkpoint;

/// Snapshots up to this size (bytes of JSON text) are stored whole: a patch and a base
/// row would save nothing worth a second row.
const SMALL_SNAPSHOT_BYTES: u64 = 1024;

/// The most snapshot bytes [`Bases`] keeps in memory; past it, workflows are forgotten
/// (their next checkpoint starts a new base).
const REMEMBERED_BYTES: u64 = 64 * 1024 * 1024;

/// How one new checkpoint's snapshot is stored.
#[derive(Debug, Clone)]
pub(crate) enum Form {
    /// Whole, in the checkpoint's row.
    Whole,
    /// Whole, in a new base with this id; the checkpoint's row holds an empty patch.
    NewBase(Uuid),
    /// As a patch from the stored base `base`.
    Patch {
        /// The base the patch applies to.
        base: Uuid,
        /// The base's snapshot.
        base_snapshot: Arc<Value>,
        /// The RFC 6902 patch, as JSON.
        patch: Value,
    },
}

impl Form {
    /// A new base with a new id (time-ordered, so a workflow's newest base sorts last).
    pub(crate) fn new_base() -> Self {
        Self::NewBase(Uuid::now_v7())
    }

    /// Whether the write depends on a base stored before it.
    pub(crate) fn is_patch(&self) -> bool {
        matches!(self, Self::Patch { .. })
    }

    /// The checkpoint row's `snapshot` and `base_id` for `checkpoint` in this form.
    pub(crate) fn row_values(&self, checkpoint: &Checkpoint) -> (Value, Option<Uuid>) {
        match self {
            Self::Whole => (checkpoint.snapshot.clone(), None),
            Self::NewBase(id) => (Value::Array(Vec::new()), Some(*id)),
            Self::Patch { base, patch, .. } => (patch.clone(), Some(*base)),
        }
    }

    /// How the workflow row written with this checkpoint stores `context`: as the patch
    /// from the context in the checkpoint's (stored) base, with the base's id; `None`
    /// (whole) when the checkpoint is whole, starts a new base (written after the
    /// workflow row, which it refers to), or its base holds no context.
    pub(crate) fn context_row(&self, context: &Value) -> Option<(Value, Uuid)> {
        let Self::Patch {
            base,
            base_snapshot,
            ..
        } = self
        else {
            return None;
        };
        let patch = json_patch::diff(base_snapshot.get("context")?, context);
        Some((serde_json::to_value(patch).ok()?, *base))
    }

    /// The write of the new base this form needs first, if any.
    pub(crate) fn base_write(&self, checkpoint: &Checkpoint) -> Option<Write> {
        match self {
            Self::NewBase(id) => Some(Write::Insert(
                checkpoint_bases::Entity::insert(checkpoint_bases::ActiveModel {
                    id: Set(*id),
                    workflow_state_id: Set(checkpoint.workflow_state_id),
                    snapshot: Set(checkpoint.snapshot.clone()),
                })
                .into_query(),
            )),
            _ => None,
        }
    }
}

/// The base a workflow's next checkpoints are diffed against.
struct Base {
    id: Uuid,
    snapshot: Arc<Value>,
    bytes: u64,
    /// Checkpoints stored against it so far, its own included.
    uses: u32,
}

/// The last base the store wrote for each workflow, shared by every scope of one store
/// (its clones and transactions).
pub struct Bases {
    every: u32,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    by_workflow: HashMap<Uuid, Base>,
    bytes: u64,
}

impl std::fmt::Debug for Bases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bases").field("every", &self.every).finish()
    }
}

impl Bases {
    /// No base known yet; a full snapshot for at most `every` checkpoints.
    pub(crate) fn new(every: u32) -> Self {
        Self {
            every,
            known: Mutex::new(Known::default()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        // A panic elsewhere while the lock was held leaves a map that is still whole.
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How to store `checkpoint` (`size` bytes of JSON): as a patch from the workflow's
    /// known base while it has served fewer than `every` checkpoints and the patch is at
    /// most half the snapshot; else whole, or in a new base.
    pub(crate) fn form(&self, checkpoint: &Checkpoint, size: u64) -> Form {
        if self.every <= 1 || size <= SMALL_SNAPSHOT_BYTES {
            return Form::Whole;
        }
        let known = self
            .known()
            .by_workflow
            .get(&checkpoint.workflow_state_id)
            .and_then(|base| {
                (base.uses < self.every).then(|| (base.id, Arc::clone(&base.snapshot)))
            });
        if let Some((base, base_snapshot)) = known {
            let patch = json_patch::diff(&base_snapshot, &checkpoint.snapshot);
            if let Ok(patch) = serde_json::to_value(patch) {
                let patch_bytes = patch.to_string().len() as u64;
                if patch_bytes.saturating_mul(2) <= size {
                    return Form::Patch {
                        base,
                        base_snapshot,
                        patch,
                    };
                }
            }
        }
        Form::new_base()
    }

    /// Records that `checkpoint` was stored in `form` (its write went through).
    pub(crate) fn filed(&self, checkpoint: &Checkpoint, form: &Form, size: u64) {
        let workflow = checkpoint.workflow_state_id;
        let mut known = self.known();
        match form {
            Form::Whole => {}
            Form::Patch { base, .. } => {
                if let Some(known) = known.by_workflow.get_mut(&workflow)
                    && known.id == *base
                {
                    known.uses += 1;
                }
            }
            Form::NewBase(id) => {
                let base = Base {
                    id: *id,
                    snapshot: Arc::new(checkpoint.snapshot.clone()),
                    bytes: size,
                    uses: 1,
                };
                known.bytes += size;
                if let Some(old) = known.by_workflow.insert(workflow, base) {
                    known.bytes -= old.bytes;
                }
                while known.bytes > REMEMBERED_BYTES {
                    let Some(&other) = known.by_workflow.keys().find(|id| **id != workflow) else {
                        break;
                    };
                    if let Some(old) = known.by_workflow.remove(&other) {
                        known.bytes -= old.bytes;
                    }
                }
            }
        }
    }

    /// Forgets the workflow's base (its next checkpoint starts a new one).
    pub(crate) fn forget(&self, workflow_state_id: Uuid) {
        let mut known = self.known();
        if let Some(old) = known.by_workflow.remove(&workflow_state_id) {
            known.bytes -= old.bytes;
        }
    }
}

/// The snapshot of a checkpoint row stored as a patch: `stored` (the row's `snapshot`,
/// parsed) applied to `base`. `Serialization` when the base is missing or the patch does
/// not apply.
pub(crate) fn snapshot_of(stored: Value, base: Option<&Value>) -> Result<Value> {
    let base =
        base.ok_or_else(|| StateStoreError::corrupt("its base snapshot is not stored".to_owned()))?;
    let patch: json_patch::Patch = serde_json::from_value(stored).map_err(|err| {
        StateStoreError::corrupt(format!("its stored change is not a JSON Patch: {err}"))
    })?;
    let mut snapshot = base.clone();
    json_patch::patch(&mut snapshot, &patch).map_err(|err| {
        StateStoreError::corrupt(format!("its stored change does not apply: {err}"))
    })?;
    Ok(snapshot)
}

/// Whether the base `id` is stored, and, on Postgres, kept so until the end of the
/// transaction `conn` is (`FOR KEY SHARE`: a concurrent delete waits): what a patch
/// written inside a transaction relies on, where a refused write would end the whole
/// transaction instead of being written again. (A SQLite write transaction holds the
/// database's write lock already.)
pub(crate) async fn still_stored<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<bool> {
    use sea_orm::sea_query::LockType;
    let backend = conn.get_database_backend();
    let mut select = Query::select();
    select
        .expr(Expr::val(1))
        .from(checkpoint_bases::Entity)
        .and_where(Expr::col((checkpoint_bases::Entity, checkpoint_bases::Column::Id)).eq(id));
    if backend == sea_orm::DbBackend::Postgres {
        select.lock(LockType::KeyShare);
    }
    Ok(conn.query_one_raw(backend.build(&select)).await?.is_some())
}

/// Whether two JSON documents are the same, numbers compared by value: `1e19` written by
/// serde_json reads back from `jsonb` as `10000000000000000000`.
pub(crate) fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

/// Deletes the bases no checkpoint and no workflow's context refers to any more, of one
/// workflow or of all, but never a workflow's newest base: the one a store may be about to store patches against.
pub(crate) fn unneeded(workflow_state_id: Option<Uuid>) -> DeleteStatement {
    use checkpoint_bases::Column as B;
    let newer = Alias::new("newer");
    let this = |column: B| Expr::col((checkpoint_bases::Entity, column));
    let has_newer = Query::select()
        .expr(Expr::val(1))
        .from_as(checkpoint_bases::Entity, newer.clone())
        .and_where(
            Expr::col((newer.clone(), B::WorkflowStateId))
                .equals((checkpoint_bases::Entity, B::WorkflowStateId)),
        )
        .and_where(Expr::col((newer, B::Id)).gt(this(B::Id)))
        .to_owned();
    let needed = Query::select()
        .expr(Expr::val(1))
        .from(checkpoints::Entity)
        .and_where(
            Expr::col((checkpoints::Entity, checkpoints::Column::BaseId))
                .equals((checkpoint_bases::Entity, B::Id)),
        )
        .to_owned();
    let context_needs = Query::select()
        .expr(Expr::val(1))
        .from(workflow_states::Entity)
        .and_where(
            Expr::col((
                workflow_states::Entity,
                workflow_states::Column::ContextBaseId,
            ))
            .equals((checkpoint_bases::Entity, B::Id)),
        )
        .to_owned();
    let mut delete = Query::delete();
    delete
        .from_table(checkpoint_bases::Entity)
        .and_where(Expr::exists(has_newer))
        .and_where(Expr::exists(needed).not())
        .and_where(Expr::exists(context_needs).not());
    if let Some(workflow) = workflow_state_id {
        delete.and_where(this(B::WorkflowStateId).eq(workflow));
    }
    delete
}

/// Deletes the unneeded bases (see [`unneeded`]) outside any transaction, as a clean-up
/// that may fail: a base left behind costs space, never a read, and the next clean-up
/// takes it. Inside a transaction it does nothing (a failed statement would end the
/// caller's transaction on Postgres).
pub(crate) async fn collect<C: Db>(conn: &C, workflow_state_id: Option<Uuid>) {
    if conn.in_transaction() {
        return;
    }
    let statement = conn
        .get_database_backend()
        .build(&unneeded(workflow_state_id));
    if let Err(err) = conn.execute_raw(statement).await {
        tracing::debug!(error = %err, "could not delete unneeded checkpoint bases");
    }
}
