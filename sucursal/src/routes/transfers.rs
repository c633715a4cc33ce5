//! `/transfers`: the transfers this branch sends or receives, and their two steps at a
//! branch (docs/protocol.md, "Transfers"). The domain is [`crate::transfers`].
//!
//! The steps' bodies are optional (a dispatch needs none; a receipt without `lines` received
//! everything dispatched), so they are read as bytes: empty is the default, anything else
//! must be JSON as everywhere else.
use super::responses::{BodyErrors, CommonErrors};
use crate::app::AppState;
use crate::error::BranchError;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use colmena_shared::error::{ApiError, ErrorBody, ErrorCode};
use colmena_shared::transfers::ReceiveRequest;
use colmena_shared::transfers::Transfer;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::transfers::TransferList;
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/transfers").route(web::get().to(list)))
        .service(web::resource("/transfers/{transfer_id}").route(web::get().to(get)))
        .service(web::resource("/transfers/{transfer_id}/dispatch").route(web::post().to(dispatch)))
        .service(web::resource("/transfers/{transfer_id}/receive").route(web::post().to(receive)));
}

/// An optional JSON body: empty (or only whitespace) is `T::default()`.
fn optional_json<T: DeserializeOwned + Default>(req: &HttpRequest, body: &[u8]) -> Result<T, actix_web::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
    if !json {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "Content-Type must be application/json").into());
    }
    serde_json::from_slice(body).map_err(|e| BranchError::InvalidRequest(format!("invalid JSON body: {e}")).into())
}

/// A dispatch's body: nothing, or an empty object.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only transfers with this status.
    #[param(inline, value_type = Option<String>, pattern = "^(requested|cancelled|in_transit|received)$")]
    status: Option<String>,
}

#[utoipa::path(
    get, path = "/transfers", tag = "transfers",
    summary = "The transfers this branch sends or receives, as it knows them",
    description = "Central's view arrives by pull; steps taken here show at once. Ordered by id.",
    params(ListQuery),
    responses(
        (status = 200, description = "The transfers", body = TransferList),
        (status = 400, description = "`invalid_request`: an unknown status, or a malformed query string", body = ErrorBody),
        CommonErrors,
    )
)]
async fn list(app: web::Data<AppState>, q: web::Query<ListQuery>) -> Result<HttpResponse, BranchError> {
    Ok(HttpResponse::Ok().json(crate::transfers::list(&app, q.status.as_deref())?))
}

#[utoipa::path(
    get, path = "/transfers/{transfer_id}", tag = "transfers",
    summary = "One transfer, as this branch knows it",
    params(("transfer_id" = String, Path, description = "e.g. `TR-000001`")),
    responses(
        (status = 200, description = "The transfer", body = Transfer),
        (status = 404, description = "`not_found`: this branch knows no such transfer", body = ErrorBody),
        CommonErrors,
    )
)]
async fn get(app: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, BranchError> {
    Ok(HttpResponse::Ok().json(crate::transfers::get(&app, &path.into_inner())?))
}

#[utoipa::path(
    post, path = "/transfers/{transfer_id}/dispatch", tag = "transfers",
    summary = "Dispatch a transfer this branch sends: its units leave the stock",
    description = "All or nothing, inactive products included. Durable (a `transfer_dispatched` event) before \
the 200; works with central down. Dispatching a transfer this branch already dispatched answers it again and \
records nothing. The body may be empty or `{}`.",
    params(("transfer_id" = String, Path, description = "e.g. `TR-000001`")),
    request_body(content = Object, content_type = "application/json", description = "Optional: empty, or `{}`"),
    responses(
        (status = 200, description = "Dispatched (`in_transit`), now or before", body = Transfer),
        (status = 400, description = "`invalid_request`: a body that is not `{}`", body = ErrorBody),
        (status = 404, description = "`not_found`: this branch knows no such transfer", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: a line's product has fewer units here; \
`transfer_conflict`: cancelled at central, or this branch receives it", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn dispatch(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, actix_web::Error> {
    let NoFields {} = optional_json::<NoFields>(&req, &body)?;
    let caller = crate::auth::caller(&req);
    let t: Transfer = crate::transfers::dispatch(&app, &path.into_inner(), caller.as_ref()).await?;
    Ok(HttpResponse::Ok().json(t))
}

#[utoipa::path(
    post, path = "/transfers/{transfer_id}/receive", tag = "transfers",
    summary = "Receive a transfer this branch is sent: what arrived enters the stock",
    description = "Once the dispatch is known here by pull (`in_transit`). Without `lines` (or without a body) \
everything dispatched arrived; otherwise each listed product's units arrived, an unlisted one none, and every unit \
short is booked `lost`. Durable (a `transfer_received` event) before the 200; the units enter the stock once \
durable. The same receipt again answers it again; another one is a conflict.",
    params(("transfer_id" = String, Path, description = "e.g. `TR-000001`")),
    request_body(content = ReceiveRequest, content_type = "application/json", description = "Optional"),
    responses(
        (status = 200, description = "Received, now or before, with each line's `received` and `lost`", body = Transfer),
        (status = 400, description = "`invalid_request`: a negative or too large quantity, a product twice, bad JSON", body = ErrorBody),
        (status = 404, description = "`not_found`: this branch knows no such transfer", body = ErrorBody),
        (status = 409, description = "`receipt_exceeds_dispatch`: more than was dispatched, or a product not in \
the transfer; `transfer_conflict`: not dispatched yet as far as this branch knows, cancelled, already received \
otherwise, or this branch sends it", body = ErrorBody),
        BodyErrors,
        CommonErrors,
    )
)]
async fn receive(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, actix_web::Error> {
    let asked: ReceiveRequest = optional_json(&req, &body)?;
    let caller = crate::auth::caller(&req);
    let t: Transfer = crate::transfers::receive(&app, &path.into_inner(), asked, caller.as_ref()).await?;
    Ok(HttpResponse::Ok().json(t))
}
