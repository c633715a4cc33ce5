//! `/admin/backups`: online backups of the embedded store (admin token only, as every
//! non-`/sync` route).
//!
//! A backup is a consistent copy taken with SQLite's backup API while central keeps
//! serving, recorded with its SHA-256 in a sidecar file ([`colmena_shared::backup`]), so it
//! can be verified later, downloaded, and restored offline with `colmena-central restore`.
//! On PostgreSQL every endpoint answers 501 and names the right tool (`pg_dump`): a
//! database server is backed up by its own means, not by one of many central instances.
use crate::error::CentralError;
use crate::store::{Store, StoreError};
use actix_web::{web, HttpResponse};
use colmena_shared::backup::{BackupError, BackupInfo, BackupList, Backups};
use tokio_util::sync::CancellationToken;

/// The backup directory of this central; `None` on PostgreSQL.
#[derive(Clone)]
pub struct CentralBackups(pub Option<Backups>);

const USE_PG_DUMP: &str = "this central runs on PostgreSQL: back the database up with pg_dump \
     (or base backups with WAL archiving) and restore with pg_restore; see DEPLOYMENT.md";

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/backups")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(web::resource("/admin/backups/{id}/download").route(web::get().to(download)))
    .service(web::resource("/admin/backups/{id}/verify").route(web::post().to(verify)));
}

fn backups(b: &CentralBackups) -> Result<Backups, CentralError> {
    b.0.clone()
        .ok_or_else(|| CentralError::NotImplemented(USE_PG_DUMP.into()))
}

fn backup_error(e: BackupError) -> CentralError {
    match e {
        BackupError::NotFound(id) => CentralError::NotFound(format!("no backup {id:?}")),
        BackupError::Io(e) => CentralError::Storage(StoreError::Database(format!("backup: {e}"))),
        BackupError::Sqlite(e) => CentralError::Storage(StoreError::Database(format!("backup: {e}"))),
        BackupError::Invalid(m) => CentralError::Storage(StoreError::Database(m)),
    }
}

/// Takes one backup (the endpoint and the schedule share it).
pub async fn take(store: &dyn Store, b: &CentralBackups) -> Result<BackupInfo, CentralError> {
    let backups = backups(b)?;
    match store.backup(backups).await {
        Some(r) => r.map_err(backup_error),
        None => Err(CentralError::NotImplemented(USE_PG_DUMP.into())),
    }
}

/// Runs `f` on the blocking pool: listing and hashing read files.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, CentralError> {
    web::block(f)
        .await
        .map_err(|e| CentralError::Storage(StoreError::Database(format!("backup task: {e}"))))?
        .map_err(backup_error)
}

async fn create(store: web::Data<dyn Store>, b: web::Data<CentralBackups>) -> Result<HttpResponse, CentralError> {
    let info = take(store.get_ref(), &b).await?;
    tracing::info!(id = %info.id, size = info.size_bytes, "backup created");
    Ok(HttpResponse::Created().json(info))
}

async fn list(b: web::Data<CentralBackups>) -> Result<HttpResponse, CentralError> {
    let backups = backups(&b)?;
    let list = blocking(move || backups.list()).await?;
    Ok(HttpResponse::Ok().json(BackupList { backups: list }))
}

async fn download(b: web::Data<CentralBackups>, id: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let backups = backups(&b)?;
    let id = id.into_inner();
    let (info, path) = blocking(move || backups.get(&id)).await?;
    colmena_shared::http::stream_file(&path, &info.file_name)
        .await
        .map_err(|e| CentralError::Storage(StoreError::Database(format!("backup: {e}"))))
}

async fn verify(b: web::Data<CentralBackups>, id: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let backups = backups(&b)?;
    let id = id.into_inner();
    let r = blocking(move || backups.verify(&id)).await?;
    Ok(HttpResponse::Ok().json(r))
}

/// Takes a backup every `every` until `cancel` fires.
pub async fn run_scheduled(
    store: std::sync::Arc<dyn Store>,
    b: CentralBackups,
    every: std::time::Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
        match take(store.as_ref(), &b).await {
            Ok(info) => tracing::info!(id = %info.id, "scheduled backup created"),
            Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
        }
    }
}
