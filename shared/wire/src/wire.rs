//! The JSON bodies of every endpoint and of the sync protocol (see docs/protocol.md, "Branch
//! endpoints", "Central endpoints", "Sync push" and "Sync pull").
//!
//! Request types are deliberately loose (`Option`s) where the protocol allows two shapes, so
//! that a wrong body gets a precise message from the service's validation instead of serde's
//! "data did not match any variant". Response types are exact.
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
        let single = ObjectBuilder::new()
            .title(Some("one product"))
            .property("product_id", Ref::from_schema_name("ProductId"))
            .property("quantity", quantity())
            .property("cashier_id", cashier())
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
    "total_cents": 1040, "sold_at": "2026-11-23T16:00:00Z", "cashier_id": "caja-1", "sync": "pending"}))]
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Sale,
    Adjustment,
}

/// One line of a sale event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct EventLine {
    pub product_id: ProductId,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
    #[schema(minimum = 0)]
    pub unit_price_cents: i64,
}

/// OpenAPI schema of a signed stock delta: non-zero, |delta| <= 1_000_000 (what
/// [`crate::ids::check_delta`] accepts), as two ranges since JSON Schema has no "not zero"
/// that utoipa can build.
fn delta_ranges() -> [utoipa::openapi::Object; 2] {
    use crate::ids::MAX_QUANTITY;
    use utoipa::openapi::{ObjectBuilder, Type};
    let range = |lo: i64, hi: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(lo as isize))
            .maximum(Some(hi as isize))
            .build()
    };
    [range(-MAX_QUANTITY, -1), range(1, MAX_QUANTITY)]
}

fn nonzero_delta() -> utoipa::openapi::schema::Schema {
    let mut b = utoipa::openapi::schema::OneOfBuilder::new().description(Some("Non-zero, |value| <= 1000000"));
    for r in delta_ranges() {
        b = b.item(r);
    }
    utoipa::openapi::schema::Schema::OneOf(b.build())
}

fn nullable_nonzero_delta() -> utoipa::openapi::schema::Schema {
    let null = utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Null);
    let mut b = utoipa::openapi::schema::OneOfBuilder::new()
        .description(Some("Adjustments only: non-zero, |value| <= 1000000"))
        .item(null);
    for r in delta_ranges() {
        b = b.item(r);
    }
    utoipa::openapi::schema::Schema::OneOf(b.build())
}

/// One outbox event, as pushed. Flat rather than an internally tagged enum: serde's
/// `#[serde(tag)]` buffers every event into an intermediate tree, which is measurable at
/// central's ingest rate; the kind-specific fields are checked by [`Event::validate`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(
    description = "One event of a branch's outbox, as pushed to central and listed by `GET /outbox`. \
`kind` says which fields apply: a `sale` has `sale_id`, `lines`, `total_cents` (the sum of its lines) and maybe \
`cashier_id`; an `adjustment` has `product_id`, `quantity_delta` and maybe `reason`."
)]
pub struct Event {
    #[schema(minimum = 1, maximum = 9_223_372_036_854_775_807_i64)]
    pub seq: u64,
    pub kind: EventKind,
    #[schema(format = DateTime)]
    pub occurred_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub sale_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<EventLine>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub cashier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ProductId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = nullable_nonzero_delta)]
    pub quantity_delta: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub reason: Option<String>,
    /// The logged-in user whose token caused a non-sale event (a sale names its user in
    /// `cashier_id`); absent when the POS or branch admin token did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<crate::users::UserId>,
}

