//! `/admin/backups`: online backups of the embedded store (admin token only, as every
//! non-`/sync` route).
//!
//! A backup is a consistent copy taken with SQLite's backup API while central keeps
//! serving, recorded with its SHA-256 in a sidecar file ([`colmena_shared::backup`]), so it
//! can be verified later, downloaded, and restored offline with `colmena-central restore`.
//! On PostgreSQL every endpoint answers 501 and names the right tool (`pg_dump`): a
//! database server is backed up by its own means, not by one of many central instances.
use super::responses::{AdminErrors, BackupIdErrors, NotOnPostgres};
use crate::error::CentralError;
use crate::store::{Store, StoreError};
use actix_web::{web, HttpResponse};
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::backup::VerifyResult;
use colmena_shared::backup::{off_thread, BackupError, BackupInfo, BackupList, Backups};
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

#[utoipa::path(
    post, path = "/admin/backups", tag = "operations",
    summary = "Take an online backup of central's embedded store (admin)",
    responses(
        (status = 201, description = "The backup, complete with its checksum sidecar", body = BackupInfo),
        AdminErrors,
        NotOnPostgres,
    )
)]
async fn create(store: web::Data<dyn Store>, b: web::Data<CentralBackups>) -> Result<HttpResponse, CentralError> {
    let info = take(store.get_ref(), &b).await?;
    tracing::info!(id = %info.id, size = info.size_bytes, "backup created");
    Ok(HttpResponse::Created().json(info))
}

#[utoipa::path(
    get, path = "/admin/backups", tag = "operations",
    summary = "Every complete backup, oldest first (admin)",
    responses(
        (status = 200, description = "The backups", body = BackupList),
        AdminErrors,
        NotOnPostgres,
    )
)]
async fn list(b: web::Data<CentralBackups>) -> Result<HttpResponse, CentralError> {
    let backups = backups(&b)?;
    let list = off_thread(move || backups.list()).await.map_err(backup_error)?;
    Ok(HttpResponse::Ok().json(BackupList { backups: list }))
}

#[utoipa::path(
    get, path = "/admin/backups/{id}/download", tag = "operations",
    summary = "Download a backup file (admin)",
    params(("id" = String, Path, description = "A backup id from the list", example = "central-2026-11-23-160000")),
    responses(
        (status = 200, description = "The SQLite file, as an attachment", content_type = "application/octet-stream",
            body = Vec<u8>, headers(("Content-Disposition" = String, description = "attachment; filename=..."))),
        AdminErrors,
        BackupIdErrors,
        NotOnPostgres,
    )
)]
async fn download(b: web::Data<CentralBackups>, id: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let backups = backups(&b)?;
    let id = id.into_inner();
    let (info, path) = off_thread(move || backups.get(&id)).await.map_err(backup_error)?;
    colmena_shared::http::stream_file(&path, &info.file_name)
        .await
        .map_err(|e| CentralError::Storage(StoreError::Database(format!("backup: {e}"))))
}

#[utoipa::path(
    post, path = "/admin/backups/{id}/verify", tag = "operations",
    summary = "Re-check a backup's SHA-256 against its sidecar (admin)",
    params(("id" = String, Path, description = "A backup id from the list", example = "central-2026-11-23-160000")),
    responses(
        (status = 200, description = "`ok` tells whether the file still has its recorded checksum", body = VerifyResult),
        AdminErrors,
        BackupIdErrors,
        NotOnPostgres,
    )
)]
async fn verify(b: web::Data<CentralBackups>, id: web::Path<String>) -> Result<HttpResponse, CentralError> {
    let backups = backups(&b)?;
    let id = id.into_inner();
    let r = off_thread(move || backups.verify(&id)).await.map_err(backup_error)?;
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
