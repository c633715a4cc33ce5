//! Command line and environment (docs/protocol.md, "Command line"). Every flag also reads the env var shown.
use clap::{Args, Parser, Subcommand};
use colmena_shared::ids::BranchId;
use colmena_shared::telemetry::{parse_duration, LogFormat};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "colmena-sucursal",
    version,
    about = "colmena branch service: sells from memory, never loses a sale"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the branch service (the default).
    Serve,
    /// Offline restore of the store from a backup file (stop the service first). The file is
    /// checked against the checksum in its `.json` sidecar (or `--sha256`) and must be an
    /// intact branch store; the replaced store is kept beside it.
    Restore {
        /// The backup file (`backup-sucursal-….db`).
        file: PathBuf,
        /// Data directory of the branch to restore into.
        #[arg(long = "data-dir", id = "restore_data_dir")]
        data_dir: PathBuf,
        /// Expected SHA-256, when the sidecar `.json` is not at hand.
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Print the OpenAPI 3.1 document of the branch's HTTP API (what `GET /openapi.json`
    /// serves) and exit; `scripts/openapi.sh` writes it to `docs/openapi/sucursal.json`.
    #[command(hide = true)]
    Openapi,
}

#[derive(Args, Debug, Clone)]
pub struct Settings {
    /// This store's id: 2-16 chars of [A-Z0-9_-].
    #[arg(long, env = "COLMENA_BRANCH_ID", default_value = "")]
    pub branch_id: String,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "COLMENA_LISTEN", default_value = "127.0.0.1:8001")]
    pub listen: String,
    /// Central's base URL; a comma-separated list is the failover order.
    #[arg(long, env = "COLMENA_CENTRAL_URL", default_value = "http://127.0.0.1:8000")]
    pub central_url: String,
    /// Verify an `https://` central against this CA bundle (PEM) instead of the system's
    /// roots: a chain's private CA. Nothing else is trusted when it is set.
    #[arg(long, env = "COLMENA_CENTRAL_CA")]
    pub central_ca: Option<PathBuf>,
    #[command(flatten)]
    pub tls: colmena_shared::tls::TlsArgs,
    /// Directory of the local store (created if missing).
    #[arg(long, env = "COLMENA_DATA_DIR", default_value = "./colmena-sucursal-data")]
    pub data_dir: PathBuf,
    /// This branch's token towards central's /sync endpoints.
    #[arg(long, env = "COLMENA_CENTRAL_TOKEN", default_value = "", hide_env_values = true)]
    pub central_token: String,
    /// The bearer token POS clients must present.
    #[arg(long, env = "COLMENA_POS_TOKEN", default_value = "", hide_env_values = true)]
    pub pos_token: String,
    /// Bearer token for automation (backups, exports, adjustments); optional. Must differ
    /// from the POS token.
    #[arg(long, env = "COLMENA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Only logged-in users may sell: the POS token alone no longer can.
    #[arg(long, env = "COLMENA_REQUIRE_LOGIN", default_value_t = false, num_args = 0..=1,
        default_missing_value = "true", action = clap::ArgAction::Set)]
    pub require_login: bool,
    /// How long after a sale it may be returned (`POST /sales/{id}/returns`).
    #[arg(long, env = "COLMENA_RETURN_WINDOW", default_value = "30d", value_parser = parse_duration)]
    pub return_window: Duration,
    /// The largest refund (cents) a cashier may give alone; above it a supervisor or manager.
    #[arg(long, env = "COLMENA_CASHIER_RETURN_LIMIT", default_value_t = 5000,
        value_parser = clap::value_parser!(i64).range(0..))]
    pub cashier_return_limit: i64,
    /// How long a login session lasts (`POST /login`).
    #[arg(long, env = "COLMENA_SESSION_TTL", default_value = "12h", value_parser = parse_duration)]
    pub session_ttl: Duration,
    /// First-boot seed: JSON `[{"product_id","name","price_cents","stock"}]`, used only when
    /// the store is empty.
    #[arg(long, env = "COLMENA_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Largest accepted request body, bytes.
    #[arg(long, env = "COLMENA_BODY_LIMIT", default_value_t = colmena_shared::http::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// HTTP worker threads.
    #[arg(long, env = "COLMENA_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// `text` or `json`.
    #[arg(long, env = "COLMENA_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Consecutive failed calls that open the circuit breaker.
    #[arg(long, env = "COLMENA_BREAKER_FAILURES", default_value_t = 3)]
    pub breaker_failures: u32,
    /// First wait of an open breaker before its half-open trial (grows ×2, equal jitter).
    #[arg(long, env = "COLMENA_BREAKER_WAIT_MIN", default_value = "1s", value_parser = parse_duration)]
    pub breaker_wait_min: Duration,
    /// Longest wait of an open breaker.
    #[arg(long, env = "COLMENA_BREAKER_WAIT_MAX", default_value = "4s", value_parser = parse_duration)]
    pub breaker_wait_max: Duration,
    /// TCP connect timeout towards central (counts as a breaker failure).
    #[arg(long, env = "COLMENA_CONNECT_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Whole-request timeout towards central (counts as a breaker failure).
    #[arg(long, env = "COLMENA_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Retries of a transient failure inside one breaker call (0-2).
    #[arg(long, env = "COLMENA_SYNC_RETRIES", default_value_t = 2)]
    pub sync_retries: u32,
    /// Most events in one push.
    #[arg(long, env = "COLMENA_BATCH_MAX_EVENTS", default_value_t = 500)]
    pub batch_max_events: usize,
    /// Most bytes of event JSON in one push (before gzip).
    #[arg(long, env = "COLMENA_BATCH_MAX_BYTES", default_value_t = 1_000_000)]
    pub batch_max_bytes: usize,
    /// How long the relay waits after a wake-up to fill a batch (at most 10ms).
    #[arg(long, env = "COLMENA_RELAY_LINGER", default_value = "5ms", value_parser = parse_duration)]
    pub relay_linger: Duration,
    /// Period of the catalog/allocation pull.
    #[arg(long, env = "COLMENA_PULL_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub pull_interval: Duration,
    /// How long events acknowledged by central stay in the local store (for `sequence_gap`
    /// recovery against a central restored from backup, and for `/sales/export`).
    #[arg(long, env = "COLMENA_OUTBOX_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub outbox_retention: Duration,
    /// How long Idempotency-Key records are kept (at least 24h).
    #[arg(long, env = "COLMENA_IDEMPOTENCY_TTL", default_value = "24h", value_parser = parse_duration)]
    pub idempotency_ttl: Duration,
    /// Where backups are written (default: `<data-dir>/backups`).
    #[arg(long, env = "COLMENA_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Take a backup this often (e.g. `24h`); off when not set.
    #[arg(long, env = "COLMENA_BACKUP_EVERY", value_parser = parse_duration)]
    pub backup_every: Option<Duration>,
    /// How many backups to keep (oldest deleted first).
    #[arg(long, env = "COLMENA_BACKUPS_KEEP", default_value_t = 30)]
    pub backups_keep: usize,
    /// At start, how long to wait for central's `applied_through` before serving (so a
    /// branch restored from an old copy never reuses a seq); it serves offline after that.
    #[arg(long, env = "COLMENA_STARTUP_SYNC_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub startup_sync_timeout: Duration,
}

