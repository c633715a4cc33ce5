//! `GET /audit`: who changed what at central (admin token; docs/protocol.md, "Audit trail").
//!
//! Each entry is written by the store in the same transaction as the change it records,
//! so the trail has exactly the changes that happened. Users appear without PIN or hash.
use super::responses::AdminErrors;
use crate::domain::{self, AuditQuery};
use crate::error::CentralError;
use crate::store::Store;
use actix_web::{web, HttpResponse};
use colmena_shared::error::ErrorBody;
use colmena_shared::users::AuditPage;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit").route(web::get().to(list)));
}

#[utoipa::path(
    get, path = "/audit", tag = "audit",
    summary = "The audit trail of admin changes, oldest first, paged (admin)",
    description = "Every `PUT /products/{id}` that changed a product (`product.put`), every allocation \
(`allocation.create`) and every user change (`user.put`), with the resource before (`null` when created) and \
after. `from` inclusive, `to` exclusive (RFC 3339). Unknown query parameters are 400.",
    params(AuditQuery),
    responses(
        (status = 200, description = "One page; `next` is null on the last one", body = AuditPage),
        (status = 400, description = "`invalid_request`: from/to not RFC 3339 or from after to, limit not in 1..=1000, bad cursor, unknown parameter", body = ErrorBody),
        AdminErrors,
    )
)]
async fn list(store: web::Data<dyn Store>, query: web::Query<AuditQuery>) -> Result<HttpResponse, CentralError> {
    let (filter, after, limit) = domain::audit_query(query.into_inner())?;
    let page = store.audit(filter, after, limit).await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: page.entries,
        next: page.next.map(domain::encode_audit_cursor),
    }))
}
