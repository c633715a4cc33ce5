//! The bad-input corpus (issue 6): a few hundred hostile or broken requests against every
//! endpoint of both services (branch §2, central §3), sent as raw bytes over TCP so that
//! nothing — not even a client library — tidies them up.
//!
//! Every case must be answered with its 4xx status and the contract's JSON error
//! (`error.code` asserted), quickly; then, over the whole corpus:
//! - both processes are still alive and healthy;
//! - their state is unchanged: every GET that shows state (inventories, outbox, status
//!   counters, backups, products, branches, sales, exports) is byte-equal before and after;
//! - memory stayed flat: peak and current RSS grew by less than 64 MiB, although the corpus
//!   streams 100 MB bodies and decompression bombs at them.
//!
//! The few requests that break HTTP/1.1 framing itself (garbage or duplicate
//! `Content-Length`, both `Content-Length` and `Transfer-Encoding`, NUL bytes in a header, a
//! raw non-ASCII request line, headers over actix's limits) are answered by actix-http's
//! parser before any application code runs: the status is right (400/431) and the
//! connection closed, but the body is empty, not JSON. They are asserted as such
//! (`Expect::Framing`) and listed in `RELIABILITY.md`.
mod support;

use serde_json::{json, Value};
use std::io::Write as _;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Svc {
    Branch,
    Central,
}

#[derive(Clone, Debug)]
enum Expect {
    /// Status and `error.code` of a contract JSON error.
    Json(u16, &'static str),
    /// Rejected by the HTTP/1.1 parser: this status, empty body.
    Framing(u16),
}

#[derive(Clone)]
enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of `byte`, streamed with a matching Content-Length.
    Stream {
        len: u64,
        byte: u8,
    },
    /// Chunked transfer encoding, `len` bytes in 64 KiB chunks.
    Chunked {
        len: u64,
    },
}

#[derive(Clone)]
struct Case {
    name: String,
    svc: Svc,
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
    /// Send no Content-Length of our own (the headers carry whatever the case wants).
    raw_framing: bool,
    expect: Expect,
}

/// Builder: `case(Branch, "POST", "/sell")` with the right token and JSON content type.
fn case(svc: Svc, method: &str, path: &str) -> Case {
    let token = match svc {
        Svc::Branch => POS_TOKEN.to_string(),
        Svc::Central => ADMIN_TOKEN.to_string(),
    };
    Case {
        name: format!("{method} {path}"),
        svc,
        method: method.into(),
        path: path.into(),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}").into_bytes()),
            ("content-type".into(), b"application/json".to_vec()),
        ],
        body: Body::Bytes(Vec::new()),
        raw_framing: false,
        expect: Expect::Json(400, "invalid_request"),
    }
}

