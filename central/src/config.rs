//! Command line and environment (see docs/protocol.md, 'Command line').
//!
//! Every flag also reads the environment variable shown in `--help`. [`Settings::parse_from_env`]
//! turns any configuration problem into one line of text for `main` to print, so an operator
//! sees what is wrong without a wall of usage text.
use crate::store::DatabaseUrl;
use clap::Parser;
use colmena_shared::http::DEFAULT_BODY_LIMIT;
use colmena_shared::ids::BranchId;
use colmena_shared::telemetry::LogFormat;
use colmena_shared::wire::EventKind;
use std::collections::HashSet;
use std::net::SocketAddr;

/// The smallest body limit accepted: below this not even a one-event push fits.
pub const MIN_BODY_LIMIT: usize = 4096;

/// `colmena-central` settings.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "colmena-central",
    version,
    about = "colmena central: consolidates the branches' sales and stock, owns the catalog"
)]
pub struct Settings {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on stdout).
    #[arg(long, env = "COLMENA_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// A file path for the embedded SQLite store, or a postgres:// URL.
    #[arg(long, env = "COLMENA_DATABASE", default_value = "./colmena-central.db")]
    pub database: DatabaseUrl,

    /// Bearer token of the chain's administrators: every endpoint.
    #[arg(long, env = "COLMENA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,

    /// `BRANCH=token`, repeatable (environment: comma separated, `CUS=s1,ABA=s2`). A branch
    /// token may only be used for `/sync/*` of its own branch.
    #[arg(
        long = "branch-token",
        env = "COLMENA_BRANCH_TOKENS",
        value_delimiter = ',',
        value_parser = parse_branch_token,
        hide_env_values = true
    )]
    pub branch_tokens: Vec<BranchToken>,

    #[command(flatten)]
    pub tls: colmena_shared::tls::TlsArgs,

    /// Request body limit in bytes. `POST /sync/push` accepts twice this (decompressed), so
    /// that a relay batch of up to this size plus its JSON envelope always fits.
    #[arg(long, env = "COLMENA_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,

    /// Log format on stderr: text or json.
    #[arg(long, env = "COLMENA_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// HTTP worker threads.
    #[arg(long, env = "COLMENA_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Where backups of the embedded store are written (default: `backups/` beside the
    /// database file). Not used on PostgreSQL: back it up with `pg_dump`.
    #[arg(long, env = "COLMENA_BACKUP_DIR")]
    pub backup_dir: Option<std::path::PathBuf>,

    /// Take a backup this often (e.g. `24h`); off when not set.
    #[arg(long, env = "COLMENA_BACKUP_EVERY", value_parser = colmena_shared::telemetry::parse_duration)]
    pub backup_every: Option<std::time::Duration>,

    /// How many backups to keep (oldest deleted first).
    #[arg(long, env = "COLMENA_BACKUPS_KEEP", default_value_t = 30)]
    pub backups_keep: usize,

    /// A transfer in transit longer than this counts as overdue
    /// (`colmena_central_transfers_overdue`, alert `ColmenaTransferOverdue`).
    #[arg(long, env = "COLMENA_TRANSFER_OVERDUE_AFTER", default_value = "48h",
        value_parser = colmena_shared::telemetry::parse_duration)]
    pub transfer_overdue_after: std::time::Duration,

    /// Refuse pushed events of this kind (e.g. `return`) as if this central predated it:
    /// the push is 422 `unsupported_event` and the branch keeps the events. Repeatable. A
    /// test and rollout aid, hidden from `--help` (docs/protocol.md, "Command line").
    #[arg(
        long = "refuse-event-kind",
        env = "COLMENA_REFUSE_EVENT_KINDS",
        value_delimiter = ',',
        value_parser = crate::domain::refusable_kind,
        hide = true
    )]
    pub refuse_event_kinds: Vec<EventKind>,

    /// The IANA time zone sales reports read days and hours in when a request names none
    /// (e.g. `America/Lima`).
    #[arg(long, env = "COLMENA_TIMEZONE", default_value = "UTC",
        value_parser = crate::domain::reports::time_zone_name)]
    pub timezone: String,

    /// Do not keep the sales reports' rollups (reports then answer wrong figures). A
    /// benchmark baseline only, to measure what the rollups cost ingest in the same run;
    /// hidden from `--help` (docs/protocol.md, "Command line").
    #[arg(long, env = "COLMENA_SKIP_REPORT_ROLLUPS", hide = true)]
    pub skip_report_rollups: bool,
}

