//! Input rules of the catalog's writes and of the headers of central's admin writes
//! (`If-Match`, `Idempotency-Key`): docs/protocol.md, "Catalog at central". Everything is
//! checked before the store is called, so every refusal here is a 400 that changed nothing.
use super::{truncate, MAX_NAME_CHARS, MAX_PRICE_CENTS};
use crate::error::CentralError;
use crate::store::{IdempotencyKey, IfMatch, ProductChange};
use colmena_shared::catalog::{check_barcode, MAX_CATEGORY_CHARS, MAX_REORDER_POINT};
use colmena_shared::clock;
use colmena_shared::ids::{check_text, check_visible_ascii, BranchId, ProductId};
use colmena_shared::wire::ProductUpsert;

fn bad(msg: impl Into<String>) -> CentralError {
    CentralError::InvalidRequest(msg.into())
}

/// `PUT /products/{id}` → the change to store. `now_ms` is the instant a
/// `price_effective_at` must be after.
pub fn product_upsert(
    product: ProductId,
    body: ProductUpsert,
    if_match: Option<IfMatch>,
    now_ms: i64,
) -> Result<ProductChange, CentralError> {
    check_text("name", &body.name, 1, MAX_NAME_CHARS).map_err(bad)?;
    if !(0..=MAX_PRICE_CENTS).contains(&body.price_cents) {
        return Err(bad(format!(
            "price_cents must be between 0 and {MAX_PRICE_CENTS}, got {}",
            body.price_cents
        )));
    }
    let effective_ms = match body.price_effective_at.as_deref() {
        None => None,
        Some(s) => {
            let at = clock::parse_rfc3339_millis(s).ok_or_else(|| {
                bad(format!(
                    "price_effective_at must be an RFC 3339 time, got {:?}",
                    truncate(s)
                ))
            })?;
            if at <= now_ms {
                return Err(bad(format!(
                    "price_effective_at must be in the future (now is {}), got {:?}",
                    clock::millis_to_rfc3339(now_ms),
                    truncate(s)
                )));
            }
            Some(at)
        }
    };
    if let Some(b) = &body.barcode {
        check_barcode(b).map_err(|e| bad(format!("{e}, got {:?}", truncate(b))))?;
    }
    if let Some(c) = &body.category {
        check_text("category", c, 1, MAX_CATEGORY_CHARS).map_err(bad)?;
    }
    let reorder_point = body.reorder_point.unwrap_or(0);
    if !(0..=MAX_REORDER_POINT).contains(&reorder_point) {
        return Err(bad(format!(
            "reorder_point must be between 0 and {MAX_REORDER_POINT}, got {reorder_point}"
        )));
    }
    Ok(ProductChange {
        product,
        name: body.name,
        price_cents: body.price_cents,
        effective_ms,
        barcode: body.barcode,
        category: body.category,
        active: body.active.unwrap_or(true),
        reorder_point,
        if_match,
    })
}

/// The `If-Match` header (its values joined, as HTTP allows a list to be split over
/// several headers): `*`, or a comma-separated list of entity tags. Weak tags (`W/"3"`)
/// are well-formed but never match under the strong comparison a write needs, and a strong
/// tag matches only the version written exactly so (`"03"` is not `"3"`).
pub fn if_match(values: &[&str]) -> Result<Option<IfMatch>, CentralError> {
    if values.is_empty() {
        return Ok(None);
    }
    let joined = values.join(",");
    let malformed = || {
        bad(format!(
            "If-Match must be * or a list of quoted entity tags such as \"3\", got {:?}",
            truncate(&joined)
        ))
    };
    if joined.trim() == "*" {
        return Ok(Some(IfMatch::Any));
    }
    let mut versions = Vec::new();
    let mut rest = joined.as_str();
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        let inner = rest.strip_prefix('"').ok_or_else(malformed)?;
        let end = inner.find('"').ok_or_else(malformed)?;
        let tag = &inner[..end];
        // etagc: %x21 / %x23-7E / obs-text; no controls, no spaces.
        if tag.bytes().any(|b| b <= 0x20 || b == 0x7f) {
            return Err(malformed());
        }
        if !weak {
            if let Ok(v) = tag.parse::<u64>() {
                if v.to_string() == tag {
                    versions.push(v);
                }
            }
        }
        rest = inner[end + 1..].trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            break;
        }
        rest = rest.strip_prefix(',').ok_or_else(malformed)?;
    }
    Ok(Some(IfMatch::Versions(versions)))
}

/// An `Idempotency-Key` header (as on the branch's `/sell`): 1-255 visible ASCII.
pub fn idempotency_key(value: Option<&str>) -> Result<Option<String>, CentralError> {
    value
        .map(|k| {
            check_visible_ascii("Idempotency-Key", k, 1, 255).map_err(bad)?;
            Ok(k.to_string())
        })
        .transpose()
}

