//! The relay: ships the outbox to central and pulls catalog and allocations back.
//!
//! - **Push**: one loop, one batch in flight, strictly in seq order. Woken by the writer
//!   after each commit, it lingers (≤ 10 ms) to fill a batch (≤ 500 events / ≤ 1 MiB,
//!   gzip above 1 KiB). 200 → `acked_through` recorded durably (in the background, while
//!   the next batch goes out; a backlog's next batch is read while one is in flight);
//!   409 `sequence_gap` → resume
//!   from central's `applied_through + 1` (acknowledged events are retained for
//!   `--outbox-retention`, so this is possible after a central restore).
//! - **Pull**: at start and every `--pull-interval`; applies changes and the new cursor in
//!   one local transaction (through the writer), so an allocation is never applied twice.
//! - **Every request** goes through the endpoint's circuit breaker. The middleware stack is
//!   retry (outer) → breaker (inner) → reqwest: each attempt is judged by the breaker, and a
//!   breaker rejection is an `Error::Middleware`, which `reqwest-retry` never retries — so
//!   nothing leaves the branch while the circuit is OPEN. Timeouts are set on the reqwest
//!   client, i.e. inside the breaker call, so they count as failures.
//! - **Failover** (`--central-url a,b`): each URL has its own breaker; a call goes to the
//!   first URL whose breaker is not OPEN (or is due for its half-open trial). So the relay
//!   moves on only when a URL's breaker opens, and returns to the preferred URL as soon as
//!   its trial succeeds.
//! - **Classification** (contract §5): timeouts, transport errors, 5xx, 408, 429 are breaker
//!   failures; other 4xx are not (logged as errors, counted `rejected`, and the loop backs
//!   off 1 s .. 60 s). `Retry-After` on 429/503 is honoured by the loop (and such a response
//!   is not retried by the middleware, which cannot see the header).
use crate::app::{AppState, SyncStatus};
use crate::breaker::{Backoff, Breaker, BreakerConfig, Observer, State};
use crate::metrics::BranchMetrics;
use crate::outbox::{Job, PullJob};
use crate::store::{self, OutboxRow};
use actix_web::web;
use colmena_shared::clock;
use colmena_shared::wire::{PullResponse, PushResponse};
use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::{DefaultRetryableStrategy, Jitter, RetryTransientMiddleware, Retryable, RetryableStrategy};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bodies above this are gzip'd.
const GZIP_ABOVE: usize = 1024;
const PULL_LIMIT: usize = 1000;
/// Longest `Retry-After` we obey.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub central_urls: Vec<String>,
    pub central_token: String,
    pub breaker: BreakerConfig,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retries: u32,
    pub batch_max_events: usize,
    pub batch_max_bytes: usize,
    pub linger: Duration,
    pub pull_interval: Duration,
    pub outbox_retention: Duration,
    pub idempotency_ttl: Duration,
}

/// Breaker hooks → metrics and logs. With several URLs the state gauge shows the best state
/// among them (closed if any URL is closed): "can this branch reach a central?".
struct MetricsObserver {
    index: usize,
    url: String,
    states: Arc<Vec<AtomicU8>>,
    metrics: BranchMetrics,
}

impl Observer for MetricsObserver {
    fn on_transition(&self, to: State) {
        let code = match to {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        };
        self.states[self.index].store(code, Ordering::Release);
        let best = self.states.iter().map(|s| s.load(Ordering::Acquire)).min().unwrap_or(0);
        let shown = match best {
            0 => "closed",
            1 => "half_open",
            _ => "open",
        };
        match to {
            State::Open => {
                tracing::warn!(central = %self.url, "circuit breaker OPEN: not calling central until the next trial")
            }
            State::HalfOpen => tracing::info!(central = %self.url, "circuit breaker HALF_OPEN: sending one trial call"),
            State::Closed => tracing::info!(central = %self.url, "circuit breaker CLOSED: central reachable"),
        }
        self.metrics.breaker_transitions.with_label_values(&[to.as_str()]).inc();
        self.metrics.set_breaker_state(shown);
    }
    fn on_rejected(&self) {
        self.metrics.sync_errors.with_label_values(&["circuit_open"]).inc();
    }
}

