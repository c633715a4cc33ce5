//! `/admin/backups`: online backups of the branch's store, taken, listed, downloaded and
//! verified on demand (the schedule is [`crate::backup::run_scheduled_backups`]). A backup is
//! published only once everything in it is durable (see [`crate::backup`]).
use super::responses::{BackupIdErrors, CommonErrors};
use crate::app::AppState;
use crate::backup;
use crate::error::BranchError;
use actix_web::{web, HttpResponse};
#[allow(unused_imports)] // named only in the OpenAPI attributes
use colmena_shared::backup::VerifyResult;
use colmena_shared::backup::{off_thread, BackupError, BackupInfo, BackupList};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/backups")
            .route(web::post().to(create_backup))
            .route(web::get().to(list_backups)),
    )
    .service(web::resource("/admin/backups/{id}/download").route(web::get().to(download_backup)))
    .service(web::resource("/admin/backups/{id}/verify").route(web::post().to(verify_backup)));
}

/// An unknown id is the client's mistake (404); anything else is the disk's (503, with the
/// detail for the log only).
fn backup_error(e: BackupError) -> BranchError {
    match e {
        BackupError::NotFound(id) => BranchError::NotFound(format!("no backup {id:?}")),
        BackupError::Io(e) => BranchError::StorageUnavailable(format!("backup: {e}")),
        BackupError::Sqlite(e) => BranchError::StorageUnavailable(format!("backup: {e}")),
        BackupError::Invalid(m) => BranchError::StorageUnavailable(m),
    }
}

#[utoipa::path(
    post, path = "/admin/backups", tag = "operations",
    summary = "Take an online backup of the branch's store",
    responses(
        (status = 201, description = "The backup, complete with its checksum sidecar", body = BackupInfo),
        CommonErrors,
    )
)]
async fn create_backup(app: web::Data<AppState>) -> Result<HttpResponse, BranchError> {
    let info = backup::take_now(&app).await.map_err(backup_error)?;
    tracing::info!(id = %info.id, size = info.size_bytes, "backup created");
    Ok(HttpResponse::Created().json(info))
}

#[utoipa::path(
    get, path = "/admin/backups", tag = "operations",
    summary = "Every complete backup, oldest first",
    responses((status = 200, description = "The backups", body = BackupList), CommonErrors)
)]
async fn list_backups(app: web::Data<AppState>) -> Result<HttpResponse, BranchError> {
    let b = app.backups.clone();
    let list = off_thread(move || b.list()).await.map_err(backup_error)?;
    Ok(HttpResponse::Ok().json(BackupList { backups: list }))
}

#[utoipa::path(
    get, path = "/admin/backups/{id}/download", tag = "operations",
    summary = "Download a backup file",
    params(("id" = String, Path, description = "A backup id from the list", example = "sucursal-2026-11-23-160000")),
    responses(
        (status = 200, description = "The SQLite file, as an attachment", content_type = "application/octet-stream",
            body = Vec<u8>, headers(("Content-Disposition" = String, description = "attachment; filename=..."))),
        BackupIdErrors,
        CommonErrors,
    )
)]
async fn download_backup(app: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, BranchError> {
    let b = app.backups.clone();
    let id = id.into_inner();
    let (info, path) = off_thread(move || b.get(&id)).await.map_err(backup_error)?;
    colmena_shared::http::stream_file(&path, &info.file_name)
        .await
        .map_err(|e| BranchError::StorageUnavailable(format!("backup: {e}")))
}

#[utoipa::path(
    post, path = "/admin/backups/{id}/verify", tag = "operations",
    summary = "Re-check a backup's SHA-256 against its sidecar",
    params(("id" = String, Path, description = "A backup id from the list", example = "sucursal-2026-11-23-160000")),
    responses(
        (status = 200, description = "`ok` tells whether the file still has its recorded checksum", body = VerifyResult),
        BackupIdErrors,
        CommonErrors,
    )
)]
async fn verify_backup(app: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, BranchError> {
    let b = app.backups.clone();
    let id = id.into_inner();
    let r = off_thread(move || b.verify(&id)).await.map_err(backup_error)?;
    Ok(HttpResponse::Ok().json(r))
}
