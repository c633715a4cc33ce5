//! Wall-clock timestamps as the protocol writes them: RFC 3339, UTC, second precision plus
//! milliseconds when present. Kept in one place so both services format identically.
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, as RFC 3339 UTC (`2026-11-23T16:00:00.123Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// Milliseconds since the Unix epoch, for ages and ordering.
pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn format_rfc3339(t: OffsetDateTime) -> String {
    // Truncate to milliseconds: enough for receipts, stable width for sorting.
    let t = t.to_offset(time::UtcOffset::UTC);
    let ms = t.millisecond();
    let t = t.replace_nanosecond(ms as u32 * 1_000_000).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

pub fn millis_to_rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format_rfc3339(t)
}

/// Parses an RFC 3339 timestamp into milliseconds since the epoch.
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_millis() {
        let ms = 1_795_449_600_123;
        let s = millis_to_rfc3339(ms);
        assert!(s.ends_with('Z'), "{s}");
        assert_eq!(parse_rfc3339_millis(&s), Some(ms));
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        assert_eq!(parse_rfc3339_millis("yesterday"), None);
    }
}