/// Judges every attempt (including retries) with the endpoint's breaker.
struct BreakerMiddleware {
    breaker: Arc<Breaker>,
    metrics: BranchMetrics,
}

#[derive(Debug, thiserror::Error)]
#[error("circuit breaker open: request not sent")]
struct CircuitOpen;

/// Whether a response status is a breaker failure (contract §5).
pub fn is_breaker_failure(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS
}

#[async_trait::async_trait]
impl Middleware for BreakerMiddleware {
    async fn handle(
        &self,
        req: reqwest::Request,
        ext: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let permit = self
            .breaker
            .acquire()
            .map_err(|_| reqwest_middleware::Error::middleware(CircuitOpen))?;
        let res = next.run(req, ext).await;
        let failure_kind = match &res {
            Ok(r) if r.status() == StatusCode::REQUEST_TIMEOUT => Some("timeout"),
            Ok(r) if is_breaker_failure(r.status()) => Some("http_5xx"),
            Ok(_) => None,
            Err(reqwest_middleware::Error::Reqwest(e)) if e.is_timeout() => Some("timeout"),
            Err(_) => Some("connect"),
        };
        match failure_kind {
            None => permit.success(),
            Some(kind) => {
                permit.failure();
                self.metrics.sync_errors.with_label_values(&[kind]).inc();
            }
        }
        res
    }
}

/// `reqwest-retry`'s default judgement, except that a response carrying `Retry-After` is
/// left to the relay loop (the retry policy cannot see headers).
struct RetryStrategy;

impl RetryableStrategy for RetryStrategy {
    fn handle(&self, res: &reqwest_middleware::Result<reqwest::Response>) -> Option<Retryable> {
        match res {
            Ok(r) if r.headers().contains_key(RETRY_AFTER) && is_breaker_failure(r.status()) => Some(Retryable::Fatal),
            _ => DefaultRetryableStrategy.handle(res),
        }
    }
}

struct Endpoint {
    url: String,
    client: ClientWithMiddleware,
    breaker: Arc<Breaker>,
}

/// Why a sync call did not produce a usable response.
#[derive(Debug)]
enum CallError {
    /// Every URL's breaker is open; the earliest trial is at `retry_at`.
    Open {
        retry_at: Option<Instant>,
    },
    /// A breaker failure (already counted by the middleware).
    Failed(String),
    /// Central refused the request (4xx other than those handled by the caller).
    Rejected(String),
    RetryAfter(Duration),
}

/// One push batch, encoded: what is sent, and what the answer is checked against.
struct Batch {
    /// The batch continues the outbox after this seq (its reader's starting point).
    after: u64,
    first: u64,
    last: u64,
    /// (seq, commit time) of each event, for the sync latency histogram.
    created: Vec<(u64, i64)>,
    body: Vec<u8>,
    gz: bool,
}

impl Batch {
    /// `{"branch_id": .., "events": [..]}` from the stored event JSON as is (no re-parse),
    /// gzip'd above [`GZIP_ABOVE`]. `rows` is not empty.
    fn encode(branch: &str, after: u64, rows: &[OutboxRow]) -> Batch {
        let mut json = String::with_capacity(rows.iter().map(|r| r.payload.len() + 1).sum::<usize>() + 64);
        json.push_str("{\"branch_id\":\"");
        json.push_str(branch);
        json.push_str("\",\"events\":[");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&r.payload);
        }
        json.push_str("]}");
        let (body, gz) = if json.len() <= GZIP_ABOVE {
            (json.into_bytes(), false)
        } else {
            let mut enc = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
            match enc.write_all(json.as_bytes()).and_then(|_| enc.finish()) {
                Ok(gz) => (gz, true),
                Err(_) => (json.into_bytes(), false),
            }
        };
        Batch {
            after,
            first: rows.first().map_or(after, |r| r.seq),
            last: rows.last().map_or(after, |r| r.seq),
            created: rows.iter().map(|r| (r.seq, r.created_ms)).collect(),
            body,
            gz,
        }
    }
}