/// Settings checked once at start; a bad one stops the process with a one-line reason.
#[derive(Debug, Clone)]
pub struct Validated {
    pub branch_id: BranchId,
    pub central_urls: Vec<String>,
}

impl Settings {
    pub fn validate(&self) -> Result<Validated, String> {
        if self.branch_id.is_empty() {
            return Err("--branch-id (COLMENA_BRANCH_ID) is required".into());
        }
        let branch_id = BranchId::parse(&self.branch_id)?;
        if self.pos_token.is_empty() {
            return Err("--pos-token (COLMENA_POS_TOKEN) is required".into());
        }
        if let Some(admin) = &self.admin_token {
            if admin.is_empty() || !admin.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("--admin-token must be visible ASCII without spaces".into());
            }
            if admin == &self.pos_token {
                return Err("--admin-token must differ from --pos-token".into());
            }
        }
        if self.session_ttl.is_zero() {
            return Err("--session-ttl must be more than 0".into());
        }
        let central_urls: Vec<String> = self
            .central_url
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if central_urls.is_empty() {
            return Err("--central-url needs at least one URL".into());
        }
        for u in &central_urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("--central-url: {u:?} is not an http(s) URL"));
            }
            if u.starts_with("http://") && !is_loopback_url(u) {
                tracing::warn!(central = %u, "central is reached over plain HTTP: the branch token and every sale cross the network in clear; use https:// (docs/protocol.md, \"Transport security\")");
            }
        }
        if self.breaker_failures == 0 {
            return Err("--breaker-failures must be at least 1".into());
        }
        if self.breaker_wait_min.is_zero() || self.breaker_wait_max < self.breaker_wait_min {
            return Err("--breaker-wait-min must be > 0 and <= --breaker-wait-max".into());
        }
        if self.sync_retries > 2 {
            return Err("--sync-retries is at most 2".into());
        }
        if !(1..=500).contains(&self.batch_max_events) {
            return Err("--batch-max-events must be 1..=500".into());
        }
        if !(1024..=1_048_576).contains(&self.batch_max_bytes) {
            return Err("--batch-max-bytes must be 1024..=1048576".into());
        }
        if self.relay_linger > Duration::from_millis(10) {
            return Err("--relay-linger is at most 10ms".into());
        }
        if self.idempotency_ttl < Duration::from_secs(24 * 3600) {
            return Err("--idempotency-ttl must be at least 24h".into());
        }
        if self.backups_keep == 0 {
            return Err("--backups-keep must be at least 1".into());
        }
        if self.backup_every.is_some_and(|d| d < Duration::from_secs(60)) {
            return Err("--backup-every must be at least 1m".into());
        }
        if self.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if self.body_limit < 1024 {
            return Err("--body-limit must be at least 1024 bytes".into());
        }
        Ok(Validated {
            branch_id,
            central_urls,
        })
    }
}

/// Whether an `http://` URL names this machine (the demo chain, a local proxy), where plain
/// HTTP crosses no network.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod loopback_tests {
    use super::is_loopback_url;

    #[test]
    fn only_this_machine_counts_as_loopback() {
        for yes in [
            "http://127.0.0.1:8000",
            "http://localhost:8000/",
            "http://[::1]:8000",
            "http://127.0.0.2",
        ] {
            assert!(is_loopback_url(yes), "{yes}");
        }
        for no in [
            "http://10.0.0.5:8000",
            "http://central.example:8000",
            "http://[2001:db8::1]:80",
        ] {
            assert!(!is_loopback_url(no), "{no}");
        }
    }
}
