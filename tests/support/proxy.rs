//! A small TCP fault proxy for tests — a Toxiproxy in one file.
//!
//! `Proxy::start(upstream)` listens on `127.0.0.1:0` and forwards every connection to
//! `upstream`. Faults ("toxics") are switched at runtime, from any thread, and apply to new
//! *and already open* connections (clients pool keep-alive connections, so a fault that only
//! hit new connections would be dodged):
//!
//! | toxic | effect |
//! |---|---|
//! | [`Proxy::set_latency`] | every response chunk is held back `latency` before it is forwarded |
//! | [`Proxy::set_blackhole`] | connections are accepted, requests swallowed, nothing ever answered |
//! | [`Proxy::set_reset`] | the client's connection is closed with a TCP RST (`SO_LINGER` 0) at accept or at its next request/response chunk |
//! | [`Proxy::set_close_after`] | only the first `n` bytes of each response are forwarded, then both sides are closed |
//! | [`Proxy::set_bandwidth`] | both directions are paced to `bytes_per_second` |
//! | [`Proxy::fail_next`] | the next `n` HTTP requests are answered `503` (`Retry-After: 1`, JSON error body) by the proxy itself, never forwarded |
//!
//! [`Proxy::heal`] clears every toxic. The proxy runs on its own thread and runtime, so a
//! test that blocks its own runtime (waiting for a process to restart) never stalls it.
//!
//! The client → upstream direction is framed as HTTP/1.1 requests (head, then
//! `Content-Length` bytes of body) so that the 503 toxic can answer a whole request and the
//! response-truncating toxic knows where a response starts. A request with
//! `Transfer-Encoding: chunked` (or a head over 64 KiB) switches that connection to raw
//! byte forwarding, where only the TCP-level toxics apply.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The toxics in force. `Default` is a healthy link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toxics {
    /// Delay added before each response chunk is forwarded.
    pub latency: Option<Duration>,
    /// Accept, swallow, never answer.
    pub blackhole: bool,
    /// Close the client connection with an RST.
    pub reset: bool,
    /// Forward at most this many bytes of each response, then close.
    pub close_after: Option<u64>,
    /// Pace both directions to this many bytes per second.
    pub bandwidth: Option<u64>,
}

/// What the proxy did, for tests to assert on and for chaos reports.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub requests_forwarded: AtomicU64,
    pub requests_503: AtomicU64,
    pub requests_blackholed: AtomicU64,
    pub resets: AtomicU64,
    pub responses_cut: AtomicU64,
    pub upstream_unreachable: AtomicU64,
}

struct Control {
    toxics: Mutex<Toxics>,
    /// Requests still to be answered 503 by the proxy.
    fail_left: AtomicU64,
    upstream: Mutex<SocketAddr>,
    stats: Stats,
    /// Bumped by [`Proxy::cut_connections`]; every connection task watches it.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Control {
    fn toxics(&self) -> Toxics {
        self.toxics.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    /// `http://<addr>`: give this to a client instead of the upstream's URL.
    pub url: String,
    ctl: Arc<Control>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (e.g. `"127.0.0.1:8000"` or a `SocketAddr`).
    pub fn start(upstream: impl std::net::ToSocketAddrs) -> Proxy {
        let upstream = upstream
            .to_socket_addrs()
            .expect("upstream address")
            .next()
            .expect("an upstream address");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy addr");
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let ctl = Arc::new(Control {
            toxics: Mutex::new(Toxics::default()),
            fail_left: AtomicU64::new(0),
            upstream: Mutex::new(upstream),
            stats: Stats::default(),
            generation,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let c = ctl.clone();
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = accept_loop(listener, c) => {}
                        _ = stopped => {}
                    }
                });
                rt.shutdown_background();
            })
            .expect("proxy thread");
        Proxy {
            addr,
            url: format!("http://{addr}"),
            ctl,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Upstream address connections go to (new connections only).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.ctl.upstream.lock().unwrap_or_else(|e| e.into_inner()) = upstream;
    }

    fn edit(&self, f: impl FnOnce(&mut Toxics)) {
        f(&mut self.ctl.toxics.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn set_latency(&self, latency: Option<Duration>) {
        self.edit(|t| t.latency = latency);
    }
    pub fn set_blackhole(&self, on: bool) {
        self.edit(|t| t.blackhole = on);
    }
    pub fn set_reset(&self, on: bool) {
        self.edit(|t| t.reset = on);
    }
    pub fn set_close_after(&self, bytes: Option<u64>) {
        self.edit(|t| t.close_after = bytes);
    }
    pub fn set_bandwidth(&self, bytes_per_second: Option<u64>) {
        self.edit(|t| t.bandwidth = bytes_per_second.map(|b| b.max(1)));
    }
    /// The next `n` requests are answered 503 by the proxy (adds to any burst in progress).
    pub fn fail_next(&self, n: u64) {
        self.ctl.fail_left.fetch_add(n, Ordering::SeqCst);
    }
    /// How many 503s of the current burst are still to be served.
    pub fn fail_left(&self) -> u64 {
        self.ctl.fail_left.load(Ordering::SeqCst)
    }
    pub fn toxics(&self) -> Toxics {
        self.ctl.toxics()
    }
    /// Clears every toxic and any 503 burst left. Open connections carry on healthy.
    pub fn heal(&self) {
        self.edit(|t| *t = Toxics::default());
        self.ctl.fail_left.store(0, Ordering::SeqCst);
    }
    /// Closes every open connection (plain close), e.g. to drop what a blackhole holds.
    pub fn cut_connections(&self) {
        self.ctl.generation.send_modify(|g| *g += 1);
    }
    pub fn stats(&self) -> &Stats {
        &self.ctl.stats
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, ctl: Arc<Control>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        ctl.stats.connections.fetch_add(1, Ordering::Relaxed);
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let mut cut = ctl.generation.subscribe();
            tokio::select! {
                _ = connection(client, ctl.clone()) => {}
                _ = cut.changed() => {}
            }
        });
    }
}

