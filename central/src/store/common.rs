//! Helpers both stores share: integer conversions at the database boundary, the compact
//! encoding of sale lines, and the inventory's per-product accumulator.
use super::StoreError;
use colmena_shared::wire::{CentralProductStock, CentralSaleLine};
use std::collections::BTreeMap;
use std::io::Write as _;

pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

pub(crate) fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Database(format!("{what} {v} is out of range")))
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Writes sale lines as `[["P1",2,550],...]`. Product ids are `[A-Za-z0-9._-]` (validated at
/// the boundary), so they need no JSON escaping.
pub(crate) fn encode_lines(buf: &mut Vec<u8>, lines: &[colmena_shared::wire::EventLine]) {
    buf.clear();
    buf.push(b'[');
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Writing into a Vec cannot fail.
        let _ = write!(
            buf,
            "[\"{}\",{},{}]",
            l.product_id.as_str(),
            l.quantity,
            l.unit_price_cents
        );
    }
    buf.push(b']');
}

pub(crate) fn decode_lines(text: &str) -> Result<Vec<CentralSaleLine>, StoreError> {
    let raw: Vec<(String, i64, i64)> = serde_json::from_str(text).map_err(|e| corrupt(format!("sale lines: {e}")))?;
    Ok(raw
        .into_iter()
        .map(|(product_id, quantity, unit_price_cents)| CentralSaleLine {
            product_id,
            quantity,
            unit_price_cents,
            line_total_cents: quantity.saturating_mul(unit_price_cents),
        })
        .collect())
}

pub(crate) fn inventory_entry(out: &mut BTreeMap<String, CentralProductStock>, id: String) -> &mut CentralProductStock {
    out.entry(id).or_insert_with_key(|id| CentralProductStock {
        product_id: id.clone(),
        name: None,
        price_cents: None,
        total_stock: 0,
        by_branch: BTreeMap::new(),
    })
}
