//! Reads over HTTP that tests repeat: the body of a successful GET as JSON, text or bytes,
//! with or without a bearer token, a service's `/metrics` page, and a product listing as a
//! map. Each panics with the URL (and the status) so that a failing test says which read
//! failed; [`try_get_json`] is the one for polling, where a failed read means "not yet".
use serde_json::Value;
use std::collections::BTreeMap;

/// Sends `GET url` (with `token` as bearer, if any); panics on a transport error.
async fn send_get(c: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = c.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// `GET url` with `token`, as JSON; panics unless it is a 2xx.
pub async fn get_json(c: &reqwest::Client, url: &str, token: &str) -> Value {
    let r = send_get(c, url, Some(token)).await;
    let status = r.status();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "GET {url}: {status} {v}");
    v
}

/// `GET url` with `token`; panics unless the answer is a 200 (its headers and body are the
/// caller's to read).
pub async fn get_ok(c: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    let r = send_get(c, url, Some(token)).await;
    assert_eq!(r.status(), 200, "GET {url}");
    r
}

/// `GET url` with `token`, as JSON, or `None` if the request or the JSON failed (whatever
/// the status: callers look at the body, as they did when they inlined this).
pub async fn try_get_json(c: &reqwest::Client, url: &str, token: &str) -> Option<Value> {
    c.get(url).bearer_auth(token).send().await.ok()?.json().await.ok()
}

/// `field` of each entry of `listing["products"]` (an inventory or a catalog), by
/// product id.
pub fn by_product(listing: &Value, field: &str) -> BTreeMap<String, i64> {
    let products = listing["products"]
        .as_array()
        .unwrap_or_else(|| panic!("no products in {listing}"));
    products
        .iter()
        .map(|p| match (p["product_id"].as_str(), p[field].as_i64()) {
            (Some(id), Some(v)) => (id.to_string(), v),
            _ => panic!("a product without an id or an integer {field}: {p}"),
        })
        .collect()
}

/// The body of `GET url` (with `token` as bearer, if any); panics unless it is a 2xx.
pub async fn get_bytes(c: &reqwest::Client, url: &str, token: Option<&str>) -> Vec<u8> {
    let r = send_get(c, url, token).await;
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
