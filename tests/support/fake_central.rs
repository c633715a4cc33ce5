//! A stand-in for central that only feeds branches users (test-only; clearly not central):
//! `GET /sync/pull` answers the changes it is given (users, products/allocations to sell
//! from, and transfers), `POST /sync/push` acknowledges every event. It exists so the branch's people
//! tests need no central with a users endpoint; the PIN hashes are fixed argon2id strings
//! with central's parameters, so logins cost what they cost in production.
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// argon2id (m=19456, t=2, p=1: the crate's defaults, which central uses) of each PIN.
pub const HASHES: [(&str, &str); 4] = [
    (
        "4821",
        "$argon2id$v=19$m=19456,t=2,p=1$Z1cmbgHLdXeIJDADYL0uSw$W309gB1kys5c/ew8B/ZQQZstQgAbJfrxTqRQuFdeYtw",
    ),
    (
        "7390",
        "$argon2id$v=19$m=19456,t=2,p=1$y71BWtFmMhTUxjtM8CknTA$xlcUbbK3Mk4xePlYAgwmSsMoJztMJk6lQ3uVPbsmVK0",
    ),
    (
        "1357",
        "$argon2id$v=19$m=19456,t=2,p=1$vJkH2+3AZDig+e9295AOlQ$i3i++RJAsouY8vssIhjIykx+WfFuM+FmbrLhKU0GHU4",
    ),
    (
        "2468",
        "$argon2id$v=19$m=19456,t=2,p=1$aXxIXGaJwwBB3mAMNiZpcA$Zf4lCBGUWTSGwUcs7dX0bBY0DpVeSFljEYd+R86SFb0",
    ),
];

/// The hash of one of the four PINs of [`HASHES`].
pub fn hash_of(pin: &str) -> &'static str {
    HASHES
        .iter()
        .find(|(p, _)| *p == pin)
        .map(|(_, h)| *h)
        .unwrap_or_else(|| panic!("no fixed hash for PIN {pin}"))
}

/// A user change as central sends it (`kind: user`).
pub fn user(id: &str, role: &str, branches: &[&str], active: bool, version: u64, pin: &str) -> Value {
    json!({"kind": "user", "user": {"user_id": id, "name": format!("User {id}"), "role": role,
        "branches": branches, "active": active, "version": version, "pin_hash": hash_of(pin)}})
}

/// A transfer change as central sends it (`kind: transfer`, the whole transfer): `lines` are
/// `(product, quantity)`; a `received` transfer's lines arrived whole.
pub fn transfer(id: &str, from: &str, to: &str, status: &str, lines: &[(&str, i64)]) -> Value {
    let received = status == "received";
    let lines: Vec<Value> = lines
        .iter()
        .map(|(p, q)| {
            if received {
                json!({"product_id": p, "quantity": q, "received": q, "lost": 0})
            } else {
                json!({"product_id": p, "quantity": q})
            }
        })
        .collect();
    let mut t = json!({"transfer_id": id, "from_branch": from, "to_branch": to, "status": status,
        "lines": lines, "requested_at": "2026-12-07T14:00:00Z"});
    if status == "cancelled" {
        t["cancelled_at"] = json!("2026-12-07T14:30:00Z");
    }
    if status == "in_transit" || received {
        t["dispatched_at"] = json!("2026-12-07T15:10:00Z");
        t["dispatched_by"] = json!("sara");
    }
    if received {
        t["received_at"] = json!("2026-12-07T18:00:00Z");
    }
    json!({"kind": "transfer", "transfer": t})
}

pub struct FakeCentral {
    pub url: String,
    feed: Arc<Mutex<Vec<Value>>>,
    /// Every event pushed to it, in arrival order.
    pushed: Arc<Mutex<Vec<Value>>>,
    server: actix_web::dev::ServerHandle,
}

impl FakeCentral {
    /// Serves `changes` (cursors are given in order), plus product `P1` (price 100) with
    /// 1000 units, so there is something to sell.
    pub async fn start(changes: Vec<Value>) -> FakeCentral {
        let feed = Arc::new(Mutex::new(Vec::new()));
        let fake = |f: &Arc<Mutex<Vec<Value>>>, c: Value| push_change(f, c);
        fake(
            &feed,
            json!({"kind": "product", "product_id": "P1", "name": "P1", "price_cents": 100, "version": 1}),
        );
        fake(
            &feed,
            json!({"kind": "allocation", "product_id": "P1", "quantity": 1000}),
        );
        for c in changes {
            fake(&feed, c);
        }
        let data = web::Data::new(feed.clone());
        let pushed = Arc::new(Mutex::new(Vec::new()));
        let pushed_data = web::Data::new(Pushed(pushed.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(pushed_data.clone())
                .route("/sync/pull", web::get().to(pull))
                .route("/sync/push", web::post().to(push))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("bind the fake central");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeCentral {
            url: format!("http://{addr}"),
            feed,
            pushed,
            server: handle,
        }
    }

    /// The events pushed to it so far.
    pub fn pushed(&self) -> Vec<Value> {
        self.pushed.lock().unwrap().clone()
    }

    /// Appends a change to the feed (the next pull brings it).
    pub fn add(&self, change: Value) {
        push_change(&self.feed, change);
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

fn push_change(feed: &Arc<Mutex<Vec<Value>>>, mut c: Value) {
    let mut f = feed.lock().unwrap();
    c["cursor"] = json!(f.len() as u64 + 1);
    f.push(c);
}

#[derive(serde::Deserialize)]
struct PullQuery {
    after: u64,
    limit: usize,
    include: Option<String>,
}

async fn pull(feed: web::Data<Arc<Mutex<Vec<Value>>>>, q: web::Query<PullQuery>) -> HttpResponse {
    let users = q.include.as_deref() == Some("users");
    let f = feed.lock().unwrap();
    let changes: Vec<Value> = f
        .iter()
        .filter(|c| c["cursor"].as_u64().unwrap_or(0) > q.after)
        .filter(|c| users || c["kind"] != "user")
        .take(q.limit)
        .cloned()
        .collect();
    let next = changes.last().map_or(q.after, |c| c["cursor"].as_u64().unwrap_or(0));
    HttpResponse::Ok().json(json!({"changes": changes, "next": next, "applied_through": 0}))
}

struct Pushed(Arc<Mutex<Vec<Value>>>);

async fn push(pushed: web::Data<Pushed>, body: web::Bytes) -> HttpResponse {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    pushed
        .0
        .lock()
        .unwrap()
        .extend(v["events"].as_array().cloned().unwrap_or_default());
    let through = v["events"]
        .as_array()
        .and_then(|e| e.iter().filter_map(|e| e["seq"].as_u64()).max())
        .unwrap_or(0);
    HttpResponse::Ok().json(json!({"applied_through": through, "duplicates": 0}))
}
