//! Reads over HTTP that tests repeat: the body of a successful GET as text or bytes, with
//! or without a bearer token, and a service's `/metrics` page. Each panics with the URL
//! (and the status) so that a failing test says which read failed.

/// The body of `GET url` (with `token` as bearer, if any); panics unless it is a 2xx.
pub async fn get_bytes(c: &reqwest::Client, url: &str, token: Option<&str>) -> Vec<u8> {
    let mut req = c.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status();
    let body = r.bytes().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        status.is_success(),
        "GET {url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    body.to_vec()
}

/// [`get_bytes`] as text (lossily: the services only send UTF-8).
pub async fn get_text(c: &reqwest::Client, url: &str, token: Option<&str>) -> String {
    String::from_utf8_lossy(&get_bytes(c, url, token).await).into_owned()
}

/// The Prometheus text of the service at `base` (`/metrics` needs no token).
pub async fn metrics_text(c: &reqwest::Client, base: &str) -> String {
    get_text(c, &format!("{base}/metrics"), None).await
}
