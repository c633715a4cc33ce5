//! One push batch: outbox rows encoded as the `/sync/push` body (see docs/protocol.md,
//! "Sync push"), with what central's answer is checked against.
//!
//! The stored event JSON goes out as is (never re-parsed); bodies above [`GZIP_ABOVE`] are
//! gzip'd, falling back to plain JSON if compression fails.
use crate::storage::outbox::OutboxRow;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// Bodies above this are gzip'd.
const GZIP_ABOVE: usize = 1024;

/// One push batch, encoded: what is sent, and what the answer is checked against.
pub struct Batch {
    /// The batch continues the outbox after this seq (its reader's starting point).
    pub after: u64,
    pub first: u64,
    pub last: u64,
    /// (seq, commit time) of each event, for the sync latency histogram.
    pub created: Vec<(u64, i64)>,
    pub body: Vec<u8>,
    pub gz: bool,
}

impl Batch {
    /// `{"branch_id": .., "events": [..]}` from the stored event JSON as is (no re-parse),
    /// gzip'd above [`GZIP_ABOVE`]. `rows` is not empty.
    pub fn encode(branch: &str, after: u64, rows: &[OutboxRow]) -> Batch {
        let mut json = String::with_capacity(rows.iter().map(|r| r.payload.len() + 1).sum::<usize>() + 64);
        json.push_str("{\"branch_id\":\"");
        json.push_str(branch);
        json.push_str("\",\"events\":[");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&r.payload);
        }
        json.push_str("]}");
        let (body, gz) = if json.len() <= GZIP_ABOVE {
            (json.into_bytes(), false)
        } else {
            let mut enc = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
            match enc.write_all(json.as_bytes()).and_then(|_| enc.finish()) {
                Ok(gz) => (gz, true),
                Err(_) => (json.into_bytes(), false),
            }
        };
        Batch {
            after,
            first: rows.first().map_or(after, |r| r.seq),
            last: rows.last().map_or(after, |r| r.seq),
            created: rows.iter().map(|r| (r.seq, r.created_ms)).collect(),
            body,
            gz,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn row(seq: u64, payload: &str) -> OutboxRow {
        OutboxRow {
            seq,
            created_ms: 1000 + seq as i64,
            payload: payload.to_string(),
        }
    }

    #[test]
    fn a_small_batch_is_plain_json_with_the_events_as_stored() {
        let b = Batch::encode("S1", 4, &[row(5, r#"{"seq":5}"#), row(6, r#"{"seq":6}"#)]);
        assert!(!b.gz);
        assert_eq!(b.body, br#"{"branch_id":"S1","events":[{"seq":5},{"seq":6}]}"#);
        assert_eq!((b.after, b.first, b.last), (4, 5, 6));
        assert_eq!(b.created, vec![(5, 1005), (6, 1006)]);
    }

    #[test]
    fn a_large_batch_is_gzipped_and_decodes_to_the_same_json() {
        let payload = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2000));
        let b = Batch::encode("S1", 0, &[row(1, &payload)]);
        assert!(b.gz);
        let mut json = String::new();
        GzDecoder::new(b.body.as_slice())
            .read_to_string(&mut json)
            .expect("valid gzip");
        assert_eq!(json, format!(r#"{{"branch_id":"S1","events":[{payload}]}}"#));
    }
}
