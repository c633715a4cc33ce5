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
use crate::housekeeping::Housekeeping;
use crate::idempotency::Idempotency;
use crate::inventory::Inventory;
use crate::metrics::BranchMetrics;
use crate::people::People;
use crate::relay::{self, Ledger, OutboxReader, Relay, RelayDeps, RelaySettings};
use crate::routes;
use crate::storage::{self, OutboxState, Seed, Shutdown, WriterHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use colmena_shared::clock;
use colmena_shared::http::{json_config, not_found, observe, path_config, query_config};
use colmena_shared::tls::ReloadingCert;
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

/// The store opened for a start: the writer's connection, what memory is rebuilt from, the
/// read connection, and the background checkpointer.
struct OpenedStore {
    conn: rusqlite::Connection,
    loaded: storage::db::Loaded,
    reader: rusqlite::Connection,
    checkpointer: colmena_shared::checkpoint::Checkpointer,
}

fn open_store(settings: &Settings) -> Result<OpenedStore, String> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("--data-dir {}: {e}", dir.display()))?;
    let open = || storage::open(dir).map_err(|e| format!("open store: {e}"));
    let conn = open()?;
    storage::db::migrate(&conn).map_err(|e| format!("store: {e}"))?;
    let idem_since = clock::now_millis() - settings.idempotency_ttl.as_millis() as i64;
    let loaded = storage::db::load(&conn, idem_since).map_err(|e| format!("load store: {e}"))?;
    let checkpointer = colmena_shared::checkpoint::Checkpointer::start(open()?, CHECKPOINT_EVERY)
        .map_err(|e| format!("start the checkpoint thread: {e}"))?;
    tracing::info!(
        products = loaded.products.len(),
        last_seq = loaded.last_seq,
        acked_through = loaded.acked_through,
        pull_cursor = loaded.pull_cursor,
        users = loaded.users.len(),
        "store loaded"
    );
    Ok(OpenedStore {
        conn,
        loaded,
        reader: open()?,
        checkpointer,
    })
}

fn relay_settings(settings: &Settings, central_urls: Vec<String>) -> RelaySettings {
    RelaySettings {
        central_urls,
        central_token: settings.central_token.clone(),
        central_ca: settings.central_ca.clone(),
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
    }
}

/// Binds the listener; serving starts when the returned server is polled.
fn http_server(
    settings: &Settings,
    app: web::Data<AppState>,
    tls: Option<&Arc<ReloadingCert>>,
) -> Result<(actix_web::dev::Server, SocketAddr), String> {
    let auth = web::Data::new(crate::auth::Auth {
        pos_token: settings.pos_token.clone(),
        admin_token: settings.admin_token.clone(),
        require_login: settings.require_login,
        people: app.people.clone(),
    });
    let http_metrics = web::Data::new(app.metrics.http.clone());
    let body_limit = settings.body_limit;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app.clone())
            .app_data(auth.clone())
            .app_data(http_metrics.clone())
            .app_data(json_config(body_limit))
            .app_data(query_config())
            .app_data(path_config())
            .wrap(from_fn(crate::auth::authorize))
            .wrap(from_fn(observe))
            .configure(routes::configure)
            .configure(crate::openapi::configure)
            .default_service(web::to(not_found))
    })
    .workers(settings.workers)
    .disable_signals()
    .shutdown_timeout(8);
    let server = match tls {
        Some(cert) => server.bind_rustls_0_23(&settings.listen, cert.server_config()),
        None => server.bind(&settings.listen),
    }
    .map_err(|e| format!("--listen {}: {e}", settings.listen))?;
    let addr = *server.addrs().first().ok_or("no listen address")?;
    Ok((server.run(), addr))
}

fn till_rules(settings: &Settings) -> crate::till::Rules {
    crate::till::Rules {
        return_window: settings.return_window,
        cashier_return_limit_cents: settings.cashier_return_limit,
    }
}