impl Case {
    fn named(mut self, n: impl Into<String>) -> Case {
        self.name = format!("{} — {}", self.name, n.into());
        self
    }
    fn json(mut self, v: Value) -> Case {
        self.body = Body::Bytes(v.to_string().into_bytes());
        self
    }
    fn raw(mut self, b: impl Into<Vec<u8>>) -> Case {
        self.body = Body::Bytes(b.into());
        self
    }
    fn body(mut self, b: Body) -> Case {
        self.body = b;
        self
    }
    fn header(mut self, k: &str, v: impl Into<Vec<u8>>) -> Case {
        self.headers.push((k.to_ascii_lowercase(), v.into()));
        self
    }
    fn without(mut self, k: &str) -> Case {
        self.headers.retain(|(h, _)| h != k);
        self
    }
    fn token(self, t: &str) -> Case {
        self.without("authorization")
            .header("authorization", format!("Bearer {t}"))
    }
    fn framing(mut self) -> Case {
        self.raw_framing = true;
        self
    }
    fn expect(mut self, status: u16, code: &'static str) -> Case {
        self.expect = Expect::Json(status, code);
        self
    }
    fn expect_framing(mut self, status: u16) -> Case {
        self.expect = Expect::Framing(status);
        self
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    took: Duration,
}

/// Sends `c` over a fresh TCP connection (`connection: close`) and reads the answer; the
/// body is written concurrently with reading, and writing stops as soon as an answer came.
async fn send(addr: &str, c: &Case) -> Answer {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{}: connect: {e}", c.name));
    let (mut rd, mut wr) = stream.into_split();
    let mut head = Vec::new();
    write!(
        head,
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
        c.method, c.path
    )
    .unwrap();
    for (k, v) in &c.headers {
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    if !c.raw_framing {
        match &c.body {
            Body::Bytes(b) => write!(head, "content-length: {}\r\n", b.len()).unwrap(),
            Body::Stream { len, .. } => write!(head, "content-length: {len}\r\n").unwrap(),
            Body::Chunked { .. } => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
    }
    head.extend_from_slice(b"\r\n");
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = answered.clone();
    let body = c.body.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&head).await?;
        match body {
            Body::Bytes(b) => wr.write_all(&b).await?,
            Body::Stream { len, byte } => {
                let chunk = vec![byte; 64 * 1024];
                let mut left = len;
                while left > 0 && !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let n = left.min(chunk.len() as u64) as usize;
                    wr.write_all(&chunk[..n]).await?;
                    left -= n as u64;
                }
            }
            Body::Chunked { len } => {
                let mut chunk = b"10000\r\n".to_vec();
                chunk.extend(std::iter::repeat_n(b' ', 0x10000));
                chunk.extend_from_slice(b"\r\n");
                let mut left = len;
                while left > 0 && !done.load(std::sync::atomic::Ordering::SeqCst) {
                    wr.write_all(&chunk).await?;
                    left = left.saturating_sub(0x10000);
                }
                wr.write_all(b"0\r\n\r\n").await?;
            }
        }
        wr.flush().await?;
        // Keep the write half open until the answer is read (dropping it sends a FIN).
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = Duration::from_secs(15);
    loop {
        let left = deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, rd.read(&mut chunk)).await {
            Err(_) => panic!(
                "{}: no complete answer within {deadline:?}; got {:?}",
                c.name,
                String::from_utf8_lossy(&buf)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(a) = parse(&buf) {
                    answered.store(true, std::sync::atomic::Ordering::SeqCst);
                    writer.abort();
                    return Answer {
                        took: started.elapsed(),
                        ..a
                    };
                }
            }
        }
    }
    answered.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.abort();
    match parse(&buf) {
        Some(a) => Answer {
            took: started.elapsed(),
            ..a
        },
        None => panic!(
            "{}: connection closed without a complete answer: {:?}",
            c.name,
            String::from_utf8_lossy(&buf)
        ),
    }
}

/// A complete HTTP/1.1 response in `buf` (head + Content-Length body), if there is one.
fn parse(buf: &[u8]) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())?;
    if buf.len() < end + len {
        return None;
    }
    Some(Answer {
        status,
        headers,
        body: buf[end..end + len].to_vec(),
        took: Duration::ZERO,
    })
}

// ------------------------------------------------------------------ the corpus

const VALID_SALE: &str = r#"{"product_id":"P1","quantity":1}"#;

fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// 200 MB of JSON whitespace in ~200 KB of gzip.
fn gzip_bomb(prefix: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(prefix.as_bytes()).unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..200 {
        e.write_all(&spaces).unwrap();
    }
    e.finish().unwrap()
}

fn event_sale(seq: u64) -> Value {
    json!({"seq": seq, "kind": "sale", "occurred_at": "2026-11-23T16:00:00Z", "sale_id": format!("CUS-{seq:010}"),
           "lines": [{"product_id": "P1", "quantity": 2, "unit_price_cents": 100}], "total_cents": 200})
}

