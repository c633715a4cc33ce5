//! Actix plumbing both services share.
//!
//! - Extractor configs whose rejections are contract errors (400/413/415 with a JSON body).
//! - Bearer-token helpers (constant-time comparison).
//! - [`observe`]: the outermost middleware. It records `colmena_http_*` by route *pattern*
//!   and guarantees the §1 promise that every error response is JSON: anything actix or a
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
use std::time::Instant;

/// Default request body limit (contract §1): 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

fn payload_error(e: &PayloadError) -> ApiError {
    match e {
        PayloadError::Overflow => ApiError::new(ErrorCode::PayloadTooLarge, "request body too large"),
        other => ApiError::invalid(format!("cannot read request body: {other}")),
    }
}

/// `web::Json` config: body limit, `application/json` required, errors as contract JSON.
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
                JsonPayloadError::Overflow { limit } => {
                    ApiError::new(ErrorCode::PayloadTooLarge, format!("request body over the limit of {limit} bytes"))
                }
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
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::invalid(format!("invalid query string: {err}")).into()
    })
}

/// `web::Path` config: a bad path segment is 400 `invalid_request`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err: PathError, _req| ApiError::invalid(format!("invalid path: {err}")).into())
}

/// The bearer token of a request, if it has a well-formed `Authorization: Bearer …`.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
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
pub async fn observe(req: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let res = ensure_json_error(next.call(req).await?.map_into_boxed_body());
    if let Some(m) = metrics {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
        let status = res.status().as_u16().to_string();
        m.requests.with_label_values(&[method.as_str(), route.as_str(), status.as_str()]).inc();
        m.duration.with_label_values(&[method.as_str(), route.as_str()]).observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
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
    let status = if status.as_u16() == 500 { actix_web::http::StatusCode::SERVICE_UNAVAILABLE } else { status };
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
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(crate::wire::Health { status: "ok".into() })
}

/// `GET /metrics` from the process registry.
pub async fn metrics_endpoint(registry: web::Data<prometheus::Registry>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&registry))
}
