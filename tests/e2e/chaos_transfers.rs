//! Transfers' share of the chaos load (docs/protocol.md, "Transfers" and "The invariant"):
//! head office requests small transfers between the three branches, now and then cancels
//! one (sometimes just as its branch dispatches it), the sending branch dispatches, the
//! receiving one receives all or loses a unit on the way — all through the same kills and
//! network faults as the sales. A transfer outlives rounds: one still in transit when a
//! round ends goes on in the next.
//!
//! After each round, once everything drained and was pulled: every dispatch a branch
//! answered 200 is at central (in transit or received), every receipt is at central with
//! the same received and lost units, central's `in_transit` is what its transfers carry and
//! `total_stock` = Σ `by_branch` + `in_transit`, and both branches see each transfer as
//! central does. (The per-branch stock check of the invariant already runs: a step applied
//! twice would show there.)
use crate::support::till::code;
use crate::support::transfers::{self as tr, check_central};
use crate::support::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a transfer the load created stands, as the branches answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Requested,
    /// The sending branch answered 200 to the dispatch.
    Dispatched,
    /// The receiving branch answered 200 to the receipt; the lines it answered.
    Received(Value),
    /// Cancelled at central before any dispatch (the branch refused to dispatch it).
    Cancelled,
}

#[derive(Debug, Clone)]
struct Tracked {
    id: String,
    from: usize,
    to: usize,
    step: Step,
}

/// Every transfer the load created, across rounds, and what it counted.
#[derive(Default)]
pub(super) struct Transfers {
    tracked: Vec<Tracked>,
    pub(super) created: usize,
    pub(super) dispatched: usize,
    pub(super) received: usize,
    pub(super) cancelled: usize,
    /// Cancels central accepted for a transfer its branch had already dispatched: the
    /// dispatch won.
    pub(super) crossed: usize,
    pub(super) lost_units: i64,
    pub(super) unexpected: Vec<String>,
}

fn http() -> reqwest::Client {
    crate::support::client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// Runs until `stop`: creates, cancels, dispatches and receives transfers between
/// `branch_urls` (index = branch), and hands the state back for the round's check.
pub(super) async fn traffic(
    mut state: Transfers,
    central: String,
    branches: Vec<String>,
    names: Vec<&'static str>,
    products: Vec<String>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Transfers {
    let mut rng = fastrand::Rng::with_seed(seed ^ state.created as u64);
    let c = http();
    while !stop.load(Ordering::SeqCst) {
        if rng.u32(0..3) == 0 {
            create(&c, &mut state, &central, &names, &products, &mut rng).await;
        }
        for i in 0..state.tracked.len() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let t = state.tracked[i].clone();
            let next = match t.step {
                Step::Requested if rng.u32(0..8) == 0 => {
                    match cancel(&c, &mut state, &central, &t).await {
                        // Right away, the branch dispatches: unless it already pulled the
                        // cancel, the dispatch crosses it and wins.
                        Some(Step::Cancelled) => match dispatch(&c, &mut state, &branches[t.from], &t).await {
                            Some(Step::Dispatched) => {
                                state.crossed += 1;
                                Some(Step::Dispatched)
                            }
                            _ => Some(Step::Cancelled),
                        },
                        other => other,
                    }
                }
                Step::Requested => dispatch(&c, &mut state, &branches[t.from], &t).await,
                Step::Dispatched => receive(&c, &mut state, &branches[t.to], &t).await,
                Step::Received(_) | Step::Cancelled => None,
            };
            if let Some(step) = next {
                state.tracked[i].step = step;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(50..150))).await;
    }
    state
}

async fn create(
    c: &reqwest::Client,
    state: &mut Transfers,
    central: &str,
    names: &[&'static str],
    products: &[String],
    rng: &mut fastrand::Rng,
) {
    let from = rng.usize(..names.len());
    let to = (from + 1 + rng.usize(..names.len() - 1)) % names.len();
    let first = rng.usize(..products.len());
    let mut lines = vec![json!({"product_id": products[first], "quantity": rng.i64(1..6)})];
    if rng.bool() {
        let second = (first + 1 + rng.usize(..products.len() - 1)) % products.len();
        lines.push(json!({"product_id": products[second], "quantity": rng.i64(1..6)}));
    }
    let body = json!({"from_branch": names[from], "to_branch": names[to], "lines": lines});
    // One key per transfer: a retry after a lost answer never makes a second one.
    let key = format!("chaos-tr-{}", rng.u64(..));
    for _ in 0..3 {
        let sent = c
            .post(format!("{central}/transfers"))
            .bearer_auth(ADMIN_TOKEN)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await;
        let Ok(r) = sent else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        match (status, v["transfer_id"].as_str()) {
            (201, Some(id)) => {
                state.created += 1;
                state.tracked.push(Tracked {
                    id: id.to_string(),
                    from,
                    to,
                    step: Step::Requested,
                });
            }
            (503, _) => {}
            _ => state.unexpected.push(format!("POST /transfers {body}: {status} {v}")),
        }
        return;
    }
}

/// Cancels at central, then at once asks the branch to dispatch: either the branch already
/// knew of the cancel (409, the transfer stays cancelled) or the dispatch crosses the
/// cancel and wins.
async fn cancel(c: &reqwest::Client, state: &mut Transfers, central: &str, t: &Tracked) -> Option<Step> {
    let r = c
        .post(format!("{central}/transfers/{}/cancel", t.id))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    match (status, code(&v)) {
        // Central already applied this transfer's dispatch (answered 200 earlier, its
        // answer lost in a kill): the next dispatch call says so.
        (409, "transfer_conflict") => None,
        (200, _) => {
            state.cancelled += 1;
            Some(Step::Cancelled)
        }
        (503, _) => None,
        _ => {
            state.unexpected.push(format!("cancel {}: {status} {v}", t.id));
            None
        }
    }
}

async fn dispatch(c: &reqwest::Client, state: &mut Transfers, branch: &str, t: &Tracked) -> Option<Step> {
    let (status, v) = try_step(c, branch, &t.id, "dispatch", &json!({})).await?;
    match (status, code(&v)) {
        (200, _) => {
            state.dispatched += 1;
            Some(Step::Dispatched)
        }
        // Not pulled yet.
        (404, _) => None,
        (409, "transfer_conflict") => match try_get(c, branch, &t.id).await?["status"].as_str() {
            Some("cancelled") => Some(Step::Cancelled),
            _ => {
                state.unexpected.push(format!("dispatch {}: {status} {v}", t.id));
                None
            }
        },
        _ => {
            state.unexpected.push(format!("dispatch {}: {status} {v}", t.id));
            None
        }
    }
}

async fn receive(c: &reqwest::Client, state: &mut Transfers, branch: &str, t: &Tracked) -> Option<Step> {
    // A receipt retried after a lost answer (even in a later round) must be the same
    // receipt: draw it from the transfer's id alone.
    let mut seeded = fastrand::Rng::with_seed(t.id.bytes().fold(0xC0_FFEE, |h, b| h.rotate_left(5) ^ u64::from(b)));
    let lose_one = seeded.u32(0..4) == 0;
    let body = if lose_one { None } else { Some(json!({})) };
    let body = match body {
        Some(b) => b,
        None => {
            // Ask the branch what was dispatched and receive one unit less of the first line.
            let known = try_get(c, branch, &t.id).await?;
            let lines = known["lines"].as_array()?.clone();
            let asked: Vec<Value> = lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let q = l["quantity"].as_i64().unwrap_or(0) - i64::from(i == 0);
                    json!({"product_id": l["product_id"], "quantity": q})
                })
                .collect();
            json!({ "lines": asked })
        }
    };
    let (status, v) = try_step(c, branch, &t.id, "receive", &body).await?;
    match (status, code(&v)) {
        (200, _) => {
            state.received += 1;
            state.lost_units += v["lines"]
                .as_array()
                .map_or(0, |ls| ls.iter().filter_map(|l| l["lost"].as_i64()).sum());
            Some(Step::Received(v["lines"].clone()))
        }
        // The dispatch has not reached this branch yet.
        (404, _) | (409, "transfer_conflict") => None,
        _ => {
            state.unexpected.push(format!("receive {}: {body}: {status} {v}", t.id));
            None
        }
    }
}

