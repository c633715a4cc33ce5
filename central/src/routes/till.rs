//! `GET /shifts` and `GET /returns`: the till as central applied it (admin; docs/protocol.md,
//! "The till at central").
use super::responses::AdminErrors;
use crate::domain::{self, ReturnsQuery, ShiftsQuery};
use crate::error::CentralError;
use crate::store::Store;
use actix_web::{web, HttpResponse};
use colmena_shared::error::ErrorBody;
use colmena_shared::till::{ReturnsPage, ShiftList};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/shifts").route(web::get().to(shifts)))
        .service(web::resource("/returns").route(web::get().to(returns)));
}

#[utoipa::path(
    get, path = "/shifts", tag = "till",
    summary = "Shifts with central's own summary beside the branch's (admin)",
    description = "Every shift central has seen opened, by branch_id, then opened_at, then shift_id. `summary` is \
recomputed by central from the sales, returns (those whose refund the shift paid) and cash movements it applied; \
`branch_summary` is the one the branch closed the shift with and `consistent` says whether the two are equal \
(both null while the shift is open). `from` inclusive, `to` exclusive, on `opened_at`. Unknown query parameters \
are 400.",
    params(ShiftsQuery),
    responses(
        (status = 200, description = "The shifts", body = ShiftList),
        (status = 400, description = "`invalid_request`: bad branch_id or status, from/to not RFC 3339 or from after to, unknown parameter", body = ErrorBody),
        AdminErrors,
    )
)]
async fn shifts(store: web::Data<dyn Store>, query: web::Query<ShiftsQuery>) -> Result<HttpResponse, CentralError> {
    let filter = domain::shifts_query(query.into_inner())?;
    Ok(HttpResponse::Ok().json(ShiftList {
        shifts: store.shifts(filter).await?,
    }))
}

#[utoipa::path(
    get, path = "/returns", tag = "till",
    summary = "Returns as central applied them, paged (admin)",
    description = "Ordered by branch_id, then returned_at, then seq. `from` inclusive, `to` exclusive, on \
`returned_at`. Unknown query parameters are 400.",
    params(ReturnsQuery),
    responses(
        (status = 200, description = "One page; `next` is null on the last one", body = ReturnsPage),
        (status = 400, description = "`invalid_request`: bad branch_id, from/to not RFC 3339 or from after to, limit not in 1..=1000, bad cursor, unknown parameter", body = ErrorBody),
        AdminErrors,
    )
)]
async fn returns(store: web::Data<dyn Store>, query: web::Query<ReturnsQuery>) -> Result<HttpResponse, CentralError> {
    let (filter, after, limit) = domain::returns_query(query.into_inner())?;
    let page = store.returns(filter, after, limit).await?;
    Ok(HttpResponse::Ok().json(ReturnsPage {
        returns: page.returns,
        next: page.next.map(domain::encode_returns_cursor),
    }))
}
