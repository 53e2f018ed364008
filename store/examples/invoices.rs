//! A step that writes the application's own rows (an invoice, through its own SeaORM
//! entity) and records itself in the workflow state, in one transaction: both commit, or
//! neither does.
//!
//! ```text
//! cargo run -p llm-orchestrator-state --example invoices [database url or path]
//! ```

use llm_orchestrator_state::sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, PaginatorTrait, Schema, Set, TransactionTrait,
};
use llm_orchestrator_state::{StateStore, StateStoreBuilder, StepState, WorkflowState};
use serde_json::json;

/// The application's own table, which the state store knows nothing about.
mod invoice {
    use llm_orchestrator_state::sea_orm::entity::prelude::*;

    /// An invoice the "bill customer" step issues.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "invoices")]
    pub struct Model {
        /// Invoice number.
        #[sea_orm(primary_key, auto_increment = false)]
        pub number: i32,
        /// The workflow that issued it.
        pub workflow_id: String,
        /// Amount in cents.
        pub amount_cents: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The step: issues the invoice and records the step, in one transaction. Fails after
/// writing both when `fail` is set, to show that neither stays.
async fn bill_customer(
    store: &llm_orchestrator_state::SeaOrmStateStore,
    state: &mut WorkflowState,
    number: i32,
    fail: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let txn = store.connection().begin().await?;
    invoice::ActiveModel {
        number: Set(number),
        workflow_id: Set(state.workflow_id.clone()),
        amount_cents: Set(4_200),
    }
    .insert(&txn)
    .await?;
    let mut step = StepState::new("bill_customer");
    step.mark_running();
    step.mark_completed(json!({ "invoice": number }));
    let checkpoint = store.within(&txn).record_step(state, step).await?;
    if fail {
        // Dropping the transaction rolls back the invoice and the step together.
        return Err("the payment provider timed out".into());
    }
    txn.commit().await?;
    println!(
        "  invoice {number} and checkpoint {} committed together",
        checkpoint.id
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = std::env::args()
        .nth(1)
        .unwrap_or_else(|| ":memory:".to_owned());
    let store = StateStoreBuilder::new(target).connect().await?;
    let db = store.connection();
    let schema = Schema::new(db.get_database_backend());
    db.execute(
        schema
            .create_table_from_entity(invoice::Entity)
            .if_not_exists(),
    )
    .await?;

    let mut state = WorkflowState::new(
        format!("order-{}", uuid::Uuid::new_v4().simple()),
        "Bill an order",
        None,
        json!({"order": 1042}),
    );
    state.mark_running();
    store.save_workflow_state(&state).await?;

    // The next free invoice number, so the example can run again on the same database.
    let number = i32::try_from(invoice::Entity::find().count(db).await?)? + 1;

    println!("a step that fails after writing:");
    let before = state.clone();
    if let Err(err) = bill_customer(&store, &mut state.clone(), number, true).await {
        println!("  failed: {err}");
    }
    let invoices = invoice::Entity::find().count(db).await?;
    let stored = store.load_workflow_state(&state.id).await?;
    println!(
        "  invoices stored: {invoices} (before: {}); workflow unchanged: {}",
        number - 1,
        stored == before
    );

    println!("the same step, succeeding:");
    bill_customer(&store, &mut state, number, false).await?;
    let invoices = invoice::Entity::find().count(db).await?;
    let stored = store.load_workflow_state(&state.id).await?;
    println!(
        "  invoices stored: {invoices}; step recorded: {}",
        stored.step("bill_customer").is_some()
    );
    Ok(())
}
