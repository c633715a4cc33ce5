//! Who may call the branch: the POS token, checked by middleware before routing and before
//! any body is read, so an unauthenticated request is answered 401 without buffering it.
//!
//! `/health`, `/metrics` and `/openapi.json` are public; every other path needs
//! `Authorization: Bearer <POS token>` (see docs/protocol.md, "Branch endpoints"). The token
//! is compared in constant time.
use crate::error::BranchError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use colmena_shared::http::{bearer_token, tokens_equal};

const PUBLIC_PATHS: &[&str] = &["/health", "/metrics", "/openapi.json"];

/// The POS token every endpoint but the public ones requires (app data of the server).
pub struct PosToken(pub String);

/// The POS-token middleware. A rejection is returned as a response rather than an `Err`, so
/// the outer `observe` middleware still counts it in the HTTP metrics.
pub async fn require_pos_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !PUBLIC_PATHS.contains(&req.path()) {
        let ok = match (req.app_data::<web::Data<PosToken>>(), bearer_token(req.request())) {
            (Some(expected), Some(got)) => tokens_equal(&expected.0, got),
            _ => false,
        };
        if !ok {
            let res = BranchError::Unauthorized.error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}
