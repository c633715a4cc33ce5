//! Who is calling: bearer tokens → [`Principal`].
//!
//! The [`authenticate`] middleware runs before routing and before any body is read, so an
//! unauthenticated request is answered 401 without its body ever being buffered.
//! - `/health`, `/metrics` and `/openapi.json` are public.
//! - The admin token may call everything.
//! - A branch token may call `/sync/*` only, and only as its own branch (the sync routes
//!   check the branch with [`Principal::sync_branch`]); anything else is 403.
use crate::error::CentralError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest, ResponseError};
use colmena_shared::http::{bearer_token, tokens_equal};
use colmena_shared::ids::BranchId;
use std::future::{ready, Ready};

const PUBLIC_PATHS: &[&str] = &["/health", "/metrics", "/openapi.json"];
const SYNC_PREFIX: &str = "/sync/";

/// The configured secrets.
pub struct Tokens {
    admin: String,
    branches: Vec<(BranchId, String)>,
}

impl Tokens {
    pub fn new(admin: String, branches: Vec<(BranchId, String)>) -> Tokens {
        Tokens { admin, branches }
    }

    /// Compares against every token in constant time per token, so timing does not tell
    /// which prefix (or which branch) matched.
    fn identify(&self, token: &str) -> Option<Principal> {
        let mut found = None;
        if tokens_equal(token, &self.admin) {
            found = Some(Principal::Admin);
        }
        for (branch, secret) in &self.branches {
            if tokens_equal(token, secret) {
                found = Some(Principal::Branch(branch.clone()));
            }
        }
        found
    }
}

/// An authenticated caller, available to handlers as an extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Branch(BranchId),
}

impl Principal {
    /// The branch a `/sync/*` call acts for. A branch acts for itself (naming another branch
    /// is 403); the admin must name one (400 if it does not).
    pub fn sync_branch(&self, named: Option<BranchId>) -> Result<BranchId, CentralError> {
        match (self, named) {
            (Principal::Branch(own), None) => Ok(own.clone()),
            (Principal::Branch(own), Some(named)) if &named == own => Ok(named),
            (Principal::Branch(own), Some(named)) => Err(CentralError::Forbidden(format!(
                "the token of branch {own} cannot act for branch {named}"
            ))),
            (Principal::Admin, Some(named)) => Ok(named),
            (Principal::Admin, None) => Err(CentralError::InvalidRequest(
                "branch_id is required with the admin token".into(),
            )),
        }
    }
}

impl FromRequest for Principal {
    type Error = CentralError;
    type Future = Ready<Result<Principal, CentralError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .ok_or(CentralError::Unauthorized),
        )
    }
}

/// The auth middleware (see the module doc). A rejection is returned as a response rather
/// than an `Err`, so the outer `observe` middleware still counts it in the HTTP metrics.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if PUBLIC_PATHS.contains(&req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    match identify(&req) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Err(e) => Ok(req.into_response(e.error_response())),
    }
}

fn identify(req: &ServiceRequest) -> Result<Principal, CentralError> {
    let tokens = req.app_data::<web::Data<Tokens>>().ok_or(CentralError::Unauthorized)?;
    let principal = bearer_token(req.request())
        .and_then(|t| tokens.identify(t))
        .ok_or(CentralError::Unauthorized)?;
    if let Principal::Branch(b) = &principal {
        if !req.path().starts_with(SYNC_PREFIX) {
            return Err(CentralError::Forbidden(format!(
                "the token of branch {b} may only be used for /sync/*"
            )));
        }
    }
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> BranchId {
        BranchId::parse(s).unwrap()
    }

    #[test]
    fn tokens_identify_their_holder() {
        let t = Tokens::new("adm".into(), vec![(b("CUS"), "c".into()), (b("ABA"), "a".into())]);
        assert_eq!(t.identify("adm"), Some(Principal::Admin));
        assert_eq!(t.identify("a"), Some(Principal::Branch(b("ABA"))));
        assert_eq!(t.identify("ad"), None);
        assert_eq!(t.identify(""), None);
    }

    #[test]
    fn a_branch_syncs_only_as_itself() {
        let p = Principal::Branch(b("CUS"));
        assert_eq!(p.sync_branch(None).unwrap(), b("CUS"));
        assert_eq!(p.sync_branch(Some(b("CUS"))).unwrap(), b("CUS"));
        assert!(matches!(p.sync_branch(Some(b("ABA"))), Err(CentralError::Forbidden(_))));
        assert!(matches!(
            Principal::Admin.sync_branch(None),
            Err(CentralError::InvalidRequest(_))
        ));
        assert_eq!(Principal::Admin.sync_branch(Some(b("ABA"))).unwrap(), b("ABA"));
    }
}