/// Waits for the background `acked_through` write, if one is in flight.
async fn settle(ack: &mut Option<JoinHandle<bool>>) {
    if let Some(h) = ack.take() {
        let _ = h.await;
    }
}

pub struct Relay {
    app: web::Data<AppState>,
    endpoints: Vec<Endpoint>,
    settings: RelaySettings,
}

/// One central URL with its HTTP client and its own breaker.
pub type EndpointParts = (String, ClientWithMiddleware, Arc<Breaker>);

/// Builds the endpoints (client + breaker per URL) and the `/status` view of them.
pub fn build(
    app_metrics: &BranchMetrics,
    settings: &RelaySettings,
) -> Result<(Vec<EndpointParts>, Arc<SyncStatus>), String> {
    let states = Arc::new(
        settings
            .central_urls
            .iter()
            .map(|_| AtomicU8::new(0))
            .collect::<Vec<_>>(),
    );
    app_metrics.set_breaker_state("closed");
    let mut out = Vec::new();
    let mut status_eps = Vec::new();
    for (i, url) in settings.central_urls.iter().enumerate() {
        let observer = Arc::new(MetricsObserver {
            index: i,
            url: url.clone(),
            states: states.clone(),
            metrics: app_metrics.clone(),
        });
        let breaker = Breaker::new(&settings.breaker, observer);
        let inner = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let policy = ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(50), Duration::from_millis(500))
            .jitter(Jitter::Bounded)
            .build_with_max_retries(settings.retries);
        let client = ClientBuilder::new(inner)
            .with(RetryTransientMiddleware::new_with_policy_and_strategy(
                policy,
                RetryStrategy,
            ))
            .with(BreakerMiddleware {
                breaker: breaker.clone(),
                metrics: app_metrics.clone(),
            })
            .build();
        status_eps.push((url.clone(), breaker.clone()));
        out.push((url.clone(), client, breaker));
    }
    let status = Arc::new(SyncStatus {
        endpoints: status_eps,
        active: Default::default(),
        last_push_ok_ms: Default::default(),
        last_pull_ok_ms: Default::default(),
    });
    Ok((out, status))
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let s = resp.headers().get(RETRY_AFTER)?.to_str().ok()?;
    s.trim()
        .parse::<u64>()
        .ok()
        .map(|n| Duration::from_secs(n).min(MAX_RETRY_AFTER))
}

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

