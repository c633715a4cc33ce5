//! The catalog on the wire: products as central keeps them, scheduled prices, the branch's
//! search and its stock counts (docs/protocol.md, "Catalog and stock rules").
//!
//! Invariants both services rely on:
//! - A barcode is 8–14 ASCII digits ([`check_barcode`]); central keeps it unique.
//! - A scheduled price replaces `price_cents` at `effective_at` on the reader's own clock:
//!   [`price_in_force`] is the one rule both services apply, so central's `GET /products`
//!   and a branch's `/sell` agree on the price of any instant without talking.
use crate::ids::ProductId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest category, in characters.
pub const MAX_CATEGORY_CHARS: usize = 64;
/// Highest reorder point, in units.
pub const MAX_REORDER_POINT: i64 = crate::ids::MAX_QUANTITY;
/// Highest count of `POST /stock/counts`, in units.
pub const MAX_COUNTED: i64 = crate::ids::MAX_QUANTITY;

/// A price that takes over at an instant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"price_cents": 590, "effective_at": "2026-12-24T05:00:00Z"}))]
pub struct ScheduledPrice {
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_cents: i64,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub effective_at: String,
}

/// `PUT /products/{product_id}` (central, admin). A PUT replaces the product: an omitted
/// `barcode`/`category` means none, `active` defaults to true and `reorder_point` to 0.
/// With `price_effective_at`, `price_cents` is the price from that instant on and the price
/// in force now is kept; without it, `price_cents` is in force at once and any scheduled
/// price is dropped.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Azúcar rubia 1 kg", "price_cents": 590, "price_effective_at": "2026-12-24T05:00:00Z",
    "barcode": "7750885000018", "category": "abarrotes", "active": true, "reorder_point": 12}))]
pub struct ProductUpsert {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_cents: i64,
    /// RFC 3339, in the future.
    #[schema(format = DateTime)]
    pub price_effective_at: Option<String>,
    /// 8–14 digits, unique in the catalog.
    #[schema(pattern = "^[0-9]{8,14}$")]
    pub barcode: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    pub category: Option<String>,
    pub active: Option<bool>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub reorder_point: Option<i64>,
}

/// A product of central's catalog. `price_cents` is the price in force when the answer
/// was made; `scheduled_price` the change still to come, if any.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"product_id": "AZUCAR-1KG", "name": "Azúcar rubia 1 kg", "price_cents": 550, "version": 4,
    "barcode": "7750885000018", "category": "abarrotes", "active": true, "reorder_point": 12,
    "scheduled_price": {"price_cents": 590, "effective_at": "2026-12-24T05:00:00Z"}}))]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub price_cents: i64,
    pub version: u64,
    pub barcode: Option<String>,
    pub category: Option<String>,
    pub active: bool,
    pub reorder_point: i64,
    pub scheduled_price: Option<ScheduledPrice>,
}

/// A plain product: no barcode, no category, active, no reorder point, nothing scheduled.
impl Default for Product {
    fn default() -> Self {
        Product {
            product_id: String::new(),
            name: String::new(),
            price_cents: 0,
            version: 0,
            barcode: None,
            category: None,
            active: true,
            reorder_point: 0,
            scheduled_price: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductList {
    pub products: Vec<Product>,
}

/// One product found by the branch's `GET /products/search` (active products only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"product_id": "AZUCAR-1KG", "name": "Azúcar rubia 1 kg", "price_cents": 550, "stock": 37,
    "barcode": "7750885000018"}))]
pub struct SearchHit {
    pub product_id: String,
    pub name: String,
    /// The price in force now on the branch's clock.
    pub price_cents: i64,
    pub stock: i64,
    pub barcode: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub products: Vec<SearchHit>,
}

/// `POST /stock/counts` (branch): the units physically counted.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"product_id": "ARROZ-1KG", "counted": 37}))]
pub struct StockCountRequest {
    pub product_id: ProductId,
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub counted: i64,
}

/// The answer to a count: the stock is now `counted`, changed by `delta` against the stock
/// at the count's commit. `seq` is the adjustment event recorded (the first of them when
/// the delta is larger than one adjustment may carry); null when the count matched and
/// nothing changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"seq": 812, "stock": 37, "delta": -3}))]
pub struct StockCountResponse {
    pub seq: Option<u64>,
    pub stock: i64,
    pub delta: i64,
}

/// A barcode (EAN-8, UPC-A, EAN-13, GTIN-14): 8 to 14 ASCII digits.
pub fn check_barcode(s: &str) -> Result<(), String> {
    if (8..=14).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("barcode must be 8-14 digits".to_string())
    }
}

/// The price in force at `now_ms`: the scheduled price once its instant has come.
/// `scheduled` is `(price_cents, effective_ms)`.
pub fn price_in_force(price_cents: i64, scheduled: Option<(i64, i64)>, now_ms: i64) -> i64 {
    match scheduled {
        Some((p, at)) if now_ms >= at => p,
        _ => price_cents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcodes_are_eight_to_fourteen_digits() {
        for ok in ["12345678", "7750885000018", "12345678901234"] {
            assert!(check_barcode(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1234567",
            "123456789012345",
            "77508850000A8",
            "７７５０８８５０",
            "1234 5678",
        ] {
            assert!(check_barcode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_scheduled_price_is_in_force_from_its_instant_on() {
        assert_eq!(price_in_force(550, Some((590, 1_000)), 999), 550);
        assert_eq!(price_in_force(550, Some((590, 1_000)), 1_000), 590);
        assert_eq!(price_in_force(550, None, i64::MAX), 550);
    }
}
