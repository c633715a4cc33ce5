//! The branch's table of documented 4xx answers, one row per way a request can be wrong
//! (JSON shape and types, limits, ids, tokens, media types, sizes, idempotency keys), against
//! a branch CUS with a catalog and no central. Each row is a [`Case`] of the one corpus.
use super::{Case, Svc};
use crate::support::branch_token_for;

/// A row as the table reads best: a name, an optional token and content type (sent only
/// with a body), extra headers.
struct Row {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    token: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

impl Row {
    fn into_case(self) -> Case {
        let mut c = super::case(Svc::Branch, self.method, self.path)
            .without("authorization")
            .without("content-type");
        c.name = self.name.to_string();
        if let Some(t) = self.token {
            c = c.header("authorization", format!("Bearer {t}"));
        }
        if let (Some(ct), Some(_)) = (self.content_type, &self.body) {
            c = c.header("content-type", ct);
        }
        for (h, v) in self.headers {
            c = c.header(h, v);
        }
        c.raw(self.body.unwrap_or_default()).expect(self.status, self.code)
    }
}

/// Every row of the table, as corpus cases.
pub fn branch_api_corpus() -> Vec<Case> {
    rows().into_iter().map(Row::into_case).collect()
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: &str,
    status: u16,
    code: &'static str,
) -> Row {
    Row {
        name,
        method,
        path,
        body: if body.is_empty() {
            None
        } else {
            Some(body.as_bytes().to_vec())
        },
        content_type: Some("application/json"),
        token: Some(branch_token_for(path)),
        headers: vec![],
        status,
        code,
    }
}

fn rows() -> Vec<Row> {
    let mut v = vec![
        // POST /sell: JSON shape and types
        case("sell not json", "POST", "/sell", "hello", 400, "invalid_request"),
        case(
            "sell truncated json",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":"#,
            400,
            "invalid_request",
        ),
        case("sell json array", "POST", "/sell", "[]", 400, "invalid_request"),
        case("sell json null", "POST", "/sell", "null", 400, "invalid_request"),
        case("sell json string", "POST", "/sell", r#""P1""#, 400, "invalid_request"),
        case("sell empty object", "POST", "/sell", "{}", 400, "invalid_request"),
        case(
            "sell missing quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1"}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell missing product",
            "POST",
            "/sell",
            r#"{"quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell zero quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":0}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell negative quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":-1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell quantity over max",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell huge quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":99999999999999999999999}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell float quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1.5}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell exponent quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1e2}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell string quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":"1"}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell bool quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":true}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell null quantity",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":null}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell empty product id",
            "POST",
            "/sell",
            r#"{"product_id":"","quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell product id with space",
            "POST",
            "/sell",
            r#"{"product_id":"P 1","quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell product id too long",
            "POST",
            "/sell",
            &format!(r#"{{"product_id":"{}","quantity":1}}"#, "x".repeat(65)),
            400,
            "invalid_request",
        ),
        case(
            "sell product id float",
            "POST",
            "/sell",
            r#"{"product_id":1.5,"quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell product id object",
            "POST",
            "/sell",
            r#"{"product_id":{},"quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell product id unicode",
            "POST",
            "/sell",
            r#"{"product_id":"Ñandú","quantity":1}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell unknown product",
            "POST",
            "/sell",
            r#"{"product_id":"NOPE","quantity":1}"#,
            404,
            "unknown_product",
        ),
        case(
            "sell unknown integer product",
            "POST",
            "/sell",
            r#"{"product_id":424242,"quantity":1}"#,
            404,
            "unknown_product",
        ),
        case(
            "sell more than stock",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1000000}"#,
            409,
            "insufficient_stock",
        ),
        case(
            "sell basket with one short line",
            "POST",
            "/sell",
            r#"{"items":[{"product_id":"P1","quantity":1},{"product_id":"P2","quantity":999999}]}"#,
            409,
            "insufficient_stock",
        ),
        case(
            "sell basket repeated lines over stock",
            "POST",
            "/sell",
            r#"{"items":[{"product_id":"P1","quantity":600},{"product_id":"P1","quantity":600}]}"#,
            409,
            "insufficient_stock",
        ),
        case(
            "sell basket with unknown product",
            "POST",
            "/sell",
            r#"{"items":[{"product_id":"P1","quantity":1},{"product_id":"NOPE","quantity":1}]}"#,
            404,
            "unknown_product",
        ),
        case(
            "sell empty items",
            "POST",
            "/sell",
            r#"{"items":[]}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell items not array",
            "POST",
            "/sell",
            r#"{"items":{"product_id":"P1","quantity":1}}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell items with bad line",
            "POST",
            "/sell",
            r#"{"items":[{"product_id":"P1"}]}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell both forms",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1,"items":[{"product_id":"P1","quantity":1}]}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell empty cashier",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1,"cashier_id":""}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell cashier too long",
            "POST",
            "/sell",
            &format!(
                r#"{{"product_id":"P1","quantity":1,"cashier_id":"{}"}}"#,
                "c".repeat(65)
            ),
            400,
            "invalid_request",
        ),
        case(
            "sell cashier control chars",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1,"cashier_id":"a\u0007b"}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell cashier not string",
            "POST",
            "/sell",
            r#"{"product_id":"P1","quantity":1,"cashier_id":7}"#,
            400,
            "invalid_request",
        ),
        case(
            "sell deeply nested",
            "POST",
            "/sell",
            &format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            400,
            "invalid_request",
        ),
        case(
            "sell too many lines",
            "POST",
            "/sell",
            &format!(
                r#"{{"items":[{}]}}"#,
                vec![r#"{"product_id":"P1","quantity":1}"#; 501].join(",")
            ),
            400,
            "invalid_request",
        ),
        // POST /stock/adjustments
        case(
            "adjust empty",
            "POST",
            "/stock/adjustments",
            "{}",
            400,
            "invalid_request",
        ),
        case(
            "adjust zero delta",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":0}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust delta over max",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust delta under min",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":-1000001}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust float delta",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":2.5}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust unknown product",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"NOPE","quantity_delta":5}"#,
            404,
            "unknown_product",
        ),
        case(
            "adjust below zero",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":-999999}"#,
            409,
            "insufficient_stock",
        ),
        case(
            "adjust reason too long",
            "POST",
            "/stock/adjustments",
            &format!(
                r#"{{"product_id":"P1","quantity_delta":1,"reason":"{}"}}"#,
                "r".repeat(65)
            ),
            400,
            "invalid_request",
        ),
        case(
            "adjust reason empty",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"P1","quantity_delta":1,"reason":""}"#,
            400,
            "invalid_request",
        ),
        case(
            "adjust bad product id",
            "POST",
            "/stock/adjustments",
            r#"{"product_id":"a/b","quantity_delta":1}"#,
            400,
            "invalid_request",
        ),
        // GET endpoints
        case(
            "inventory unknown product",
            "GET",
            "/inventory/NOPE",
            "",
            404,
            "unknown_product",
        ),
        case(
            "inventory bad product id",
            "GET",
            "/inventory/bad%20id",
            "",
            400,
            "invalid_request",
        ),
        case(
            "inventory product id too long",
            "GET",
            "/inventory/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "",
            400,
            "invalid_request",
        ),
        case(
            "outbox limit zero",
            "GET",
            "/outbox?limit=0",
            "",
            400,
            "invalid_request",
        ),
        case(
            "outbox limit negative",
            "GET",
            "/outbox?limit=-1",
            "",
            400,
            "invalid_request",
        ),
        case(
            "outbox limit not a number",
            "GET",
            "/outbox?limit=ten",
            "",
            400,
            "invalid_request",
        ),
        case(
            "outbox limit huge",
            "GET",
            "/outbox?limit=99999999999",
            "",
            400,
            "invalid_request",
        ),
        case("unknown path", "GET", "/nope", "", 404, "not_found"),
        case("wrong method on sell", "GET", "/sell", "", 405, "method_not_allowed"),
        case(
            "wrong method on inventory",
            "DELETE",
            "/inventory",
            "",
            405,
            "method_not_allowed",
        ),
        case(
            "wrong method on status",
            "POST",
            "/status",
            "{}",
            405,
            "method_not_allowed",
        ),
    ];
    // Auth
    for (name, path, method) in [
        ("no token on sell", "/sell", "POST"),
        ("no token on inventory", "/inventory", "GET"),
        ("no token on product", "/inventory/P1", "GET"),
        ("no token on adjustments", "/stock/adjustments", "POST"),
        ("no token on status", "/status", "GET"),
        ("no token on outbox", "/outbox", "GET"),
    ] {
        let mut c = case(
            name,
            method,
            path,
            r#"{"product_id":"P1","quantity":1}"#,
            401,
            "unauthorized",
        );
        c.token = None;
        v.push(c);
    }
    let mut c = case(
        "wrong token",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        401,
        "unauthorized",
    );
    c.token = Some("not-the-token");
    v.push(c);
    let mut c = case(
        "basic auth instead of bearer",
        "GET",
        "/inventory",
        "",
        401,
        "unauthorized",
    );
    c.token = None;
    c.headers.push(("authorization", "Basic dXNlcjpwYXNz".into()));
    v.push(c);
    // Content types and sizes
    let mut c = case(
        "sell text/plain",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        415,
        "unsupported_media_type",
    );
    c.content_type = Some("text/plain");
    v.push(c);
    let mut c = case(
        "sell no content type",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        415,
        "unsupported_media_type",
    );
    c.content_type = None;
    v.push(c);
    let mut c = case(
        "adjust form encoded",
        "POST",
        "/stock/adjustments",
        "product_id=P1&quantity_delta=1",
        415,
        "unsupported_media_type",
    );
    c.content_type = Some("application/x-www-form-urlencoded");
    v.push(c);
    let mut c = case("sell 2 MiB body", "POST", "/sell", "", 413, "payload_too_large");
    c.body = Some(format!(r#"{{"product_id":"P1","quantity":1,"pad":"{}"}}"#, "x".repeat(2 << 20)).into_bytes());
    v.push(c);
    let mut c = case("sell empty body", "POST", "/sell", "", 400, "invalid_request");
    c.body = Some(Vec::new());
    v.push(c);
    let mut c = case("sell invalid utf-8", "POST", "/sell", "", 400, "invalid_request");
    c.body = Some(b"{\"product_id\":\"P\xff\xfe\",\"quantity\":1}".to_vec());
    v.push(c);
    let mut c = case(
        "idempotency key too long",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        400,
        "invalid_request",
    );
    c.headers.push(("idempotency-key", "k".repeat(256)));
    v.push(c);
    let mut c = case(
        "idempotency key with space",
        "POST",
        "/sell",
        r#"{"product_id":"P1","quantity":1}"#,
        400,
        "invalid_request",
    );
    c.headers.push(("idempotency-key", "a b".into()));
    v.push(c);
    v.extend(login_rows());
    v
}

/// `POST /login` (docs/protocol.md, "Login"): no token needed; anything that is a login
/// attempt but cannot succeed is the one 401, a body that is not one is 400/413/415. This
/// branch has no users. Fewer than 20 rows reach the verifier, so the address limit is not
/// what answers them.
fn login_rows() -> Vec<Row> {
    let invalid = |name, body: String| {
        let mut c = case(name, "POST", "/login", "", 401, "invalid_credentials");
        c.body = Some(body.into_bytes());
        c.token = None;
        c
    };
    let login = |id: &str, pin: &str| serde_json::json!({"user_id": id, "pin": pin}).to_string();
    let mut v = vec![
        invalid("login unknown user", login("ana", "4821")),
        invalid("login pin too short", login("ana", "123")),
        invalid("login pin too long", login("ana", "123456789")),
        invalid("login pin with letters", login("ana", "12a4")),
        invalid("login pin of non-ascii digits", login("ana", "١٢٣٤")),
        invalid("login empty user id", login("", "4821")),
        invalid("login user id with a slash", login("../etc/passwd", "4821")),
        invalid("login user id of 65 chars", login(&"u".repeat(65), "4821")),
    ];
    let mut bad = |name, body: &str, status, code| {
        let mut c = case(name, "POST", "/login", body, status, code);
        c.token = None;
        v.push(c);
    };
    bad("login missing pin", r#"{"user_id":"ana"}"#, 400, "invalid_request");
    bad(
        "login pin as a number",
        r#"{"user_id":"ana","pin":4821}"#,
        400,
        "invalid_request",
    );
    bad(
        "login unknown field",
        r#"{"user_id":"ana","pin":"4821","role":"manager"}"#,
        400,
        "invalid_request",
    );
    bad("login not json", "user_id=ana&pin=4821", 400, "invalid_request");
    bad(
        "login array",
        r#"[{"user_id":"ana","pin":"4821"}]"#,
        400,
        "invalid_request",
    );
    let mut c = case("login 1 MiB body", "POST", "/login", "", 413, "payload_too_large");
    c.body = Some(format!(r#"{{"user_id":"ana","pin":"4821","pad":"{}"}}"#, "x".repeat(1 << 20)).into_bytes());
    c.token = None;
    v.push(c);
    let mut c = case(
        "login form-encoded",
        "POST",
        "/login",
        "user_id=ana&pin=4821",
        415,
        "unsupported_media_type",
    );
    c.content_type = Some("application/x-www-form-urlencoded");
    c.token = None;
    v.push(c);
    // /logout needs a user's session.
    let mut c = case("logout without a token", "POST", "/logout", "", 401, "unauthorized");
    c.token = None;
    v.push(c);
    v.push(case(
        "logout with the POS token",
        "POST",
        "/logout",
        "",
        403,
        "forbidden",
    ));
    v
}
