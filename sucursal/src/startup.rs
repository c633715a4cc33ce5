//! Building and running a branch: `Application::build(settings)` → `addr()` →
//! `run_until_stopped(shutdown)`. Tests and `main` start it exactly the same way; only the
//! `shutdown` future differs (`telemetry::shutdown_signal()` in `main`, a channel in tests).
//!
//! Shutdown has one path: `shutdown` resolves → the HTTP server stops accepting and lets
//! in-flight requests finish (their sales commit) → the cancellation token stops the relay
//! loops → the writer commits whatever is queued and stops → the store is closed → exit 0.
use crate::app::AppState;
use crate::breaker::BreakerConfig;
use crate::config::Settings;
use crate::idempotency::Idempotency;
use crate::inventory::Inventory;
use crate::metrics::BranchMetrics;
use crate::outbox::{self, Job, OutboxState, WriterHandle};
use crate::relay::{self, Relay, RelaySettings};
use crate::routes::{self, PosToken};
use crate::store;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use colmena_shared::clock;
use colmena_shared::http::{json_config, not_found, observe, path_config, query_config};
use colmena_shared::wire::CatalogSeedItem;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Application {
    server: actix_web::dev::Server,
    addr: SocketAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    writer: WriterHandle,
    writer_thread: std::thread::JoinHandle<()>,
    checkpointer: colmena_shared::checkpoint::Checkpointer,
}

/// How often WAL frames are copied into the database file off the writer thread
/// ([`colmena_shared::checkpoint`]): keeps checkpoints out of `/sell`'s commits.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

