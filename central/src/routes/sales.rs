//! `GET /sales` (paged) and `GET /sales/export` (CSV, one row per sale line, with the
//! sale's till columns: shift, payments, what its returns refunded).
use super::responses::AdminErrors;
use crate::domain::{self, SalesFilterQuery, SalesQuery};
use crate::error::CentralError;
use crate::store::{SalesCursor, SalesFilter, Store};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use colmena_shared::error::ErrorBody;
use colmena_shared::wire::{CentralSale, SalesPage};
use futures::{stream, StreamExt, TryStreamExt};
use std::fmt::Write as _;

/// Sales read per store call while exporting.
const EXPORT_PAGE: u32 = 1000;

/// The till's columns come last, so a reader of the older columns by position still works.
const CSV_HEADER: &str = "sale_id,branch_id,seq,sold_at,received_at,cashier_id,product_id,quantity,\
unit_price_cents,line_total_cents,sale_total_cents,shift_id,payments,returned_cents\r\n";

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sales").route(web::get().to(list)))
        .service(web::resource("/sales/export").route(web::get().to(export)));
}

#[utoipa::path(
    get, path = "/sales", tag = "sales",
    summary = "Sales as central applied them, paged (admin)",
    description = "Ordered by branch_id, then sold_at, then seq. Unknown query parameters are 400.",
    params(SalesQuery),
    responses(
        (status = 200, description = "One page; `next` is null on the last one", body = SalesPage),
        (status = 400, description = "`invalid_request`: bad branch_id, from/to not RFC 3339 or from after to, limit not in 1..=1000, bad cursor, unknown parameter", body = ErrorBody),
        AdminErrors,
    )
)]
async fn list(store: web::Data<dyn Store>, query: web::Query<SalesQuery>) -> Result<HttpResponse, CentralError> {
    let (filter, after, limit) = domain::sales_query(query.into_inner())?;
    let page = store.sales(filter, after, limit).await?;
    Ok(HttpResponse::Ok().json(SalesPage {
        sales: page.sales,
        next: page.next.map(domain::encode_cursor),
    }))
}

/// Streams the export page by page, so its memory does not grow with the number of sales.
/// The first page is read before answering, so a store failure is still a clean 503; a
/// failure later can only cut the stream short (the client sees an incomplete chunked body).
/// Sales that arrive during the export appear if they sort after the page being read.
#[utoipa::path(
    get, path = "/sales/export", tag = "sales",
    summary = "Sales as CSV, one row per sale line (admin)",
    description = "Columns: `sale_id,branch_id,seq,sold_at,received_at,cashier_id,product_id,quantity,\
unit_price_cents,line_total_cents,sale_total_cents,shift_id,payments,returned_cents`; CRLF rows, RFC 4180 \
quoting, in the `/sales` order. The sale's columns repeat on each of its lines. `payments` is \
`method:amount_cents` pairs joined by `;` in the order paid (`cash:2000;card:500`; `unspecified:<total>` when the \
branch sent none); `shift_id` is empty for a sale outside a shift. Streamed page by page.",
    params(SalesFilterQuery),
    responses(
        (status = 200, description = "CSV with a header row", body = String, content_type = "text/csv; charset=utf-8",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"sales.csv\""))),
        (status = 400, description = "`invalid_request`: bad branch_id, from/to not RFC 3339 or from after to, unknown parameter", body = ErrorBody),
        AdminErrors,
    )
)]
async fn export(
    store: web::Data<dyn Store>,
    query: web::Query<SalesFilterQuery>,
) -> Result<HttpResponse, CentralError> {
    let filter = domain::sales_filter(query.into_inner())?;
    let first = store.sales(filter.clone(), None, EXPORT_PAGE).await?;
    let mut head = String::from(CSV_HEADER);
    write_csv(&mut head, &first.sales);
    let rest = stream::try_unfold(first.next, move |after: Option<SalesCursor>| {
        let (store, filter): (web::Data<dyn Store>, SalesFilter) = (store.clone(), filter.clone());
        async move {
            let Some(after) = after else { return Ok(None) };
            let page = store.sales(filter, Some(after), EXPORT_PAGE).await?;
            let mut chunk = String::new();
            write_csv(&mut chunk, &page.sales);
            Ok::<_, crate::store::StoreError>(Some((Bytes::from(chunk), page.next)))
        }
    })
    .inspect_err(|e| tracing::error!(error = %e, "sales export cut short"));
    let body = stream::once(async move { Ok(Bytes::from(head)) }).chain(rest);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"sales.csv\""))
        .streaming(body))
}

