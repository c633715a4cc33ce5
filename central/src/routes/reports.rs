//! `GET /reports/sales` and `GET /reports/sales.csv`: the head office's sales reports
//! (admin; docs/protocol.md, "Reports"). Thin: the query's rules and the folding are
//! `crate::domain::reports`, the rows come from the store's rollups.
use super::responses::AdminErrors;
use crate::domain::reports::{assemble, report_plan, report_reads, DefaultZone, ReportsQuery};
use crate::error::CentralError;
use crate::store::Store;
use actix_web::{http::header, web, HttpResponse};
use colmena_shared::error::ErrorBody;
use colmena_shared::reports::SalesReport;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/reports/sales").route(web::get().to(sales)))
        .service(web::resource("/reports/sales.csv").route(web::get().to(sales_csv)));
}

const BAD_QUERY: &str = "`invalid_request`: missing from/to/group_by, unknown group_by or tz, from/to not a date \
or an RFC 3339 instant on a quarter hour, from after to, more than 366 days, bad branch_id, unknown parameter";

#[utoipa::path(
    get, path = "/reports/sales", tag = "reports",
    summary = "Sales and returns totalled by branch, product, day, hour, cashier or method (admin)",
    description = "Read from running totals central keeps as pushes apply (never from the sales), in quarter-hour \
UTC buckets, so any day or hour of any zone is exact. A sale counts at its `sold_at`, a return at its own time, \
under its own user and refund method. By `method`, a sale's amounts are split by tender (change comes off cash) \
while it counts once (with all its units) under each method it used; by `product`, a sale counts once per product. \
`totals` covers the range once. Rows only for keys with a sale or a return, sorted by key. An hour that happens \
twice when clocks go back is one row. Unknown query parameters are 400.",
    params(ReportsQuery),
    responses(
        (status = 200, description = "The report", body = SalesReport),
        (status = 400, description = BAD_QUERY, body = ErrorBody),
        AdminErrors,
    )
)]
async fn sales(
    store: web::Data<dyn Store>,
    zone: web::Data<DefaultZone>,
    query: web::Query<ReportsQuery>,
) -> Result<HttpResponse, CentralError> {
    let report = report(&store, &zone, query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(
    get, path = "/reports/sales.csv", tag = "reports",
    summary = "The same report as CSV (admin)",
    description = "Columns `key,sales_count,units,gross_cents,returns_cents,net_cents`; CRLF rows, RFC 4180 \
quoting, the rows of `GET /reports/sales` in its order, no totals row.",
    params(ReportsQuery),
    responses(
        (status = 200, description = "CSV with a header row", body = String, content_type = "text/csv; charset=utf-8",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"sales-report.csv\""))),
        (status = 400, description = BAD_QUERY, body = ErrorBody),
        AdminErrors,
    )
)]
async fn sales_csv(
    store: web::Data<dyn Store>,
    zone: web::Data<DefaultZone>,
    query: web::Query<ReportsQuery>,
) -> Result<HttpResponse, CentralError> {
    let report = report(&store, &zone, query.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"sales-report.csv\""))
        .body(report.to_csv()))
}

async fn report(
    store: &web::Data<dyn Store>,
    zone: &DefaultZone,
    q: ReportsQuery,
) -> Result<SalesReport, CentralError> {
    let plan = report_plan(q, &zone.0)?;
    let reads = report_reads(&plan)?;
    let (n, mut all) = (reads.rows.len(), reads.rows.clone());
    all.extend(reads.totals.iter().cloned());
    let mut found = store.report_rows(all).await?;
    let totals = found.split_off(n.min(found.len()));
    let rows: Vec<_> = found.into_iter().flatten().collect();
    let totals: Vec<_> = totals.into_iter().flatten().collect();
    Ok(assemble(&plan, &reads, &rows, &totals)?)
}