impl Relay {
    pub fn new(
        app: web::Data<AppState>,
        endpoints: Vec<(String, ClientWithMiddleware, Arc<Breaker>)>,
        settings: RelaySettings,
    ) -> Arc<Relay> {
        let endpoints = endpoints
            .into_iter()
            .map(|(url, client, breaker)| Endpoint { url, client, breaker })
            .collect();
        Arc::new(Relay {
            app,
            endpoints,
            settings,
        })
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.settings.central_token)
    }

    /// Sends one request to the preferred available URL. If that URL's breaker opens during
    /// the call (its failures reached the threshold, or its half-open trial failed), the same
    /// request goes on to the next available URL at once: sleeping until the earliest trial
    /// would pick the failed, preferred URL again, and the relay would never reach the others.
    async fn call<F>(&self, build: F) -> Result<reqwest::Response, CallError>
    where
        F: Fn(&Endpoint) -> reqwest_middleware::RequestBuilder,
    {
        let mut from = 0;
        loop {
            let Some((i, ep)) = self
                .endpoints
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, e)| e.breaker.looks_available())
            else {
                let retry_at = self.endpoints.iter().filter_map(|e| e.breaker.open_until()).min();
                return Err(CallError::Open { retry_at });
            };
            self.app.sync.active.store(i, Ordering::Release);
            match self.call_endpoint(ep, &build).await {
                Err(CallError::Open { .. }) => from = i + 1,
                other => return other,
            }
        }
    }

    /// One request to one URL, through its breaker.
    async fn call_endpoint<F>(&self, ep: &Endpoint, build: &F) -> Result<reqwest::Response, CallError>
    where
        F: Fn(&Endpoint) -> reqwest_middleware::RequestBuilder,
    {
        let started = Instant::now();
        let res = build(ep).send().await;
        self.app
            .metrics
            .sync_request_duration
            .observe(started.elapsed().as_secs_f64());
        match res {
            Err(reqwest_middleware::Error::Middleware(_)) => {
                let retry_at = self.endpoints.iter().filter_map(|e| e.breaker.open_until()).min();
                Err(CallError::Open { retry_at })
            }
            Err(reqwest_middleware::Error::Reqwest(e)) => Err(CallError::Failed(format!("{}: {e}", ep.url))),
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() || status == StatusCode::CONFLICT {
                    return Ok(resp);
                }
                if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
                    if let Some(d) = retry_after(&resp) {
                        return Err(CallError::RetryAfter(d));
                    }
                }
                let body = resp.text().await.unwrap_or_default();
                let msg = format!(
                    "{} answered {status}: {}",
                    ep.url,
                    body.chars().take(300).collect::<String>()
                );
                if is_breaker_failure(status) {
                    Err(CallError::Failed(msg))
                } else {
                    self.app.metrics.sync_errors.with_label_values(&["rejected"]).inc();
                    Err(CallError::Rejected(msg))
                }
            }
        }
    }

    /// The batch after `after`, up to `through`, read and encoded on blocking threads; None
    /// when the outbox has nothing there.
    async fn read_batch(&self, after: u64, through: u64) -> Result<Option<Batch>, String> {
        let (max_events, max_bytes) = (self.settings.batch_max_events, self.settings.batch_max_bytes);
        let rows = self
            .app
            .read(move |c| store::read_outbox(c, after, through, max_events, max_bytes))
            .await
            .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(None);
        }
        let branch = self.app.branch_id.clone();
        tokio::task::spawn_blocking(move || Batch::encode(branch.as_str(), after, &rows))
            .await
            .map(Some)
            .map_err(|e| format!("encoding a push batch failed: {e}"))
    }

    /// The push loop. Returns when `cancel` fires.
    ///
    /// Two things overlap the round trip to central, which is what a backlog drains at:
    /// the next batch is read and encoded while the current one is in flight (used only if
    /// the push succeeds as a whole), and `acked_through` is stored in the background (at
    /// most one such write at a time, so they land in order). A lost `acked_through` only
    /// means a re-push after a restart, which central skips as duplicates; the outbox purge
    /// goes by the stored value, so it never deletes what central has not acknowledged.
    pub async fn run_push(self: Arc<Self>, cancel: CancellationToken) {
        let state = self.app.outbox.clone();
        let mut next_after = state.acked_through.load(Ordering::Acquire);
        let mut rejected_backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut prefetched: Option<JoinHandle<Result<Option<Batch>, String>>> = None;
        let mut ack_in_flight: Option<JoinHandle<bool>> = None;
        // Prefetch only while pushes succeed: after a failure the next attempt resends the
        // same batch, and a prefetch would be read for nothing at every retry.
        let mut flowing = false;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            next_after = next_after.max(state.acked_through.load(Ordering::Acquire));
            let last = state.last_seq.load(Ordering::Acquire);
            if last <= next_after {
                tokio::select! {
                    _ = state.new_events.notified() => {},
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                    _ = cancel.cancelled() => break,
                }
                let waiting = state.last_seq.load(Ordering::Acquire).saturating_sub(next_after);
                if (waiting as usize) < self.settings.batch_max_events && !self.settings.linger.is_zero() {
                    tokio::time::sleep(self.settings.linger).await;
                }
                continue;
            }
            let ready = match prefetched.take() {
                Some(h) => h.await.ok().and_then(Result::ok).flatten(),
                None => None,
            };
            let (batch, read) = match ready.filter(|b| b.after == next_after) {
                Some(b) => (b, "prefetched"),
                None => match self.read_batch(next_after, last).await {
                    Ok(Some(b)) => (b, "on_demand"),
                    Ok(None) => {
                        if !sleep_or_cancel(Duration::from_millis(100), &cancel).await {
                            break;
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the outbox");
                        if !sleep_or_cancel(Duration::from_secs(1), &cancel).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            self.app.metrics.push_batches.with_label_values(&[read]).inc();
            if batch.first != next_after + 1 {
                tracing::error!(expected = next_after + 1, found = batch.first, "outbox events needed by central were already purged (raise --outbox-retention); skipping to what is left");
            }
            if flowing && batch.last < last {
                let me = self.clone();
                let (after, through) = (batch.last, last);
                prefetched = Some(tokio::spawn(async move { me.read_batch(after, through).await }));
            }
            let auth = self.auth();
            let res = self
                .call(|ep| {
                    let mut rb = ep
                        .client
                        .post(format!("{}/sync/push", ep.url))
                        .header(AUTHORIZATION, auth.as_str())
                        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    if batch.gz {
                        rb = rb.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    }
                    rb.body(batch.body.clone())
                })
                .await;
            let wait = match res {
                Ok(resp) if resp.status() == StatusCode::CONFLICT => {
                    let text = resp.text().await.unwrap_or_default();
                    match serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["applied_through"].as_u64())
                    {
                        Some(at) => {
                            tracing::warn!(
                                applied_through = at,
                                sent_from = batch.first,
                                "central reports a sequence gap; resuming from its position"
                            );
                            // Not in the background: if central is ahead of this store, the
                            // write raises the seq floor, which must happen before new sales.
                            settle(&mut ack_in_flight).await;
                            if self.set_acked(at).await {
                                next_after = at;
                            }
                            None
                        }
                        None => {
                            tracing::error!(body = %text, "central answered 409 without applied_through");
                            self.app.metrics.sync_errors.with_label_values(&["rejected"]).inc();
                            Some(rejected_backoff.next().unwrap_or(Duration::from_secs(1)))
                        }
                    }
                }
                Ok(resp) => match resp.json::<PushResponse>().await {
                    Ok(pr) => {
                        let now = clock::now_millis();
                        for &(seq, created_ms) in &batch.created {
                            if seq <= pr.applied_through {
                                self.app
                                    .metrics
                                    .sync_latency
                                    .observe(((now - created_ms).max(0) as f64) / 1000.0);
                            }
                        }
                        if pr.applied_through < batch.last {
                            tracing::warn!(
                                applied_through = pr.applied_through,
                                last_in_batch = batch.last,
                                "central applied less than the batch"
                            );
                        }
                        settle(&mut ack_in_flight).await;
                        let me = self.clone();
                        let at = pr.applied_through;
                        ack_in_flight = Some(tokio::spawn(async move { me.set_acked(at).await }));
                        next_after = at;
                        flowing = true;
                        self.app.sync.last_push_ok_ms.store(now, Ordering::Release);
                        rejected_backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
                        None
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "central's push answer is not valid JSON");
                        self.app.metrics.sync_errors.with_label_values(&["rejected"]).inc();
                        Some(rejected_backoff.next().unwrap_or(Duration::from_secs(1)))
                    }
                },
                Err(e) => self.wait_after(e, &mut rejected_backoff, "push"),
            };
            if let Some(d) = wait {
                flowing = false;
                if !sleep_or_cancel(d, &cancel).await {
                    break;
                }
            }
        }
        if let Some(h) = prefetched.take() {
            h.abort();
        }
        settle(&mut ack_in_flight).await;
        tracing::info!("relay push loop stopped");
    }

    /// How long to wait after a failed call.
    fn wait_after(&self, e: CallError, rejected_backoff: &mut Backoff, what: &str) -> Option<Duration> {
        match e {
            CallError::Open { retry_at } => {
                let now = failsafe::clock::now();
                Some(match retry_at {
                    Some(t) if t > now => (t - now) + Duration::from_millis(5),
                    _ => Duration::from_millis(50),
                })
            }
            CallError::Failed(msg) => {
                tracing::warn!(error = %msg, "{what} to central failed");
                Some(Duration::from_millis(200))
            }
            CallError::Rejected(msg) => {
                tracing::error!(error = %msg, "central rejected the {what}; backing off");
                Some(rejected_backoff.next().unwrap_or(Duration::from_secs(1)))
            }
            CallError::RetryAfter(d) => {
                tracing::warn!(seconds = d.as_secs(), "central asked to retry the {what} later");
                Some(d)
            }
        }
    }

    /// Records central's position durably. False if the store could not record it.
    async fn set_acked(&self, at: u64) -> bool {
        match self.app.writer.submit(Job::SetAcked(at)).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot record acked_through");
                false
            }
        }
    }

    /// Pulls every page of changes after the stored cursor. Ok(true) when central answered.
    pub async fn pull_once(&self) -> Result<(), String> {
        loop {
            let after = self.app.outbox.pull_cursor.load(Ordering::Acquire);
            let auth = self.auth();
            let resp = self
                .call(|ep| {
                    ep.client
                        .get(format!("{}/sync/pull?after={after}&limit={PULL_LIMIT}", ep.url))
                        .header(AUTHORIZATION, auth.as_str())
                })
                .await
                .map_err(|e| format!("{e:?}"))?;
            if !resp.status().is_success() {
                self.app.metrics.sync_errors.with_label_values(&["rejected"]).inc();
                return Err(format!("pull answered {}", resp.status()));
            }
            let page: PullResponse = resp.json().await.map_err(|e| {
                self.app.metrics.sync_errors.with_label_values(&["rejected"]).inc();
                format!("pull answer is not valid: {e}")
            })?;
            let n = page.changes.len();
            if page.next < after && n == 0 {
                tracing::warn!(
                    after,
                    next = page.next,
                    "central's pull cursor is behind ours (central restored?)"
                );
            }
            let next_cursor = if n == 0 { after } else { page.next.max(after) };
            self.app
                .writer
                .submit(Job::Pull(PullJob {
                    changes: page.changes,
                    next_cursor,
                    applied_through: page.applied_through,
                }))
                .await
                .map_err(|e| format!("cannot store pulled changes: {e}"))?;
            self.app
                .sync
                .last_pull_ok_ms
                .store(clock::now_millis(), Ordering::Release);
            if n < PULL_LIMIT {
                return Ok(());
            }
        }
    }

    /// The pull loop (the first pull happens at start-up, before serving).
    pub async fn run_pull(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            if !sleep_or_cancel(self.settings.pull_interval, &cancel).await {
                break;
            }
            if let Err(e) = self.pull_once().await {
                tracing::debug!(error = %e, "pull did not complete");
            }
        }
        tracing::info!("relay pull loop stopped");
    }

    /// Purges acknowledged events past retention and expired idempotency records.
    pub async fn run_housekeeping(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            if !sleep_or_cancel(Duration::from_secs(600), &cancel).await {
                break;
            }
            let now = clock::now_millis();
            let job = Job::Purge {
                outbox_before_ms: now - self.settings.outbox_retention.as_millis() as i64,
                idempotency_before_ms: now - self.settings.idempotency_ttl.as_millis() as i64,
            };
            if let Err(e) = self.app.writer.submit(job).await {
                tracing::error!(error = %e, "housekeeping purge failed");
            }
        }
    }
}
