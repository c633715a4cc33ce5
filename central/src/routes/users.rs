//! `PUT /users/{user_id}`, `GET /users/{user_id}`, `GET /users` (admin token only; see
//! docs/protocol.md, "Users").
//!
//! A PIN is hashed here (argon2id, a random salt per user) on a blocking thread, before the
//! store sees the change: hashing is deliberately slow (tens of milliseconds) and must not
//! hold an async worker or the store's writer. Neither the PIN nor its hash is ever
//! answered, logged or counted; the hash leaves central only in the pull feed.
use super::responses::{AdminErrors, BodyErrors};
use crate::domain;
use crate::error::CentralError;
use crate::store::{Store, StoreError, UserOutcome};
use actix_web::{web, HttpResponse};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::error::ErrorBody;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::users::User;
use colmena_shared::users::{Pin, UserList, UserPut};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users").route(web::get().to(list))).service(
        web::resource("/users/{user_id}")
            .route(web::put().to(put))
            .route(web::get().to(one)),
    );
}

/// Hashes a PIN with argon2id (the crate's default parameters, version 0x13) and a fresh
/// random salt: the PHC string branches verify logins against.
fn hash_pin(pin: &Pin) -> Result<String, CentralError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pin.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        // The error names the failing step, never the input.
        .map_err(|e| CentralError::Storage(StoreError::Database(format!("cannot hash the PIN: {e}"))))
}

#[utoipa::path(
    put, path = "/users/{user_id}", tag = "users",
    summary = "Create or update a user (admin)",
    description = "The PIN (4-8 digits) is required on create and kept when omitted on an update; it is stored \
only as an argon2id hash and never answered. Every change gets a new `version` and reaches the branches the user \
was or is listed at by pull (`include=users`); the same fields again without a PIN change nothing. Every change is \
recorded in the audit trail.",
    params(("user_id" = String, Path, description = "The user", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ana")),
    request_body(content = UserPut, content_type = "application/json"),
    responses(
        (status = 200, description = "The user as saved, without PIN or hash", body = User),
        (status = 400, description = "`invalid_request`: bad user_id, malformed JSON, unknown field, blank or over-long name, unknown role, branches empty or not branch ids central knows (or not exactly [\"*\"]), PIN not 4-8 digits, no PIN for a new user", body = ErrorBody),
        AdminErrors,
        BodyErrors,
    )
)]
async fn put(
    store: web::Data<dyn Store>,
    path: web::Path<String>,
    body: web::Json<UserPut>,
) -> Result<HttpResponse, CentralError> {
    let id = domain::user_id(&path)?;
    let (mut change, pin) = domain::user_put(id, body.into_inner())?;
    if let Some(pin) = pin {
        let hashed = tokio::task::spawn_blocking(move || hash_pin(&pin))
            .await
            .map_err(|e| CentralError::Storage(StoreError::Database(format!("PIN hashing failed: {e}"))))??;
        change.pin_hash = Some(hashed);
    }
    match store.put_user(change).await? {
        UserOutcome::Saved(user) => {
            tracing::info!(user_id = %user.user_id, version = user.version, "user saved");
            Ok(HttpResponse::Ok().json(user))
        }
        UserOutcome::PinRequired => Err(CentralError::InvalidRequest(
            "pin is required when a user is created".into(),
        )),
        UserOutcome::UnknownBranch(b) => Err(CentralError::InvalidRequest(format!(
            "unknown branch {b}: central has no token for it and it never pushed"
        ))),
    }
}

#[utoipa::path(
    get, path = "/users/{user_id}", tag = "users",
    summary = "One user, without PIN or hash (admin)",
    params(("user_id" = String, Path, description = "The user", pattern = "^[A-Za-z0-9._-]{1,64}$", example = "ana")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "`invalid_request`: bad user_id", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        AdminErrors,
    )
)]
async fn one(store: web::Data<dyn Store>, path: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let id = domain::user_id(&path)?;
    match store.user(id.clone()).await? {
        Some(user) => Ok(HttpResponse::Ok().json(user)),
        None => Err(CentralError::NotFound(format!("no user {id}"))),
    }
}

#[utoipa::path(
    get, path = "/users", tag = "users",
    summary = "Every user, by user_id, without PINs or hashes (admin)",
    responses((status = 200, description = "The users", body = UserList), AdminErrors)
)]
async fn list(store: web::Data<dyn Store>) -> Result<HttpResponse, CentralError> {
    Ok(HttpResponse::Ok().json(UserList {
        users: store.users().await?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn a_pin_hash_is_argon2id_salted_and_verifies() {
        let pin = Pin::parse("4821").unwrap();
        let (a, b) = (hash_pin(&pin).unwrap(), hash_pin(&pin).unwrap());
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt every time");
        assert!(!a.contains("4821"));
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(Argon2::default().verify_password(b"4821", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"4822", &parsed).is_err());
    }
}
