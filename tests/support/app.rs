//! In-process services for tests (the zero-to-production `spawn_app`): central and any
//! number of branches run inside the test process, each on `127.0.0.1:0` with a fresh
//! data dir, built by the very `Application::build` their binaries call, from the same
//! flags the process tests pass ([`super::central_db_args`], [`super::branch_args`]).
//!
//! Invariants:
//! - Nothing a service keeps is process-global (each has its own Prometheus registry, store
//!   and listener), so several services share one test process safely.
//! - [`App::stop`] is graceful, the in-process twin of SIGTERM: it resolves the future given
//!   to `run_until_stopped` and awaits that task, so the store is closed when it returns.
//! - Dropping an [`App`] still asks it to stop, but cannot wait: tests that restart or read
//!   the data dir afterwards call [`App::stop`] first.
//! - A test that needs `kill -9`, a power cut, a real signal or a failpoint build uses the
//!   real binaries ([`super::Proc`]) instead.
//!
//! actix runs its own worker threads, but the services' background tasks (relay, backups,
//! memory trimming) and `run_until_stopped` run on the test's tokio runtime: use
//! `#[tokio::test(flavor = "multi_thread")]`.
use super::{branch_args, central_db_args, client, ADMIN_TOKEN, POS_TOKEN};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Clone)]
enum Kind {
    Central,
    Branch,
}

/// A service running in this process. `url`/`addr` have the same meaning as on
/// [`super::Proc`], so tests read the same either way.
pub struct App {
    pub name: String,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// `http://127.0.0.1:<port>` (`https://` when started with `--tls-cert`).
    pub url: String,
    /// The token this service's clients use: the admin token for central, the POS token for
    /// a branch.
    pub token: String,
    /// A client for this service (30 s timeout).
    pub client: reqwest::Client,
    kind: Kind,
    args: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), String>>>,
}

/// How many panics happened on actix's worker threads (`actix-server worker N`, where the
/// handlers run) in this process so far. A panicking handler shows a client no more than
/// a dropped connection (actix starts another worker), and in process there is no log to
/// grep: tests that must see no panic check this stays 0.
pub fn service_panics() -> usize {
    install_panic_counter();
    SERVICE_PANICS.load(Ordering::SeqCst)
}

static SERVICE_PANICS: AtomicUsize = AtomicUsize::new(0);

fn install_panic_counter() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("actix-server worker"))
            {
                SERVICE_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Central on an embedded SQLite file in `dir`, with branch tokens for `branches`; `extra`
/// are more flags, as for [`super::spawn_central`].
pub async fn spawn_central(dir: &Path, branches: &[&str], extra: &[&str]) -> App {
    let db = dir.join("central.db");
    spawn_central_db(&db.to_string_lossy(), branches, extra).await
}

/// Central on `database` (a file path or a `postgres://` URL).
pub async fn spawn_central_db(database: &str, branches: &[&str], extra: &[&str]) -> App {
    let args = central_db_args(database, branches, extra);
    App::start(format!("central-{}", fastrand::u32(..)), Kind::Central, args).await
}

/// A branch with its data in `dir/branch-<branch>`, syncing to `central_url`; `extra` are
/// flag/value pairs, as for [`super::spawn_branch`].
pub async fn spawn_branch(dir: &Path, branch: &str, central_url: &str, extra: &[&str]) -> App {
    let args = branch_args(dir, branch, central_url, extra);
    App::start(format!("branch-{branch}"), Kind::Branch, args).await
}

impl App {
    async fn start(name: String, kind: Kind, args: Vec<String>) -> App {
        install_panic_counter();
        let mut app = App {
            name,
            addr: String::new(),
            url: String::new(),
            token: match kind {
                Kind::Central => ADMIN_TOKEN.to_string(),
                Kind::Branch => POS_TOKEN.to_string(),
            },
            client: client(),
            kind,
            args,
            stop: None,
            task: None,
        };
        if let Err(e) = app.launch().await {
            panic!("{} did not start: {e}", app.name);
        }
        app
    }

    /// Builds the application from `self.args` and runs it on a task of this runtime.
    async fn launch(&mut self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender (the App dropped) stops the service too.
            let _ = rx.await;
        };
        let (addr, task) = match self.kind {
            Kind::Central => {
                let argv = std::iter::once("colmena-central".to_string()).chain(self.args.iter().cloned());
                let settings = colmena_central::config::Settings::parse_from_args(argv)
                    .map_err(|e| format!("central flags: {e:?}"))?;
                let app = colmena_central::startup::Application::build(settings)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let addr = app.addr();
                let task =
                    tokio::spawn(async move { app.run_until_stopped(shutdown).await.map_err(|e| format!("{e:#}")) });
                (addr, task)
            }
            Kind::Branch => {
                let argv = std::iter::once("colmena-sucursal".to_string()).chain(self.args.iter().cloned());
                let cli = <colmena_sucursal::config::Cli as clap::Parser>::try_parse_from(argv)
                    .map_err(|e| format!("branch flags: {e}"))?;
                let app = colmena_sucursal::startup::Application::build(cli.settings).await?;
                let addr = app.addr();
                (addr, tokio::spawn(app.run_until_stopped(shutdown)))
            }
        };
        self.addr = addr.to_string();
        let scheme = if self.args.iter().any(|a| a == "--tls-cert") {
            "https"
        } else {
            "http"
        };
        self.url = format!("{scheme}://{addr}");
        self.stop = Some(tx);
        self.task = Some(task);
        Ok(())
    }

    /// Stops gracefully (in-flight requests finish, the store closes) and waits for it; the
    /// result `run_until_stopped` returned. Stopping a stopped service is `Ok`.
    pub async fn stop(&mut self) -> Result<(), String> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| format!("{}: task failed: {e}", self.name))?,
            None => Ok(()),
        }
    }

    /// Stops gracefully, then starts again with the same flags on the same address. The old
    /// socket may linger for a moment, so the bind is retried a few times.
    pub async fn restart(&mut self) {
        if let Err(e) = self.stop().await {
            panic!("{} stopped with an error: {e}", self.name);
        }
        if let Some(i) = self.args.iter().position(|a| a == "--listen") {
            self.args[i + 1] = self.addr.clone();
        }
        let mut attempt = 0;
        while let Err(e) = self.launch().await {
            attempt += 1;
            assert!(attempt < 20, "{} could not restart: {e}", self.name);
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // Ask it to stop; the task finishes on the runtime (or dies with it).
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