/// `colmena-central restore FILE --database PATH`: offline restore of the embedded store
/// from a backup. Stop central first. The file must match its checksum (its `.json` sidecar
/// or `--sha256`) and be a colmena central store; the replaced database is kept beside it.
#[derive(Debug, Clone, Parser)]
#[command(name = "colmena-central restore", version)]
pub struct RestoreArgs {
    /// The backup file (`backup-central-….db`).
    pub file: std::path::PathBuf,
    /// The database file to replace (the `--database` central runs with).
    #[arg(long, env = "COLMENA_DATABASE")]
    pub database: DatabaseUrl,
    /// Expected SHA-256 of the file, when its `.json` sidecar was not kept.
    #[arg(long)]
    pub sha256: Option<String>,
}

/// One `--branch-token BRANCH=secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct BranchToken {
    pub branch: BranchId,
    pub token: String,
}

impl std::fmt::Debug for BranchToken {
    // Never print the secret, not even in a debug log of the settings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=<redacted>", self.branch)
    }
}

fn parse_branch_token(s: &str) -> Result<BranchToken, String> {
    let (branch, token) = s
        .split_once('=')
        .ok_or_else(|| "a branch token is BRANCH=secret, e.g. CUS=s3cret".to_string())?;
    let branch = BranchId::parse(branch.trim())?;
    check_token(&format!("token of branch {branch}"), token)?;
    Ok(BranchToken {
        branch,
        token: token.to_string(),
    })
}

/// A token must be something a client can send in `Authorization: Bearer …`.
fn check_token(what: &str, token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(format!("{what} must be visible ASCII without spaces"));
    }
    Ok(())
}

impl Settings {
    /// Parses the command line and environment. `Err` is either help/version output (exit
    /// 0, printed as is) or a one-line configuration error.
    pub fn parse_from_env() -> Result<Settings, ConfigError> {
        Self::parse_from_args(std::env::args_os())
    }

    pub fn parse_from_args<I, T>(args: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let settings = match Settings::try_parse_from(args) {
            Ok(s) => s,
            Err(e) => {
                use clap::error::ErrorKind;
                return Err(match e.kind() {
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ConfigError::Display(e.to_string()),
                    _ => ConfigError::Invalid(one_line(&e.to_string())),
                });
            }
        };
        settings.check().map_err(ConfigError::Invalid)?;
        Ok(settings)
    }

    /// Where backups go: `--backup-dir`, else `backups/` beside the database file. `None`
    /// on PostgreSQL, which has its own backup tools.
    pub fn backups_dir(&self) -> Option<std::path::PathBuf> {
        match &self.database {
            DatabaseUrl::Sqlite(path) => Some(self.backup_dir.clone().unwrap_or_else(|| {
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .join("backups")
            })),
            DatabaseUrl::Postgres(_) => None,
        }
    }

    /// Cross-field checks clap cannot express.
    fn check(&self) -> Result<(), String> {
        check_token("--admin-token", &self.admin_token)?;
        if self.body_limit < MIN_BODY_LIMIT {
            return Err(format!("--body-limit must be at least {MIN_BODY_LIMIT} bytes"));
        }
        if self.workers == 0 || self.workers > 256 {
            return Err("--workers must be between 1 and 256".into());
        }
        if self.backups_keep == 0 {
            return Err("--backups-keep must be at least 1".into());
        }
        if self
            .backup_every
            .is_some_and(|d| d < std::time::Duration::from_secs(60))
        {
            return Err("--backup-every must be at least 1m".into());
        }
        let mut branches = HashSet::new();
        let mut tokens = HashSet::new();
        for t in &self.branch_tokens {
            if !branches.insert(&t.branch) {
                return Err(format!("branch {} is given more than one token", t.branch));
            }
            if t.token == self.admin_token {
                return Err(format!("the token of branch {} is the admin token", t.branch));
            }
            if !tokens.insert(&t.token) {
                return Err(format!("branch {} shares its token with another branch", t.branch));
            }
        }
        Ok(())
    }

    /// Limit for `POST /sync/push` bodies after decompression.
    pub fn push_body_limit(&self) -> usize {
        self.body_limit.saturating_mul(2)
    }
}

/// Why the settings could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// `--help` / `--version`: print and exit 0.
    Display(String),
    /// A bad configuration, as one line.
    Invalid(String),
}

