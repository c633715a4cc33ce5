//! The test fault proxy (`tests/support/proxy.rs`) tested itself: every toxic observed
//! through a real HTTP round trip (reqwest → proxy → a tiny HTTP server), on new and on
//! pooled keep-alive connections.

use crate::support::get_bytes;
use crate::support::proxy::Proxy;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal keep-alive HTTP/1.1 server: `GET /big?n=N` answers N bytes, `POST /echo`
/// answers the body length, anything else `{"ok":true}`. Counts the requests it saw.
async fn upstream() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else { continue };
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    s.fetch_add(1, Ordering::SeqCst);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    buf.drain(..head_end + len);
                    let body = if let Some(n) = path.strip_prefix("/big?n=") {
                        "x".repeat(n.parse().unwrap())
                    } else if path == "/echo" {
                        format!("{{\"len\":{len}}}")
                    } else {
                        r#"{"ok":true}"#.to_string()
                    };
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// The test upstream behind a fresh proxy; the counter is the upstream's.
async fn proxied() -> (Proxy, Arc<AtomicU64>) {
    let (up, seen) = upstream().await;
    (Proxy::start(up), seen)
}

/// [`proxied`], and a client (with `timeout`) whose first request through the proxy left
/// a pooled connection behind.
async fn proxied_warm(timeout: Duration) -> (Proxy, Arc<AtomicU64>, reqwest::Client) {
    let (p, seen) = proxied().await;
    let c = client(timeout);
    c.get(format!("{}/x", p.url)).send().await.unwrap();
    (p, seen, c)
}