/// Closes `s` with an RST rather than a FIN.
fn reset(s: TcpStream, ctl: &Control) {
    ctl.stats.resets.fetch_add(1, Ordering::Relaxed);
    let _ = s.set_zero_linger();
    drop(s);
}

/// One client connection: check the accept-time toxics, connect upstream, then run the
/// two directions until either ends (or a toxic ends them).
async fn connection(client: TcpStream, ctl: Arc<Control>) {
    let _ = client.set_nodelay(true);
    let t = ctl.toxics();
    if t.reset {
        return reset(client, &ctl);
    }
    if t.blackhole {
        ctl.stats.requests_blackholed.fetch_add(1, Ordering::Relaxed);
        return swallow(client).await;
    }
    let upstream_addr = *ctl.upstream.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream_addr)).await {
        Ok(Ok(s)) => s,
        _ => {
            // Upstream down: the client sees its connection closed, as with a dead server
            // behind a load balancer.
            ctl.stats.upstream_unreachable.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let (client_r, client_w) = client.into_split();
    let (up_r, up_w) = upstream.into_split();
    let conn = Arc::new(Conn {
        client_w: tokio::sync::Mutex::new(Some(client_w)),
        response_bytes: AtomicU64::new(0),
        blackholed: AtomicBool::new(false),
        reset: AtomicBool::new(false),
    });
    let done = tokio::select! {
        r = requests(client_r, up_w, conn.clone(), ctl.clone()) => r,
        r = responses(up_r, conn.clone(), ctl.clone()) => r,
    };
    if done == End::Reset || conn.reset.load(Ordering::SeqCst) {
        // The read half is gone with the `requests` future; closing the socket with
        // SO_LINGER 0 sends an RST. `forget` skips the write half's FIN on drop.
        if let Some(w) = conn.client_w.lock().await.take() {
            ctl.stats.resets.fetch_add(1, Ordering::Relaxed);
            let _ = w.as_ref().set_zero_linger();
            w.forget();
        }
    }
}

/// Reads and discards everything until the client gives up.
async fn swallow<R: AsyncRead + Unpin>(mut r: R) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

struct Conn {
    client_w: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    /// Bytes of the current response forwarded so far (reset when a request is forwarded).
    response_bytes: AtomicU64,
    /// Once a request was swallowed, the connection stays a black hole.
    blackholed: AtomicBool,
    /// Set when a toxic decided on an RST.
    reset: AtomicBool,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Closed,
    Reset,
}

const MAX_HEAD: usize = 64 * 1024;

/// Client → upstream, one HTTP request at a time.
async fn requests(mut client_r: OwnedReadHalf, mut up_w: OwnedWriteHalf, conn: Arc<Conn>, ctl: Arc<Control>) -> End {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break Some(i + 4);
            }
            if buf.len() > MAX_HEAD {
                break None;
            }
            match client_r.read(&mut chunk).await {
                Ok(0) | Err(_) => return End::Closed,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let Some(head_end) = head_end else {
            // Not HTTP as we know it: forward raw from here on.
            return raw(client_r, up_w, buf, &ctl).await;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let chunked = head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
        let body_len: u64 = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0);

        // Toxics are judged per request.
        let t = ctl.toxics();
        if t.reset {
            conn.reset.store(true, Ordering::SeqCst);
            return End::Reset;
        }
        if t.blackhole || conn.blackholed.load(Ordering::SeqCst) {
            conn.blackholed.store(true, Ordering::SeqCst);
            ctl.stats.requests_blackholed.fetch_add(1, Ordering::Relaxed);
            swallow(client_r).await;
            return End::Closed;
        }
        if !chunked && take_one(&ctl.fail_left) {
            // Answer 503 ourselves: consume the body first, so the client is not reset by
            // unread data, then close.
            let mut left = body_len.saturating_sub((buf.len() - head_end) as u64);
            while left > 0 {
                match client_r.read(&mut chunk[..(left.min(16 * 1024) as usize)]).await {
                    Ok(0) | Err(_) => return End::Closed,
                    Ok(n) => left -= n as u64,
                }
            }
            ctl.stats.requests_503.fetch_add(1, Ordering::Relaxed);
            let body = r#"{"error":{"code":"service_unavailable","message":"injected by the test proxy"}}"#;
            let resp = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Some(w) = conn.client_w.lock().await.as_mut() {
                let _ = w.write_all(resp.as_bytes()).await;
                let _ = w.shutdown().await;
            }
            // Let the client read the answer before the socket goes.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return End::Closed;
        }

        // Forward the request: head and the body bytes already read, then the rest.
        ctl.stats.requests_forwarded.fetch_add(1, Ordering::Relaxed);
        conn.response_bytes.store(0, Ordering::SeqCst);
        if chunked {
            return raw(client_r, up_w, buf, &ctl).await;
        }
        let have_body = (buf.len() - head_end) as u64;
        let first_end = head_end + have_body.min(body_len) as usize;
        if paced_write(&mut up_w, &buf[..first_end], t.bandwidth).await.is_err() {
            return End::Closed;
        }
        buf.drain(..first_end);
        let mut left = body_len.saturating_sub(have_body);
        while left > 0 {
            let n = match client_r.read(&mut chunk[..(left.min(16 * 1024) as usize)]).await {
                Ok(0) | Err(_) => return End::Closed,
                Ok(n) => n,
            };
            left -= n as u64;
            if paced_write(&mut up_w, &chunk[..n], ctl.toxics().bandwidth)
                .await
                .is_err()
            {
                return End::Closed;
            }
        }
    }
}

