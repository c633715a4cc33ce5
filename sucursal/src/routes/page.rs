//! The cashier's page: `GET /` and `GET /app/{build}/{file}` serve the till application
//! embedded in the binary from `sucursal/static/` (docs/protocol.md, "The cashier's page").
//!
//! No token is needed (the page logs its user in with `POST /login`), no other host is ever
//! named, and nothing is read from disk at run time. The assets live under a path that
//! carries the build's hash, so they are cached for good (`immutable`) and a new binary's
//! page never mixes with an old one's modules; `/` itself is revalidated on every load
//! (`no-cache` + an `ETag`, a 304 when unchanged) and names that path. Every answer carries a
//! strict `Content-Security-Policy` (only this origin; no inline script or style; never in a
//! frame) and `nosniff`. Gzip is served to clients that accept it, compressed once per file.
//!
//! These routes are not in the OpenAPI document: they are a web page, not the API.
//!
//! Cargo rebuilds the binary when an embedded file changes (each is an `include_bytes!`),
//! but not when a file is *added* to `static/`: touch this file after adding one.
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// Where the assets are served: `/app/<BUILD>/<file>`.
pub const ASSET_PREFIX: &str = "/app/";

/// The page may load and call only its own origin; inline code and `eval` never run; it
/// may not be framed (clickjacking a till).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// The placeholder in `index.html` replaced by the build's hash.
const BUILD_PLACEHOLDER: &str = "__BUILD__";

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(index)))
        .service(web::resource("/app/{build}/{file:.+}").route(web::get().to(asset)));
}

/// One servable file: its bytes, gzipped bytes (when smaller), type and tag.
struct File {
    body: Bytes,
    gzip: Option<Bytes>,
    content_type: &'static str,
    etag: String,
}

impl File {
    fn new(name: &str, body: Vec<u8>) -> File {
        let etag = format!("\"{}\"", hex16(&Sha256::digest(&body)));
        let gzip = gzip(&body).filter(|z| z.len() < body.len()).map(Bytes::from);
        File {
            body: Bytes::from(body),
            gzip,
            content_type: content_type(name),
            etag,
        }
    }
}

/// Every embedded file, the index rendered with the build hash; built once.
struct Site {
    build: String,
    index: File,
    assets: HashMap<String, File>,
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let mut names: Vec<String> = Assets::iter().map(|n| n.to_string()).collect();
        names.sort();
        // The build hash covers every file's own hash, so any change to any asset moves them all.
        let mut h = Sha256::new();
        for n in &names {
            if let Some(f) = Assets::get(n) {
                h.update(n.as_bytes());
                h.update(f.metadata.sha256_hash());
            }
        }
        let build = hex16(&h.finalize());
        let mut assets = HashMap::new();
        let mut index = File::new("index.html", Vec::new());
        for n in names {
            let Some(f) = Assets::get(&n) else { continue };
            if n == "index.html" {
                let text = String::from_utf8_lossy(&f.data).replace(BUILD_PLACEHOLDER, &build);
                index = File::new(&n, text.into_bytes());
            } else {
                assets.insert(n.clone(), File::new(&n, f.data.into_owned()));
            }
        }
        Site { build, index, assets }
    })
}

/// The build hash the page's asset paths carry (for tests and the benchmark).
pub fn build_id() -> &'static str {
    &site().build
}

/// Names of the embedded assets besides the index (for the page-weight benchmark).
pub fn asset_names() -> Vec<String> {
    let mut v: Vec<String> = site().assets.keys().cloned().collect();
    v.sort();
    v
}

async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, &site().index, "no-cache")
}

async fn asset(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (build, file) = path.into_inner();
    let s = site();
    match s.assets.get(&file) {
        Some(f) if build == s.build => serve(&req, f, "public, max-age=31536000, immutable"),
        _ => secured(HttpResponse::NotFound())
            .content_type("application/json")
            .body(r#"{"error":{"code":"not_found","message":"no such file"}}"#),
    }
}

fn serve(req: &HttpRequest, f: &File, cache: &'static str) -> HttpResponse {
    let mut res = secured(HttpResponse::Ok());
    res.insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, f.etag.as_str()))
        .insert_header((header::VARY, "Accept-Encoding"));
    if if_none_match(req, &f.etag) {
        return secured(HttpResponse::NotModified())
            .insert_header((header::CACHE_CONTROL, cache))
            .insert_header((header::ETAG, f.etag.as_str()))
            .finish();
    }
    res.content_type(f.content_type);
    match &f.gzip {
        Some(z) if accepts_gzip(req) => res.insert_header((header::CONTENT_ENCODING, "gzip")).body(z.clone()),
        _ => res.body(f.body.clone()),
    }
}

/// The headers every answer of the page carries, 404s included.
fn secured(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    b
}

/// `If-None-Match` names our tag (a list, `*`, or a weak form of it).
fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    let none = HeaderValue::from_static("");
    let v = req.headers().get(header::ACCEPT_ENCODING).unwrap_or(&none);
    v.to_str().unwrap_or("").split(',').any(|e| {
        let mut parts = e.trim().split(';');
        let name = parts.next().unwrap_or("").trim();
        // `gzip;q=0` refuses it.
        let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        name.eq_ignore_ascii_case("gzip") && !refused
    })
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(body).ok()?;
    z.finish().ok()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" | "webmanifest" => "application/json",
        _ => "application/octet-stream",
    }
}

/// The first 16 bytes of a digest in hex: plenty to tell builds and files apart.
fn hex16(d: &[u8]) -> String {
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_names_its_assets_under_the_build_path() {
        let s = site();
        let text = String::from_utf8_lossy(&s.index.body);
        assert!(!text.contains(BUILD_PLACEHOLDER));
        assert!(text.contains(&format!("{ASSET_PREFIX}{}/", s.build)), "{text}");
        assert!(s.assets.contains_key("main.js"));
    }

    #[test]
    fn the_content_types_follow_the_extension() {
        assert_eq!(content_type("a.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
