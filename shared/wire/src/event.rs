//! One outbox event: the unit a branch records, ships and central applies exactly once
//! (docs/protocol.md, "Event kinds" and "The till"), with the rules both sides check it by.
use crate::ids::ProductId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// The sending branch shipped a transfer: its stock left (docs/protocol.md, "Transfers").
    TransferDispatched,
    /// The receiving branch took a transfer in: what arrived, and what was lost on the way.
    TransferReceived,
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
            EventKind::TransferDispatched => "transfer_dispatched",
            EventKind::TransferReceived => "transfer_received",
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
pub(crate) fn delta_ranges() -> [utoipa::openapi::Object; 2] {
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

pub(crate) fn nonzero_delta() -> utoipa::openapi::schema::Schema {
    let mut b = utoipa::openapi::schema::OneOfBuilder::new().description(Some("Non-zero, |value| <= 1000000"));
    for r in delta_ranges() {
        b = b.item(r);
    }
    utoipa::openapi::schema::Schema::OneOf(b.build())
}

pub(crate) fn nullable_nonzero_delta() -> utoipa::openapi::schema::Schema {
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
`shift_id`, `reason`; a `transfer_dispatched` has `transfer_id` and `transfer_lines` (units that left); a \
`transfer_received` has `transfer_id` and `transfer_lines` (units that arrived, and `lost`). Non-sale events name the user who caused them in `user_id`."
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
    /// `transfer_dispatched`, `transfer_received`: the transfer this step belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub transfer_id: Option<String>,
    /// The units that left (a dispatch) or arrived and were lost (a receipt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_lines: Option<Vec<crate::transfers::TransferEventLine>>,
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
            EventKind::TransferDispatched => self.validate_transfer_step(false),
            EventKind::TransferReceived => self.validate_transfer_step(true),
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

impl Event {
    fn validate_transfer_step(&self, receipt: bool) -> Result<(), String> {
        crate::transfers::check_transfer_id(self.transfer_id.as_deref().ok_or("transfer_id missing")?)?;
        let lines = self.transfer_lines.as_deref().ok_or("transfer_lines missing")?;
        if receipt {
            crate::transfers::check_receipt_lines(lines)
        } else {
            crate::transfers::check_dispatch_lines(lines)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProductId;

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
