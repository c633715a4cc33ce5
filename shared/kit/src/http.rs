//! Actix plumbing both services share.
//!
//! - Extractor configs whose rejections are JSON error bodies (400/413/415; see docs/protocol.md,
//!   "Errors").
//! - Bearer-token helpers (constant-time comparison).
//! - [`observe`]: the outermost middleware. It records `colmena_http_*` by route *pattern*
//!   and guarantees the promise that every error response is JSON: anything actix or a
//!   middleware produced as a bare status (404 for an unknown path, 405, a broken gzip body)
//!   is rewritten into `{"error":{...}}`.
use crate::error::{ApiError, ErrorCode};
use crate::metrics::HttpMetrics;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest, HttpResponse};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Default request body limit: 1 MiB (see docs/protocol.md, "Errors": `payload_too_large`).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

fn payload_error(e: &PayloadError) -> ApiError {
    match e {
        PayloadError::Overflow => ApiError::new(ErrorCode::PayloadTooLarge, "request body too large"),
        other => ApiError::invalid(format!("cannot read request body: {other}")),
    }
}

/// `web::Json` config: body limit, `application/json` required, errors as JSON error bodies.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(true)
        .content_type(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        .error_handler(move |err, _req| {
            let api = match &err {
                JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is {length} bytes, the limit is {limit}"),
                ),
                JsonPayloadError::Overflow { limit } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body over the limit of {limit} bytes"),
                ),
                JsonPayloadError::ContentType => {
                    ApiError::new(ErrorCode::UnsupportedMediaType, "Content-Type must be application/json")
                }
                JsonPayloadError::Deserialize(e) => ApiError::invalid(format!("invalid JSON body: {e}")),
                JsonPayloadError::Payload(p) => payload_error(p),
                other => ApiError::invalid(format!("invalid JSON body: {other}")),
            };
            api.into()
        })
}

/// `web::Query` config: a bad query string is 400 `invalid_request`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err: QueryPayloadError, _req| ApiError::invalid(format!("invalid query string: {err}")).into())
}

/// `web::Path` config: a bad path segment is 400 `invalid_request`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err: PathError, _req| ApiError::invalid(format!("invalid path: {err}")).into())
}

/// The bearer token of a request, if it has exactly one well-formed `Authorization: Bearer …`.
/// Two `Authorization` headers are ambiguous (a proxy may honour the other one): never trusted.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let mut all = req.headers().get_all(header::AUTHORIZATION);
    let v = all.next()?.to_str().ok()?;
    if all.next().is_some() {
        return None;
    }
    let (scheme, token) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
        Some(token.trim())
    } else {
        None
    }
}

/// Compares secrets in time independent of where they differ.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Outermost middleware: HTTP metrics by route pattern, and JSON bodies on every error.
///
/// Note: the request must not be cloned before `next.call` — actix needs sole ownership of
/// it to record the matched route — so labels are read from the response's request.
pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let res = match inflate_incrementally(&mut req) {
        Ok(()) => ensure_json_error(next.call(req).await?.map_into_boxed_body()),
        Err(e) => req.into_response(actix_web::ResponseError::error_response(&e)),
    };
    if let Some(m) = metrics {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
        m.requests
            .with_label_values(&[method, route.as_str(), res.status().as_str()])
            .inc();
        m.duration
            .with_label_values(&[method, route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// The `method` label: one of HTTP's standard methods, or `OTHER`. HTTP lets a client
/// invent any method token, and each new label value is a new series kept for the life of
/// the process, so an unauthenticated client could otherwise grow `/metrics` (and memory)
/// without bound. Routes are labelled by their pattern (`unmatched` for none) for the
/// same reason.
pub fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Compressed bytes inflated per step. Deflate expands at most ~1032:1, so one step yields
/// at most ~1 MiB, and the JSON extractor's body limit stops a decompression bomb within
/// one step past the limit.
const INFLATE_STEP: usize = 1024;

/// Request bodies with `Content-Encoding: gzip` (or `deflate`) are inflated here, step by
/// step, rather than by actix's extractor, which inflates each received chunk whole before
/// any limit is checked (a 200 KB gzip bomb cost 160 MB of memory that way). The header is
/// then removed so the body is not inflated twice. Any other coding is refused with 415:
/// actix would otherwise read such a body as if it were not encoded at all.
fn inflate_incrementally(req: &mut ServiceRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(());
    };
    let coding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    let decoder = match coding.as_str() {
        "identity" => None,
        "gzip" | "x-gzip" => Some(Inflater::Gzip(flate2::write::GzDecoder::new(Vec::new()))),
        "deflate" => Some(Inflater::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))),
        _ => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "Content-Encoding {:?} is not supported: send gzip or no encoding",
                    coding.chars().take(40).collect::<String>()
                ),
            ))
        }
    };
    req.headers_mut().remove(header::CONTENT_ENCODING);
    if let Some(decoder) = decoder {
        let inner: Pin<Box<dyn futures::Stream<Item = Result<web::Bytes, PayloadError>>>> =
            Box::pin(actix_web::HttpMessage::take_payload(req));
        let stream = Inflate {
            inner,
            decoder,
            input: web::Bytes::new(),
            eof: false,
        };
        let boxed: Pin<Box<dyn futures::Stream<Item = Result<web::Bytes, PayloadError>>>> = Box::pin(stream);
        req.set_payload(actix_web::dev::Payload::from(boxed));
    }
    Ok(())
}

