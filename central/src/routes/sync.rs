//! `POST /sync/push` and `GET /sync/pull`: the branch ↔ central protocol (see
//! docs/protocol.md, "Sync push" and "Sync pull").
use super::responses::{BodyErrors, SyncErrors};
use crate::auth::Principal;
use crate::domain;
use crate::error::CentralError;
use crate::metrics::CentralMetrics;
use crate::store::{PushOutcome, Store};
use actix_web::{web, HttpResponse};
use colmena_shared::error::ErrorBody;
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
/// JSON. Checks, in order: token scope (403), every event of a kind this central applies
/// (422) and valid (400), then the sequence and that duplicates are the events applied (409).
#[utoipa::path(
    post, path = "/sync/push", tag = "sync",
    summary = "A branch ships a batch of its events (branch token, or admin for any branch)",
    description = "Applies the events above the branch's `applied_through`, in order, in one transaction; events at \
or below it are duplicates and skipped. The body may be sent with `Content-Encoding: gzip`; the limit (2 x \
`--body-limit`) applies to the decompressed JSON.",
    request_body(content = PushRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Applied (or all duplicates)", body = PushResponse),
        (status = 400, description = "`invalid_request`: malformed JSON, an invalid event, seqs not strictly increasing, a corrupt gzip body", body = ErrorBody),
        (status = 403, description = "`forbidden`: a branch token pushing as another branch", body = ErrorBody),
        (status = 409, description = "`sequence_gap`: the first new event is not applied_through + 1; `duplicate_mismatch`: an event at an applied seq is not the event applied there; `transfer_conflict`: a transfer step its transfer's state or this branch cannot take (an unknown transfer, the wrong branch or state, other lines), nothing applied. All three bodies have `applied_through`", body = ErrorBody),
        (status = 422, description = "`unsupported_event`: an event of a kind this central does not apply (from a newer branch, or refused with `--refuse-event-kind`); nothing of the push is applied and the branch keeps its events", body = ErrorBody),
        SyncErrors,
        BodyErrors,
    )
)]
async fn push(
    principal: Principal,
    store: web::Data<dyn Store>,
    metrics: web::Data<CentralMetrics>,
    refused: web::Data<domain::RefusedKinds>,
    body: web::Json<PushRequest>,
) -> Result<HttpResponse, CentralError> {
    let PushRequest { branch_id, events } = body.into_inner();
    let branch = principal.sync_branch(Some(branch_id))?;
    domain::check_push(&events, &refused)?;
    let started = Instant::now();
    let outcome = store.apply_push(branch.clone(), events).await;
    metrics.apply_duration.observe(started.elapsed().as_secs_f64());
    match outcome? {
        PushOutcome::Applied {
            applied_through,
            applied,
            duplicates,
            till,
            transfers,
        } => {
            let now = colmena_shared::clock::now_millis() / 1000;
            metrics.pushed(branch.as_str(), applied, duplicates, applied_through, now);
            metrics.till_applied(branch.as_str(), till);
            metrics.transfers_applied(transfers);
            Ok(HttpResponse::Ok().json(PushResponse {
                applied_through,
                duplicates,
            }))
        }
        PushOutcome::Gap { applied_through } => Err(CentralError::SequenceGap { applied_through }),
        PushOutcome::Mismatch { seq, applied_through } => Err(CentralError::DuplicateMismatch { seq, applied_through }),
        PushOutcome::TransferConflict {
            seq: _,
            message,
            applied_through,
        } => Err(CentralError::TransferConflict {
            message: format!("{message}; nothing of this push was applied"),
            applied_through: Some(applied_through),
        }),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PullQuery {
    /// The cursor of the last change applied (default 0: from the beginning).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    after: Option<u64>,
    /// Most changes to return (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Required with the admin token; a branch token may only name its own branch.
    #[param(pattern = "^[A-Z0-9_-]{2,16}$")]
    branch_id: Option<String>,
    /// `users`: also the user changes this branch must hear of, each with its PIN hash
    /// (branches that do not ask never see them; their cursor moves past them).
    #[param(pattern = "^users$", example = "users")]
    include: Option<String>,
}

/// The feed for one branch after `after`: `next` is the last cursor returned, or `after`
/// when there is nothing new. Cursors are global to all branches, so a branch sees gaps
/// between its cursors (other branches' allocations); only their order matters.
#[utoipa::path(
    get, path = "/sync/pull", tag = "sync",
    summary = "A branch's feed of catalog changes, its allocations and transfers, and (with include=users) users (branch token, or admin with branch_id)",
    params(PullQuery),
    responses(
        (status = 200, description = "Changes after `after`, in cursor order, and central's applied_through", body = PullResponse),
        (status = 400, description = "`invalid_request`: bad branch_id (or none with the admin token), after or limit out of range, an unknown include", body = ErrorBody),
        (status = 403, description = "`forbidden`: a branch token naming another branch", body = ErrorBody),
        SyncErrors,
    )
)]
async fn pull(
    principal: Principal,
    store: web::Data<dyn Store>,
    query: web::Query<PullQuery>,
) -> Result<HttpResponse, CentralError> {
    let PullQuery {
        after,
        limit,
        branch_id,
        include,
    } = query.into_inner();
    let named = branch_id.as_deref().map(domain::branch_id).transpose()?;
    let branch = principal.sync_branch(named)?;
    let after = domain::pull_after(after)?;
    let limit = domain::page_limit(limit, domain::DEFAULT_PULL_PAGE)?;
    let include_users = domain::pull_include_users(include.as_deref())?;
    let data = store.pull(branch, after, limit, include_users).await?;
    let next = data.changes.last().map_or(after, |c| c.cursor);
    Ok(HttpResponse::Ok().json(PullResponse {
        changes: data.changes,
        next,
        applied_through: data.applied_through,
    }))
}
