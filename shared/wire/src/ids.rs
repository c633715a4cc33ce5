//! Validated identifiers and quantities (see docs/protocol.md, "Words").
//!
//! Invariant: a value of these types is valid by construction, so domain code never
//! re-checks. The `parse` functions return a message fit for a 400 `invalid_request`.
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest quantity on one sale line, allocation or adjustment.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// A branch id: 2–16 chars of `[A-Z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct BranchId(String);

impl BranchId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (2..=16).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(BranchId(s.to_string()))
        } else {
            Err(format!(
                "branch_id must be 2-16 chars of [A-Z0-9_-], got {:?}",
                truncate(s)
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BranchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BranchId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BranchId::parse(&s).map_err(de::Error::custom)
    }
}

/// A SKU: 1–64 chars of `[A-Za-z0-9._-]`. On the wire a JSON integer is accepted too and
/// means its decimal string, because existing POS clients send integers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProductId(String);

impl ProductId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if ok {
            Ok(ProductId(s.to_string()))
        } else {
            Err(format!(
                "product_id must be 1-64 chars of [A-Za-z0-9._-], got {:?}",
                truncate(s)
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProductId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ProductId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a product_id string or integer")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ProductId, E> {
                ProductId::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ProductId, E> {
                ProductId::parse(&n.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ProductId, E> {
                ProductId::parse(&n.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

// OpenAPI schemas, written by hand because the wire form is not the Rust form:
// the pattern is what `parse` accepts, and a `ProductId` in a request may also be an integer.

impl utoipa::PartialSchema for BranchId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^[A-Z0-9_-]{2,16}$"))
            .min_length(Some(2))
            .max_length(Some(16))
            .description(Some("A branch id: 2-16 chars of [A-Z0-9_-]."))
            .examples([serde_json::json!("CUS")])
            .into()
    }
}

impl utoipa::ToSchema for BranchId {}

impl utoipa::PartialSchema for ProductId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, OneOfBuilder, Type};
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Za-z0-9._-]{1,64}$"))
            .min_length(Some(1))
            .max_length(Some(64));
        // serde_json reads integers in [i64::MIN, u64::MAX]; a larger one is a float to it.
        let number = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(utoipa::Number::Int(i64::MIN as isize)))
            .maximum(Some(utoipa::Number::UInt(u64::MAX as usize)));
        OneOfBuilder::new()
            .item(text)
            .item(number)
            .description(Some(
                "A SKU: 1-64 chars of [A-Za-z0-9._-]. In a request a JSON integer is also \
                 accepted and means its decimal string (1 is \"1\"); responses always send the string.",
            ))
            .examples([serde_json::json!("ARROZ-1KG")])
            .into()
    }
}

impl utoipa::ToSchema for ProductId {}

/// Checks a line quantity: 1 ..= 1_000_000.
pub fn check_quantity(field: &str, q: i64) -> Result<i64, String> {
    if (1..=MAX_QUANTITY).contains(&q) {
        Ok(q)
    } else {
        Err(format!("{field} must be between 1 and {MAX_QUANTITY}, got {q}"))
    }
}

/// Checks a signed delta: non-zero, |delta| <= 1_000_000.
pub fn check_delta(field: &str, q: i64) -> Result<i64, String> {
    if q != 0 && (-MAX_QUANTITY..=MAX_QUANTITY).contains(&q) {
        Ok(q)
    } else {
        Err(format!(
            "{field} must be non-zero with |{field}| <= {MAX_QUANTITY}, got {q}"
        ))
    }
}

/// Visible ASCII (0x21..=0x7E), `min..=max` bytes: idempotency keys.
pub fn check_visible_ascii(field: &str, s: &str, min: usize, max: usize) -> Result<(), String> {
    if (min..=max).contains(&s.len()) && s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Ok(())
    } else {
        Err(format!("{field} must be {min}-{max} visible ASCII characters"))
    }
}

/// Free text such as a cashier id or an adjustment reason: `min..=max` chars, no control
/// characters, not only whitespace.
pub fn check_text(field: &str, s: &str, min: usize, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if (min..=max).contains(&n) && !s.chars().any(char::is_control) && !s.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{field} must be {min}-{max} visible characters"))
    }
}

pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(70).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_id_accepts_integers_as_their_decimal_string() {
        let p: ProductId = serde_json::from_str("17").unwrap();
        assert_eq!(p.as_str(), "17");
        let p: ProductId = serde_json::from_str("\"P-1.a_b\"").unwrap();
        assert_eq!(p.as_str(), "P-1.a_b");
    }

    #[test]
    fn product_id_rejects_bad_shapes() {
        for bad in ["\"\"", "\"a b\"", "1.5", "true", "null", "[]", "\"ñ\""] {
            assert!(serde_json::from_str::<ProductId>(bad).is_err(), "{bad}");
        }
        assert!(ProductId::parse(&"x".repeat(65)).is_err());
        assert!(ProductId::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn branch_id_is_uppercase_2_to_16() {
        assert!(BranchId::parse("CUS").is_ok());
        assert!(BranchId::parse("A").is_err());
        assert!(BranchId::parse("cus").is_err());
        assert!(BranchId::parse(&"A".repeat(17)).is_err());
    }

    #[test]
    fn quantities_and_deltas_have_bounds() {
        assert!(check_quantity("q", 0).is_err());
        assert!(check_quantity("q", 1).is_ok());
        assert!(check_quantity("q", MAX_QUANTITY + 1).is_err());
        assert!(check_delta("d", 0).is_err());
        assert!(check_delta("d", -MAX_QUANTITY).is_ok());
        assert!(check_delta("d", -MAX_QUANTITY - 1).is_err());
    }
}