async fn try_step(c: &reqwest::Client, branch: &str, id: &str, step: &str, body: &Value) -> Option<(u16, Value)> {
    let r = c
        .post(format!("{branch}/transfers/{id}/{step}"))
        .bearer_auth(BRANCH_ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.unwrap_or(Value::Null)))
}

async fn try_get(c: &reqwest::Client, base: &str, id: &str) -> Option<Value> {
    try_get_json(c, &format!("{base}/transfers/{id}"), BRANCH_ADMIN_TOKEN).await
}

/// The round's check (see the module doc). Call once every branch has drained.
pub(super) async fn check(
    c: &reqwest::Client,
    state: &mut Transfers,
    central: &str,
    branches: &[String],
    names: &[&'static str],
    round: usize,
) {
    assert!(
        state.unexpected.is_empty(),
        "round {round}: transfers: unexpected answers: {:?}",
        &state.unexpected[..state.unexpected.len().min(5)]
    );
    // A receipt drained after another branch pulled: pull once more everywhere.
    for url in branches {
        wait_drained(c, url, Duration::from_secs(90)).await;
    }
    for (url, name) in branches.iter().zip(names) {
        wait_pulled(c, central, url, name, Duration::from_secs(60)).await;
    }
    check_central(c, central).await;
    let at_central = tr::central_transfers(c, central).await;
    for t in &state.tracked {
        let Some(ct) = at_central.get(&t.id) else {
            panic!("round {round}: {} was created (201) but central does not have it", t.id);
        };
        let status = ct["status"].as_str().unwrap_or("");
        match &t.step {
            Step::Requested => assert!(
                matches!(status, "requested" | "cancelled" | "in_transit"),
                "round {round}: {}: {status}",
                t.id
            ),
            Step::Dispatched => assert!(
                matches!(status, "in_transit" | "received"),
                "round {round}: {} dispatched (200) but central says {status}",
                t.id
            ),
            Step::Received(lines) => {
                assert_eq!(status, "received", "round {round}: {} received (200): {ct}", t.id);
                assert_eq!(
                    &ct["lines"], lines,
                    "round {round}: {}: central's receipt differs",
                    t.id
                );
            }
            Step::Cancelled => assert!(
                matches!(status, "cancelled" | "in_transit" | "received"),
                "round {round}: {}: {status}",
                t.id
            ),
        }
        for b in [t.from, t.to] {
            let seen = try_get(c, &branches[b], &t.id).await.unwrap_or(Value::Null);
            assert_eq!(
                seen["status"].as_str(),
                Some(status),
                "round {round}: {} at {} is not as central has it: {seen}",
                t.id,
                names[b]
            );
        }
    }
    // A cancelled transfer whose dispatch answer was lost in a kill may have crossed the
    // cancel after all: follow it as the dispatch it turned out to be.
    for t in &mut state.tracked {
        if t.step == Step::Cancelled {
            match at_central.get(&t.id).and_then(|ct| ct["status"].as_str()) {
                Some("in_transit") => t.step = Step::Dispatched,
                Some("received") => t.step = Step::Received(at_central[&t.id]["lines"].clone()),
                _ => {}
            }
        }
    }
}
