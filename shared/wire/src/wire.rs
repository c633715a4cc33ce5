//! The JSON bodies of every endpoint and of the sync protocol (see docs/protocol.md, "Branch
//! endpoints", "Central endpoints", "Sync push" and "Sync pull").
//!
//! Request types are deliberately loose (`Option`s) where the protocol allows two shapes, so
//! that a wrong body gets a precise message from the service's validation instead of serde's
//! "data did not match any variant". Response types are exact.
use crate::event::nonzero_delta;
use crate::ids::{BranchId, ProductId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;

// ---------------------------------------------------------------- branch endpoints

/// One line of a `POST /sell` basket.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SellLineRequest {
    pub product_id: ProductId,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
}

/// `POST /sell`, either `{"product_id","quantity"}` or `{"items":[...]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SellRequest {
    pub product_id: Option<ProductId>,
    pub quantity: Option<i64>,
    pub items: Option<Vec<SellLineRequest>>,
    pub cashier_id: Option<String>,
    /// The tenders; absent: recorded as one `unspecified` payment of the total.
    pub payments: Option<Vec<crate::till::Payment>>,
    /// The open shift (till session) the sale belongs to.
    pub shift_id: Option<String>,
}

/// The schema says what `sales::validate_sale` accepts, which one struct of `Option`s cannot:
/// exactly one of the two forms (a field of the other form may only be absent or null).
impl utoipa::PartialSchema for SellRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        use utoipa::openapi::{ObjectBuilder, Ref, Type};
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let quantity = || {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(crate::ids::MAX_QUANTITY as isize))
        };
        let cashier = || {
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::String,
                    Type::Null,
                ]))
                .min_length(Some(1))
                .max_length(Some(64))
                .description(Some("Recorded with the sale and sent to central"))
        };
        let payments = || {
            ArrayBuilder::new()
                .items(Ref::from_schema_name("Payment"))
                .min_items(Some(1))
                .max_items(Some(crate::till::MAX_PAYMENTS))
                .description(Some(
                    "Tenders. Together they cover the total; only cash may exceed it (the excess is the change). \
                     Absent: one `unspecified` payment of the total.",
                ))
        };
        let shift = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z0-9._-]{1,64}$"))
                .description(Some("An open shift of this branch"))
        };
        let single = ObjectBuilder::new()
            .title(Some("one product"))
            .property("product_id", Ref::from_schema_name("ProductId"))
            .property("quantity", quantity())
            .property("cashier_id", cashier())
            .property("payments", payments())
            .property("shift_id", shift())
            .property("items", null())
            .required("product_id")
            .required("quantity");
        let basket = ObjectBuilder::new()
            .title(Some("basket"))
            .property(
                "items",
                ArrayBuilder::new()
                    .items(Ref::from_schema_name("SellLineRequest"))
                    .min_items(Some(1))
                    // `colmena_sucursal::sales::MAX_LINES`; a unit test there keeps them equal.
                    .max_items(Some(500)),
            )
            .property("cashier_id", cashier())
            .property("payments", payments())
            .property("shift_id", shift())
            .property("product_id", null())
            .property("quantity", null())
            .required("items");
        OneOfBuilder::new()
            .item(single)
            .item(basket)
            .description(Some(
                "Either one product (`product_id`, `quantity`) or a basket (`items`), never both. A basket is \
                 all-or-nothing.",
            ))
            .examples([
                json!({"product_id": "ARROZ-1KG", "quantity": 2, "cashier_id": "caja-1"}),
                json!({"items": [{"product_id": "ARROZ-1KG", "quantity": 2}, {"product_id": "COCA-500ML", "quantity": 1}]}),
            ])
            .into()
    }
}

impl ToSchema for SellRequest {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push(("ProductId".into(), ProductId::schema()));
        schemas.push(("SellLineRequest".into(), SellLineRequest::schema()));
        schemas.push(("Payment".into(), crate::till::Payment::schema()));
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct SaleLineOut {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
    pub remaining_stock: i64,
}

/// The 201 of `POST /sell`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"sale_id": "CUS-0000000042", "branch_id": "CUS", "seq": 42,
    "lines": [{"product_id": "ARROZ-1KG", "quantity": 2, "unit_price_cents": 520, "line_total_cents": 1040,
               "remaining_stock": 118}],
    "total_cents": 1040, "sold_at": "2026-11-23T16:00:00Z", "cashier_id": "caja-1",
    "payments": [{"method": "cash", "amount_cents": 2000}], "change_cents": 960, "shift_id": "CUS-SH-000007",
    "sync": "pending"}))]
pub struct SaleResponse {
    pub sale_id: String,
    pub branch_id: String,
    pub seq: u64,
    pub lines: Vec<SaleLineOut>,
    pub total_cents: i64,
    #[schema(format = DateTime)]
    pub sold_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_id: Option<String>,
    /// The tenders as recorded (one `unspecified` payment when the request had none).
    pub payments: Vec<crate::till::Payment>,
    /// Cash given back: what the payments exceed the total by.
    pub change_cents: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_id: Option<String>,
    #[schema(example = "pending")]
    /// `pending` until central acknowledges the sale (always `pending` in a 201).
    #[schema()]
    pub sync: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"product_id": "ARROZ-1KG", "name": "Arroz Costeño 1 kg", "price_cents": 520, "stock": 118}))]
