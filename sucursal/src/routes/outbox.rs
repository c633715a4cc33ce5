//! `GET /outbox`: the events central has not acknowledged yet, oldest first, in the push
//! format (see docs/protocol.md, "Branch endpoints"). Only durable events are listed.
use super::responses::CommonErrors;
use crate::app::AppState;
use crate::error::BranchError;
use crate::storage::outbox as outbox_table;
use actix_web::{web, HttpResponse};
use colmena_shared::error::ErrorBody;
use colmena_shared::wire::OutboxPage;
use serde::Deserialize;
use std::sync::atomic::Ordering;

/// Events per page when `limit` is not given.
const DEFAULT_LIMIT: u32 = 100;
/// The most events one page may ask for.
const MAX_LIMIT: u32 = 10_000;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/outbox").route(web::get().to(outbox)));
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutboxQuery {
    /// Most events to return (default 100).
    #[param(minimum = 1, maximum = 10_000)]
    limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/outbox", tag = "operations",
    summary = "Events not yet acknowledged by central, oldest first",
    params(OutboxQuery),
    responses(
        (status = 200, description = "Pending events, in the push format", body = OutboxPage),
        (status = 400, description = "`invalid_request`: limit not an integer in 1..=10000, or a malformed query string", body = ErrorBody),
        CommonErrors,
    )
)]
async fn outbox(app: web::Data<AppState>, q: web::Query<OutboxQuery>) -> Result<HttpResponse, BranchError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(BranchError::InvalidRequest("limit must be 1..=10000".into()));
    }
    let acked = app.outbox.acked_through.load(Ordering::Acquire);
    let durable = app.outbox.last_seq.load(Ordering::Acquire);
    let events = app
        .read(move |c| outbox_table::events(c, acked, durable, limit as usize))
        .await?;
    Ok(HttpResponse::Ok().json(OutboxPage {
        branch_id: app.branch_id.to_string(),
        events,
    }))
}
