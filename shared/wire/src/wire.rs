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

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    #[default]
    Sale,
    Adjustment,
    ShiftOpened,
    CashMovement,
    ShiftClosed,
    Return,
    /// A kind this build does not know (from a newer branch). Central refuses the batch
    /// with 422 `unsupported_event`; nothing ever applies it.
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// The name on the wire (what serde writes), also the outbox's `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Sale => "sale",
            EventKind::Adjustment => "adjustment",
            EventKind::ShiftOpened => "shift_opened",
            EventKind::CashMovement => "cash_movement",
            EventKind::ShiftClosed => "shift_closed",
            EventKind::Return => "return",
            EventKind::Unknown => "unknown",
        }
    }
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(
    description = "One event of a branch's outbox, as pushed to central and listed by `GET /outbox`. \
`kind` says which fields apply: a `sale` has `sale_id`, `lines`, `total_cents` (the sum of its lines) and maybe \
`cashier_id`, `shift_id`, `payments`; an `adjustment` has `product_id`, `quantity_delta` and maybe `reason`; \
a `shift_opened` has `shift_id`, `till_id`, `opening_float_cents`; a `cash_movement` has `shift_id`, \
`movement`, `amount_cents`, `reason`; a `shift_closed` has `shift_id`, `counted_cash_cents` and the branch's \
`summary`; a `return` has `return_id`, `sale_id`, `lines`, `total_cents`, `restock`, `refund_method` and maybe \
`shift_id`, `reason`. Non-sale events name the user who caused them in `user_id`."
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
    /// The shift a sale, cash movement or return belongs to; the shift a `shift_opened` or
    /// `shift_closed` is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub shift_id: Option<String>,
    /// A sale's tenders; absent: one `unspecified` payment of the total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payments: Option<Vec<crate::till::Payment>>,
    /// `shift_opened`: the till and its float.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub till_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_float_cents: Option<i64>,
    /// `cash_movement`: in or out, and how much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movement: Option<crate::till::CashMovementKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    /// `shift_closed`: the count and the branch's closing summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_cash_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::till::ShiftSummary>,
    /// `return`: its id (the returned sale is `sale_id`, the returned lines `lines` at the
    /// sale's unit prices, their sum `total_cents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub return_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restock: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z_]{1,32}$")]
    pub refund_method: Option<String>,
}

impl Event {
    /// Checks the kind-specific fields. Returns a message for 400 `invalid_request`. An
    /// `unknown` kind passes: whoever applies events refuses it as unsupported, which is
    /// not a malformed request.
    pub fn validate(&self) -> Result<(), String> {
        let seq = self.seq;
        if seq == 0 {
            return Err("event seq starts at 1".into());
        }
        if crate::clock::parse_rfc3339_millis(&self.occurred_at).is_none() {
            return Err(format!("event {seq}: occurred_at is not an RFC 3339 time"));
        }
        let kind = self.kind.as_str();
        let checked = match self.kind {
            EventKind::Sale => self.validate_sale(),
            EventKind::Adjustment => self.validate_adjustment(),
            EventKind::ShiftOpened => self.validate_shift_opened(),
            EventKind::CashMovement => self.validate_cash_movement(),
            EventKind::ShiftClosed => self.validate_shift_closed(),
            EventKind::Return => self.validate_return(),
            EventKind::Unknown => Ok(()),
        };
        checked.map_err(|m| format!("{kind} event {seq}: {m}"))
    }

    fn validate_sale(&self) -> Result<(), String> {
        check_sale_id(self.sale_id.as_deref())?;
        let total = lines_total(self.lines.as_deref())?;
        if self.total_cents != Some(total) {
            return Err(format!("total_cents does not match its lines ({total})"));
        }
        if let Some(c) = &self.cashier_id {
            crate::ids::check_text("cashier_id", c, 1, 64)?;
        }
        if self.user_id.is_some() {
            return Err("a sale names its user in cashier_id".into());
        }
        if let Some(s) = &self.shift_id {
            crate::till::check_till_id("shift_id", s)?;
        }
        if let Some(ps) = &self.payments {
            crate::till::check_payments(ps, total)?;
        }
        Ok(())
    }