/// The relay's loops, housekeeping, memory trimming and scheduled backups, all stopped by
/// `cancel`.
fn spawn_background(
    relay: Arc<Relay>,
    app: web::Data<AppState>,
    settings: &Settings,
    cancel: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let housekeeping = Housekeeping {
        writer: app.writer.clone(),
        outbox_retention: settings.outbox_retention,
        idempotency_ttl: settings.idempotency_ttl,
        return_window: settings.return_window,
    };
    let mut tasks = vec![
        tokio::spawn(relay.clone().run_push(cancel.clone())),
        tokio::spawn(relay.run_pull(cancel.clone())),
        tokio::spawn(housekeeping.run(cancel.clone())),
        tokio::spawn(colmena_shared::memory::trim_every(
            colmena_shared::memory::TRIM_EVERY,
            cancel.clone(),
        )),
    ];
    if let Some(every) = settings.backup_every {
        tasks.push(tokio::spawn(crate::backup::run_scheduled_backups(
            app,
            every,
            cancel.clone(),
        )));
    }
    tasks
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, String> {
        let v = settings.validate()?;
        colmena_shared::tls::install_crypto_provider();
        let tls = settings.tls.load().map_err(|e| e.to_string())?;
        let store = open_store(&settings)?;
        let loaded = store.loaded;
        let inventory = Arc::new(Inventory::from_rows(loaded.products));
        let idempotency = Arc::new(Idempotency::load(loaded.idempotency));
        let outbox_state = Arc::new(OutboxState::default());
        outbox_state.last_seq.store(loaded.last_seq, Ordering::Release);
        outbox_state
            .acked_through
            .store(loaded.acked_through, Ordering::Release);
        outbox_state.pull_cursor.store(loaded.pull_cursor, Ordering::Release);
        outbox_state
            .users_catch_up_from
            .store(loaded.users_catch_up.0, Ordering::Release);
        outbox_state
            .users_catch_up_to
            .store(loaded.users_catch_up.1, Ordering::Release);
        let metrics = BranchMetrics::new().map_err(|e| format!("metrics: {e}"))?;
        let people = Arc::new(People::new(v.branch_id.as_str(), loaded.users, settings.session_ttl)?);
        let till = Arc::new(crate::till::Till::new(loaded.open_shifts, till_rules(&settings)));
        let transfers = Arc::new(crate::transfers::Transfers::new(loaded.transfers));

        let (writer, writer_thread) = storage::spawn(storage::WriterParts {
            conn: store.conn,
            checkpoint_conn: storage::open(&settings.data_dir).map_err(|e| format!("open store: {e}"))?,
            durability: Box::new(storage::WalFile::for_db(&storage::db_path(&settings.data_dir))),
            branch_id: v.branch_id.to_string(),
            inventory: inventory.clone(),
            idempotency: idempotency.clone(),
            state: outbox_state.clone(),
            people: people.clone(),
            till: till.clone(),
            transfers: transfers.clone(),
            fsync_duration: metrics.fsync_duration.clone(),
        })
        .map_err(|e| format!("writer thread: {e}"))?;
        if let Some(path) = &settings.catalog {
            let items = load_catalog(path)?;
            writer
                .submit(Seed(items))
                .await
                .map_err(|e| format!("seed catalog: {e}"))?;
        }

        let relay_settings = relay_settings(&settings, v.central_urls.clone());
        let (endpoints, sync) = relay::build(&metrics, &relay_settings)?;
        let backup_dir = settings
            .backup_dir
            .clone()
            .unwrap_or_else(|| settings.data_dir.join("backups"));
        let reader = Arc::new(Mutex::new(store.reader));
        // After the seed, so a first boot's catalog is searchable at once.
        let catalog =
            Arc::new(crate::catalog::Catalog::load(reader.clone()).map_err(|e| format!("load catalog: {e}"))?);
        let app = web::Data::new(AppState {
            branch_id: v.branch_id.clone(),
            inventory,
            idempotency,
            outbox: outbox_state,
            writer: writer.clone(),
            reader,
            metrics,
            sync,
            backups: colmena_shared::backup::Backups::new(backup_dir, "sucursal", settings.backups_keep),
            people,
            till,
            catalog,
            transfers,
        });
        let relay_deps = RelayDeps {
            branch_id: app.branch_id.clone(),
            outbox: OutboxReader::new(app.reader.clone()),
            ledger: Ledger::new(app.writer.clone()),
            state: app.outbox.clone(),
            metrics: app.metrics.clone(),
            sync: app.sync.clone(),
            catalog: app.catalog.clone(),
        };
        let relay = Relay::new(relay_deps, endpoints, relay_settings);

        // Learn central's applied_through before the first sale, so a store restored from an
        // older copy never reuses a seq. Offline is fine: we sell anyway.
        match tokio::time::timeout(settings.startup_sync_timeout, relay.pull_once()).await {
            Ok(Ok(())) => tracing::info!("initial pull from central done"),
            Ok(Err(e)) => tracing::warn!(error = %e, "central not reachable at start; selling offline"),
            Err(_) => tracing::warn!("central did not answer within the start-up sync timeout; selling offline"),
        }

        let (server, addr) = http_server(&settings, app.clone(), tls.as_ref())?;
        let cancel = CancellationToken::new();
        let mut tasks = spawn_background(relay, app, &settings, &cancel);
        if let Some(cert) = tls {
            tasks.push(tokio::spawn(cert.reload_on_sighup(cancel.clone())));
        }
        // Loading and seeding the catalog leave freed temporaries behind (every row as
        // Strings, the seed's events): hand them back to the OS.
        colmena_shared::memory::release_free_memory();
        Ok(Application {
            server,
            addr,
            cancel,
            tasks,
            writer,
            writer_thread,
            checkpointer: store.checkpointer,
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
        let _ = self.writer.submit(Shutdown).await;
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
