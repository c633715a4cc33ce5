//! The events' JSON payloads, as stored in the outbox and shipped to central unchanged
//! (the event format: docs/protocol.md, "Event kinds").
//!
//! A sale's payload is written by hand, byte for byte what `serde_json::to_string` makes of
//! the same [`Event`] (a test holds the two equal, escapes included). It runs once per sale
//! on the writer thread, the one thread every sale waits for: through serde_json it cost
//! about 3.4k instructions (callgrind), most of them escaping the constant keys, plus the
//! `Event`'s clones. Rarer kinds go through serde_json.
use super::db::{Result, StoreError};
use colmena_shared::ids::ProductId;
use colmena_shared::till::Payment;
use colmena_shared::users::UserId;
use colmena_shared::wire::{Event, EventKind, SaleLineOut};

/// `{branch_id}-{seq:010}`, the sale id, without `format!`'s machinery (once per sale).
pub fn sale_id(branch_id: &str, seq: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(seq);
    let mut id = String::with_capacity(branch_id.len() + 1 + digits.len().max(10));
    id.push_str(branch_id);
    id.push('-');
    for _ in digits.len()..10 {
        id.push('0');
    }
    id.push_str(digits);
    id
}

/// A sale event's fields, borrowed from the command being applied.
pub struct SalePayload<'a> {
    pub seq: u64,
    pub occurred_at: &'a str,
    pub sale_id: &'a str,
    pub lines: &'a [SaleLineOut],
    pub total_cents: i64,
    pub cashier_id: Option<&'a str>,
    pub shift_id: Option<&'a str>,
    /// Absent: the sale's tender is unspecified.
    pub payments: Option<&'a [Payment]>,
}

/// Appends a sale's payload to `buf`.
pub fn write_sale(buf: &mut String, p: &SalePayload<'_>) {
    let mut n = itoa::Buffer::new();
    buf.push_str("{\"seq\":");
    buf.push_str(n.format(p.seq));
    buf.push_str(",\"kind\":\"sale\",\"occurred_at\":");
    push_json_str(buf, p.occurred_at);
    buf.push_str(",\"sale_id\":");
    push_json_str(buf, p.sale_id);
    buf.push_str(",\"lines\":[");
    for (i, l) in p.lines.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        buf.push_str("{\"product_id\":");
        push_json_str(buf, &l.product_id);
        buf.push_str(",\"quantity\":");
        buf.push_str(n.format(l.quantity));
        buf.push_str(",\"unit_price_cents\":");
        buf.push_str(n.format(l.unit_price_cents));
        buf.push('}');
    }
    buf.push_str("],\"total_cents\":");
    buf.push_str(n.format(p.total_cents));
    if let Some(c) = p.cashier_id {
        buf.push_str(",\"cashier_id\":");
        push_json_str(buf, c);
    }
    if let Some(s) = p.shift_id {
        buf.push_str(",\"shift_id\":");
        push_json_str(buf, s);
    }
    if let Some(ps) = p.payments {
        buf.push_str(",\"payments\":[");
        for (i, pay) in ps.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            buf.push_str("{\"method\":");
            push_json_str(buf, &pay.method);
            buf.push_str(",\"amount_cents\":");
            buf.push_str(n.format(pay.amount_cents));
            buf.push('}');
        }
        buf.push(']');
    }
    buf.push('}');
}

/// A JSON string as serde_json writes it. Ids and timestamps never need escaping, so they
/// are checked once and copied; anything else (a cashier id with quotes, say) goes through
/// serde_json's own escaper.
fn push_json_str(buf: &mut String, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        buf.push_str(&serde_json::Value::from(s).to_string());
    } else {
        buf.push('"');
        buf.push_str(s);
        buf.push('"');
    }
}