    fn validate_adjustment(&self) -> Result<(), String> {
        if self.product_id.is_none() {
            return Err("product_id missing".into());
        }
        let d = self.quantity_delta.ok_or("quantity_delta missing")?;
        crate::ids::check_delta("quantity_delta", d)?;
        check_reason(self.reason.as_deref())
    }

    fn validate_shift_opened(&self) -> Result<(), String> {
        crate::till::check_till_id("shift_id", self.shift_id.as_deref().ok_or("shift_id missing")?)?;
        crate::till::check_till_id("till_id", self.till_id.as_deref().ok_or("till_id missing")?)?;
        crate::till::check_amount(
            "opening_float_cents",
            self.opening_float_cents.ok_or("opening_float_cents missing")?,
        )?;
        Ok(())
    }

    fn validate_cash_movement(&self) -> Result<(), String> {
        crate::till::check_till_id("shift_id", self.shift_id.as_deref().ok_or("shift_id missing")?)?;
        self.movement.ok_or("movement missing")?;
        crate::till::check_positive_amount("amount_cents", self.amount_cents.ok_or("amount_cents missing")?)?;
        check_reason(self.reason.as_deref())
    }

    fn validate_shift_closed(&self) -> Result<(), String> {
        crate::till::check_till_id("shift_id", self.shift_id.as_deref().ok_or("shift_id missing")?)?;
        let counted = self.counted_cash_cents.ok_or("counted_cash_cents missing")?;
        crate::till::check_amount("counted_cash_cents", counted)?;
        let summary = self.summary.as_ref().ok_or("summary missing")?;
        if summary.counted_cash_cents != Some(counted) {
            return Err("summary.counted_cash_cents differs from counted_cash_cents".into());
        }
        if summary.by_method.len() > 64 {
            return Err("summary.by_method has more than 64 methods".into());
        }
        for m in summary.by_method.keys() {
            crate::till::check_method("summary.by_method", m)?;
        }
        Ok(())
    }

    fn validate_return(&self) -> Result<(), String> {
        let return_id = self.return_id.as_deref().ok_or("return_id missing")?;
        crate::till::check_till_id("return_id", return_id)?;
        check_sale_id(self.sale_id.as_deref())?;
        let total = lines_total(self.lines.as_deref())?;
        if self.total_cents != Some(total) {
            return Err(format!("total_cents does not match its lines ({total})"));
        }
        self.restock.ok_or("restock missing")?;
        crate::till::check_method(
            "refund_method",
            self.refund_method.as_deref().ok_or("refund_method missing")?,
        )?;
        if let Some(s) = &self.shift_id {
            crate::till::check_till_id("shift_id", s)?;
        }
        check_reason(self.reason.as_deref())
    }
}

fn check_sale_id(sale_id: Option<&str>) -> Result<(), String> {
    let sale_id = sale_id.ok_or("sale_id missing")?;
    if sale_id.is_empty() || sale_id.len() > 64 {
        return Err("sale_id must be 1-64 chars".into());
    }
    Ok(())
}

fn check_reason(reason: Option<&str>) -> Result<(), String> {
    match reason {
        Some(r) if r.chars().count() > 64 => Err("reason longer than 64 chars".into()),
        _ => Ok(()),
    }
}

/// The sum of a sale's or a return's lines, each with a valid quantity and price.
fn lines_total(lines: Option<&[EventLine]>) -> Result<i64, String> {
    let lines = lines.ok_or("lines missing")?;
    if lines.is_empty() {
        return Err("no lines".into());
    }
    let mut total: i64 = 0;
    for l in lines {
        crate::ids::check_quantity("quantity", l.quantity)?;
        if l.unit_price_cents < 0 {
            return Err("negative unit_price_cents".into());
        }
        let line = l
            .unit_price_cents
            .checked_mul(l.quantity)
            .ok_or("line total overflows")?;
        total = total.checked_add(line).ok_or("total overflows")?;
    }
    Ok(total)
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
            ..Default::default()
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
