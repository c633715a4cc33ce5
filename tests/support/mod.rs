//! Test support, shared by every test binary (`api`, `e2e`, `failpoints`).
//!
//! - [`app`]: central and branches in the test process (`spawn_central`, `spawn_branch`).
//! - [`Proc`] (here): the real `colmena-central` / `colmena-sucursal` binaries, started the
//!   way an operator does, on port 0 with a fresh data dir each; [`bin`] only locates them.
//! - [`central`], [`pos`]: both sides of the wire (pushes, events, catalogs, storms);
//!   [`corpus`]: the one bad-input corpus; [`proxy`]: a fault proxy; [`postgres`]: a
//!   private cluster; [`dashboards`]: the observability files as data; [`prometheus`]: a real Prometheus.
//! - [`browser`]: headless Chromium over WebDriver, for the cashier's page.
//! - [`till`]: a logged-in clerk at a branch (shifts, tenders, returns).
//! - [`http`]: GETs as JSON, text or bytes, `/metrics`, per-product maps of a listing.
//! - Chain helpers (products, allocations, the invariant), [`metric`], [`gzip`],
//!   [`free_port`], [`TempDir`] (on `tempfile`).
//!
//! Each binary prints `listening on <addr>` on stdout once its socket is bound; `spawn`
//! waits for that line, so no test sleeps to guess readiness. Logs (stderr) go to a file in
//! the process's temp dir and are printed when a test fails to start a process.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod central;
pub mod corpus;
pub mod dashboards;
pub mod fake_central;
pub mod http;
pub mod pos;
pub mod postgres;
pub mod prometheus;
pub mod proxy;
pub mod reports;
pub mod till;
pub mod tls;
pub mod transfers;
// Not every binary uses every helper.
#[allow(unused_imports)]
pub use http::{by_product, get_bytes, get_json, get_ok, get_text, metrics_text, try_get_json};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const POS_TOKEN: &str = "test-pos-token";
/// Every test branch's `--admin-token`: adjustments, backups, exports and `/outbox`, which
/// the POS token may not use (docs/protocol.md, "Permissions").
pub const BRANCH_ADMIN_TOKEN: &str = "test-branch-admin-token";

/// The token a test uses on a branch `url`: the POS token to sell and read stock and status,
/// the branch admin token for everything only a manager or automation may do.
pub fn branch_token_for(url: &str) -> &'static str {
    let path = url.find("://").map_or(url, |i| {
        let rest = &url[i + 3..];
        rest.find('/').map_or("", |j| &rest[j..])
    });
    if ["/sell", "/inventory", "/status", "/health", "/metrics", "/openapi.json"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        POS_TOKEN
    } else {
        BRANCH_ADMIN_TOKEN
    }
}

/// Token a branch uses towards central in tests.
pub fn branch_token(branch: &str) -> String {
    format!("tok-{branch}")
}

/// Path of a workspace binary, next to the test binary (`target/<profile>/<name>`). Tests
/// never build: `scripts/test.sh` builds every binary first, so a missing one is a setup
/// error, reported as such.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "binary {} not found: run scripts/test.sh, or cargo build --release --workspace --bins first \
         (the failpoint builds: see scripts/test.sh)",
        path.display()
    );
    path
}

/// A fresh temp dir for one test (`tempfile`), under `COLMENA_TEST_TMP` if set; removed on
/// drop unless `COLMENA_KEEP_TMP` is set, for post-mortems.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::var_os("COLMENA_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&base).expect("create the test temp dir");
        let mut dir = tempfile::Builder::new()
            .prefix(&format!("colmena-{tag}-"))
            .tempdir_in(base)
            .expect("create a temp dir");
        dir.disable_cleanup(std::env::var_os("COLMENA_KEEP_TMP").is_some());
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A running service process.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub addr: String,
    pub url: String,
    bin: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
}