fn write_csv(out: &mut String, sales: &[CentralSale]) {
    for s in sales {
        for l in &s.lines {
            // Writing into a String cannot fail.
            let _ = write!(
                out,
                "{},{},{},{},{},",
                csv(&s.sale_id),
                csv(&s.branch_id),
                s.seq,
                s.sold_at,
                s.received_at
            );
            let _ = write!(out, "{},", csv(s.cashier_id.as_deref().unwrap_or("")));
            let _ = write!(
                out,
                "{},{},{},{},{},",
                csv(&l.product_id),
                l.quantity,
                l.unit_price_cents,
                l.line_total_cents,
                s.total_cents
            );
            let _ = write!(out, "{},", csv(s.shift_id.as_deref().unwrap_or("")));
            // Methods are `[a-z_]` and amounts integers: the field never needs quoting.
            for (i, p) in s.payments.iter().enumerate() {
                let sep = if i == 0 { "" } else { ";" };
                let _ = write!(out, "{sep}{}:{}", p.method, p.amount_cents);
            }
            let _ = write!(out, ",{}\r\n", s.returned_cents);
        }
    }
}

/// A text field of the export (see `colmena_shared::http::csv_field`: quoted as RFC 4180
/// says, and never read as a formula by a spreadsheet).
fn csv(field: &str) -> std::borrow::Cow<'_, str> {
    colmena_shared::http::csv_field(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use colmena_shared::till::Payment;
    use colmena_shared::wire::CentralSaleLine;

    fn pay(method: &str, amount_cents: i64) -> Payment {
        Payment {
            method: method.into(),
            amount_cents,
        }
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv(" pad"), "\" pad\"");
    }

    #[test]
    fn csv_fields_that_a_spreadsheet_would_run_as_formulas_are_neutralised() {
        assert_eq!(csv("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        for f in ["=1+1", "+51", "-3", "@SUM(A1)", "\tx", "\rx"] {
            let out = csv(f);
            let first = out.trim_start_matches('"').chars().next();
            assert_eq!(first, Some('\''), "{f:?} -> {out:?}");
        }
        assert_eq!(csv("CUS-0001"), "CUS-0001");
    }

    #[test]
    fn one_row_per_sale_line() {
        let line = |p: &str, q| CentralSaleLine {
            product_id: p.into(),
            quantity: q,
            unit_price_cents: 10,
            line_total_cents: 10 * q,
        };
        let sale = CentralSale {
            sale_id: "CUS-1".into(),
            branch_id: "CUS".into(),
            seq: 1,
            lines: vec![line("P1", 2), line("P2", 1)],
            total_cents: 30,
            sold_at: "2026-11-23T16:00:00Z".into(),
            cashier_id: Some("Ana, caja 1".into()),
            received_at: "2026-11-23T16:00:01Z".into(),
            payments: vec![pay("card", 10), pay("cash", 50)],
            shift_id: Some("CUS-SH-7".into()),
            returned_cents: 10,
        };
        let plain = CentralSale {
            seq: 2,
            lines: vec![line("P1", 1)],
            total_cents: 10,
            cashier_id: None,
            payments: vec![pay("unspecified", 10)],
            shift_id: None,
            returned_cents: 0,
            ..sale.clone()
        };
        let mut out = String::new();
        write_csv(&mut out, &[sale, plain]);
        assert_eq!(
            out,
            "CUS-1,CUS,1,2026-11-23T16:00:00Z,2026-11-23T16:00:01Z,\"Ana, caja 1\",P1,2,10,20,30,CUS-SH-7,card:10;cash:50,10\r\n\
             CUS-1,CUS,1,2026-11-23T16:00:00Z,2026-11-23T16:00:01Z,\"Ana, caja 1\",P2,1,10,10,30,CUS-SH-7,card:10;cash:50,10\r\n\
             CUS-1,CUS,2,2026-11-23T16:00:00Z,2026-11-23T16:00:01Z,,P1,1,10,10,10,,unspecified:10,0\r\n"
        );
    }
}
