//! `colmena-bench baseline`: the in-memory ceiling for `POST /sell`.
//!
//! Deliberately the least a `/sell` can do on this machine and still be the same protocol:
//! the branch's request type ([`SellRequest`], both body forms) through actix's JSON
//! extractor with the same limit and content-type rule, a constant-time bearer check, an
//! all-or-nothing decrement in a `DashMap<String, i64>`, and a 201 whose body is the
//! branch's [`SaleResponse`] (same fields, same size). Nothing is durable and there is no
//! metrics middleware: the gap between this and the branch is the price of durability and
//! of everything else the branch does per request.
//!
//! With `--durable-dir`, it is the *durable floor* instead: the same handler, but each 201
//! waits until the answer's bytes are on disk, through the least a group commit can do (see
//! [`DurableLog`]). No SQLite, no metrics, no seqs that survive a restart: it is not a store,
//! only about the least a design that answers after an fsync pays on this disk. The branch's
//! throughput against it says how much of P1's gap the code could still close; the floor's
//! own ratio against the in-memory baseline estimates the most P1 this disk allows (a
//! cleverer design might beat it by a little, e.g. one wake-up per worker per batch).
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use colmena_shared::error::{ApiError, ErrorCode};
use colmena_shared::http::{bearer_token, json_config, tokens_equal, DEFAULT_BODY_LIMIT};
use colmena_shared::ids::check_quantity;
use colmena_shared::wire::{CatalogSeedItem, SaleLineOut, SaleResponse, SellRequest};
use dashmap::DashMap;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::oneshot;

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
    /// Answer each sale only after its bytes are fdatasync'd to a log in this directory
    /// (group commit, one writer thread): the durable floor. Without it: nothing durable.
    #[arg(long)]
    durable_dir: Option<std::path::PathBuf>,
    /// With `--durable-dir`: threads that may each have an fsync in flight at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    syncers: u32,
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
    log: Option<Arc<DurableLog>>,
}

/// Size of the log region the floor overwrites in a circle. Preallocated and synced before
/// the first sale, so an fdatasync flushes data only, never a size or extent change: the
/// cheapest fsync the file system offers (a restarted SQLite WAL gets the same).
const LOG_REGION: u64 = 64 << 20;

/// The floor's group commit: handlers append their bytes and a waiter under one lock; a
/// syncer thread takes everything that is waiting, writes it in one `pwrite`, `fdatasync`s,
/// and answers the whole batch, while the next batch gathers. With more than one syncer, a
/// batch starts its fsync as soon as a syncer is free, even while another fsync is in
/// flight (an fdatasync flushes every page written before it, so each batch is answered by
/// its own). A syncer is woken only when it sleeps, so a busy log costs a handler one
/// uncontended lock, not a syscall.
struct DurableLog {
    pending: Mutex<Pending>,
    wake: Condvar,
    file: std::fs::File,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    waiters: Vec<oneshot::Sender<()>>,
    /// Where the next batch goes in the region.
    offset: u64,
    sleeping: usize,
    notified: bool,
}

impl DurableLog {
    fn open(dir: &std::path::Path) -> Result<Arc<Self>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("--durable-dir {}: {e}", dir.display()))?;
        let path = dir.join("floor.log");
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let zeros = vec![0u8; 1 << 20];
        for i in 0..LOG_REGION / zeros.len() as u64 {
            file.write_all_at(&zeros, i * zeros.len() as u64)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        file.sync_all().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Arc::new(DurableLog {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            file,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `bytes`; the receiver resolves once they are on disk, and errs if the write or
    /// the fsync failed.
    fn append(&self, bytes: &[u8]) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let wake = {
            let mut p = self.lock();
            p.bytes.extend_from_slice(bytes);
            p.waiters.push(tx);
            let wake = p.sleeping > 0 && !p.notified;
            p.notified |= wake;
            wake
        };
        if wake {
            self.wake.notify_one();
        }
        rx
    }

    /// One syncer's loop (the process never stops it: the floor keeps no state to flush).
    fn sync_forever(&self) {
        let (mut bytes, mut waiters) = (Vec::new(), Vec::new());
        loop {
            let offset = {
                let mut p = self.lock();
                while p.waiters.is_empty() {
                    p.sleeping += 1;
                    p = self.wake.wait(p).unwrap_or_else(|poisoned| poisoned.into_inner());
                    p.sleeping -= 1;
                }
                p.notified = false;
                std::mem::swap(&mut p.bytes, &mut bytes);
                std::mem::swap(&mut p.waiters, &mut waiters);
                if p.offset + bytes.len() as u64 > LOG_REGION {
                    p.offset = 0;
                }
                p.offset += bytes.len() as u64;
                p.offset - bytes.len() as u64
            };
            match self
                .file
                .write_all_at(&bytes, offset)
                .and_then(|()| self.file.sync_data())
            {
                Ok(()) => waiters.drain(..).for_each(|w| {
                    let _ = w.send(());
                }),
                Err(e) => {
                    eprintln!("colmena-bench: durable floor: {e}");
                    waiters.clear(); // dropped senders: those sales are answered 503
                }
            }
            bytes.clear();
        }
    }
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
    let log = match &a.durable_dir {
        Some(dir) => {
            let log = DurableLog::open(dir)?;
            for i in 0..a.syncers {
                let syncer = Arc::clone(&log);
                std::thread::Builder::new()
                    .name(format!("floor-sync-{i}"))
                    .spawn(move || syncer.sync_forever())
                    .map_err(|e| format!("spawn a syncer: {e}"))?;
            }
            Some(log)
        }
        None => None,
    };
    let state = web::Data::new(State {
        token: a.token,
        branch_id: a.branch_id,
        stock,
        seq: AtomicU64::new(0),
        log,
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
    let total_cents = out.iter().map(|l| l.line_total_cents).sum();
    let resp = SaleResponse {
        sale_id: format!("{}-{seq:010}", state.branch_id),
        branch_id: state.branch_id.clone(),
        seq,
        total_cents,
        lines: out,
        sold_at: colmena_shared::clock::now_rfc3339(),
        cashier_id: body.cashier_id,
        payments: vec![colmena_shared::till::Payment {
            method: colmena_shared::till::UNSPECIFIED.into(),
            amount_cents: total_cents,
        }],
        change_cents: 0,
        shift_id: None,
        sync: "pending".into(),
    };
    let Some(log) = &state.log else {
        return Ok(HttpResponse::Created().json(resp));
    };
    let body =
        serde_json::to_vec(&resp).map_err(|e| ApiError::new(ErrorCode::StorageUnavailable, format!("encode: {e}")))?;
    log.append(&body)
        .await
        .map_err(|_| ApiError::new(ErrorCode::StorageUnavailable, "the floor's fsync failed"))?;
    Ok(HttpResponse::Created().content_type("application/json").body(body))
}