/// Authentication cases for one protected endpoint: the body is *valid*, so a bypass would
/// show up as a state change.
fn auth_cases(svc: Svc, method: &str, path: &str, body: &str, other_service_token: &str) -> Vec<Case> {
    let base = case(svc, method, path).raw(body.as_bytes().to_vec());
    let good = match svc {
        Svc::Branch => POS_TOKEN,
        Svc::Central => ADMIN_TOKEN,
    };
    vec![
        base.clone()
            .without("authorization")
            .named("no Authorization")
            .expect(401, "unauthorized"),
        base.clone()
            .token("wrong-token")
            .named("wrong token")
            .expect(401, "unauthorized"),
        base.clone()
            .token(&format!("{good}x"))
            .named("token with a suffix")
            .expect(401, "unauthorized"),
        base.clone()
            .token(other_service_token)
            .named("the other service's token")
            .expect(401, "unauthorized"),
        base.clone()
            .without("authorization")
            .header("authorization", format!("Basic {good}"))
            .named("Basic scheme")
            .expect(401, "unauthorized"),
        base.clone()
            .without("authorization")
            .header("authorization", "Bearer ")
            .named("empty bearer")
            .expect(401, "unauthorized"),
        base.clone()
            .header("authorization", "Bearer nope")
            .named("duplicate Authorization, good one first")
            .expect(401, "unauthorized"),
        base.clone()
            .without("authorization")
            .header("authorization", "Bearer nope")
            .header("authorization", format!("Bearer {good}"))
            .named("duplicate Authorization, good one last")
            .expect(401, "unauthorized"),
        base.without("authorization")
            .header("authorization", vec![b'B'; 100_000])
            .named("100 kB Authorization")
            .expect(401, "unauthorized"),
    ]
}

