//! The hostile-request corpus of a branch: every endpoint, every way in (auth, shapes, sizes,
//! encodings). Sent to a branch CUS selling P1 and P2 that has pulled from central.
use super::*;
use crate::support::{gzip, ADMIN_TOKEN};
use serde_json::json;

pub fn branch_corpus() -> Vec<Case> {
    use Svc::Branch as B;
    let mut v = Vec::new();
    let protected: [(&str, &str, &str); 11] = [
        ("POST", "/sell", VALID_SALE),
        ("GET", "/inventory", ""),
        ("GET", "/inventory/P1", ""),
        (
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":5,"reason":"receipt"}"#,
        ),
        ("GET", "/status", ""),
        ("GET", "/outbox", ""),
        ("GET", "/sales/export", ""),
        ("GET", "/admin/backups", ""),
        ("POST", "/admin/backups", ""),
        ("GET", "/admin/backups/x/download", ""),
        ("POST", "/admin/backups/x/verify", ""),
    ];
    for (m, p, b) in protected {
        v.extend(auth_cases(B, m, p, b, ADMIN_TOKEN));
    }
    // Unknown paths and wrong methods.
    v.push(case(B, "GET", "/nope").expect(404, "not_found"));
    v.push(
        case(B, "GET", "/nope")
            .without("authorization")
            .expect(401, "unauthorized"),
    );
    v.push(case(B, "GET", "/sell/../inventory/../../etc/passwd").expect(404, "not_found"));
    for (m, p) in [
        ("GET", "/sell"),
        ("DELETE", "/sell"),
        ("PUT", "/inventory"),
        ("POST", "/inventory/P1"),
        ("GET", "/stock/adjustments"),
        ("POST", "/status"),
        ("DELETE", "/outbox"),
        ("PATCH", "/admin/backups"),
        ("POST", "/health"),
        ("PUT", "/metrics"),
    ] {
        v.push(case(B, m, p).raw(VALID_SALE).expect(405, "method_not_allowed"));
    }
    // Paths.
    for (p, st, code) in [
        ("/inventory/NOPE", 404, "unknown_product"),
        ("/inventory/%FF", 400, "invalid_request"),
        ("/inventory/a%2Fb", 400, "invalid_request"),
        ("/inventory/a%20b", 400, "invalid_request"),
        ("/inventory/..%2F..%2Fetc%2Fpasswd", 400, "invalid_request"),
        ("/inventory/%00", 400, "invalid_request"),
        ("/admin/backups/..%2F..%2Fbranch.db/download", 404, "not_found"),
        ("/admin/backups/nope/download", 404, "not_found"),
    ] {
        v.push(case(B, "GET", p).expect(st, code));
    }
    v.push(
        case(B, "GET", &format!("/inventory/{}", "P".repeat(65)))
            .named("65-char id")
            .expect(400, "invalid_request"),
    );
    v.push(
        case(B, "GET", &format!("/inventory/{}", "P".repeat(5000)))
            .named("5000-char id")
            .expect(400, "invalid_request"),
    );
    v.push(case(B, "POST", "/admin/backups/nope/verify").expect(404, "not_found"));
    v.push(case(B, "POST", "/admin/backups/..%2F..%2Fbranch.db/verify").expect(404, "not_found"));
    // Query strings.
    for q in [
        "limit=0",
        "limit=10001",
        "limit=-1",
        "limit=abc",
        "limit=1e3",
        "limit=99999999999999999999",
        "limit=1&limit=2",
    ] {
        v.push(case(B, "GET", &format!("/outbox?{q}")).expect(400, "invalid_request"));
    }
    for q in [
        "from=yesterday",
        "to=2026-13-45T00:00:00Z",
        "from=2026-11-24T00:00:00Z&to=2026-11-23T00:00:00Z",
        "from=%FF",
    ] {
        v.push(case(B, "GET", &format!("/sales/export?{q}")).expect(400, "invalid_request"));
    }

    // POST /sell bodies.
    let sell = |n: &str, body: Value| case(B, "POST", "/sell").json(body).named(n.to_string());
    let s = |n: &str, raw: &[u8]| case(B, "POST", "/sell").raw(raw.to_vec()).named(n.to_string());
    for (n, body, st, code) in [
        ("empty object", json!({}), 400, "invalid_request"),
        ("empty basket", json!({"items": []}), 400, "invalid_request"),
        (
            "quantity 0",
            json!({"product_id": "P1", "quantity": 0}),
            400,
            "invalid_request",
        ),
        (
            "negative quantity",
            json!({"product_id": "P1", "quantity": -1}),
            400,
            "invalid_request",
        ),
        (
            "quantity over 1e6",
            json!({"product_id": "P1", "quantity": 1_000_001}),
            400,
            "invalid_request",
        ),
        (
            "quantity i64::MAX",
            json!({"product_id": "P1", "quantity": i64::MAX}),
            400,
            "invalid_request",
        ),
        (
            "quantity i64::MIN",
            json!({"product_id": "P1", "quantity": i64::MIN}),
            400,
            "invalid_request",
        ),
        (
            "quantity as string",
            json!({"product_id": "P1", "quantity": "1"}),
            400,
            "invalid_request",
        ),
        (
            "quantity float",
            json!({"product_id": "P1", "quantity": 1.5}),
            400,
            "invalid_request",
        ),
        (
            "quantity 1.0",
            json!({"product_id": "P1", "quantity": 1.0}),
            400,
            "invalid_request",
        ),
        (
            "quantity null",
            json!({"product_id": "P1", "quantity": null}),
            400,
            "invalid_request",
        ),
        (
            "quantity bool",
            json!({"product_id": "P1", "quantity": true}),
            400,
            "invalid_request",
        ),
        (
            "quantity array",
            json!({"product_id": "P1", "quantity": [1]}),
            400,
            "invalid_request",
        ),
        ("missing quantity", json!({"product_id": "P1"}), 400, "invalid_request"),
        ("missing product", json!({"quantity": 1}), 400, "invalid_request"),
        (
            "empty product id",
            json!({"product_id": "", "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "65-char product id",
            json!({"product_id": "P".repeat(65), "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "product id with space",
            json!({"product_id": "P 1", "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "product id with slash",
            json!({"product_id": "../P1", "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "product id unicode",
            json!({"product_id": "Pñ", "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "product id float",
            json!({"product_id": 1.5, "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "product id object",
            json!({"product_id": {"a": 1}, "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "product id null",
            json!({"product_id": null, "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "unknown product",
            json!({"product_id": "NOPE", "quantity": 1}),
            404,
            "unknown_product",
        ),
        (
            "unknown integer product",
            json!({"product_id": 424242, "quantity": 1}),
            404,
            "unknown_product",
        ),
        // -1 means the SKU "-1" (a valid id): unknown, not malformed.
        (
            "negative integer product id",
            json!({"product_id": -1, "quantity": 1}),
            404,
            "unknown_product",
        ),
        (
            "more than in stock",
            json!({"product_id": "P2", "quantity": 6}),
            409,
            "insufficient_stock",
        ),
        (
            "basket: one line short of stock",
            json!({"items": [{"product_id": "P1", "quantity": 1}, {"product_id": "P2", "quantity": 6}]}),
            409,
            "insufficient_stock",
        ),
        (
            "basket: one unknown line",
            json!({"items": [{"product_id": "P1", "quantity": 1}, {"product_id": "NOPE", "quantity": 1}]}),
            404,
            "unknown_product",
        ),
        (
            "basket: one zero line",
            json!({"items": [{"product_id": "P1", "quantity": 1}, {"product_id": "P2", "quantity": 0}]}),
            400,
            "invalid_request",
        ),
        (
            "basket: same product twice beyond stock",
            json!({"items": [{"product_id": "P2", "quantity": 3}, {"product_id": "P2", "quantity": 3}]}),
            409,
            "insufficient_stock",
        ),
        (
            "both body forms",
            json!({"product_id": "P1", "quantity": 1, "items": [{"product_id": "P1", "quantity": 1}]}),
            400,
            "invalid_request",
        ),
        (
            "items not an array",
            json!({"items": {"product_id": "P1", "quantity": 1}}),
            400,
            "invalid_request",
        ),
        ("items of strings", json!({"items": ["P1"]}), 400, "invalid_request"),
        (
            "501 lines",
            json!({"items": vec![json!({"product_id": "P1", "quantity": 1}); 501]}),
            400,
            "invalid_request",
        ),
        (
            "empty cashier",
            json!({"product_id": "P1", "quantity": 1, "cashier_id": ""}),
            400,
            "invalid_request",
        ),
        (
            "65-char cashier",
            json!({"product_id": "P1", "quantity": 1, "cashier_id": "c".repeat(65)}),
            400,
            "invalid_request",
        ),
        (
            "cashier with a control char",
            json!({"product_id": "P1", "quantity": 1, "cashier_id": "ana\u{7}"}),
            400,
            "invalid_request",
        ),
        (
            "cashier as number",
            json!({"product_id": "P1", "quantity": 1, "cashier_id": 7}),
            400,
            "invalid_request",
        ),
        (
            "JSON array body",
            json!([{"product_id": "P1", "quantity": 1}]),
            400,
            "invalid_request",
        ),
        ("JSON null body", json!(null), 400, "invalid_request"),
        ("JSON string body", json!("P1"), 400, "invalid_request"),
    ] {
        v.push(sell(n, body).expect(st, code));
    }
    for (n, raw) in [
        ("empty body", &b""[..]),
        ("not JSON", b"hello"),
        ("truncated JSON", br#"{"product_id": "P1", "quantity""#),
        ("trailing garbage", br#"{"product_id":"P1","quantity":1} x"#),
        (
            "two JSON documents",
            br#"{"product_id":"P1","quantity":1}{"product_id":"P1","quantity":1}"#,
        ),
        (
            "duplicate key",
            br#"{"product_id":"P1","product_id":"P2","quantity":1}"#,
        ),
        ("single quotes", b"{'product_id':'P1','quantity':1}"),
        ("comment", br#"{"product_id":"P1", /* c */ "quantity":1}"#),
        ("NaN", br#"{"product_id":"P1","quantity":NaN}"#),
        ("1e400", br#"{"product_id":"P1","quantity":1e400}"#),
        (
            "huge integer",
            br#"{"product_id":"P1","quantity":123456789012345678901234567890}"#,
        ),
        (
            "below i64::MIN",
            br#"{"product_id":"P1","quantity":-9223372036854775809}"#,
        ),
        (
            "huge integer product id",
            br#"{"product_id":123456789012345678901234567890,"quantity":1}"#,
        ),
        (
            "invalid UTF-8 in a string",
            b"{\"product_id\":\"P\xff1\",\"quantity\":1}",
        ),
        (
            "invalid UTF-8 in a key",
            b"{\"product_id\":\"P1\",\"quantity\":1,\"\xc3\x28\":1}",
        ),
        ("overlong UTF-8", b"{\"product_id\":\"P\xc0\xaf1\",\"quantity\":1}"),
        (
            "lone surrogate escape",
            br#"{"product_id":"P1","quantity":1,"cashier_id":"\ud800"}"#,
        ),
        (
            "NUL escape in cashier",
            br#"{"product_id":"P1","quantity":1,"cashier_id":"a\u0000b"}"#,
        ),
        ("UTF-8 BOM", b"\xef\xbb\xbf{\"product_id\":\"P1\",\"quantity\":1}"),
        ("UTF-16 body", b"\xff\xfe{\x00\"\x00}\x00"),
        ("control char in JSON", b"{\"product_id\":\"P1\x01\",\"quantity\":1}"),
    ] {
        v.push(s(n, raw).expect(400, "invalid_request"));
    }
    v.push(s("nested arrays 100k deep", nested(100_000, "[", "]").as_bytes()).expect(400, "invalid_request"));
    v.push(
        s(
            "nested objects 10k deep as items",
            format!(
                r#"{{"items":{}}}"#,
                nested(10_000, r#"{"a":"#, "}").replace(":}", ":1}")
            )
            .as_bytes(),
        )
        .expect(400, "invalid_request"),
    );
    // Unknown fields are ignored (serde skips them without recursing), so this one is refused
    // for its quantity; it shows 500k levels of nesting cost no stack.
    v.push(
        s(
            "500k-deep unknown field",
            format!(
                r#"{{"product_id":"P1","quantity":0,"x":{}}}"#,
                nested(500_000, "[", "]")
            )
            .as_bytes(),
        )
        .expect(400, "invalid_request"),
    );
    v.push(
        s(
            "nested arrays 200 deep as cashier",
            format!(
                r#"{{"product_id":"P1","quantity":1,"cashier_id":{}}}"#,
                nested(200, "[", "]")
            )
            .as_bytes(),
        )
        .expect(400, "invalid_request"),
    );
    // Content types and encodings.
    let valid = case(B, "POST", "/sell").raw(VALID_SALE);
    v.push(
        valid
            .clone()
            .without("content-type")
            .named("no Content-Type")
            .expect(415, "unsupported_media_type"),
    );
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
        "json",
    ] {
        v.push(
            valid
                .clone()
                .without("content-type")
                .header("content-type", ct)
                .named(format!("Content-Type {ct:?}"))
                .expect(415, "unsupported_media_type"),
        );
    }
    v.push(
        valid
            .clone()
            .header("content-encoding", "gzip")
            .named("gzip label on a plain body")
            .expect(400, "invalid_request"),
    );
    v.push(
        case(B, "POST", "/sell")
            .raw(gzip(VALID_SALE.as_bytes())[..20].to_vec())
            .header("content-encoding", "gzip")
            .named("truncated gzip")
            .expect(400, "invalid_request"),
    );
    let mut trailing = gzip(VALID_SALE.as_bytes());
    trailing.extend_from_slice(b"junk");
    v.push(
        case(B, "POST", "/sell")
            .raw(trailing)
            .header("content-encoding", "gzip")
            .named("bytes after the gzip stream")
            .expect(400, "invalid_request"),
    );
    for enc in ["zstd", "br", "compress", "gzip, gzip", "x-unknown"] {
        v.push(
            valid
                .clone()
                .header("content-encoding", enc)
                .named(format!("Content-Encoding {enc}"))
                .expect(415, "unsupported_media_type"),
        );
    }
    // Idempotency-Key abuse (with a valid sale: a wrongly accepted key would sell).
    for (n, key) in [
        ("empty key", b"".to_vec()),
        ("256-char key", vec![b'k'; 256]),
        ("key with a space", b"a b".to_vec()),
        ("non-ASCII key", b"cl\xc3\xa9".to_vec()),
        ("key with a tab", b"a\tb".to_vec()),
    ] {
        v.push(
            valid
                .clone()
                .header("idempotency-key", key)
                .named(n)
                .expect(400, "invalid_request"),
        );
    }
    // Sizes.
    v.push(
        case(B, "POST", "/sell")
            .body(Body::Stream {
                len: 100 << 20,
                byte: b' ',
            })
            .named("100 MB body")
            .expect(413, "payload_too_large"),
    );
    v.push(
        case(B, "POST", "/sell")
            .body(Body::Chunked { len: 100 << 20 })
            .named("100 MB chunked body")
            .expect(413, "payload_too_large"),
    );
    v.push(
        case(B, "POST", "/sell")
            .body(Body::Stream {
                len: 100 << 20,
                byte: b' ',
            })
            .without("authorization")
            .named("100 MB body, no token")
            .expect(401, "unauthorized"),
    );
    v.push(
        case(B, "POST", "/sell")
            .raw(format!(
                r#"{{"product_id":"P1","quantity":1,"cashier_id":"{}"}}"#,
                "c".repeat(1 << 20)
            ))
            .named("1 MiB + a bit")
            .expect(413, "payload_too_large"),
    );
    v.push(
        case(B, "POST", "/sell")
            .raw(gzip_bomb(""))
            .header("content-encoding", "gzip")
            .named("gzip bomb (200 MB of spaces)")
            .expect(413, "payload_too_large"),
    );
    v.push(
        case(B, "POST", "/stock/adjustments")
            .body(Body::Stream {
                len: 100 << 20,
                byte: b'{',
            })
            .named("100 MB body")
            .expect(413, "payload_too_large"),
    );

    // POST /stock/adjustments bodies.
    for (n, body, st, code) in [
        (
            "delta 0",
            json!({"product_id": "P1", "quantity_delta": 0}),
            400,
            "invalid_request",
        ),
        (
            "delta over 1e6",
            json!({"product_id": "P1", "quantity_delta": 1_000_001}),
            400,
            "invalid_request",
        ),
        (
            "delta under -1e6",
            json!({"product_id": "P1", "quantity_delta": -1_000_001}),
            400,
            "invalid_request",
        ),
        (
            "delta i64::MIN",
            json!({"product_id": "P1", "quantity_delta": i64::MIN}),
            400,
            "invalid_request",
        ),
        (
            "delta float",
            json!({"product_id": "P1", "quantity_delta": 2.5}),
            400,
            "invalid_request",
        ),
        (
            "delta string",
            json!({"product_id": "P1", "quantity_delta": "5"}),
            400,
            "invalid_request",
        ),
        ("missing delta", json!({"product_id": "P1"}), 400, "invalid_request"),
        ("missing product", json!({"quantity_delta": 5}), 400, "invalid_request"),
        (
            "bad product id",
            json!({"product_id": "P 1", "quantity_delta": 5}),
            400,
            "invalid_request",
        ),
        (
            "unknown product",
            json!({"product_id": "NOPE", "quantity_delta": 5}),
            404,
            "unknown_product",
        ),
        (
            "below zero stock",
            json!({"product_id": "P2", "quantity_delta": -6}),
            409,
            "insufficient_stock",
        ),
        (
            "empty reason",
            json!({"product_id": "P1", "quantity_delta": 5, "reason": ""}),
            400,
            "invalid_request",
        ),
        (
            "65-char reason",
            json!({"product_id": "P1", "quantity_delta": 5, "reason": "r".repeat(65)}),
            400,
            "invalid_request",
        ),
        (
            "reason with newline",
            json!({"product_id": "P1", "quantity_delta": 5, "reason": "a\nb"}),
            400,
            "invalid_request",
        ),
        (
            "reason as object",
            json!({"product_id": "P1", "quantity_delta": 5, "reason": {}}),
            400,
            "invalid_request",
        ),
        ("array body", json!([]), 400, "invalid_request"),
    ] {
        v.push(
            case(B, "POST", "/stock/adjustments")
                .json(body)
                .named(n)
                .expect(st, code),
        );
    }
    v.push(
        case(B, "POST", "/stock/adjustments")
            .raw(b"{\"product_id\":\"P\xfe\",\"quantity_delta\":1}".to_vec())
            .named("invalid UTF-8")
            .expect(400, "invalid_request"),
    );
    v.push(
        case(B, "POST", "/stock/adjustments")
            .raw(nested(50_000, "[", "]"))
            .named("deep nesting")
            .expect(400, "invalid_request"),
    );
    v.push(
        case(B, "POST", "/stock/adjustments")
            .raw(r#"{"product_id":"P1","quantity_delta":5}"#)
            .without("content-type")
            .named("no Content-Type")
            .expect(415, "unsupported_media_type"),
    );
    v
}
