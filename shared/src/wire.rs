//! The JSON bodies of the contract (`CONTRACT.md` §2, §3).
//!
//! Request types are deliberately loose (`Option`s) where the contract allows two shapes, so
//! that a wrong body gets a precise message from the service's validation instead of serde's
//! "data did not match any variant". Response types are exact.
use crate::ids::{BranchId, ProductId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ---------------------------------------------------------------- branch (§2)

/// One line of a `POST /sell` basket.
#[derive(Debug, Clone, Deserialize)]
pub struct SellLineRequest {
    pub product_id: ProductId,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SaleLineOut {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
    pub remaining_stock: i64,
}

/// The 201 of `POST /sell`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SaleResponse {
    pub sale_id: String,
    pub branch_id: String,
    pub seq: u64,
    pub lines: Vec<SaleLineOut>,
    pub total_cents: i64,
    pub sold_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_id: Option<String>,
    pub sync: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BranchProduct {
    pub product_id: String,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BranchInventory {
    pub branch_id: String,
    pub products: Vec<BranchProduct>,
}

/// `POST /stock/adjustments`.
#[derive(Debug, Clone, Deserialize)]
pub struct AdjustmentRequest {
    pub product_id: ProductId,
    pub quantity_delta: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdjustmentResponse {
    pub seq: u64,
    pub stock: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxStatus {
    pub pending: u64,
    pub oldest_pending_age_seconds: f64,
    pub last_seq: u64,
    pub acked_through: u64,
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BranchStatus {
    pub branch_id: String,
    pub central_url: String,
    pub circuit: String,
    pub outbox: OutboxStatus,
    pub last_push_ok_at: Option<String>,
    pub last_pull_ok_at: Option<String>,
    pub pull_cursor: u64,
}

/// `GET /outbox`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

// ---------------------------------------------------------------- sync protocol (§3)

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Sale,
    Adjustment,
}

/// One line of a sale event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventLine {
    pub product_id: ProductId,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// One outbox event, as pushed. Flat rather than an internally tagged enum: serde's
/// `#[serde(tag)]` buffers every event into an intermediate tree, which is measurable at
/// central's ingest rate; the kind-specific fields are checked by [`Event::validate`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub kind: EventKind,
    pub occurred_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<EventLine>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ProductId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_delta: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushRequest {
    pub branch_id: BranchId,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PushResponse {
    pub applied_through: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Product,
    Allocation,
}

/// One entry of `GET /sync/pull`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Change {
    pub cursor: u64,
    pub kind: ChangeKind,
    pub product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PullResponse {
    pub changes: Vec<Change>,
    pub next: u64,
    pub applied_through: u64,
}

// ---------------------------------------------------------------- central (§3)

#[derive(Debug, Clone, Deserialize)]
pub struct ProductUpsert {
    pub name: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub price_cents: i64,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductList {
    pub products: Vec<Product>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AllocationRequest {
    pub product_id: ProductId,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CentralProductStock {
    pub product_id: String,
    pub name: Option<String>,
    pub price_cents: Option<i64>,
    pub total_stock: i64,
    pub by_branch: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CentralInventory {
    pub products: Vec<CentralProductStock>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BranchSummary {
    pub branch_id: String,
    pub applied_through: u64,
    pub last_push_at: Option<String>,
    pub events_applied: u64,
    pub sales_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BranchList {
    pub branches: Vec<BranchSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CentralSaleLine {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

/// A sale as central knows it (`GET /sales`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CentralSale {
    pub sale_id: String,
    pub branch_id: String,
    pub seq: u64,
    pub lines: Vec<CentralSaleLine>,
    pub total_cents: i64,
    pub sold_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_id: Option<String>,
    pub received_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SalesPage {
    pub sales: Vec<CentralSale>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
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
        }
    }

    #[test]
    fn events_serialize_in_the_contract_shape() {
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