fn branch_corpus() -> Vec<Case> {
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

fn central_corpus(cus_through: u64) -> Vec<Case> {
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

/// Requests that break HTTP/1.1 framing: answered by actix-http's parser (see module doc).
fn framing_corpus(svc: Svc) -> Vec<Case> {
    let (path, method) = match svc {
        Svc::Branch => ("/sell", "POST"),
        Svc::Central => ("/sync/push", "POST"),
    };
    // An invalid body, so that a request wrongly let through still changes nothing.
    let base = case(svc, method, path)
        .raw(r#"{"product_id":"P1","quantity":0}"#)
        .framing();
    vec![
        base.clone()
            .header("content-length", "abc")
            .named("garbage Content-Length")
            .expect_framing(400),
        base.clone()
            .header("content-length", "-1")
            .named("negative Content-Length")
            .expect_framing(400),
        base.clone()
            .header("content-length", "32")
            .header("content-length", "5")
            .named("two different Content-Lengths")
            .expect_framing(400),
        base.clone()
            .header("content-length", "32")
            .header("transfer-encoding", "chunked")
            .named("Content-Length and Transfer-Encoding")
            .expect_framing(400),
        base.clone()
            .header("content-length", "32")
            .header("x-nul", b"a\0b".to_vec())
            .named("NUL in a header")
            .expect_framing(400),
        base.clone()
            .header("content-length", "32")
            .header("x-big", vec![b'a'; 200_000])
            .named("200 kB header")
            .expect_framing(431),
        (0..200)
            .fold(base.clone().header("content-length", "32"), |c, i| {
                c.header(&format!("x-h{i}"), "1")
            })
            .named("200 headers")
            .expect_framing(431),
        Case {
            path: format!("{path}\u{00ff}"),
            ..base.clone()
        }
        .header("content-length", "32")
        .named("raw non-ASCII in the path")
        .expect_framing(400),
    ]
}

// ------------------------------------------------------------------ state, memory

async fn text(c: &reqwest::Client, url: &str, token: &str) -> String {
    let r = c
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.text().await.unwrap()
}

/// Everything a client can read of both services' state.
async fn snapshot(c: &reqwest::Client, central: &str, branch: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in ["/inventory", "/outbox?limit=10000", "/sales/export", "/admin/backups"] {
        out.push((format!("branch {p}"), text(c, &format!("{branch}{p}"), POS_TOKEN).await));
    }
    let st: Value = serde_json::from_str(&text(c, &format!("{branch}/status"), POS_TOKEN).await).unwrap();
    out.push((
        "branch /status".into(),
        format!(
            "{} {} {}",
            st["outbox"]["last_seq"], st["outbox"]["acked_through"], st["pull_cursor"]
        ),
    ));
    for p in [
        "/products",
        "/inventory",
        "/branches",
        "/sales?limit=1000",
        "/sales/export",
    ] {
        out.push((
            format!("central {p}"),
            text(c, &format!("{central}{p}"), ADMIN_TOKEN).await,
        ));
    }
    out
}

fn mem(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_bad_requests_get_4xx_json_and_change_nothing_while_memory_stays_flat() {
    let dir = TempDir::new("corpus");
    let mut central = spawn_central(dir.path(), &["CUS", "ABA"], &[]);
    let c = client();
    put_product(&c, &central.url, "P1", "uno", 100).await;
    put_product(&c, &central.url, "P2", "dos", 200).await;
    allocate(&c, &central.url, "CUS", "P1", 100).await;
    allocate(&c, &central.url, "CUS", "P2", 5).await;
    let mut branch = spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "300ms"]);
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(20)).await;
    for _ in 0..3 {
        sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 1}))
            .await
            .expect("a sale");
    }
    wait_drained(&c, &branch.url, Duration::from_secs(20)).await;
    let through = get_json(&c, &format!("{}/status", branch.url), POS_TOKEN).await["outbox"]["last_seq"]
        .as_u64()
        .unwrap();

    let before = snapshot(&c, &central.url, &branch.url).await;
    let (bpid, cpid) = (branch.pid().unwrap(), central.pid().unwrap());
    let (mem_b0, mem_c0) = (mem(bpid), mem(cpid));

    let mut cases: Vec<Case> = Vec::new();
    cases.extend(branch_corpus());
    cases.extend(central_corpus(through));
    cases.extend(framing_corpus(Svc::Branch));
    cases.extend(framing_corpus(Svc::Central));
    assert!(cases.len() >= 200, "only {} cases", cases.len());

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut framing = 0;
    let mut slowest = (Duration::ZERO, String::new());
    for case in &cases {
        let addr = match case.svc {
            Svc::Branch => &branch.addr,
            Svc::Central => &central.addr,
        };
        let a = send(addr, case).await;
        if a.took > slowest.0 {
            slowest = (a.took, case.name.clone());
        }
        let body = String::from_utf8_lossy(&a.body).into_owned();
        let problem = match &case.expect {
            Expect::Json(status, code) => {
                let ct = a
                    .headers
                    .iter()
                    .find(|(k, _)| k == "content-type")
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("");
                let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
                if a.status != *status
                    || v["error"]["code"] != *code
                    || !v["error"]["message"].is_string()
                    || !ct.starts_with("application/json")
                {
                    Some(format!(
                        "expected {status} {code}, got {} [{ct}] {}",
                        a.status,
                        body.chars().take(300).collect::<String>()
                    ))
                } else {
                    None
                }
            }
            Expect::Framing(status) => {
                framing += 1;
                (a.status != *status).then(|| {
                    format!(
                        "expected a bare {status} from the HTTP parser, got {} {}",
                        a.status,
                        body.chars().take(200).collect::<String>()
                    )
                })
            }
        };
        if a.took > Duration::from_secs(5) {
            failures.push(format!("{}: took {:?}", case.name, a.took));
        }
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", case.name));
        }
        assert!(
            branch.is_running() && central.is_running(),
            "a process died on: {}",
            case.name
        );
    }
    let took = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Alive, healthy, unchanged, flat.
    for url in [&branch.url, &central.url] {
        assert_eq!(c.get(format!("{url}/health")).send().await.unwrap().status(), 200);
    }
    let after = snapshot(&c, &central.url, &branch.url).await;
    for ((what, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{what} changed");
    }
    let (mem_b1, mem_c1) = (mem(bpid), mem(cpid));
    let limit = 64 * 1024;
    for (who, (rss0, hwm0), (rss1, hwm1)) in [("branch", mem_b0, mem_b1), ("central", mem_c0, mem_c1)] {
        println!("{who}: RSS {rss0} → {rss1} KiB, peak {hwm0} → {hwm1} KiB");
        assert!(rss1 < rss0 + limit, "{who}: RSS grew from {rss0} to {rss1} KiB");
        assert!(hwm1 < hwm0 + limit, "{who}: peak RSS grew from {hwm0} to {hwm1} KiB");
    }
    println!(
        "{} bad requests ({} rejected by the HTTP parser itself) in {:.1}s, slowest {:?} ({})",
        cases.len(),
        framing,
        took.as_secs_f64(),
        slowest.0,
        slowest.1
    );
    eprintln!(
        "bad-input corpus: {} cases, all 4xx, state unchanged, memory flat, both processes alive",
        cases.len()
    );
}