/// An adjustment event's payload.
pub fn adjustment(
    seq: u64,
    occurred_at: &str,
    product_id: &ProductId,
    delta: i64,
    reason: &str,
    user_id: Option<&UserId>,
) -> Result<String> {
    let ev = Event {
        seq,
        kind: EventKind::Adjustment,
        occurred_at: occurred_at.to_string(),
        product_id: Some(product_id.clone()),
        quantity_delta: Some(delta),
        reason: Some(reason.to_string()),
        user_id: user_id.cloned(),
        ..Event::default()
    };
    serde_json::to_string(&ev).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A `transfer_dispatched` or `transfer_received` event's payload (docs/protocol.md,
/// "Transfers"): the transfer, its lines (units that left, or arrived and were lost) and the
/// user who took the step.
pub fn transfer_step(
    seq: u64,
    occurred_at: &str,
    kind: EventKind,
    transfer_id: &str,
    lines: &[colmena_shared::transfers::TransferEventLine],
    user_id: Option<&UserId>,
) -> Result<String> {
    let ev = Event {
        seq,
        kind,
        occurred_at: occurred_at.to_string(),
        transfer_id: Some(transfer_id.to_string()),
        transfer_lines: Some(lines.to_vec()),
        user_id: user_id.cloned(),
        ..Event::default()
    };
    serde_json::to_string(&ev).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use colmena_shared::wire::EventLine;

    #[test]
    fn a_sale_payload_is_byte_for_byte_what_serde_json_makes_of_the_event() {
        let awkward = [
            "ana",
            "a \"quoted\" \\ name",
            "only \"quotes\"",
            "only \\ backslash",
            "tab\tnew\nline\r\u{8}\u{c}",
            "ctl\u{1}\u{1f}\u{7f}",
            "ñandú 收银员 🙂",
            "",
        ];
        let mut buf = String::new();
        for (i, cashier) in awkward.iter().map(Some).chain([None]).enumerate() {
            let seq = [1, 42, 9_999_999_999, 10_000_000_000, u64::MAX / 2][i % 5];
            let lines: Vec<SaleLineOut> = (0..=i)
                .map(|k| SaleLineOut {
                    product_id: ["P1", "a.b_c-9", "Z"][k % 3].to_string(),
                    quantity: k as i64 + 1,
                    unit_price_cents: 250 * k as i64,
                    line_total_cents: (k as i64 + 1) * 250 * k as i64,
                    remaining_stock: 7,
                })
                .collect();
            let total: i64 = lines.iter().map(|l| l.line_total_cents).sum();
            let id = sale_id("CUS", seq);
            // Every other sale is on a shift with tenders (one with change).
            let (shift, payments) = if i % 2 == 0 {
                (
                    Some(format!("CUS-SH-{i:06}")),
                    Some(vec![
                        Payment {
                            method: "card".into(),
                            amount_cents: total / 2 + 1,
                        },
                        Payment {
                            method: "cash".into(),
                            amount_cents: total + 250,
                        },
                    ]),
                )
            } else {
                (None, None)
            };
            let ev = Event {
                seq,
                kind: EventKind::Sale,
                occurred_at: "2026-12-02T16:01:05.123Z".into(),
                sale_id: Some(id.clone()),
                lines: Some(
                    lines
                        .iter()
                        .map(|l| EventLine {
                            product_id: ProductId::parse(&l.product_id).unwrap(),
                            quantity: l.quantity,
                            unit_price_cents: l.unit_price_cents,
                        })
                        .collect(),
                ),
                total_cents: Some(total),
                cashier_id: cashier.map(|c| c.to_string()),
                shift_id: shift.clone(),
                payments: payments.clone(),
                ..Event::default()
            };
            buf.clear();
            write_sale(
                &mut buf,
                &SalePayload {
                    seq,
                    occurred_at: &ev.occurred_at,
                    sale_id: &id,
                    lines: &lines,
                    total_cents: total,
                    cashier_id: cashier.copied(),
                    shift_id: shift.as_deref(),
                    payments: payments.as_deref(),
                },
            );
            assert_eq!(buf, serde_json::to_string(&ev).unwrap(), "cashier {cashier:?}");
            assert_eq!(serde_json::from_str::<Event>(&buf).unwrap(), ev);
        }
    }

    #[test]
    fn sale_ids_are_zero_padded_to_ten_digits_as_format_would() {
        for seq in [0, 1, 42, 999_999_999, 9_999_999_999, 10_000_000_000, u64::MAX] {
            assert_eq!(sale_id("CUS", seq), format!("CUS-{seq:010}"));
        }
    }
}
