//! The one bad-input corpus, as data: every hostile or broken request the services must
//! refuse, for both services, with the status and error code each gets (docs/protocol.md,
//! 'Errors'). A [`Case`] is sent as raw bytes over TCP ([`send`]) so that nothing — not even
//! a client library — tidies it up, and judged by [`check`].
//!
//! The cases are data, one JSON file each, read by [`load`] (its doc has the format); a
//! new case is a line in a file, and a test may still build one in Rust with [`case`].
//!
//! - [`full_corpus`]: hostile requests (auth, shapes, sizes, encodings, framing) on every
//!   endpoint: `branch.json` (to a branch CUS selling P1 and P2 that has pulled from
//!   central), `central.json` (pushes as CUS at its next seq, so that one wrongly let through
//!   would be applied) and `framing.json` (both services).
//! - [`branch_api_corpus`], [`central_api_corpus`] (`branch_api.json`, `central_api.json`):
//!   the per-service tables of documented 4xx answers, each against a service in a known
//!   state.
//!
//! Every case is built so that a request wrongly let through would change state: the tests
//! compare the services' readable state before and after the whole corpus.
//!
//! The few requests that break HTTP/1.1 framing itself (garbage or duplicate
//! `Content-Length`, both `Content-Length` and `Transfer-Encoding`, NUL bytes in a header, a
//! raw non-ASCII request line, headers over actix's limits) are answered by actix-http's
//! parser before any application code runs: the status is right (400/431) and the
//! connection closed, but the body is empty, not JSON. They are asserted as such
//! (`Expect::Framing`) and listed in `RELIABILITY.md`.
use super::{
    allocate, branch_token_for, get_json, get_text, put_product, sell, wait_drained, wait_pulled, ADMIN_TOKEN,
    POS_TOKEN,
};
use serde_json::{json, Value};
use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod load;
pub use load::{load, load_with, Ctx, TillFixture};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Svc {
    Branch,
    Central,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Expect {
    /// Status and `error.code` of a JSON error (docs/protocol.md, 'Errors').
    Json(u16, String),
    /// Rejected by the HTTP/1.1 parser: this status, empty body.
    Framing(u16),
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
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
pub struct Case {
    pub name: String,
    pub svc: Svc,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Body,
    /// Send no Content-Length of our own (the headers carry whatever the case wants).
    pub raw_framing: bool,
    pub expect: Expect,
}

/// Builder: `case(Branch, "POST", "/sell")` with the right token and JSON content type (on
/// a branch, the token the path needs: [`branch_token_for`]).
pub fn case(svc: Svc, method: &str, path: &str) -> Case {
    let token = match svc {
        Svc::Branch => branch_token_for(path).to_string(),
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
        expect: Expect::Json(400, "invalid_request".into()),
    }
}

impl Case {
    pub fn named(mut self, n: impl Into<String>) -> Case {
        self.name = format!("{} — {}", self.name, n.into());
        self
    }
    pub fn json(mut self, v: Value) -> Case {
        self.body = Body::Bytes(v.to_string().into_bytes());
        self
    }
    pub fn raw(mut self, b: impl Into<Vec<u8>>) -> Case {
        self.body = Body::Bytes(b.into());
        self
    }
    pub fn body(mut self, b: Body) -> Case {
        self.body = b;
        self
    }
    pub fn header(mut self, k: &str, v: impl Into<Vec<u8>>) -> Case {
        self.headers.push((k.to_ascii_lowercase(), v.into()));
        self
    }
    pub fn without(mut self, k: &str) -> Case {
        self.headers.retain(|(h, _)| h != k);
        self
    }
    pub fn token(self, t: &str) -> Case {
        self.without("authorization")
            .header("authorization", format!("Bearer {t}"))
    }
    pub fn framing(mut self) -> Case {
        self.raw_framing = true;
        self
    }
    pub fn expect(mut self, status: u16, code: &str) -> Case {
        self.expect = Expect::Json(status, code.to_string());
        self
    }
    pub fn expect_framing(mut self, status: u16) -> Case {
        self.expect = Expect::Framing(status);
        self
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub took: Duration,
}

/// Sends `c` over a fresh TCP connection (`connection: close`) and reads the answer; the
/// body is written concurrently with reading, and writing stops as soon as an answer came.
pub async fn send(addr: &str, c: &Case) -> Answer {
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
pub fn parse(buf: &[u8]) -> Option<Answer> {
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

/// What is wrong with answer `a` to case `c`, if anything: the status and JSON error code
/// (with a message, as `application/json`) of docs/protocol.md, 'Errors', or the bare status
/// of a request the HTTP parser refused; and an answer within 5 s.
pub fn check(c: &Case, a: &Answer) -> Option<String> {
    let body = String::from_utf8_lossy(&a.body).into_owned();
    let problem = match &c.expect {
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
        Expect::Framing(status) => (a.status != *status).then(|| {
            format!(
                "expected a bare {status} from the HTTP parser, got {} {}",
                a.status,
                body.chars().take(200).collect::<String>()
            )
        }),
    };
    match problem {
        Some(p) => Some(format!("{}: {p}", c.name)),
        None if a.took > Duration::from_secs(5) => Some(format!("{}: took {:?}", c.name, a.took)),
        None => None,
    }
}

/// Sends every case to its service (`addr_of`) and returns the failures, one line each.
pub async fn run_all(cases: &[Case], addr_of: impl Fn(Svc) -> String) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let a = send(&addr_of(c.svc), c).await;
        failures.extend(check(c, &a));
    }
    failures
}

/// Panics, listing every failure, unless `failures` (of `total` cases) is empty.
pub fn assert_no_failures(failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ the corpus' chain

/// Central's side of the corpus' chain, before the branch starts: products P1 and P2,
/// allocated to CUS.
pub async fn seed_central(c: &reqwest::Client, central: &str) {
    put_product(c, central, "P1", "uno", 100).await;
    put_product(c, central, "P2", "dos", 200).await;
    allocate(c, central, "CUS", "P1", 100).await;
    allocate(c, central, "CUS", "P2", 5).await;
    crate::support::central::put_user_ok(
        c,
        central,
        "corpus-ana",
        json!({"name": "Ana", "role": "cashier", "branches": ["CUS"], "pin": "4821"}),
    )
    .await;
}

/// What `central_catalog.json` expects beyond [`seed_central`]'s P1: P2 holding barcode
/// 12345670, put with Idempotency-Key `corpus-seed-key`.
pub async fn seed_catalog(c: &reqwest::Client, central: &str) {
    let r = c
        .put(format!("{central}/products/P2"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Idempotency-Key", "corpus-seed-key")
        .json(&json!({"name": "dos", "price_cents": 200, "barcode": "12345670", "category": "bebidas"}))
        .send()
        .await
        .expect("PUT P2");
    assert!(r.status().is_success(), "PUT P2: {}", r.status());
}

/// Flags of the corpus' branch CUS.
pub const BRANCH_FLAGS: [&str; 2] = ["--pull-interval", "300ms"];

/// Once the branch runs: it has pulled, sold three units and pushed them, and cashier
/// `corpus-ana` has logged in, opened a shift on till T1 and sold one P1 on it. Returns the
/// branch's last seq (where central stands for CUS) and the till's fixture.
pub async fn ready_chain(c: &reqwest::Client, central: &str, branch: &str) -> (u64, TillFixture) {
    wait_pulled(c, central, branch, "CUS", Duration::from_secs(20)).await;
    for _ in 0..3 {
        sell(c, branch, &json!({"product_id": "P1", "quantity": 1}))
            .await
            .expect("a sale");
    }
    let ana = crate::support::eventually(Duration::from_secs(20), "corpus-ana logs in at CUS", || async {
        let r = c
            .post(format!("{branch}/login"))
            .json(&json!({"user_id": "corpus-ana", "pin": "4821"}))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())?;
        let token = r.json::<Value>().await.ok()?["token"].as_str()?.to_string();
        Some(crate::support::till::Clerk::with_token(branch, "corpus-ana", token))
    })
    .await;
    let shift_id = ana.open("T1", 1000).await;
    let sale = ana
        .sell(&shift_id, json!([{"product_id": "P1", "quantity": 1}]), Value::Null)
        .await;
    wait_drained(c, branch, Duration::from_secs(20)).await;
    let through = get_json(c, &format!("{branch}/status"), POS_TOKEN).await["outbox"]["last_seq"]
        .as_u64()
        .expect("the branch's last_seq");
    let till = TillFixture {
        cashier_token: ana.token.clone(),
        shift_id,
        sale_id: sale["sale_id"].as_str().expect("sale_id").to_string(),
    };
    (through, till)
}

/// The whole hostile corpus for the chain, CUS standing at `through` at central.
pub fn full_corpus(through: u64, till: &TillFixture) -> Vec<Case> {
    let ctx = Ctx {
        next: Some(through + 1),
        till: Some(till.clone()),
    };
    [
        "branch.json",
        "till.json",
        "central.json",
        "central_reports.json",
        "framing.json",
    ]
    .into_iter()
    .flat_map(|f| load_with(f, &ctx))
    .collect()
}

/// The branch's table of documented 4xx answers, against a branch CUS with a catalog
/// (P1, P2) and no central.
pub fn branch_api_corpus() -> Vec<Case> {
    load("branch_api.json", None)
}

/// Central's table of documented 4xx answers, against a central that has P1, an
/// allocation to CUS and CUS's events 1..=3 applied.
pub fn central_api_corpus() -> Vec<Case> {
    let mut cases = load("central_api.json", None);
    cases.extend(load("central_users.json", None));
    // Needs P1 at version 1 and P2 holding barcode 12345670, put with Idempotency-Key
    // `corpus-seed-key` (see `seed_catalog`).
    cases.extend(load("central_catalog.json", None));
    cases
}

/// Central's documented 4xx answers of the transfer endpoints, against a central with P1
/// and P2, branches CUS and ABA, TR-000001 requested and TR-000002 in transit.
pub fn central_transfers_corpus() -> Vec<Case> {
    load("central_transfers.json", None)
}

/// Everything a client can read of both services' state.
pub async fn snapshot(c: &reqwest::Client, central: &str, branch: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in ["/inventory", "/outbox?limit=10000", "/sales/export", "/admin/backups"] {
        let url = format!("{branch}{p}");
        out.push((
            format!("branch {p}"),
            get_text(c, &url, Some(branch_token_for(&url))).await,
        ));
    }
    let st: Value = serde_json::from_str(&get_text(c, &format!("{branch}/status"), Some(POS_TOKEN)).await).unwrap();
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
            get_text(c, &format!("{central}{p}"), Some(ADMIN_TOKEN)).await,
        ));
    }
    out
}