/// Raw forwarding (non-HTTP or chunked requests): TCP toxics only.
async fn raw(mut client_r: OwnedReadHalf, mut up_w: OwnedWriteHalf, pending: Vec<u8>, ctl: &Control) -> End {
    if !pending.is_empty() && up_w.write_all(&pending).await.is_err() {
        return End::Closed;
    }
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match client_r.read(&mut chunk).await {
            Ok(0) | Err(_) => return End::Closed,
            Ok(n) => n,
        };
        let t = ctl.toxics();
        if t.reset {
            return End::Reset;
        }
        if t.blackhole {
            continue;
        }
        if paced_write(&mut up_w, &chunk[..n], t.bandwidth).await.is_err() {
            return End::Closed;
        }
    }
}

/// Upstream → client, chunk by chunk, with latency, truncation and pacing.
async fn responses(mut up_r: OwnedReadHalf, conn: Arc<Conn>, ctl: Arc<Control>) -> End {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match up_r.read(&mut chunk).await {
            Ok(0) | Err(_) => return End::Closed,
            Ok(n) => n,
        };
        let t = ctl.toxics();
        if t.reset {
            conn.reset.store(true, Ordering::SeqCst);
            return End::Reset;
        }
        if t.blackhole || conn.blackholed.load(Ordering::SeqCst) {
            continue;
        }
        if let Some(l) = t.latency {
            tokio::time::sleep(l).await;
        }
        let mut data = &chunk[..n];
        let mut cut = false;
        if let Some(limit) = t.close_after {
            let sent = conn.response_bytes.load(Ordering::SeqCst);
            let room = limit.saturating_sub(sent) as usize;
            if data.len() >= room {
                data = &data[..room];
                cut = true;
            }
        }
        conn.response_bytes.fetch_add(data.len() as u64, Ordering::SeqCst);
        let mut guard = conn.client_w.lock().await;
        let Some(w) = guard.as_mut() else { return End::Closed };
        if paced_write(w, data, t.bandwidth).await.is_err() {
            return End::Closed;
        }
        if cut {
            ctl.stats.responses_cut.fetch_add(1, Ordering::Relaxed);
            let _ = w.shutdown().await;
            return End::Closed;
        }
    }
}

/// Writes `data`, at most `bandwidth` bytes per second when set (in 10 slices a second).
async fn paced_write<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8], bandwidth: Option<u64>) -> std::io::Result<()> {
    match bandwidth {
        None => w.write_all(data).await,
        Some(bps) => {
            let slice = ((bps / 10).max(1)) as usize;
            for part in data.chunks(slice) {
                // Wait first: the bytes are not "through" before their time is spent.
                tokio::time::sleep(Duration::from_secs_f64(part.len() as f64 / bps as f64)).await;
                w.write_all(part).await?;
                w.flush().await?;
            }
            Ok(())
        }
    }
}

fn take_one(n: &AtomicU64) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