pub struct BranchProduct {
    pub product_id: String,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct BranchInventory {
    pub branch_id: String,
    pub products: Vec<BranchProduct>,
}

/// `POST /stock/adjustments`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"product_id": "ARROZ-1KG", "quantity_delta": 24, "reason": "receipt"}))]
pub struct AdjustmentRequest {
    pub product_id: ProductId,
    #[schema(schema_with = nonzero_delta)]
    pub quantity_delta: i64,
    #[schema(min_length = 1, max_length = 64)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct AdjustmentResponse {
    pub seq: u64,
    pub stock: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct OutboxStatus {
    pub pending: u64,
    pub oldest_pending_age_seconds: f64,
    pub last_seq: u64,
    pub acked_through: u64,
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct BranchStatus {
    pub branch_id: String,
    pub central_url: String,
    #[schema(value_type = CircuitState)]
    pub circuit: String,
    pub outbox: OutboxStatus,
    #[schema(format = DateTime)]
    pub last_push_ok_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_pull_ok_at: Option<String>,
    pub pull_cursor: u64,
}

/// `GET /outbox`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboxPage {
    pub branch_id: String,
    pub events: Vec<Event>,
}

/// `--catalog FILE`: the offline first-boot seed of a branch.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogSeedItem {
    pub product_id: ProductId,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// `BranchStatus.circuit`: the state of the circuit breaker towards the central URL in use.
/// Only a schema: the status is built from `breaker::State::as_str`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

// ---------------------------------------------------------------- sync protocol

pub use crate::event::{Event, EventKind, EventLine};

/// `POST /sync/push`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"branch_id": "CUS", "events": [
    {"seq": 41, "kind": "sale", "occurred_at": "2026-11-23T16:00:00Z", "sale_id": "CUS-0000000041",
     "lines": [{"product_id": "ARROZ-1KG", "quantity": 2, "unit_price_cents": 520}], "total_cents": 1040},
    {"seq": 42, "kind": "adjustment", "occurred_at": "2026-11-23T16:05:00Z", "product_id": "ARROZ-1KG",
     "quantity_delta": 24, "reason": "receipt"}]}))]
pub struct PushRequest {
    pub branch_id: BranchId,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct PushResponse {
    pub applied_through: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    #[default]
    Product,
    Allocation,
    /// A user created or changed at central (`user` holds it). Sent only to branches that
    /// ask for users (`include=users` on the pull), so older branches never see it.
    User,
    /// A transfer the branch sends or receives, as central knows it now (`transfer` holds
    /// it). Sent only to the transfer's two branches.
    Transfer,
    /// A kind this build does not know (from a newer central): skipped, never applied.
    #[serde(other)]
    Unknown,
}

/// One entry of `GET /sync/pull`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Change {
    pub cursor: u64,
    pub kind: ChangeKind,
    /// Empty for `user` and `transfer` changes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::users::UserRecord>,
    /// Product changes: the catalog fields of docs/protocol.md, "Catalog and stock rules".
    /// Absent from an older central's feed, which a branch reads as "no barcode, no
    /// category, active, no reorder point, no scheduled price".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder_point: Option<i64>,
    /// A price that replaces `price_cents` at its instant, on the branch's own clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_price: Option<ScheduledPrice>,
    /// Transfer changes: the whole transfer (docs/protocol.md, "Transfers").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<crate::transfers::Transfer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct PullResponse {
    pub changes: Vec<Change>,
    pub next: u64,
    pub applied_through: u64,
}

// ---------------------------------------------------------------- central endpoints

pub use crate::catalog::{Product, ProductList, ProductUpsert, ScheduledPrice};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"product_id": "ARROZ-1KG", "quantity": 120}))]
pub struct AllocationRequest {
    pub product_id: ProductId,
    #[schema(schema_with = nonzero_delta)]
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct AllocationResponse {
    pub branch_id: String,
    pub product_id: String,
    pub quantity: i64,
    pub cursor: u64,
    /// Central's ledger stock of this product at this branch after the allocation.
    pub branch_stock: i64,
}

/// One product of central's `GET /inventory`. `name`/`price_cents` are null for a product a
/// branch sold (from its offline seed catalog) that central's catalog does not have yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"product_id": "ARROZ-1KG", "name": "Arroz Costeño 1 kg", "price_cents": 520,
    "total_stock": 208, "by_branch": {"CUS": 118, "ABA": 80}, "in_transit": 10}))]
pub struct CentralProductStock {
    pub product_id: String,
    pub name: Option<String>,
    pub price_cents: Option<i64>,
    /// Σ `by_branch` + `in_transit`.
    pub total_stock: i64,
    pub by_branch: BTreeMap<String, i64>,
    /// Units dispatched by one branch and not yet received by another.
    #[serde(default)]
    pub in_transit: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CentralInventory {
    pub products: Vec<CentralProductStock>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct BranchSummary {
    pub branch_id: String,
    pub applied_through: u64,
    #[schema(format = DateTime)]
    pub last_push_at: Option<String>,
    pub events_applied: u64,
    pub sales_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BranchList {
    pub branches: Vec<BranchSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CentralSaleLine {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

/// A sale as central knows it (`GET /sales`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CentralSale {
    pub sale_id: String,
    pub branch_id: String,
    pub seq: u64,
    pub lines: Vec<CentralSaleLine>,
    pub total_cents: i64,
    #[schema(format = DateTime)]
    pub sold_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_id: Option<String>,
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The tenders (one `unspecified` payment when the branch recorded none).
    pub payments: Vec<crate::till::Payment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_id: Option<String>,
    /// What the branch's returns of this sale have refunded so far.
    pub returned_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SalesPage {
    pub sales: Vec<CentralSale>,
    #[schema(example = "sCUS.1795449600000.42")]
    /// Pass as `after` for the next page; `null` on the last page.
    #[schema()]
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}
