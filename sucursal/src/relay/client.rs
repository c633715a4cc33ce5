//! The relay's HTTP side: one client and one circuit breaker per central URL, and the call
//! that picks among them.
//!
//! - The middleware stack is retry (outer) → breaker (inner) → reqwest: each attempt is
//!   judged by the breaker, and a breaker rejection is an `Error::Middleware`, which
//!   `reqwest-retry` never retries — so nothing leaves the branch while the circuit is OPEN.
//!   Timeouts are set on the reqwest client, i.e. inside the breaker call, so they count as
//!   failures.
//! - Failover: a call goes to the first URL whose breaker is not OPEN (or is due for its
//!   half-open trial), and moves on at once when that URL's breaker opens during the call.
//! - Classification (see docs/protocol.md, "The relay"): timeouts, transport errors, 5xx,
//!   408 and 429 are breaker failures; other 4xx are not (counted `rejected`, or
//!   `unsupported_event` for a central that predates an event kind: the batch is kept and resent). A 429/503 with
//!   `Retry-After` is handed to the caller, which honours it.
use super::RelaySettings;
use crate::app::SyncStatus;
use crate::breaker::{Breaker, Observer, State};
use crate::metrics::BranchMetrics;
use colmena_shared::tls::tls_cause;
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::{DefaultRetryableStrategy, Jitter, RetryTransientMiddleware, Retryable, RetryableStrategy};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest `Retry-After` we obey.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

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

/// Whether an error body is central's 422 `unsupported_event`.
pub fn is_unsupported_event(body: &str) -> bool {
    serde_json::from_str::<colmena_shared::error::ErrorBody>(body)
        .is_ok_and(|b| b.error.code == colmena_shared::error::ErrorCode::UnsupportedEvent)
}

/// Whether a response status is a breaker failure (see docs/protocol.md, "The relay").
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
            // A certificate that does not verify, or a peer that does not speak TLS: never
            // retried in clear, counted apart so the alert names it.
            Err(reqwest_middleware::Error::Reqwest(e)) if tls_cause(e).is_some() => Some("tls"),
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
    colmena_shared::tls::install_crypto_provider();
    let ca = match &settings.central_ca {
        Some(path) => Some(
            colmena_shared::tls::read_certs(path)
                .map_err(|e| format!("--central-ca {e}"))?
                .iter()
                .map(|der| reqwest::Certificate::from_der(der.as_ref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--central-ca {}: {e}", path.display()))?,
        ),
        None => None,
    };
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
        let mut inner = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(roots) = &ca {
            inner = inner.tls_certs_only(roots.iter().cloned());
        }
        let inner = inner.build().map_err(|e| format!("http client: {e}"))?;
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

pub struct Endpoint {
    pub url: String,
    pub client: ClientWithMiddleware,
    breaker: Arc<Breaker>,
}

/// Why a sync call did not produce a usable response.
#[derive(Debug)]
pub enum CallError {
    /// Every URL's breaker is open; the earliest trial is at `retry_at`.
    Open {
        retry_at: Option<Instant>,
    },
    /// A breaker failure (already counted by the middleware).
    Failed(String),
    /// Central refused the request (4xx other than those handled by the caller); already
    /// counted `rejected`.
    Rejected(String),
    RetryAfter(Duration),
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let s = resp.headers().get(RETRY_AFTER)?.to_str().ok()?;
    s.trim()
        .parse::<u64>()
        .ok()
        .map(|n| Duration::from_secs(n).min(MAX_RETRY_AFTER))
}

/// Every central URL, in order of preference, and where the relay reports which it uses.
pub struct Central {
    endpoints: Vec<Endpoint>,
    sync: Arc<SyncStatus>,
    metrics: BranchMetrics,
    auth: String,
}

impl Central {
    pub fn new(endpoints: Vec<EndpointParts>, token: &str, sync: Arc<SyncStatus>, metrics: BranchMetrics) -> Central {
        let endpoints = endpoints
            .into_iter()
            .map(|(url, client, breaker)| Endpoint { url, client, breaker })
            .collect();
        Central {
            endpoints,
            sync,
            metrics,
            auth: format!("Bearer {token}"),
        }
    }

    /// The `Authorization` header value for central.
    pub fn auth(&self) -> &str {
        &self.auth
    }

    /// Sends one request to the preferred available URL. If that URL's breaker opens during
    /// the call (its failures reached the threshold, or its half-open trial failed), the same
    /// request goes on to the next available URL at once: sleeping until the earliest trial
    /// would pick the failed, preferred URL again, and the relay would never reach the others.
    pub async fn call<F>(&self, build: F) -> Result<reqwest::Response, CallError>
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
            self.sync.active.store(i, Ordering::Release);
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
        self.metrics
            .sync_request_duration
            .observe(started.elapsed().as_secs_f64());
        match res {
            Err(reqwest_middleware::Error::Middleware(_)) => {
                let retry_at = self.endpoints.iter().filter_map(|e| e.breaker.open_until()).min();
                Err(CallError::Open { retry_at })
            }
            Err(reqwest_middleware::Error::Reqwest(e)) => Err(CallError::Failed(match tls_cause(&e) {
                Some(cause) => format!("{}: TLS failed: {cause}", ep.url),
                None => format!("{}: {e}", ep.url),
            })),
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
                    // A central older than this branch refuses an event kind it does not know:
                    // the batch is kept and resent (with the rejection backoff) until central
                    // is upgraded; counted apart so that an alert names the cause.
                    let kind = if is_unsupported_event(&body) {
                        "unsupported_event"
                    } else {
                        "rejected"
                    };
                    self.metrics.sync_errors.with_label_values(&[kind]).inc();
                    Err(CallError::Rejected(msg))
                }
            }
        }
    }
}
