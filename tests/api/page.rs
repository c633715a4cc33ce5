//! The cashier's page as HTTP (docs/protocol.md, "The cashier's page"): served without a
//! token, cached by tag and by build path, locked down by its headers, and public only for
//! the page's own files — every other path still needs its token.
use crate::support::app;
use crate::support::*;

const CSP_PARTS: [&str; 5] = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
];

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The asset paths `index.html` names (`/app/<build>/…`).
fn asset_paths(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/app/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_page_is_served_without_a_token_with_a_strict_policy_and_revalidated_by_its_etag() {
    let dir = TempDir::new("page-http");
    let branch = app::spawn_branch(dir.path(), "CUS", &dead_url(), &[]).await;
    let c = client();
    let r = c.get(format!("{}/", branch.url)).send().await.expect("GET /");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let csp = header(&r, "content-security-policy");
    for part in CSP_PARTS {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let etag = header(&r, "etag");
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let html = r.text().await.expect("html");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no other host is named"
    );
    assert!(!html.contains("<style") && !html.contains(" style="), "no inline style");

    let again = c
        .get(format!("{}/", branch.url))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.expect("body").is_empty());

    let assets = asset_paths(&html);
    assert!(assets.iter().any(|a| a.ends_with("/main.js")), "{assets:?}");
    for a in &assets {
        let r = c
            .get(format!("{}{a}", branch.url))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .expect("asset");
        assert_eq!(r.status(), 200, "{a}");
        assert_eq!(
            header(&r, "cache-control"),
            "public, max-age=31536000, immutable",
            "{a}"
        );
        assert!(header(&r, "content-security-policy").contains("default-src 'self'"));
        let ct = header(&r, "content-type");
        assert!(
            ct.starts_with("text/javascript") || ct.starts_with("text/css"),
            "{a}: {ct}"
        );
    }
}

#[tokio::test]
async fn only_the_page_s_files_are_public_and_an_old_build_path_is_not_found() {
    let dir = TempDir::new("page-public");
    let branch = app::spawn_branch(dir.path(), "CUS", &dead_url(), &[]).await;
    let c = client();
    let html = c
        .get(format!("{}/", branch.url))
        .send()
        .await
        .expect("GET /")
        .text()
        .await
        .expect("html");
    let main = asset_paths(&html)
        .into_iter()
        .find(|a| a.ends_with("/main.js"))
        .expect("main.js");
    let stale = main.replacen("/app/", "/app/0000", 1);
    let r = c.get(format!("{}{stale}", branch.url)).send().await.expect("stale");
    assert_eq!(r.status(), 404);
    for path in ["/app/x/../../status", "/status", "/inventory", "/appx", "/outbox"] {
        let r = c.get(format!("{}{path}", branch.url)).send().await.expect("GET");
        assert!(
            matches!(r.status().as_u16(), 401 | 404),
            "{path} answered {} without a token",
            r.status()
        );
    }
    let r = c.post(format!("{}/", branch.url)).send().await.expect("POST /");
    assert_eq!(r.status(), 405);
}
