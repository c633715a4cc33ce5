//! `POST /login` and `POST /logout`: a user's way in and out at this branch (see
//! docs/protocol.md, "Login"). The checks live in [`crate::people`]; this file maps them
//! onto HTTP and counts them in `colmena_logins_total`.
use super::responses::BodyErrors;
use crate::app::AppState;
use crate::error::BranchError;
use crate::people::LoginRefused;
use actix_web::{web, HttpRequest, HttpResponse};
use colmena_shared::error::ErrorBody;
use colmena_shared::http::bearer_token;
use colmena_shared::users::LoginRequest;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::users::LoginResponse;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::post().to(login)))
        .service(web::resource("/logout").route(web::post().to(logout)));
}

#[utoipa::path(
    post, path = "/login", tag = "people", security(()),
    summary = "Log a user in with their PIN",
    description = "Needs no bearer token. Works with central down (users arrive by pull). Unknown user, \
inactive or not allowed at this branch, malformed or wrong PIN: the same 401. 5 failures for one user, or 20 \
from one client address, within 5 minutes: 429 until the oldest leaves the window. The token is a bearer \
token for this branch until `expires_at` (`--session-ttl`).",
    request_body(content = LoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "`invalid_request`: malformed JSON, missing or unknown fields", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: unknown user, inactive or not allowed here, or wrong PIN", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many failures for this user or from this address",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until one more attempt is allowed"))),
        (status = 503, description = "`storage_unavailable`: the branch is shutting down", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        BodyErrors,
    )
)]
async fn login(
    app: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, BranchError> {
    let peer = req.peer_addr().map(|a| a.ip());
    let outcome = app.people.login(body.into_inner(), peer).await;
    let label = match &outcome {
        Ok(_) => "ok",
        Err(LoginRefused::InvalidCredentials) => "invalid_credentials",
        Err(LoginRefused::TooManyAttempts(_)) => "too_many_attempts",
        Err(LoginRefused::Unavailable) => "",
    };
    if !label.is_empty() {
        app.metrics.logins.with_label_values(&[label]).inc();
    }
    match outcome {
        Ok(resp) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(resp)),
        Err(LoginRefused::InvalidCredentials) => Err(BranchError::InvalidCredentials),
        Err(LoginRefused::TooManyAttempts(secs)) => Err(BranchError::TooManyAttempts(secs)),
        Err(LoginRefused::Unavailable) => Err(BranchError::StorageUnavailable("login verification did not run".into())),
    }
}

#[utoipa::path(
    post, path = "/logout", tag = "people",
    summary = "End the caller's session",
    description = "Only with a user token (from `POST /login`); the token stops working at once.",
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "`unauthorized`: missing, wrong or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a user token (the POS or admin token)", body = ErrorBody),
    )
)]
async fn logout(app: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, BranchError> {
    // The middleware let only a live user session through; its token is the bearer token.
    let token = bearer_token(&req).ok_or(BranchError::Unauthorized)?;
    app.people.sessions.end(token);
    Ok(HttpResponse::NoContent().finish())
}