/// What "the same request" means for a product PUT's key: the request as understood (not
/// its spelling: key order, whitespace, an omitted default), and its `If-Match`.
pub fn product_fingerprint(key: String, change: &ProductChange) -> IdempotencyKey {
    let if_match = match &change.if_match {
        None => serde_json::Value::Null,
        Some(IfMatch::Any) => serde_json::json!("*"),
        Some(IfMatch::Versions(v)) => serde_json::json!(v),
    };
    let body = serde_json::json!({
        "name": change.name, "price_cents": change.price_cents, "effective_ms": change.effective_ms,
        "barcode": change.barcode, "category": change.category, "active": change.active,
        "reorder_point": change.reorder_point, "if_match": if_match,
    });
    IdempotencyKey {
        key,
        fingerprint: format!("PUT /products/{} {body}", change.product),
    }
}

/// As [`product_fingerprint`], for an allocation.
pub fn allocation_fingerprint(key: String, branch: &BranchId, product: &ProductId, quantity: i64) -> IdempotencyKey {
    let body = serde_json::json!({"product_id": product.as_str(), "quantity": quantity});
    IdempotencyKey {
        key,
        fingerprint: format!("POST /branches/{branch}/allocations {body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: &str, price: i64) -> ProductUpsert {
        ProductUpsert {
            name: name.into(),
            price_cents: price,
            ..Default::default()
        }
    }

    fn p1() -> ProductId {
        ProductId::parse("P1").unwrap()
    }

    #[test]
    fn product_bodies_are_checked() {
        assert!(product_upsert(p1(), body("Coca Cola", 550), None, 0).is_ok());
        for (name, price) in [("", 1), ("a\nb", 1), ("   ", 1), ("x", -1), ("x", MAX_PRICE_CENTS + 1)] {
            assert!(
                product_upsert(p1(), body(name, price), None, 0).is_err(),
                "{name:?} {price}"
            );
        }
        let long = "ñ".repeat(MAX_NAME_CHARS);
        assert!(product_upsert(p1(), body(&long, 0), None, 0).is_ok());
        let with = |f: &dyn Fn(&mut ProductUpsert)| {
            let mut b = body("x", 1);
            f(&mut b);
            product_upsert(p1(), b, None, 1_000)
        };
        assert!(with(&|b| b.barcode = Some("7750885000018".into())).is_ok());
        assert!(with(&|b| b.barcode = Some("1234567".into())).is_err());
        assert!(with(&|b| b.category = Some(" ".into())).is_err());
        assert!(with(&|b| b.category = Some("c".repeat(65))).is_err());
        assert!(with(&|b| b.reorder_point = Some(-1)).is_err());
        assert!(with(&|b| b.reorder_point = Some(MAX_REORDER_POINT + 1)).is_err());
        assert!(with(&|b| b.price_effective_at = Some("1970-01-01T00:00:00Z".into())).is_err());
        assert!(with(&|b| b.price_effective_at = Some("tomorrow".into())).is_err());
        let c = with(&|b| b.price_effective_at = Some("1970-01-01T00:00:02Z".into())).unwrap();
        assert_eq!((c.effective_ms, c.active, c.reorder_point), (Some(2_000), true, 0));
    }

    #[test]
    fn if_match_is_star_or_a_list_of_entity_tags() {
        assert_eq!(if_match(&[]).unwrap(), None);
        assert_eq!(if_match(&["*"]).unwrap(), Some(IfMatch::Any));
        assert_eq!(if_match(&["\"3\""]).unwrap(), Some(IfMatch::Versions(vec![3])));
        assert_eq!(
            if_match(&["\"3\", W/\"4\" ,\"05\"", "\"x\""]).unwrap(),
            Some(IfMatch::Versions(vec![3]))
        );
        for bad in [
            "",
            "3",
            "\"3",
            "\"3\"\"4\"",
            "\"3\",",
            "W/3",
            "\"a b\"",
            "*, \"3\"",
            "**",
        ] {
            assert!(if_match(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_same_request_spelt_otherwise_has_the_same_fingerprint() {
        let a = product_upsert(p1(), body("x", 1), None, 0).unwrap();
        let mut b = body("x", 1);
        b.active = Some(true);
        b.reorder_point = Some(0);
        let b = product_upsert(p1(), b, None, 0).unwrap();
        assert_eq!(product_fingerprint("k".into(), &a), product_fingerprint("k".into(), &b));
        let c = product_upsert(p1(), body("x", 1), Some(IfMatch::Any), 0).unwrap();
        assert_ne!(product_fingerprint("k".into(), &a), product_fingerprint("k".into(), &c));
        assert!(idempotency_key(Some("a b")).is_err());
        assert!(idempotency_key(Some(&"k".repeat(256))).is_err());
        assert_eq!(idempotency_key(Some("k-1")).unwrap().as_deref(), Some("k-1"));
    }
}
