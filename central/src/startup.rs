//! Building and running the server: `Application::build(settings)` → `port()` →
//! `run_until_stopped(shutdown)`.
//!
//! There is one way to stop: the `shutdown` future resolves (in the binary,
//! `telemetry::shutdown_signal()`, i.e. SIGTERM/SIGINT; in tests, a channel) → actix stops
//! accepting and lets in-flight requests finish → the store finishes its queued writes and
//! closes → `run_until_stopped` returns `Ok`, and the process exits 0. Nothing here is
//! process-global (the Prometheus registry is per instance), so several applications can
//! run in one process.
use crate::auth::{authenticate, Tokens};
use crate::config::Settings;
use crate::metrics::CentralMetrics;
use crate::routes;
use crate::routes::backups::CentralBackups;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{DatabaseUrl, Store};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use colmena_shared::http::{json_config, not_found, observe, path_config, query_config};
use colmena_shared::metrics::HttpMetrics;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long in-flight requests get to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub struct Application {
    server: Server,
    addr: SocketAddr,
    store: Arc<dyn Store>,
    backups: CentralBackups,
    backup_every: Option<Duration>,
    tls: Option<Arc<colmena_shared::tls::ReloadingCert>>,
}

impl Application {
    /// Opens the store (migrating it), registers metrics, binds the listener. Serving starts
    /// with [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        colmena_shared::tls::install_crypto_provider();
        let tls = settings.tls.load()?;
        let store: Arc<dyn Store> = match &settings.database {
            DatabaseUrl::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await??;
                Arc::new(store)
            }
            DatabaseUrl::Postgres(url) => Arc::new(
                PgStore::connect(url)
                    .await
                    .context("cannot open the PostgreSQL database")?,
            ),
        };
        let configured = settings.branch_tokens.iter().map(|t| t.branch.clone()).collect();
        store
            .ensure_branches(configured)
            .await
            .context("cannot record the configured branches")?;

        let registry = prometheus::Registry::new();
        let http_metrics = HttpMetrics::register(&registry)?;
        let mut metrics = CentralMetrics::register(&registry)?;
        metrics.transfer_overdue_after = settings.transfer_overdue_after;
        metrics.seed(&store.branches().await.context("cannot read the branches")?);

        let tokens = Tokens::new(
            settings.admin_token.clone(),
            settings
                .branch_tokens
                .iter()
                .map(|t| (t.branch.clone(), t.token.clone()))
                .collect(),
        );
        let listener =
            TcpListener::bind(settings.listen).with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;

        let store_data: web::Data<dyn Store> = web::Data::from(store.clone());
        let tokens = web::Data::new(tokens);
        let metrics = web::Data::new(metrics);
        let http_metrics = web::Data::new(http_metrics);
        let registry = web::Data::new(registry);
        let backups = CentralBackups(
            settings
                .backups_dir()
                .map(|dir| colmena_shared::backup::Backups::new(dir, "central", settings.backups_keep)),
        );
        let backups_data = web::Data::new(backups.clone());
        if !settings.refuse_event_kinds.is_empty() {
            let kinds: Vec<&str> = settings.refuse_event_kinds.iter().map(|k| k.as_str()).collect();
            tracing::warn!(kinds = %kinds.join(","), "refusing pushes with events of these kinds (--refuse-event-kind)");
        }
        let refused = web::Data::new(crate::domain::RefusedKinds(settings.refuse_event_kinds.clone()));
        if settings.skip_report_rollups {
            tracing::warn!("not keeping the sales reports' rollups (--skip-report-rollups): reports will be wrong");
        }
        crate::store::reports::skip_rollups(settings.skip_report_rollups);
        let zone = web::Data::new(crate::domain::reports::DefaultZone(settings.timezone.clone()));
        let (body_limit, push_limit) = (settings.body_limit, settings.push_body_limit());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(store_data.clone())
                .app_data(tokens.clone())
                .app_data(metrics.clone())
                .app_data(http_metrics.clone())
                .app_data(registry.clone())
                .app_data(backups_data.clone())
                .app_data(refused.clone())
                .app_data(zone.clone())
                .app_data(json_config(body_limit))
                .app_data(query_config())
                .app_data(path_config())
                .configure(|cfg| routes::configure(cfg, push_limit))
                .configure(crate::openapi::configure)
                .default_service(web::to(not_found))
                .wrap(from_fn(authenticate))
                .wrap(from_fn(observe))
        })
        .workers(settings.workers)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
        let server = match &tls {
            Some(cert) => server.listen_rustls_0_23(listener, cert.server_config())?,
            None => server.listen(listener)?,
        }
        .run();
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%addr, scheme, database = ?settings.database, branches = settings.branch_tokens.len(), "central ready");
        Ok(Application {
            server,
            addr,
            store,
            backups,
            backup_every: settings.backup_every,
            tls,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until `shutdown` resolves, then stops gracefully (see the module doc).
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let scheduled = self.backup_every.map(|every| {
            tokio::spawn(crate::routes::backups::run_scheduled(
                self.store.clone(),
                self.backups.clone(),
                every,
                cancel.clone(),
            ))
        });
        let reloader = self
            .tls
            .clone()
            .map(|cert| tokio::spawn(cert.reload_on_sighup(cancel.clone())));
        let trimmer = tokio::spawn(colmena_shared::memory::trim_every(
            colmena_shared::memory::TRIM_EVERY,
            cancel.clone(),
        ));
        let handle = self.server.handle();
        let stopper = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("stop requested: finishing in-flight requests");
            handle.stop(true).await;
        });
        let served = self.server.await;
        stopper.abort();
        cancel.cancel();
        let _ = trimmer.await;
        if let Some(task) = reloader {
            let _ = task.await;
        }
        if let Some(task) = scheduled {
            // A backup in progress finishes first: the file is only listed once complete.
            let _ = task.await;
        }
        self.store.close().await;
        tracing::info!("stopped");
        served.context("server failed")
    }
}