enum Inflater {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
}

impl Inflater {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        use std::io::Write;
        match self {
            Inflater::Gzip(d) => d.write(data),
            Inflater::Zlib(d) => d.write(data),
        }
    }
    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Inflater::Gzip(d) => d.try_finish(),
            Inflater::Zlib(d) => d.try_finish(),
        }
    }
    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Inflater::Gzip(d) => d.get_mut(),
            Inflater::Zlib(d) => d.get_mut(),
        }
    }
}

/// The inflated body, produced [`INFLATE_STEP`] compressed bytes at a time.
struct Inflate {
    inner: Pin<Box<dyn futures::Stream<Item = Result<web::Bytes, PayloadError>>>>,
    decoder: Inflater,
    /// Compressed bytes received but not inflated yet.
    input: web::Bytes,
    eof: bool,
}

impl futures::Stream for Inflate {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let out = this.decoder.output();
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(web::Bytes::from(std::mem::take(out)))));
            }
            if !this.input.is_empty() {
                let n = this.input.len().min(INFLATE_STEP);
                match this.decoder.write(&this.input[..n]) {
                    // Ok(0): bytes after the end of the compressed stream.
                    Ok(0) | Err(_) => return Poll::Ready(Some(Err(PayloadError::EncodingCorrupted))),
                    Ok(used) => {
                        let _ = this.input.split_to(used);
                        continue;
                    }
                }
            }
            if this.eof {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.input = chunk,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.eof = true;
                    if this.decoder.finish().is_err() {
                        return Poll::Ready(Some(Err(PayloadError::EncodingCorrupted)));
                    }
                }
            }
        }
    }
}

fn ensure_json_error(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    // Keep whatever actix said as the message: it names the actual problem.
    let message = res
        .response()
        .error()
        .map(|e| e.to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let code = ErrorCode::for_status(status);
    // A 500 from deep inside actix is never what we want to promise a client: report it as
    // a retryable 503.
    let status = if status.as_u16() == 500 {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    } else {
        status
    };
    let api = ApiError::new(code, message);
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status);
    for (k, v) in old.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            new.append_header((k.clone(), v.clone()));
        }
    }
    new.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
    ServiceResponse::new(req, new.body(api.body()))
}

/// Default service: unknown path → 404 `not_found` JSON.
pub async fn not_found() -> HttpResponse {
    let e = ApiError::new(ErrorCode::NotFound, "no such endpoint");
    actix_web::ResponseError::error_response(&e)
}

/// `GET /health`.
#[utoipa::path(
    get, path = "/health", tag = "operations", security(()),
    summary = "Liveness (no token)",
    responses((status = 200, description = "The process is serving", body = crate::wire::Health))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(crate::wire::Health { status: "ok".into() })
}

/// `GET /metrics` from the process registry.
pub async fn metrics_endpoint(registry: web::Data<prometheus::Registry>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&registry))
}

/// One CSV row (RFC 4180): fields with a comma, quote or line break are quoted.
pub fn csv_row(fields: &[String]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(f));
    }
    out.push('\n');
    out
}

/// One CSV field, safe to open in a spreadsheet: a field starting with `=`, `+`, `-`, `@`,
/// tab or CR gets a leading `'` (OWASP's advice against CSV formula injection: a cashier
/// id or product id such as `=HYPERLINK(…)` would otherwise run as a formula on a head
/// office PC), then RFC 4180 quoting for a comma, quote, CR/LF or edge space, quotes
/// doubled.
pub fn csv_field(field: &str) -> std::borrow::Cow<'_, str> {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = field.contains([',', '"', '\r', '\n']) || field.starts_with(' ') || field.ends_with(' ');
    match (formula, quote) {
        (false, false) => field.into(),
        (true, false) => format!("'{field}").into(),
        (f, true) => format!("\"{}{}\"", if f { "'" } else { "" }, field.replace('"', "\"\"")).into(),
    }
}

/// Streams a file as an attachment (`application/octet-stream`), chunk by chunk.
pub async fn stream_file(path: &std::path::Path, download_name: &str) -> std::io::Result<HttpResponse> {
    let file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{download_name}\""),
        ))
        .no_chunking(len)
        .streaming(stream))
}
