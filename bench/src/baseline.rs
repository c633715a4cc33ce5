//! `colmena-bench baseline`: the in-memory ceiling for `POST /sell`.
//!
//! Deliberately the least a `/sell` can do on this machine and still be the same protocol:
//! the branch's request type ([`SellRequest`], both body forms) through actix's JSON
//! extractor with the same limit and content-type rule, a constant-time bearer check, an
//! all-or-nothing decrement in a `DashMap<String, i64>`, and a 201 whose body is the
//! branch's [`SaleResponse`] (same fields, same size). Nothing is durable and there is no
//! metrics middleware: the gap between this and the branch is the price of durability and
//! of everything else the branch does per request.
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use colmena_shared::error::{ApiError, ErrorCode};
use colmena_shared::http::{bearer_token, json_config, tokens_equal, DEFAULT_BODY_LIMIT};
use colmena_shared::ids::check_quantity;
use colmena_shared::wire::{CatalogSeedItem, SaleLineOut, SaleResponse, SellRequest};
use dashmap::DashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to bind (port 0 picks a free one; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// actix worker threads (the branch's default is 2).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Bearer token POS clients must present.
    #[arg(long, default_value = "t")]
    token: String,
    /// Branch id used in `sale_id`/`branch_id` of the answers.
    #[arg(long, default_value = "CUS")]
    branch_id: String,
    /// The branch's `--catalog` file (`[{"product_id","name","price_cents","stock"}]`).
    /// Without it: products P1..P100 at 550 cents with a stock of 10^12.
    #[arg(long)]
    catalog: Option<std::path::PathBuf>,
}

struct Product {
    price_cents: i64,
    stock: i64,
}

struct State {
    token: String,
    branch_id: String,
    stock: DashMap<String, Product>,
    seq: AtomicU64,
}

pub fn run(a: Args) -> Result<(), String> {
    let items: Vec<(String, i64, i64)> = match &a.catalog {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("--catalog {}: {e}", path.display()))?;
            let items: Vec<CatalogSeedItem> =
                serde_json::from_str(&text).map_err(|e| format!("--catalog {}: {e}", path.display()))?;
            items
                .into_iter()
                .map(|i| (i.product_id.into_string(), i.price_cents, i.stock))
                .collect()
        }
        None => (1..=100).map(|i| (format!("P{i}"), 550, 1_000_000_000_000)).collect(),
    };
    let stock = DashMap::new();
    for (id, price_cents, s) in items {
        stock.insert(id, Product { price_cents, stock: s });
    }
    let state = web::Data::new(State {
        token: a.token,
        branch_id: a.branch_id,
        stock,
        seq: AtomicU64::new(0),
    });
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(json_config(DEFAULT_BODY_LIMIT))
                .service(web::resource("/sell").route(web::post().to(sell)))
        })
        .workers(a.workers)
        .bind(&a.listen)
        .map_err(|e| format!("--listen {}: {e}", a.listen))?;
        let addr = *server.addrs().first().ok_or("no listen address")?;
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
        server.run().await.map_err(|e| format!("server: {e}"))
    })
}

async fn sell(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Json<SellRequest>,
) -> Result<HttpResponse, ApiError> {
    match bearer_token(&req) {
        Some(t) if tokens_equal(&state.token, t) => {}
        _ => return Err(ApiError::new(ErrorCode::Unauthorized, "missing or wrong bearer token")),
    }
    let body = body.into_inner();
    let lines: Vec<(String, i64)> = match (body.items, body.product_id, body.quantity) {
        (Some(items), None, None) if !items.is_empty() => items
            .into_iter()
            .map(|l| (l.product_id.into_string(), l.quantity))
            .collect(),
        (None, Some(p), Some(q)) => vec![(p.into_string(), q)],
        _ => return Err(ApiError::invalid("body needs product_id and quantity, or items")),
    };
    for (_, q) in &lines {
        check_quantity("quantity", *q).map_err(ApiError::invalid)?;
    }
    // All or nothing: take line by line, give back on the first failure.
    let mut out: Vec<SaleLineOut> = Vec::with_capacity(lines.len());
    let mut failed: Option<ApiError> = None;
    for (id, q) in &lines {
        match state.stock.get_mut(id.as_str()) {
            None => {
                failed = Some(ApiError::new(ErrorCode::UnknownProduct, format!("no product {id}")));
                break;
            }
            Some(mut p) if p.stock >= *q => {
                p.stock -= q;
                out.push(SaleLineOut {
                    product_id: id.clone(),
                    quantity: *q,
                    unit_price_cents: p.price_cents,
                    line_total_cents: p.price_cents * q,
                    remaining_stock: p.stock,
                });
            }
            Some(p) => {
                failed = Some(ApiError::new(
                    ErrorCode::InsufficientStock,
                    format!("{id}: {} in stock, {q} requested", p.stock),
                ));
                break;
            }
        }
    }
    if let Some(e) = failed {
        for l in &out {
            if let Some(mut p) = state.stock.get_mut(l.product_id.as_str()) {
                p.stock += l.quantity;
            }
        }
        return Err(e);
    }
    let seq = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let resp = SaleResponse {
        sale_id: format!("{}-{seq:010}", state.branch_id),
        branch_id: state.branch_id.clone(),
        seq,
        total_cents: out.iter().map(|l| l.line_total_cents).sum(),
        lines: out,
        sold_at: colmena_shared::clock::now_rfc3339(),
        cashier_id: body.cashier_id,
        sync: "pending".into(),
    };
    Ok(HttpResponse::Created().json(resp))
}
