//! The hostile-request corpus of central: every endpoint, every way in (auth, shapes, sizes,
//! encodings, pushes from the wrong branch). `cus_through` is where branch CUS stands, so a
//! push that wrongly got through would be applied.
use super::*;
use crate::support::{branch_token, gzip};
use serde_json::json;

pub fn central_corpus(cus_through: u64) -> Vec<Case> {
    use Svc::Central as C;
    let mut v = Vec::new();
    let cus = branch_token("CUS");
    let push_ok = json!({"branch_id": "CUS", "events": [event_sale(cus_through + 1)]}).to_string();
    let protected: [(&str, &str, &str); 10] = [
        ("PUT", "/products/P1", r#"{"name":"hacked","price_cents":1}"#),
        ("GET", "/products", ""),
        (
            "POST",
            "/branches/CUS/allocations",
            r#"{"product_id":"P1","quantity":1000}"#,
        ),
        ("GET", "/inventory", ""),
        ("GET", "/inventory/P1", ""),
        ("GET", "/branches", ""),
        ("GET", "/sales", ""),
        ("GET", "/sales/export", ""),
        ("POST", "/sync/push", &push_ok),
        ("GET", "/sync/pull?branch_id=CUS", ""),
    ];
    for (m, p, b) in protected {
        v.extend(auth_cases(C, m, p, b, POS_TOKEN));
    }
    // A branch token outside /sync/* or acting for another branch: 403.
    for (m, p, b) in &protected[..8] {
        v.push(
            case(C, m, p)
                .raw(b.as_bytes().to_vec())
                .token(&cus)
                .named("branch token on an admin endpoint")
                .expect(403, "forbidden"),
        );
    }
    v.push(
        case(C, "POST", "/sync/push")
            .json(json!({"branch_id": "ABA", "events": [event_sale(1)]}))
            .token(&cus)
            .named("CUS pushing as ABA")
            .expect(403, "forbidden"),
    );
    v.push(
        case(C, "GET", "/sync/pull?branch_id=ABA")
            .token(&cus)
            .named("CUS pulling as ABA")
            .expect(403, "forbidden"),
    );
    // Unknown paths, wrong methods.
    v.push(case(C, "GET", "/nope").expect(404, "not_found"));
    v.push(
        case(C, "GET", "/nope")
            .without("authorization")
            .expect(401, "unauthorized"),
    );
    v.push(case(C, "GET", "/sync/nope").token(&cus).expect(404, "not_found"));
    for (m, p) in [
        ("DELETE", "/products/P1"),
        ("POST", "/products"),
        ("GET", "/branches/CUS/allocations"),
        ("DELETE", "/inventory"),
        ("POST", "/branches"),
        ("PUT", "/sales"),
        ("GET", "/sync/push"),
        ("POST", "/sync/pull"),
        ("POST", "/health"),
        ("DELETE", "/metrics"),
    ] {
        v.push(
            case(C, m, p)
                .raw(r#"{"name":"x","price_cents":1}"#)
                .expect(405, "method_not_allowed"),
        );
    }
    // Paths.
    for (m, p, body, st, code) in [
        ("GET", "/inventory/NOPE", "", 404, "unknown_product"),
        ("GET", "/inventory/%FF", "", 400, "invalid_request"),
        ("GET", "/inventory/a%2Fb", "", 400, "invalid_request"),
        (
            "PUT",
            "/products/a%2F..",
            r#"{"name":"x","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        (
            "PUT",
            "/products/P%201",
            r#"{"name":"x","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        (
            "PUT",
            "/products/%C3%B1",
            r#"{"name":"x","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/branches/x/allocations",
            r#"{"product_id":"P1","quantity":1}"#,
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/branches/cus/allocations",
            r#"{"product_id":"P1","quantity":1}"#,
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/branches/ABCDEFGHIJKLMNOPQ/allocations",
            r#"{"product_id":"P1","quantity":1}"#,
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/branches/ZZZ/allocations",
            r#"{"product_id":"P1","quantity":1}"#,
            404,
            "not_found",
        ),
        (
            "POST",
            "/branches/C%2FUS/allocations",
            r#"{"product_id":"P1","quantity":1}"#,
            400,
            "invalid_request",
        ),
    ] {
        v.push(case(C, m, p).raw(body.as_bytes().to_vec()).expect(st, code));
    }
    v.push(
        case(C, "PUT", &format!("/products/{}", "P".repeat(65)))
            .json(json!({"name": "x", "price_cents": 1}))
            .named("65-char id")
            .expect(400, "invalid_request"),
    );
    // PUT /products bodies.
    for (n, body) in [
        ("empty name", json!({"name": "", "price_cents": 1})),
        ("blank name", json!({"name": "   ", "price_cents": 1})),
        ("201-char name", json!({"name": "n".repeat(201), "price_cents": 1})),
        ("name with newline", json!({"name": "a\nb", "price_cents": 1})),
        ("name as number", json!({"name": 5, "price_cents": 1})),
        ("negative price", json!({"name": "x", "price_cents": -1})),
        (
            "price over the maximum",
            json!({"name": "x", "price_cents": 10_000_000_001i64}),
        ),
        ("price i64::MAX", json!({"name": "x", "price_cents": i64::MAX})),
        ("price float", json!({"name": "x", "price_cents": 5.5})),
        ("price string", json!({"name": "x", "price_cents": "550"})),
        ("missing price", json!({"name": "x"})),
        ("missing name", json!({"price_cents": 1})),
        ("array body", json!([{"name": "x", "price_cents": 1}])),
        ("null body", json!(null)),
    ] {
        v.push(
            case(C, "PUT", "/products/P1")
                .json(body)
                .named(n)
                .expect(400, "invalid_request"),
        );
    }
    for (n, raw) in [
        ("price 1e400", &br#"{"name":"x","price_cents":1e400}"#[..]),
        ("huge price", br#"{"name":"x","price_cents":99999999999999999999999}"#),
        ("invalid UTF-8 name", b"{\"name\":\"\xff\xfe\",\"price_cents\":1}"),
        ("lone surrogate name", br#"{"name":"\udc00","price_cents":1}"#),
        ("truncated", br#"{"name":"x","#),
        ("empty", b""),
    ] {
        v.push(
            case(C, "PUT", "/products/P1")
                .raw(raw.to_vec())
                .named(n)
                .expect(400, "invalid_request"),
        );
    }
    v.push(
        case(C, "PUT", "/products/P1")
            .raw(nested(100_000, "[", "]"))
            .named("deep nesting")
            .expect(400, "invalid_request"),
    );
    v.push(
        case(C, "PUT", "/products/P1")
            .raw(r#"{"name":"x","price_cents":1}"#)
            .without("content-type")
            .named("no Content-Type")
            .expect(415, "unsupported_media_type"),
    );
    v.push(
        case(C, "PUT", "/products/P1")
            .raw(r#"{"name":"x","price_cents":1}"#)
            .header("content-encoding", "zstd")
            .named("Content-Encoding zstd")
            .expect(415, "unsupported_media_type"),
    );
    v.push(
        case(C, "PUT", "/products/P1")
            .body(Body::Stream {
                len: 100 << 20,
                byte: b'[',
            })
            .named("100 MB body")
            .expect(413, "payload_too_large"),
    );
    // Allocations.
    for (n, body, st, code) in [
        (
            "quantity 0",
            json!({"product_id": "P1", "quantity": 0}),
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
            "quantity under -1e6",
            json!({"product_id": "P1", "quantity": -1_000_001}),
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
            "quantity float",
            json!({"product_id": "P1", "quantity": 1.5}),
            400,
            "invalid_request",
        ),
        (
            "quantity string",
            json!({"product_id": "P1", "quantity": "1"}),
            400,
            "invalid_request",
        ),
        ("missing quantity", json!({"product_id": "P1"}), 400, "invalid_request"),
        (
            "bad product id",
            json!({"product_id": "P/1", "quantity": 1}),
            400,
            "invalid_request",
        ),
        (
            "unknown product",
            json!({"product_id": "NOPE", "quantity": 1}),
            404,
            "unknown_product",
        ),
        ("array body", json!([]), 400, "invalid_request"),
    ] {
        v.push(
            case(C, "POST", "/branches/CUS/allocations")
                .json(body)
                .named(n)
                .expect(st, code),
        );
    }
    v.push(
        case(C, "POST", "/branches/CUS/allocations")
            .raw(br#"{"product_id":"P1","quantity":1e400}"#.to_vec())
            .named("quantity 1e400")
            .expect(400, "invalid_request"),
    );
    // Queries.
    for q in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "after=garbage",
        "after=s1.2",
        "after=s1.2.3.4",
        "from=yesterday",
        "to=2026-02-30T00:00:00Z",
        "from=2026-11-24T00:00:00Z&to=2026-11-23T00:00:00Z",
        "branch_id=x",
        "branch_id=cus",
        "brnach_id=CUS",
        "limit=99999999999999999999",
    ] {
        v.push(case(C, "GET", &format!("/sales?{q}")).expect(400, "invalid_request"));
    }
    for q in [
        "from=yesterday",
        "branch_id=%FF",
        "from=2026-11-24T00:00:00Z&to=2026-11-23T00:00:00Z",
        "limit=5",
    ] {
        v.push(case(C, "GET", &format!("/sales/export?{q}")).expect(400, "invalid_request"));
    }
    for q in [
        "after=-1",
        "after=abc",
        "after=9223372036854775808",
        "after=99999999999999999999999",
        "limit=0",
        "limit=1001",
        "limit=-5",
    ] {
        v.push(
            case(C, "GET", &format!("/sync/pull?{q}"))
                .token(&cus)
                .expect(400, "invalid_request"),
        );
    }
    v.push(
        case(C, "GET", "/sync/pull")
            .named("admin without branch_id")
            .expect(400, "invalid_request"),
    );
    v.push(
        case(C, "GET", "/sync/pull?branch_id=bad%20id")
            .named("bad branch_id")
            .expect(400, "invalid_request"),
    );
    // POST /sync/push (CUS token). None of these may apply anything.
    let next = cus_through + 1;
    let push = |n: &str, body: Value| {
        case(C, "POST", "/sync/push")
            .token(&cus)
            .json(body)
            .named(n.to_string())
    };
    let ev = |f: &dyn Fn(&mut Value)| {
        let mut e = event_sale(next);
        f(&mut e);
        json!({"branch_id": "CUS", "events": [e]})
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "a gap",
            json!({"branch_id": "CUS", "events": [event_sale(next + 5)]}),
            409,
            "sequence_gap",
        ),
        (
            "a gap inside the batch",
            json!({"branch_id": "CUS", "events": [event_sale(next), event_sale(next + 2)]}),
            409,
            "sequence_gap",
        ),
        (
            "valid then invalid event",
            json!({"branch_id": "CUS", "events": [event_sale(next), {"seq": next + 1, "kind": "sale"}]}),
            400,
            "invalid_request",
        ),
        (
            "seqs out of order",
            json!({"branch_id": "CUS", "events": [event_sale(next + 1), event_sale(next)]}),
            400,
            "invalid_request",
        ),
        (
            "same seq twice",
            json!({"branch_id": "CUS", "events": [event_sale(next), event_sale(next)]}),
            400,
            "invalid_request",
        ),
        ("seq 0", ev(&|e| e["seq"] = json!(0)), 400, "invalid_request"),
        ("seq -1", ev(&|e| e["seq"] = json!(-1)), 400, "invalid_request"),
        (
            "seq over i64::MAX",
            ev(&|e| e["seq"] = json!(9_223_372_036_854_775_808u64)),
            400,
            "invalid_request",
        ),
        (
            "seq u64::MAX",
            ev(&|e| e["seq"] = json!(u64::MAX)),
            400,
            "invalid_request",
        ),
        ("seq as string", ev(&|e| e["seq"] = json!("1")), 400, "invalid_request"),
        ("seq float", ev(&|e| e["seq"] = json!(1.5)), 400, "invalid_request"),
        (
            "unknown kind",
            ev(&|e| e["kind"] = json!("refund")),
            400,
            "invalid_request",
        ),
        (
            "no sale_id",
            ev(&|e| e.as_object_mut().unwrap().remove("sale_id").map(|_| ()).unwrap()),
            400,
            "invalid_request",
        ),
        (
            "65-char sale_id",
            ev(&|e| e["sale_id"] = json!("S".repeat(65))),
            400,
            "invalid_request",
        ),
        ("no lines", ev(&|e| e["lines"] = json!([])), 400, "invalid_request"),
        (
            "line quantity 0",
            ev(&|e| e["lines"][0]["quantity"] = json!(0)),
            400,
            "invalid_request",
        ),
        (
            "line quantity negative",
            ev(&|e| e["lines"][0]["quantity"] = json!(-2)),
            400,
            "invalid_request",
        ),
        (
            "negative unit price",
            ev(&|e| e["lines"][0]["unit_price_cents"] = json!(-100)),
            400,
            "invalid_request",
        ),
        (
            "total mismatch",
            ev(&|e| e["total_cents"] = json!(1)),
            400,
            "invalid_request",
        ),
        (
            "no total",
            ev(&|e| e.as_object_mut().unwrap().remove("total_cents").map(|_| ()).unwrap()),
            400,
            "invalid_request",
        ),
        (
            "total overflows i64",
            ev(&|e| {
                e["lines"][0]["unit_price_cents"] = json!(i64::MAX);
                e["total_cents"] = json!(0)
            }),
            400,
            "invalid_request",
        ),
        (
            "bad occurred_at",
            ev(&|e| e["occurred_at"] = json!("yesterday")),
            400,
            "invalid_request",
        ),
        (
            "bad line product id",
            ev(&|e| e["lines"][0]["product_id"] = json!("P 1")),
            400,
            "invalid_request",
        ),
        (
            "empty cashier",
            ev(&|e| e["cashier_id"] = json!("")),
            400,
            "invalid_request",
        ),
        (
            "adjustment delta 0",
            json!({"branch_id": "CUS", "events": [{"seq": next, "kind": "adjustment", "occurred_at": "2026-11-23T16:00:00Z", "product_id": "P1", "quantity_delta": 0}]}),
            400,
            "invalid_request",
        ),
        (
            "adjustment without product",
            json!({"branch_id": "CUS", "events": [{"seq": next, "kind": "adjustment", "occurred_at": "2026-11-23T16:00:00Z", "quantity_delta": 3}]}),
            400,
            "invalid_request",
        ),
        (
            "adjustment reason 65 chars",
            json!({"branch_id": "CUS", "events": [{"seq": next, "kind": "adjustment", "occurred_at": "2026-11-23T16:00:00Z", "product_id": "P1", "quantity_delta": 3, "reason": "r".repeat(65)}]}),
            400,
            "invalid_request",
        ),
        (
            "bad branch id",
            json!({"branch_id": "cus", "events": [event_sale(next)]}),
            400,
            "invalid_request",
        ),
        (
            "no branch id",
            json!({"events": [event_sale(next)]}),
            400,
            "invalid_request",
        ),
        (
            "events not an array",
            json!({"branch_id": "CUS", "events": event_sale(next)}),
            400,
            "invalid_request",
        ),
        ("no events", json!({"branch_id": "CUS"}), 400, "invalid_request"),
        ("array body", json!([event_sale(next)]), 400, "invalid_request"),
    ];
    for (n, body, st, code) in cases {
        v.push(push(n, body).expect(st, code));
    }
    let push_raw = |n: &str, raw: Vec<u8>| case(C, "POST", "/sync/push").token(&cus).raw(raw).named(n.to_string());
    v.push(
        push_raw(
            "raw control char in a string",
            format!(r#"{{"branch_id":"CUS","events":[{}]}}"#, event_sale(next))
                .replace("CUS-", "CUS-\u{1}")
                .into_bytes(),
        )
        .expect(400, "invalid_request"),
    );
    let mut bad_utf8 = format!(r#"{{"branch_id":"CUS","events":[{}]}}"#, event_sale(next)).into_bytes();
    let i = bad_utf8.iter().position(|b| *b == b'P').unwrap();
    bad_utf8[i] = 0xff;
    v.push(push_raw("invalid UTF-8 product id", bad_utf8).expect(400, "invalid_request"));
    v.push(
        push_raw(
            "deep nesting",
            format!(r#"{{"branch_id":"CUS","events":{}}}"#, nested(100_000, "[", "]")).into_bytes(),
        )
        .expect(400, "invalid_request"),
    );
    v.push(
        push_raw("gzip label on plain JSON", push_ok.clone().into_bytes())
            .header("content-encoding", "gzip")
            .expect(400, "invalid_request"),
    );
    v.push(
        push_raw(
            "gzip bomb (200 MB of spaces)",
            gzip_bomb(r#"{"branch_id":"CUS","events":["#),
        )
        .header("content-encoding", "gzip")
        .expect(413, "payload_too_large"),
    );
    v.push(
        push_raw("Content-Encoding br", gzip(push_ok.as_bytes()))
            .header("content-encoding", "br")
            .expect(415, "unsupported_media_type"),
    );
    v.push(
        push_raw("no Content-Type", push_ok.clone().into_bytes())
            .without("content-type")
            .expect(415, "unsupported_media_type"),
    );
    let big: Vec<Value> = (0..12_000).map(|i| event_sale(next + i)).collect();
    v.push(
        push_raw(
            "3 MB batch",
            json!({"branch_id": "CUS", "events": big}).to_string().into_bytes(),
        )
        .expect(413, "payload_too_large"),
    );
    v.push(
        case(C, "POST", "/sync/push")
            .token(&cus)
            .body(Body::Stream {
                len: 100 << 20,
                byte: b' ',
            })
            .named("100 MB body")
            .expect(413, "payload_too_large"),
    );
    v.push(
        case(C, "POST", "/sync/push")
            .body(Body::Stream {
                len: 100 << 20,
                byte: b' ',
            })
            .token("nope")
            .named("100 MB body, wrong token")
            .expect(401, "unauthorized"),
    );
    v
}
