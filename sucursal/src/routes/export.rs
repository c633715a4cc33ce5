//! `GET /sales/export?from=&to=`: this branch's sales still in its store, one CSV row per
//! sale line, for carrying data out by hand while offline (see docs/protocol.md, "Branch
//! endpoints"). Only durable sales are exported; the store keeps them `--outbox-retention`.
use super::responses::CommonErrors;
use crate::app::AppState;
use crate::error::BranchError;
use crate::storage::outbox as outbox_table;
use actix_web::{web, HttpResponse};
use colmena_shared::clock;
use colmena_shared::error::ErrorBody;
use colmena_shared::wire::Event;
use serde::Deserialize;
use std::sync::atomic::Ordering;

const CSV_HEADER: &str =
    "sale_id,branch_id,seq,sold_at,cashier_id,product_id,quantity,unit_price_cents,line_total_cents\n";

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sales/export").route(web::get().to(sales_export)));
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// Earliest `sold_at` (inclusive), RFC 3339.
    #[param(format = DateTime)]
    from: Option<String>,
    /// Latest `sold_at` (inclusive), RFC 3339.
    #[param(format = DateTime)]
    to: Option<String>,
}

#[utoipa::path(
    get, path = "/sales/export", tag = "sales",
    summary = "This branch's sales still in its store, as CSV (for carrying data out while offline)",
    description = "One row per sale line: `sale_id,branch_id,seq,sold_at,cashier_id,product_id,quantity,\
unit_price_cents,line_total_cents`. Sales are kept `--outbox-retention` (default 7 days).",
    params(ExportQuery),
    responses(
        (status = 200, description = "CSV with a header row", body = String, content_type = "text/csv; charset=utf-8",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"sales-<branch>.csv\""))),
        (status = 400, description = "`invalid_request`: from/to not RFC 3339, from after to, or a malformed query string", body = ErrorBody),
        CommonErrors,
    )
)]
async fn sales_export(app: web::Data<AppState>, q: web::Query<ExportQuery>) -> Result<HttpResponse, BranchError> {
    let from = parse_time("from", &q.from)?.unwrap_or(i64::MIN);
    let to = parse_time("to", &q.to)?.unwrap_or(i64::MAX);
    if from > to {
        return Err(BranchError::InvalidRequest("from must not be after to".into()));
    }
    let durable = app.outbox.last_seq.load(Ordering::Acquire);
    let events = app
        .read(move |c| outbox_table::sales_between(c, from, to, durable))
        .await?;
    let branch = app.branch_id.to_string();
    let csv = to_csv(&branch, &events);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"sales-{branch}.csv\""),
        ))
        .body(csv))
}

/// An optional RFC 3339 bound, as epoch milliseconds.
fn parse_time(name: &str, v: &Option<String>) -> Result<Option<i64>, BranchError> {
    match v {
        None => Ok(None),
        Some(s) => clock::parse_rfc3339_millis(s)
            .map(Some)
            .ok_or_else(|| BranchError::InvalidRequest(format!("{name} must be an RFC 3339 time"))),
    }
}

/// The header row, then one row per line of each sale event.
fn to_csv(branch: &str, events: &[Event]) -> String {
    let mut csv = String::from(CSV_HEADER);
    for e in events {
        for l in e.lines.as_deref().unwrap_or_default() {
            let row = [
                e.sale_id.clone().unwrap_or_default(),
                branch.to_string(),
                e.seq.to_string(),
                e.occurred_at.clone(),
                e.cashier_id.clone().unwrap_or_default(),
                l.product_id.to_string(),
                l.quantity.to_string(),
                l.unit_price_cents.to_string(),
                (l.quantity * l.unit_price_cents).to_string(),
            ];
            csv.push_str(&colmena_shared::http::csv_row(&row));
        }
    }
    csv
}