fn client(timeout: Duration) -> reqwest::Client {
    crate::support::client_builder().timeout(timeout).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_proxy_forwards_requests_and_bodies_on_one_keep_alive_connection() {
    let (p, seen) = proxied().await;
    let c = client(Duration::from_secs(5));
    for i in 0..5 {
        let r = c
            .post(format!("{}/echo", p.url))
            .body(vec![b'a'; 1000 * i + 1])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), format!("{{\"len\":{}}}", 1000 * i + 1));
        // Time for hyper's pool to take the connection back (it does so on another task).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let big = get_bytes(&c, &format!("{}/big?n=300000", p.url), None).await;
    assert_eq!(big.len(), 300_000);
    assert_eq!(seen.load(Ordering::SeqCst), 6);
    // hyper may open another connection when the first is not back in its pool yet (on a
    // loaded machine, more than once); fewer connections than requests still means some
    // connection carried requests framed one after another.
    let connections = p.stats().connections.load(Ordering::SeqCst);
    assert!(
        connections < 6,
        "the client's pooled connection was reused: {connections} connections"
    );
    assert_eq!(p.stats().requests_forwarded.load(Ordering::SeqCst), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_responses_and_beyond_the_client_timeout_it_times_out() {
    let (p, _) = proxied().await;
    p.set_latency(Some(Duration::from_millis(300)));
    let t = Instant::now();
    let r = client(Duration::from_secs(5))
        .get(format!("{}/x", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "answered after {:?}",
        t.elapsed()
    );
    let e = client(Duration::from_millis(100))
        .get(format!("{}/x", p.url))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    p.heal();
    let t = Instant::now();
    client(Duration::from_secs(5))
        .get(format!("{}/x", p.url))
        .send()
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "healed link still slow: {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_accepts_but_never_answers_even_on_a_pooled_connection() {
    let (p, seen, c) = proxied_warm(Duration::from_millis(400)).await;
    p.set_blackhole(true);
    let t = Instant::now();
    let e = c.get(format!("{}/x", p.url)).send().await.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(t.elapsed() >= Duration::from_millis(390));
    // A brand-new connection is accepted and swallowed too.
    let mut raw = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    raw.write_all(b"GET /x HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), raw.read(&mut buf))
            .await
            .is_err(),
        "no answer ever"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1, "nothing reached the upstream");
    p.heal();
    p.cut_connections();
    assert_eq!(
        client(Duration::from_secs(5))
            .get(format!("{}/x", p.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_closes_the_connection_with_an_rst() {
    let (p, seen, c) = proxied_warm(Duration::from_secs(5)).await;
    p.set_reset(true);
    // Pooled connection: reset at its next request.
    let t = Instant::now();
    let e = c.get(format!("{}/x", p.url)).send().await.unwrap_err();
    assert!(!e.is_timeout() && t.elapsed() < Duration::from_secs(2), "{e:?}");
    // New connection: an RST the OS reports as ECONNRESET.
    // (The RST can arrive so fast that `connect` itself reports it.)
    let r = async {
        let mut raw = tokio::net::TcpStream::connect(p.addr).await?;
        let _ = raw.write_all(b"GET /x HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let mut buf = [0u8; 16];
        raw.read(&mut buf).await
    };
    let r = tokio::time::timeout(Duration::from_secs(2), r)
        .await
        .expect("answered at once");
    assert_eq!(
        r.map_err(|e| e.kind()).unwrap_err(),
        std::io::ErrorKind::ConnectionReset
    );
    assert!(p.stats().resets.load(Ordering::SeqCst) >= 2);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    p.heal();
    assert_eq!(c.get(format!("{}/x", p.url)).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_after_forwards_part_of_the_response_then_closes() {
    let (p, seen) = proxied().await;
    p.set_close_after(Some(1000));
    // reqwest sees a body cut short.
    let c = client(Duration::from_secs(5));
    let r = c.get(format!("{}/big?n=100000", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "the head got through");
    assert!(r.bytes().await.is_err(), "the body was cut");
    // On the wire: exactly 1000 bytes, then EOF.
    let mut raw = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    raw.write_all(b"GET /big?n=100000 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), raw.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1000);
    assert!(got.starts_with(b"HTTP/1.1 200 OK"));
    assert_eq!(seen.load(Ordering::SeqCst), 2, "the upstream did answer both requests");
    assert_eq!(p.stats().responses_cut.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_paces_the_transfer() {
    let (p, _) = proxied().await;
    p.set_bandwidth(Some(50_000));
    let t = Instant::now();
    let body = client(Duration::from_secs(10))
        .get(format!("{}/big?n=40000", p.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 40_000);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(4),
        "40 kB at 50 kB/s took {took:?}"
    );
    // The request direction too: 20 kB up at 50 kB/s.
    let t = Instant::now();
    client(Duration::from_secs(10))
        .post(format!("{}/echo", p.url))
        .body(vec![b'a'; 20_000])
        .send()
        .await
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(350),
        "20 kB up took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_burst_answers_the_next_requests_itself_then_forwards_again() {
    let (p, seen, c) = proxied_warm(Duration::from_secs(5)).await;
    p.fail_next(3);
    for i in 0..3 {
        // A body on one of them: it is consumed, not left to reset the client.
        let r = if i == 1 {
            c.post(format!("{}/echo", p.url))
                .body(vec![b'z'; 50_000])
                .send()
                .await
                .unwrap()
        } else {
            c.get(format!("{}/x", p.url)).send().await.unwrap()
        };
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    assert_eq!(p.fail_left(), 0);
    assert_eq!(seen.load(Ordering::SeqCst), 1, "no 503'd request was forwarded");
    assert_eq!(c.get(format!("{}/x", p.url)).send().await.unwrap().status(), 200);
    assert_eq!(p.stats().requests_503.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_upstream_down_connections_are_closed_and_come_back_with_it() {
    let (up, _) = upstream().await;
    // A port with nothing behind it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = Proxy::start(dead);
    let e = client(Duration::from_secs(5))
        .get(format!("{}/x", p.url))
        .send()
        .await
        .unwrap_err();
    assert!(!e.is_timeout(), "{e:?}");
    assert!(p.stats().upstream_unreachable.load(Ordering::SeqCst) >= 1);
    p.set_upstream(up);
    assert_eq!(
        client(Duration::from_secs(5))
            .get(format!("{}/x", p.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