impl Event {
    /// Checks the kind-specific fields. Returns a message for 400 `invalid_request`.
    pub fn validate(&self) -> Result<(), String> {
        use crate::ids::{check_delta, check_quantity};
        let seq = self.seq;
        if seq == 0 {
            return Err("event seq starts at 1".into());
        }
        if crate::clock::parse_rfc3339_millis(&self.occurred_at).is_none() {
            return Err(format!("event {seq}: occurred_at is not an RFC 3339 time"));
        }
        match self.kind {
            EventKind::Sale => {
                let sale_id = self
                    .sale_id
                    .as_deref()
                    .ok_or_else(|| format!("sale event {seq}: sale_id missing"))?;
                if sale_id.is_empty() || sale_id.len() > 64 {
                    return Err(format!("sale event {seq}: sale_id must be 1-64 chars"));
                }
                let lines = self
                    .lines
                    .as_ref()
                    .ok_or_else(|| format!("sale event {seq}: lines missing"))?;
                if lines.is_empty() {
                    return Err(format!("sale event {seq}: no lines"));
                }
                let mut total: i64 = 0;
                for l in lines {
                    check_quantity("quantity", l.quantity).map_err(|m| format!("sale event {seq}: {m}"))?;
                    if l.unit_price_cents < 0 {
                        return Err(format!("sale event {seq}: negative unit_price_cents"));
                    }
                    let line = l
                        .unit_price_cents
                        .checked_mul(l.quantity)
                        .ok_or_else(|| format!("sale event {seq}: line total overflows"))?;
                    total = total
                        .checked_add(line)
                        .ok_or_else(|| format!("sale event {seq}: total overflows"))?;
                }
                if self.total_cents != Some(total) {
                    return Err(format!(
                        "sale event {seq}: total_cents does not match its lines ({total})"
                    ));
                }
                if let Some(c) = &self.cashier_id {
                    crate::ids::check_text("cashier_id", c, 1, 64).map_err(|m| format!("sale event {seq}: {m}"))?;
                }
                if self.user_id.is_some() {
                    return Err(format!("sale event {seq}: a sale names its user in cashier_id"));
                }
            }
            EventKind::Adjustment => {
                if self.product_id.is_none() {
                    return Err(format!("adjustment event {seq}: product_id missing"));
                }
                let d = self
                    .quantity_delta
                    .ok_or_else(|| format!("adjustment event {seq}: quantity_delta missing"))?;
                check_delta("quantity_delta", d).map_err(|m| format!("adjustment event {seq}: {m}"))?;
                if let Some(r) = &self.reason {
                    if r.chars().count() > 64 {
                        return Err(format!("adjustment event {seq}: reason longer than 64 chars"));
                    }
                }
            }
        }
        Ok(())
    }
}

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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Product,
    Allocation,
    /// A user created or changed at central (`user` holds it). Sent only to branches that
    /// ask for users (`include=users` on the pull), so older branches never see it.
    User,
    /// A kind this build does not know (from a newer central): skipped, never applied.
    #[serde(other)]
    Unknown,
}

/// One entry of `GET /sync/pull`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Change {
    pub cursor: u64,
    pub kind: ChangeKind,
    /// Empty for `user` changes.
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct PullResponse {
    pub changes: Vec<Change>,
    pub next: u64,
    pub applied_through: u64,
}

// ---------------------------------------------------------------- central endpoints

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Arroz Costeño 1 kg", "price_cents": 520}))]
pub struct ProductUpsert {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"product_id": "ARROZ-1KG", "name": "Arroz Costeño 1 kg", "price_cents": 520, "version": 1}))]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub price_cents: i64,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductList {
    pub products: Vec<Product>,
}

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
    "total_stock": 198, "by_branch": {"CUS": 118, "ABA": 80}}))]
pub struct CentralProductStock {
    pub product_id: String,
    pub name: Option<String>,
    pub price_cents: Option<i64>,
    pub total_stock: i64,
    pub by_branch: BTreeMap<String, i64>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(seq: u64) -> Event {
        Event {
            seq,
            kind: EventKind::Sale,
            occurred_at: "2026-11-23T16:00:00Z".into(),
            sale_id: Some(format!("CUS-{seq:010}")),
            lines: Some(vec![EventLine {
                product_id: ProductId::parse("P1").unwrap(),
                quantity: 2,
                unit_price_cents: 550,
            }]),
            total_cents: Some(1100),
            cashier_id: None,
            product_id: None,
            quantity_delta: None,
            reason: None,
            user_id: None,
        }
    }

    #[test]
    fn events_serialize_in_the_protocol_shape() {
        let v = serde_json::to_value(sale(41)).unwrap();
        assert_eq!(v["kind"], "sale");
        assert_eq!(v["lines"][0]["unit_price_cents"], 550);
        assert!(v.get("quantity_delta").is_none());
    }

    #[test]
    fn a_sale_whose_total_disagrees_with_its_lines_is_invalid() {
        let mut e = sale(1);
        assert!(e.validate().is_ok());
        e.total_cents = Some(1);
        assert!(e.validate().is_err());
    }

    #[test]
    fn an_adjustment_needs_a_non_zero_delta() {
        let mut e = sale(2);
        e.kind = EventKind::Adjustment;
        e.product_id = Some(ProductId::parse("P1").unwrap());
        e.quantity_delta = Some(0);
        assert!(e.validate().is_err());
        e.quantity_delta = Some(-3);
        assert!(e.validate().is_ok());
    }
}