impl Proc {
    /// Starts `bin` with `args` (which should include `--listen 127.0.0.1:0` or a fixed port)
    /// and waits for it to report its address.
    pub fn spawn(name: &str, bin_name: &str, args: Vec<String>, envs: Vec<(String, String)>, log_dir: &Path) -> Proc {
        let mut p = Proc {
            name: name.to_string(),
            child: None,
            addr: String::new(),
            url: String::new(),
            bin: bin(bin_name),
            args,
            envs,
            log: log_dir.join(format!("{name}.log")),
        };
        p.start();
        p
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        cmd.env_remove("COLMENA_LISTEN")
            .env_remove("COLMENA_DATABASE")
            .env_remove("COLMENA_DATA_DIR");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => {
                self.addr = addr.clone();
                self.url = format!("http://{addr}");
                self.child = Some(child);
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "{} did not start (exit {:?}); log:\n{}",
                    self.name,
                    status,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `kill -9`: no shutdown hook runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit status (None if it had to be killed after `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again with the same arguments, on the same address it had.
    pub fn restart(&mut self) {
        self.kill9();
        let addr = self.addr.clone();
        if let Some(i) = self.args.iter().position(|a| a == "--listen") {
            self.args[i + 1] = addr;
        }
        // The old socket may linger for a moment; retry the bind a few times.
        for attempt in 0.. {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.start()));
            if r.is_ok() {
                return;
            }
            assert!(attempt < 20, "{} could not restart", self.name);
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Drops `flag` and its value from the arguments of the next start.
    pub fn remove_arg(&mut self, flag: &str) {
        if let Some(i) = self.args.iter().position(|a| a == flag) {
            self.args.drain(i..(i + 2).min(self.args.len()));
        }
    }

    pub fn set_arg(&mut self, flag: &str, value: &str) {
        match self.args.iter().position(|a| a == flag) {
            Some(i) => self.args[i + 1] = value.to_string(),
            None => {
                self.args.push(flag.to_string());
                self.args.push(value.to_string());
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts central on an embedded SQLite file in `dir`, with branch tokens for `branches`.
pub fn spawn_central(dir: &Path, branches: &[&str], extra: &[&str]) -> Proc {
    let db = dir.join("central.db");
    spawn_central_db(dir, &db.to_string_lossy(), branches, extra)
}

/// Starts central on `database` (a file path or a `postgres://` URL).
pub fn spawn_central_db(dir: &Path, database: &str, branches: &[&str], extra: &[&str]) -> Proc {
    let name = format!("central-{}", fastrand::u32(..));
    Proc::spawn(
        &name,
        "colmena-central",
        central_db_args(database, branches, extra),
        vec![],
        dir,
    )
}

/// Starts a branch with its data in `dir/<branch>`, syncing to `central_url`.
pub fn spawn_branch(dir: &Path, branch: &str, central_url: &str, extra: &[&str]) -> Proc {
    let args = branch_args(dir, branch, central_url, extra);
    Proc::spawn(&format!("branch-{branch}"), "colmena-sucursal", args, vec![], dir)
}

/// A URL on which nothing listens (a port bound then released).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A shared HTTP client for tests.
/// A client builder for tests. reqwest takes rustls's process-wide crypto provider, which
/// the services install when they start; a test may build a client before any service, so
/// this installs it too.
pub fn client_builder() -> reqwest::ClientBuilder {
    colmena_shared::tls::install_crypto_provider();
    reqwest::Client::builder()
}

pub fn client() -> reqwest::Client {
    client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------------ chain helpers

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Defines a product at central (admin).
pub async fn put_product(c: &reqwest::Client, central: &str, id: &str, name: &str, price: i64) -> Value {
    let r = c
        .put(format!("{central}/products/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": name, "price_cents": price}))
        .send()
        .await
        .expect("put product");
    assert!(r.status().is_success(), "PUT product {id}: {}", r.status());
    r.json().await.expect("json")
}

/// Allocates stock to a branch at central (admin).
pub async fn allocate(c: &reqwest::Client, central: &str, branch: &str, id: &str, qty: i64) {
    let r = c
        .post(format!("{central}/branches/{branch}/allocations"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"product_id": id, "quantity": qty}))
        .send()
        .await
        .expect("allocate");
    assert!(r.status().is_success(), "allocation {branch}/{id}: {}", r.status());
}

/// Every sale central has for `branch`, following `next` cursors.
pub async fn central_sales(c: &reqwest::Client, central: &str, branch: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{central}/sales?branch_id={branch}&limit=1000");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page = get_json(c, &url, ADMIN_TOKEN).await;
        out.extend(page["sales"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => match page["next"].as_u64() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            },
        }
    }
    out
}

/// Waits until the branch has nothing pending (central acknowledged everything).
pub async fn wait_drained(c: &reqwest::Client, branch_url: &str, timeout: Duration) -> Value {
    eventually(timeout, "the branch outbox drains", || async {
        let st = get_json(c, &format!("{branch_url}/status"), POS_TOKEN).await;
        (st["outbox"]["pending"].as_u64() == Some(0)).then_some(st)
    })
    .await
}

/// The invariant (docs/protocol.md, 'The invariant') for one branch, after drain. `acked` are the sale ids the branch
/// answered 201 for; when `exact` they must be exactly central's set (no branch kill in the
/// test), otherwise central's set must contain them and equal the branch's durable sales.
pub async fn check_invariant(
    c: &reqwest::Client,
    central: &str,
    branch_url: &str,
    branch: &str,
    acked: &BTreeSet<String>,
    exact: bool,
) {
    let st = wait_drained(c, branch_url, Duration::from_secs(60)).await;
    let last_seq = st["outbox"]["last_seq"].as_u64().unwrap();
    // applied_through == last_seq
    let branches = get_json(c, &format!("{central}/branches"), ADMIN_TOKEN).await;
    let applied = branches["branches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["branch_id"] == branch)
        .map(|b| b["applied_through"].as_u64().unwrap())
        .unwrap_or(0);
    assert_eq!(
        applied, last_seq,
        "{branch}: central applied_through != branch last_seq"
    );
    // Sales: none missing, none twice.
    let sales = central_sales(c, central, branch).await;
    let ids: Vec<String> = sales
        .iter()
        .map(|s| s["sale_id"].as_str().unwrap().to_string())
        .collect();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "{branch}: a sale is at central twice");
    let missing: Vec<&String> = acked.difference(&set).collect();
    assert!(
        missing.is_empty(),
        "{branch}: {} acknowledged sales missing at central, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    if exact {
        let extra: Vec<&String> = set.difference(acked).collect();
        assert!(
            extra.is_empty(),
            "{branch}: central has sales the branch never acknowledged: {:?}",
            &extra[..extra.len().min(5)]
        );
    }
    // Stock, product by product.
    let inv = get_json(c, &format!("{branch_url}/inventory"), POS_TOKEN).await;
    let branch_stock = by_product(&inv, "stock");
    let cinv = get_json(c, &format!("{central}/inventory"), ADMIN_TOKEN).await;
    let mut central_stock: BTreeMap<String, i64> = BTreeMap::new();
    for p in cinv["products"].as_array().unwrap() {
        if let Some(q) = p["by_branch"][branch].as_i64() {
            central_stock.insert(p["product_id"].as_str().unwrap().to_string(), q);
        }
    }
    for (p, q) in &branch_stock {
        assert_eq!(
            central_stock.get(p).copied().unwrap_or(0),
            *q,
            "{branch}/{p}: central stock != branch stock"
        );
    }
    for (p, q) in &central_stock {
        assert_eq!(
            branch_stock.get(p).copied().unwrap_or(0),
            *q,
            "{branch}/{p}: central has stock the branch lacks"
        );
    }
}

/// The branch's circuit breaker state towards central (`closed`, `open`, `half_open`), as
/// its `/status` reports it.
pub async fn circuit(c: &reqwest::Client, branch_url: &str) -> String {
    get_json(c, &format!("{branch_url}/status"), POS_TOKEN).await["circuit"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Sells one unit of `product`, `n` times, each sale expected to be acknowledged (201);
/// returns the sale ids.
pub async fn sell_ids(c: &reqwest::Client, branch_url: &str, product: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let sale = sell(c, branch_url, &json!({"product_id": product, "quantity": 1}))
            .await
            .unwrap_or_else(|| panic!("sale {i} of {n} of {product} was not acknowledged"));
        ids.push(sale["sale_id"].as_str().expect("a sale_id").to_string());
    }
    ids
}

/// Sells one basket; returns the 201 body or None.
pub async fn sell(c: &reqwest::Client, branch_url: &str, body: &Value) -> Option<Value> {
    let r = c
        .post(format!("{branch_url}/sell"))
        .bearer_auth(POS_TOKEN)
        .json(body)
        .send()
        .await
        .ok()?;
    if r.status().as_u16() == 201 {
        r.json().await.ok()
    } else {
        None
    }
}

/// Whether `needle` occurs in `text` not glued to other letters or digits. A 4-digit PIN is
/// also a substring of timestamps and latencies ("…T16:55:34.482105Z"), which is no leak;
/// the PIN written as a value ("pin=4821", "\"4821\"") is.
pub fn appears_as_word(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Percentile (0..=100) of a sample, in the sample's unit.
pub fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[idx.min(v.len() - 1)]
}

// ------------------------------------------------------------------ chaos / failpoint helpers

impl Proc {
    /// Like [`Proc::spawn`], but runs the binary at `path` (e.g. a `failpoints` build kept in
    /// its own target dir) with extra environment variables.
    pub fn spawn_path(
        name: &str,
        path: PathBuf,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        log_dir: &Path,
    ) -> Proc {
        let mut p = Proc {
            name: name.to_string(),
            child: None,
            addr: String::new(),
            url: String::new(),
            bin: path,
            args,
            envs,
            log: log_dir.join(format!("{name}.log")),
        };
        p.start();
        p
    }

    /// Sets (`Some`) or removes (`None`) an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.envs.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.envs.push((key.to_string(), v.to_string()));
        }
    }

    /// Waits up to `timeout` for the process to exit on its own; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.child.as_mut()?;
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The arguments [`spawn_branch`] gives a branch (for starting another build of it).
pub fn branch_args(dir: &Path, branch: &str, central_url: &str, extra: &[&str]) -> Vec<String> {
    let data = dir.join(format!("branch-{branch}"));
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--branch-id".into(),
        branch.into(),
        "--data-dir".into(),
        data.to_string_lossy().into_owned(),
        "--central-url".into(),
        central_url.into(),
        "--central-token".into(),
        branch_token(branch),
        "--pos-token".into(),
        POS_TOKEN.into(),
        "--admin-token".into(),
        BRANCH_ADMIN_TOKEN.into(),
    ];
    // `extra` is flag/value pairs; a flag given here overrides the default above.
    for pair in extra.chunks(2) {
        match (pair, args.iter().position(|a| a == pair[0])) {
            ([_, value], Some(i)) => args[i + 1] = value.to_string(),
            _ => args.extend(pair.iter().map(|s| s.to_string())),
        }
    }
    args
}

/// The arguments [`spawn_central`] gives central (for starting another build of it).
pub fn central_args(dir: &Path, branches: &[&str], extra: &[&str]) -> Vec<String> {
    central_db_args(&dir.join("central.db").to_string_lossy(), branches, extra)
}

/// Central's arguments on `database`, with branch tokens for `branches`.
pub fn central_db_args(database: &str, branches: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--database".into(),
        database.into(),
        "--admin-token".into(),
        ADMIN_TOKEN.into(),
    ];
    for b in branches {
        args.push("--branch-token".into());
        args.push(format!("{b}={}", branch_token(b)));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Waits until the branch has pulled everything central has for it (catalog and
/// allocations), asking central's feed from the branch's own cursor with the admin token.
pub async fn wait_pulled(c: &reqwest::Client, central: &str, branch_url: &str, branch: &str, timeout: Duration) {
    eventually(
        timeout,
        &format!("{branch} pulls everything central has for it"),
        || async {
            let st = try_get_json(c, &format!("{branch_url}/status"), POS_TOKEN).await?;
            let cursor = st["pull_cursor"].as_u64()?;
            let page = try_get_json(
                c,
                &format!("{central}/sync/pull?branch_id={branch}&after={cursor}&limit=1"),
                ADMIN_TOKEN,
            )
            .await?;
            page["changes"].as_array()?.is_empty().then_some(())
        },
    )
    .await
}

/// Every event in a branch's store (`spawn_branch`'s data dir under `dir`), in seq order, read
/// from its SQLite file. `GET /outbox` pages at most 10,000 events, and a storm of under a
/// second on a quiet box sells more than that.
pub fn stored_events(dir: &Path, branch: &str) -> Vec<Value> {
    let db = rusqlite::Connection::open_with_flags(
        dir.join(format!("branch-{branch}")).join("branch.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the branch store");
    let mut st = db.prepare("SELECT payload FROM outbox ORDER BY seq").unwrap();
    let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|p| serde_json::from_str(&p.unwrap()).unwrap()).collect()
}

// ------------------------------------------------------------------ small helpers

/// gzip of `bytes` (for `Content-Encoding: gzip` bodies).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// The value of one sample in Prometheus text (`series` is the name with its labels, as
/// printed), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A port that was free a moment ago (bound, then released): for servers that must be told
/// their port up front (Prometheus, PostgreSQL).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
