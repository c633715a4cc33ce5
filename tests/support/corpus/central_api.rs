//! Central's table of documented 4xx answers, one row per way a request can be wrong
//! (shape, types, limits, tokens, media types, gzip, methods, unknown routes), against a
//! central that has P1, an allocation to CUS and CUS's events 1..=3 applied. Each row is
//! a [`Case`] of the one corpus.
use super::{case, Case, Svc};
use crate::support::central::{adjustment, sale};
use crate::support::{branch_token, gzip, ADMIN_TOKEN};
use serde_json::{json, Value};

/// A row as the table reads best: one bearer token, a content type, gzip or not.
struct Row {
    method: &'static str,
    path: String,
    token: String,
    ctype: Option<&'static str>,
    gzip: bool,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

impl Row {
    fn into_case(self) -> Case {
        let short = &self.path[..self.path.len().min(80)];
        let mut c = case(Svc::Central, self.method, &self.path)
            .without("authorization")
            .without("content-type")
            .header("authorization", format!("Bearer {}", self.token));
        c.name = format!("{} {short}", self.method);
        if let Some(ct) = self.ctype {
            c = c.header("content-type", ct);
        }
        if self.gzip {
            // The bomb is already compressed; a plain body labelled gzip is not gzip at all.
            c = c.header("content-encoding", "gzip");
        }
        c.raw(self.body).expect(self.status, self.code)
    }
}

/// Every row of the table, as corpus cases.
pub fn central_api_corpus() -> Vec<Case> {
    let cus = branch_token("CUS");
    let adm = ADMIN_TOKEN.to_string();
    let ev = |v: Value| json!({"branch_id": "CUS", "events": [v]}).to_string();
    let mut bad_sale = sale(4, &[("P1", 1, 550)]);
    bad_sale["total_cents"] = json!(1);
    let mut no_lines = sale(4, &[]);
    no_lines["total_cents"] = json!(0);
    let mut refund = sale(4, &[("P1", 1, 550)]);
    refund["kind"] = json!("refund");
    let mut when = sale(4, &[("P1", 1, 550)]);
    when["occurred_at"] = json!("yesterday");
    let two = |a: Value, b: Value| json!({"branch_id": "CUS", "events": [a, b]}).to_string();
    let big_name = "n".repeat(201);
    let too_big = format!("{{\"name\":\"{}\",\"price_cents\":1}}", "x".repeat(1 << 20));
    let too_big_push = format!(
        "{{\"branch_id\":\"CUS\",\"events\":[],\"pad\":\"{}\"}}",
        " ".repeat(2 << 20)
    );
    let bomb = gzip(&[b' '; 40 << 20]);
    let long_id = "p".repeat(65);

    let case = |method, path: &str, token: &str, body: &str, status, code| Row {
        method,
        path: path.to_string(),
        token: token.to_string(),
        ctype: Some("application/json"),
        gzip: false,
        body: body.as_bytes().to_vec(),
        status,
        code,
    };
    let cases = vec![
        // PUT /products/{id}
        case("PUT", "/products/P1", &adm, "{", 400, "invalid_request"),
        case("PUT", "/products/P1", &adm, "[]", 400, "invalid_request"),
        case("PUT", "/products/P1", &adm, "null", 400, "invalid_request"),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"   ","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"a\u0007b","price_cents":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            &format!(r#"{{"name":"{big_name}","price_cents":1}}"#),
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"x","price_cents":-1}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"x","price_cents":10000000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"x","price_cents":1.5}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"name":"x","price_cents":"5"}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/P1",
            &adm,
            r#"{"price_cents":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            "/products/a%20b",
            &adm,
            r#"{"name":"x","price_cents":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "PUT",
            &format!("/products/{long_id}"),
            &adm,
            r#"{"name":"x","price_cents":5}"#,
            400,
            "invalid_request",
        ),
        case("PUT", "/products/P1", &adm, &too_big, 413, "payload_too_large"),
        Row {
            ctype: None,
            ..case(
                "PUT",
                "/products/P1",
                &adm,
                r#"{"name":"x","price_cents":5}"#,
                415,
                "unsupported_media_type",
            )
        },
        Row {
            ctype: Some("text/plain"),
            ..case(
                "PUT",
                "/products/P1",
                &adm,
                r#"{"name":"x","price_cents":5}"#,
                415,
                "unsupported_media_type",
            )
        },
        case("DELETE", "/products/P1", &adm, "", 405, "method_not_allowed"),
        case("POST", "/products", &adm, "{}", 405, "method_not_allowed"),
        // POST /branches/{id}/allocations
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"NOPE","quantity":5}"#,
            404,
            "unknown_product",
        ),
        case(
            "POST",
            "/branches/ZZZ/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":5}"#,
            404,
            "not_found",
        ),
        case(
            "POST",
            "/branches/cus/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":0}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"P1","quantity":-1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"a b","quantity":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":1.5,"quantity":5}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/branches/CUS/allocations",
            &adm,
            r#"{"product_id":"P1"}"#,
            400,
            "invalid_request",
        ),
        case("GET", "/branches/CUS/allocations", &adm, "", 405, "method_not_allowed"),
        // inventory
        case("GET", "/inventory/NOPE", &adm, "", 404, "unknown_product"),
        case("GET", "/inventory/no%24pe", &adm, "", 400, "invalid_request"),
        // sales and export
        case("GET", "/sales?limit=0", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?limit=1001", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?limit=abc", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?limit=-1", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?from=yesterday", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?branch_id=cus", &adm, "", 400, "invalid_request"),
        case("GET", "/sales?after=garbage", &adm, "", 400, "invalid_request"),
        case(
            "GET",
            "/sales?from=2026-11-24T00:00:00Z&to=2026-11-23T00:00:00Z",
            &adm,
            "",
            400,
            "invalid_request",
        ),
        case("GET", "/sales?brnach_id=CUS", &adm, "", 400, "invalid_request"),
        case("GET", "/sales/export?to=soon", &adm, "", 400, "invalid_request"),
        case("GET", "/sales/export?limit=5", &adm, "", 400, "invalid_request"),
        // POST /sync/push
        case("POST", "/sync/push", &cus, "not json", 400, "invalid_request"),
        case(
            "POST",
            "/sync/push",
            &cus,
            r#"{"branch_id":"CUS"}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            r#"{"branch_id":"cus","events":[]}"#,
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(sale(0, &[("P1", 1, 550)])),
            400,
            "invalid_request",
        ),
        case("POST", "/sync/push", &cus, &ev(bad_sale), 400, "invalid_request"),
        case("POST", "/sync/push", &cus, &ev(no_lines), 400, "invalid_request"),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(sale(4, &[("P1", 0, 550)])),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(sale(4, &[("P1", 1, -5)])),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(adjustment(4, "P1", 0)),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(adjustment(4, "bad id", 1)),
            400,
            "invalid_request",
        ),
        case("POST", "/sync/push", &cus, &ev(refund), 400, "invalid_request"),
        case("POST", "/sync/push", &cus, &ev(when), 400, "invalid_request"),
        case(
            "POST",
            "/sync/push",
            &cus,
            &two(sale(5, &[("P1", 1, 1)]), sale(4, &[("P1", 1, 1)])),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &two(sale(4, &[("P1", 1, 1)]), sale(4, &[("P1", 1, 1)])),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &two(sale(4, &[("P1", 1, 1)]), adjustment(5, "P1", 0)),
            400,
            "invalid_request",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &ev(sale(10, &[("P1", 1, 1)])),
            409,
            "sequence_gap",
        ),
        case(
            "POST",
            "/sync/push",
            &cus,
            &two(sale(4, &[("P1", 1, 1)]), sale(6, &[("P1", 1, 1)])),
            409,
            "sequence_gap",
        ),
        case("POST", "/sync/push", &cus, &too_big_push, 413, "payload_too_large"),
        Row {
            ctype: Some("text/plain"),
            ..case(
                "POST",
                "/sync/push",
                &cus,
                &ev(sale(4, &[("P1", 1, 1)])),
                415,
                "unsupported_media_type",
            )
        },
        Row {
            gzip: true,
            ..case(
                "POST",
                "/sync/push",
                &cus,
                &ev(sale(4, &[("P1", 1, 1)])),
                400,
                "invalid_request",
            )
        },
        Row {
            gzip: true,
            body: bomb,
            ..case("POST", "/sync/push", &cus, "", 413, "payload_too_large")
        },
        case("GET", "/sync/push", &cus, "", 405, "method_not_allowed"),
        // GET /sync/pull
        case("GET", "/sync/pull?after=-1", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull?after=x", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull?limit=0", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull?limit=5000", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull?branch_id=x", &cus, "", 400, "invalid_request"),
        case("GET", "/sync/pull", &adm, "", 400, "invalid_request"),
        case("POST", "/sync/pull", &cus, "{}", 405, "method_not_allowed"),
        // no such endpoint
        case("GET", "/nope", &adm, "", 404, "not_found"),
        case("GET", "/products/P1/extra", &adm, "", 404, "not_found"),
    ];
    cases.into_iter().map(Row::into_case).collect()
}
