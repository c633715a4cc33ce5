//! Who is calling, and may they: the one middleware every request passes, before routing
//! to a handler and before any body is read, so a refused request is answered without
//! buffering it (docs/protocol.md, "Permissions").
//!
//! `/health`, `/metrics`, `/openapi.json`, `POST /login` and the cashier's page (`/` and its
//! static files under `/app/`) are public. Any other path needs
//! `Authorization: Bearer <token>`, resolved to a [`Caller`]: the POS token → `Device`, the
//! `--admin-token` → `Admin`, a live login session → `User` — else 401 `unauthorized`. The
//! route's [`Action`](crate::permissions::Action) is then asked of the permission table:
//! 403 `forbidden` when the caller may not. Handlers read the caller from the request's
//! extensions ([`caller`]). The two fixed tokens are compared in constant time; a session
//! token is looked up by its SHA-256.
use crate::error::BranchError;
use crate::people::People;
use crate::permissions::{action_of, allows, Caller};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, ResponseError};
use colmena_shared::clock;
use colmena_shared::http::{bearer_token, tokens_equal};
use std::sync::Arc;

const PUBLIC_PATHS: &[&str] = &["/health", "/metrics", "/openapi.json", "/login", "/"];

/// Public: the paths above, and the cashier's page's embedded assets (static files only:
/// nothing under this prefix reads or changes state; docs/protocol.md, "The cashier's page").
pub fn is_public(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path) || path.starts_with(crate::routes::page::ASSET_PREFIX)
}

/// What the middleware checks against (app data of the server).
pub struct Auth {
    pub pos_token: String,
    pub admin_token: Option<String>,
    pub require_login: bool,
    pub people: Arc<People>,
}

impl Auth {
    /// The caller a bearer token stands for, if any.
    pub fn resolve(&self, token: &str) -> Option<Caller> {
        // Both fixed tokens are always compared, so timing does not tell which one exists.
        let pos = tokens_equal(&self.pos_token, token);
        let admin = self.admin_token.as_deref().is_some_and(|a| tokens_equal(a, token));
        if pos {
            return Some(Caller::Device);
        }
        if admin {
            return Some(Caller::Admin);
        }
        self.people
            .sessions
            .resolve(token, clock::now_millis())
            .map(|s| Caller::User {
                user_id: s.user_id,
                role: s.role,
            })
    }
}

/// The caller the middleware resolved (absent only on public paths).
pub fn caller(req: &HttpRequest) -> Option<Caller> {
    req.extensions().get::<Caller>().cloned()
}

/// The middleware. A rejection is returned as a response rather than an `Err`, so the
/// outer `observe` middleware still counts it in the HTTP metrics.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if is_public(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let caller = match (req.app_data::<web::Data<Auth>>(), bearer_token(req.request())) {
        (Some(auth), Some(token)) => auth.resolve(token).map(|c| (c, auth.require_login)),
        _ => None,
    };
    let Some((caller, require_login)) = caller else {
        let res = BranchError::Unauthorized.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    };
    // No pattern: no such route; let routing answer 404 (for every caller alike).
    if let Some(pattern) = req.match_pattern() {
        let allowed = action_of(&pattern).is_some_and(|a| allows(&caller, a, require_login));
        if !allowed {
            let msg = format!("{} may not use {pattern}", caller.kind());
            let res = BranchError::Forbidden(msg).error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    req.extensions_mut().insert(caller);
    Ok(next.call(req).await?.map_into_left_body())
}
