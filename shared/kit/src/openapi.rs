//! What both services' OpenAPI 3.1 documents share: the bearer security scheme,
//! the rendering, and the `GET /openapi.json` response.
//!
//! Each service derives its document from its handlers' `#[utoipa::path]` attributes and
//! the `ToSchema` derives of [`crate::wire`] and [`crate::error`], so the description is
//! regenerated from the code on every build; `docs/openapi/*.json` are committed copies that
//! a test compares with what the code generates.
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;

/// Registers the bearer-token scheme `name` (the document's `security` names it).
pub fn add_bearer(doc: &mut OpenApi, name: &str, description: &str) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        name,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description))
                .build(),
        ),
    );
}

/// The document as committed under `docs/openapi/`: pretty JSON with a final newline, so
/// the committed file is diffable and byte-for-byte what `GET /openapi.json` serves.
pub fn render(doc: &OpenApi) -> String {
    // Serializing a tree of strings and maps cannot fail; an empty object keeps the
    // signature infallible if it ever did.
    let mut s = doc.to_pretty_json().unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

/// `GET /openapi.json`: the pre-rendered document, no token needed.
pub fn respond(rendered: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(rendered)
}

/// What the JSON body extractor refuses before a handler runs (both services), for
/// `#[utoipa::path]` response lists.
#[derive(utoipa::IntoResponses)]
pub enum BodyErrors {
    #[response(
        status = 413,
        description = "`payload_too_large`: body over `--body-limit` (default 1 MiB)"
    )]
    PayloadTooLarge(crate::error::ErrorBody),
    #[response(
        status = 415,
        description = "`unsupported_media_type`: the body is not `application/json`, or an unsupported `Content-Encoding`"
    )]
    UnsupportedMediaType(crate::error::ErrorBody),
}

/// A backup named by id in the path (both services).
#[derive(utoipa::IntoResponses)]
pub enum BackupIdErrors {
    #[response(status = 400, description = "`invalid_request`: a malformed path")]
    InvalidRequest(crate::error::ErrorBody),
    #[response(status = 404, description = "`not_found`: no such backup")]
    NotFound(crate::error::ErrorBody),
}