fn load_catalog(path: &std::path::Path) -> Result<Vec<CatalogSeedItem>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--catalog {}: {e}", path.display()))?;
    let items: Vec<CatalogSeedItem> =
        serde_json::from_str(&text).map_err(|e| format!("--catalog {}: {e}", path.display()))?;
    let mut seen = std::collections::HashSet::new();
    for it in &items {
        colmena_shared::ids::check_text("name", &it.name, 1, 200)
            .map_err(|e| format!("--catalog {}: {e}", it.product_id))?;
        if !(0..=10_000_000_000).contains(&it.price_cents) || !(0..=1_000_000_000).contains(&it.stock) {
            return Err(format!(
                "--catalog {}: price_cents and stock must be non-negative integers",
                it.product_id
            ));
        }
        if !seen.insert(it.product_id.as_str().to_string()) {
            return Err(format!("--catalog: {} appears twice", it.product_id));
        }
    }
    Ok(items)
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, String> {
        let v = settings.validate()?;
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| format!("--data-dir {}: {e}", settings.data_dir.display()))?;
        let conn = store::open(&settings.data_dir).map_err(|e| format!("open store: {e}"))?;
        store::migrate(&conn).map_err(|e| format!("store: {e}"))?;
        let idem_since = clock::now_millis() - settings.idempotency_ttl.as_millis() as i64;
        let loaded = store::load(&conn, idem_since).map_err(|e| format!("load store: {e}"))?;
        let reader = store::open(&settings.data_dir).map_err(|e| format!("open store: {e}"))?;
        let checkpointer = colmena_shared::checkpoint::Checkpointer::start(
            store::open(&settings.data_dir).map_err(|e| format!("open store: {e}"))?,
            CHECKPOINT_EVERY,
        )
        .map_err(|e| format!("start the checkpoint thread: {e}"))?;
        tracing::info!(
            products = loaded.products.len(),
            last_seq = loaded.last_seq,
            acked_through = loaded.acked_through,
            pull_cursor = loaded.pull_cursor,
            "store loaded"
        );

        let inventory = Arc::new(Inventory::from_rows(loaded.products));
        let idempotency = Arc::new(Idempotency::load(loaded.idempotency));
        let outbox_state = Arc::new(OutboxState::default());
        outbox_state.last_seq.store(loaded.last_seq, Ordering::Release);
        outbox_state
            .acked_through
            .store(loaded.acked_through, Ordering::Release);
        outbox_state.pull_cursor.store(loaded.pull_cursor, Ordering::Release);
        let metrics = BranchMetrics::new().map_err(|e| format!("metrics: {e}"))?;

        let (writer, writer_thread) = outbox::spawn(outbox::WriterParts {
            conn,
            checkpoint_conn: store::open(&settings.data_dir).map_err(|e| format!("open store: {e}"))?,
            durability: Box::new(outbox::WalFile::for_db(&store::db_path(&settings.data_dir))),
            branch_id: v.branch_id.to_string(),
            inventory: inventory.clone(),
            idempotency: idempotency.clone(),
            state: outbox_state.clone(),
            fsync_duration: metrics.fsync_duration.clone(),
        })
        .map_err(|e| format!("writer thread: {e}"))?;

        if let Some(path) = &settings.catalog {
            let items = load_catalog(path)?;
            writer
                .submit(Job::Seed(items))
                .await
                .map_err(|e| format!("seed catalog: {e}"))?;
        }

        let relay_settings = RelaySettings {
            central_urls: v.central_urls.clone(),
            central_token: settings.central_token.clone(),
            breaker: BreakerConfig {
                failures: settings.breaker_failures,
                wait_min: settings.breaker_wait_min,
                wait_max: settings.breaker_wait_max,
            },
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
            retries: settings.sync_retries,
            batch_max_events: settings.batch_max_events,
            batch_max_bytes: settings.batch_max_bytes,
            linger: settings.relay_linger,
            pull_interval: settings.pull_interval,
            outbox_retention: settings.outbox_retention,
            idempotency_ttl: settings.idempotency_ttl,
        };
        let (endpoints, sync) = relay::build(&metrics, &relay_settings)?;
        let app = web::Data::new(AppState {
            branch_id: v.branch_id.clone(),
            inventory,
            idempotency,
            outbox: outbox_state,
            writer: writer.clone(),
            reader: Arc::new(Mutex::new(reader)),
            metrics: metrics.clone(),
            sync,
            backups: colmena_shared::backup::Backups::new(
                settings
                    .backup_dir
                    .clone()
                    .unwrap_or_else(|| settings.data_dir.join("backups")),
                "sucursal",
                settings.backups_keep,
            ),
        });
        let relay = Relay::new(app.clone(), endpoints, relay_settings);

        // Learn central's applied_through before the first sale, so a store restored from an
        // older copy never reuses a seq. Offline is fine: we sell anyway.
        match tokio::time::timeout(settings.startup_sync_timeout, relay.pull_once()).await {
            Ok(Ok(())) => tracing::info!("initial pull from central done"),
            Ok(Err(e)) => tracing::warn!(error = %e, "central not reachable at start; selling offline"),
            Err(_) => tracing::warn!("central did not answer within the start-up sync timeout; selling offline"),
        }

        let pos_token = web::Data::new(PosToken(settings.pos_token.clone()));
        let http_metrics = web::Data::new(metrics.http.clone());
        let body_limit = settings.body_limit;
        let app_for_server = app.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_for_server.clone())
                .app_data(pos_token.clone())
                .app_data(http_metrics.clone())
                .app_data(json_config(body_limit))
                .app_data(query_config())
                .app_data(path_config())
                .wrap(from_fn(routes::require_pos_token))
                .wrap(from_fn(observe))
                .configure(routes::configure)
                .default_service(web::to(not_found))
        })
        .workers(settings.workers)
        .disable_signals()
        .shutdown_timeout(8)
        .bind(&settings.listen)
        .map_err(|e| format!("--listen {}: {e}", settings.listen))?;
        let addr = *server.addrs().first().ok_or("no listen address")?;
        let server = server.run();

        let cancel = CancellationToken::new();
        let mut tasks = vec![
            tokio::spawn(relay.clone().run_push(cancel.clone())),
            tokio::spawn(relay.clone().run_pull(cancel.clone())),
            tokio::spawn(relay.run_housekeeping(cancel.clone())),
            tokio::spawn(colmena_shared::memory::trim_every(
                colmena_shared::memory::TRIM_EVERY,
                cancel.clone(),
            )),
        ];
        if let Some(every) = settings.backup_every {
            tasks.push(tokio::spawn(crate::routes::run_scheduled_backups(
                app.clone(),
                every,
                cancel.clone(),
            )));
        }
        drop(app);
        // Loading and seeding the catalog leave freed temporaries behind (every row as
        // Strings, the seed's events): hand them back to the OS (issue 8, P9).
        colmena_shared::memory::release_free_memory();
        Ok(Application {
            server,
            addr,
            cancel,
            tasks,
            writer,
            writer_thread,
            checkpointer,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until `shutdown` resolves (or the HTTP server ends on its own), then shuts
    /// down gracefully (see the module doc).
    pub async fn run_until_stopped(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), String> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            _ = shutdown => {
                tracing::info!("stop requested: finishing in-flight requests");
                handle.stop(true).await;
            }
            r = &mut server => {
                tracing::warn!(result = ?r, "HTTP server ended");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(9), server).await;
        self.cancel.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        // Everything queued before this point is committed before the writer stops.
        let _ = self.writer.submit(Job::Shutdown).await;
        let (writer_thread, checkpointer) = (self.writer_thread, self.checkpointer);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = writer_thread.join();
            checkpointer.stop();
        })
        .await;
        tracing::info!("branch stopped");
        Ok(())
    }
}