/// clap's errors span several lines (message, usage, hint); keep the message part on one line.
fn one_line(rendered: &str) -> String {
    let msg: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    let msg = msg.join(" ");
    msg.strip_prefix("error: ").unwrap_or(&msg).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let mut all = vec!["colmena-central"];
        all.extend_from_slice(args);
        Settings::parse_from_args(all)
    }

    fn invalid(args: &[&str]) -> String {
        match parse(args) {
            Err(ConfigError::Invalid(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn branch_tokens_are_repeatable_and_parsed() {
        let s = parse(&[
            "--admin-token",
            "adm",
            "--branch-token",
            "CUS=a",
            "--branch-token",
            "ABA=b",
        ])
        .unwrap();
        assert_eq!(s.branch_tokens.len(), 2);
        assert_eq!(s.branch_tokens[1].branch.as_str(), "ABA");
        assert_eq!(s.branch_tokens[1].token, "b");
        assert_eq!(s.push_body_limit(), 2 * DEFAULT_BODY_LIMIT);
        assert_eq!(s.workers, 2);
    }

    #[test]
    fn a_missing_admin_token_is_one_line() {
        let m = invalid(&[]);
        assert!(m.contains("--admin-token"), "{m}");
        assert!(!m.contains('\n'), "{m}");
    }

    #[test]
    fn malformed_branch_tokens_are_rejected() {
        assert!(invalid(&["--admin-token", "a", "--branch-token", "CUS"]).contains("BRANCH=secret"));
        assert!(invalid(&["--admin-token", "a", "--branch-token", "cus=x"]).contains("branch_id"));
        assert!(invalid(&["--admin-token", "a", "--branch-token", "CUS="]).contains("empty"));
        assert!(invalid(&[
            "--admin-token",
            "a",
            "--branch-token",
            "CUS=x",
            "--branch-token",
            "CUS=y"
        ])
        .contains("more than one"));
        assert!(invalid(&[
            "--admin-token",
            "a",
            "--branch-token",
            "CUS=x",
            "--branch-token",
            "ABA=x"
        ])
        .contains("shares"));
        assert!(invalid(&["--admin-token", "a", "--branch-token", "CUS=a"]).contains("admin token"));
    }

    #[test]
    fn postgres_urls_are_recognised() {
        let s = parse(&["--admin-token", "a", "--database", "postgres://u@h/db"]).unwrap();
        assert!(matches!(s.database, DatabaseUrl::Postgres(_)));
        let s = parse(&["--admin-token", "a", "--database", "x.db"]).unwrap();
        assert!(matches!(s.database, DatabaseUrl::Sqlite(_)));
    }

    #[test]
    fn transfers_are_overdue_after_48_hours_unless_told_otherwise() {
        let s = parse(&["--admin-token", "a"]).unwrap();
        assert_eq!(s.transfer_overdue_after, std::time::Duration::from_secs(48 * 3600));
        let s = parse(&["--admin-token", "a", "--transfer-overdue-after", "90m"]).unwrap();
        assert_eq!(s.transfer_overdue_after, std::time::Duration::from_secs(90 * 60));
        assert!(invalid(&["--admin-token", "a", "--transfer-overdue-after", "soon"]).contains("soon"));
    }

    #[test]
    fn refused_event_kinds_are_repeatable_known_kinds_and_hidden_from_help() {
        let s = parse(&[
            "--admin-token",
            "a",
            "--refuse-event-kind",
            "return",
            "--refuse-event-kind",
            "shift_opened",
        ])
        .unwrap();
        assert_eq!(s.refuse_event_kinds, [EventKind::Return, EventKind::ShiftOpened]);
        assert!(parse(&["--admin-token", "a"]).unwrap().refuse_event_kinds.is_empty());
        assert!(invalid(&["--admin-token", "a", "--refuse-event-kind", "refund"]).contains("refund"));
        assert!(invalid(&["--admin-token", "a", "--refuse-event-kind", "unknown"]).contains("unknown"));
        match parse(&["--help"]) {
            Err(ConfigError::Display(help)) => assert!(!help.contains("refuse"), "{help}"),
            other => panic!("expected the help text, got {other:?}"),
        }
    }

    #[test]
    fn tiny_body_limits_are_rejected() {
        assert!(invalid(&["--admin-token", "a", "--body-limit", "10"]).contains("body-limit"));
    }
}
