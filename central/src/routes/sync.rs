//! `POST /sync/push` and `GET /sync/pull`: the branch ↔ central protocol (contract §3).
use crate::auth::Principal;
use crate::domain;
use crate::error::CentralError;
use crate::metrics::CentralMetrics;
use crate::store::{PushOutcome, Store};
use actix_web::{web, HttpResponse};
use colmena_shared::http::json_config;
use colmena_shared::wire::{PullResponse, PushRequest, PushResponse};
use serde::Deserialize;
use std::time::Instant;

pub fn config(cfg: &mut web::ServiceConfig, push_limit: usize) {
    cfg.service(
        web::resource("/sync/push")
            .app_data(json_config(push_limit))
            .route(web::post().to(push)),
    )
    .service(web::resource("/sync/pull").route(web::get().to(pull)));
}

/// Applies a batch of a branch's events exactly once (see [`Store::apply_push`]). The body
/// may be gzip-compressed (`Content-Encoding: gzip`); the limit applies to the decompressed
/// JSON. Checks, in order: token scope (403), every event (400), then the sequence (409).
async fn push(
    principal: Principal,
    store: web::Data<dyn Store>,
    metrics: web::Data<CentralMetrics>,
    body: web::Json<PushRequest>,
) -> Result<HttpResponse, CentralError> {
    let PushRequest { branch_id, events } = body.into_inner();
    let branch = principal.sync_branch(Some(branch_id))?;
    domain::check_push(&events)?;
    let started = Instant::now();
    let outcome = store.apply_push(branch.clone(), events).await;
    metrics.apply_duration.observe(started.elapsed().as_secs_f64());
    match outcome? {
        PushOutcome::Applied {
            applied_through,
            applied,
            duplicates,
        } => {
            let now = colmena_shared::clock::now_millis() / 1000;
            metrics.pushed(branch.as_str(), applied, duplicates, applied_through, now);
            Ok(HttpResponse::Ok().json(PushResponse {
                applied_through,
                duplicates,
            }))
        }
        PushOutcome::Gap { applied_through } => Err(CentralError::SequenceGap { applied_through }),
    }
}

#[derive(Debug, Deserialize)]
struct PullQuery {
    after: Option<u64>,
    limit: Option<u32>,
    /// Required with the admin token; a branch token may only name its own branch.
    branch_id: Option<String>,
}

/// The feed for one branch after `after`: `next` is the last cursor returned, or `after`
/// when there is nothing new. Cursors are global to all branches, so a branch sees gaps
/// between its cursors (other branches' allocations); only their order matters.
async fn pull(
    principal: Principal,
    store: web::Data<dyn Store>,
    query: web::Query<PullQuery>,
) -> Result<HttpResponse, CentralError> {
    let PullQuery {
        after,
        limit,
        branch_id,
    } = query.into_inner();
    let named = branch_id.as_deref().map(domain::branch_id).transpose()?;
    let branch = principal.sync_branch(named)?;
    let after = domain::pull_after(after)?;
    let limit = domain::page_limit(limit, domain::DEFAULT_PULL_PAGE)?;
    let data = store.pull(branch, after, limit).await?;
    let next = data.changes.last().map_or(after, |c| c.cursor);
    Ok(HttpResponse::Ok().json(PullResponse {
        changes: data.changes,
        next,
        applied_through: data.applied_through,
    }))
}
