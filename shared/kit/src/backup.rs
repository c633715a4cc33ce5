//! Online backups of an embedded SQLite store, and offline restore (both services).
//!
//! A backup is a consistent copy taken with SQLite's online backup API from a read
//! connection (WAL: the writer is never blocked), written as
//! `backup-<service>-<YYYY-MM-DD-HHMMSS>.db` in the backup directory, with a sidecar
//! `<file>.json` holding its id, time, size and SHA-256. The sidecar is what `verify` and
//! `restore` check the file against, so a copy carried by hand keeps its checksum with it.
//!
//! Invariants: a backup appears in the list only once its file and sidecar are complete
//! (both written to a temporary name, fsync'd, then renamed); retention deletes the oldest
//! backups beyond `keep`, never the one just made.
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no such backup: {0}")]
    NotFound(String),
    #[error("backup I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Runs a backup operation (file hashing, listing, SQLite's backup API) on tokio's blocking
/// pool, so a request handler never blocks its worker on disk I/O.
pub async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(BackupError::Invalid(format!("the backup task failed: {e}"))))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(example = json!({"id": "sucursal-2026-11-23-160000", "service": "sucursal",
    "file_name": "backup-sucursal-2026-11-23-160000.db", "created_at": "2026-11-23T16:00:00Z",
    "size_bytes": 73728, "sha256": "9f2c5e0c3a4b1d7e8f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e"}))]
pub struct BackupInfo {
    pub id: String,
    pub service: String,
    pub file_name: String,
    pub created_at: String,
    pub size_bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct BackupList {
    pub backups: Vec<BackupInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VerifyResult {
    pub id: String,
    pub ok: bool,
    pub sha256_expected: String,
    pub sha256_actual: String,
}

#[derive(Debug, Clone)]
pub struct Backups {
    dir: PathBuf,
    service: String,
    keep: usize,
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, std::io::Error> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Backups {
    pub fn new(dir: PathBuf, service: &str, keep: usize) -> Backups {
        Backups {
            dir,
            service: service.to_string(),
            keep: keep.max(1),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn sidecar(&self, file_name: &str) -> PathBuf {
        self.dir.join(format!("{file_name}.json"))
    }

    /// Copies `src` (any connection to the live store) into a new backup file.
    pub fn create(&self, src: &Connection) -> Result<BackupInfo, BackupError> {
        self.copy(src)?.publish()
    }

    /// The first half of [`create`](Self::create): copies `src` into a partial file that
    /// nobody sees yet. A store that commits before it fsyncs (the branch's outbox) checks
    /// the copy with [`PartialBackup::open`] and waits until everything in it is durable
    /// before it [publishes](PartialBackup::publish) it; a backup must never hold a sale the
    /// live store could still lose to a power cut.
    pub fn copy(&self, src: &Connection) -> Result<PartialBackup, BackupError> {
        std::fs::create_dir_all(&self.dir)?;
        let now = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}-{:02}-{:02}-{:02}{:02}{:02}",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let mut id = format!("{}-{stamp}", self.service);
        let mut n = 1;
        while self.dir.join(format!("backup-{id}.db")).exists()
            || self.dir.join(format!("backup-{id}.db.partial")).exists()
        {
            n += 1;
            id = format!("{}-{stamp}-{n}", self.service);
        }
        let file_name = format!("backup-{id}.db");
        let partial = PartialBackup {
            backups: self.clone(),
            tmp: self.dir.join(format!("{file_name}.partial")),
            id,
            file_name,
            now,
            published: false,
        };
        {
            let mut dst = Connection::open(&partial.tmp)?;
            let backup = rusqlite::backup::Backup::new(src, &mut dst)?;
            // All pages in one step: one consistent read snapshot of the live store.
            backup.step(-1)?;
            drop(backup);
            // The copy carries the live store's WAL mode, so every open of it would make
            // `-wal`/`-shm` files beside it; a backup is one self-contained file.
            dst.pragma_update(None, "journal_mode", "DELETE")?;
        }
        Ok(partial)
    }

    /// Whether the sidecar at `path` describes a backup this directory made: a valid id, the
    /// file name derived from it, and the sidecar named after that file. A sidecar is a file
    /// on disk, not proof: one planted (or edited) with `"file_name": "/etc/shadow"` or
    /// `"../central.db"` would otherwise be downloaded, restored or deleted by retention.
    fn owns(&self, path: &Path, info: &BackupInfo) -> bool {
        is_valid_id(&info.id)
            && info.file_name == format!("backup-{}.db", info.id)
            && path
                .file_name()
                .is_some_and(|n| n.to_string_lossy() == format!("{}.json", info.file_name))
    }

    /// Every complete backup, oldest first.
    pub fn list(&self) -> Result<Vec<BackupInfo>, BackupError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for e in rd {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Ok(text) = std::fs::read(&p) {
                    if let Ok(info) = serde_json::from_slice::<BackupInfo>(&text) {
                        if self.owns(&p, &info) && self.dir.join(&info.file_name).exists() {
                            out.push(info);
                        }
                    }
                }
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn get(&self, id: &str) -> Result<(BackupInfo, PathBuf), BackupError> {
        if !is_valid_id(id) {
            return Err(BackupError::NotFound(id.to_string()));
        }
        let info = self
            .list()?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| BackupError::NotFound(id.to_string()))?;
        let path = self.dir.join(&info.file_name);
        Ok((info, path))
    }

    pub fn verify(&self, id: &str) -> Result<VerifyResult, BackupError> {
        let (info, path) = self.get(id)?;
        let actual = sha256_file(&path)?;
        Ok(VerifyResult {
            id: info.id,
            ok: actual == info.sha256,
            sha256_expected: info.sha256,
            sha256_actual: actual,
        })
    }

    fn apply_retention(&self) -> Result<(), BackupError> {
        let all = self.list()?;
        if all.len() > self.keep {
            for old in &all[..all.len() - self.keep] {
                let _ = std::fs::remove_file(self.dir.join(&old.file_name));
                let _ = std::fs::remove_file(self.sidecar(&old.file_name));
            }
        }
        Ok(())
    }
}

/// A copy taken by [`Backups::copy`], not yet in the list. Dropped unpublished, its file is
/// deleted.
pub struct PartialBackup {
    backups: Backups,
    tmp: PathBuf,
    id: String,
    file_name: String,
    now: time::OffsetDateTime,
    published: bool,
}

impl PartialBackup {
    /// The copy, read-only.
    pub fn open(&self) -> Result<Connection, BackupError> {
        Ok(Connection::open_with_flags(
            &self.tmp,
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)
    }

    /// Makes the copy durable, writes its sidecar and applies retention.
    pub fn publish(mut self) -> Result<BackupInfo, BackupError> {
        let b = &self.backups;
        let path = b.dir.join(&self.file_name);
        std::fs::File::open(&self.tmp)?.sync_all()?;
        std::fs::rename(&self.tmp, &path)?;
        self.published = true;
        let info = BackupInfo {
            id: self.id.clone(),
            service: b.service.clone(),
            file_name: self.file_name.clone(),
            created_at: crate::clock::format_rfc3339(self.now),
            size_bytes: std::fs::metadata(&path)?.len(),
            sha256: sha256_file(&path)?,
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|e| BackupError::Invalid(e.to_string()))?;
        write_durably(&b.sidecar(&self.file_name), &json)?;
        // The two renames are durable only once the directory is.
        std::fs::File::open(&b.dir)?.sync_all()?;
        b.apply_retention()?;
        Ok(info)
    }
}

impl Drop for PartialBackup {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.tmp);
            for side in ["-wal", "-shm", "-journal"] {
                let mut p = self.tmp.clone().into_os_string();
                p.push(side);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Offline restore: checks `file` against its sidecar checksum (or `expected_sha256`),
/// that it is an intact store of the right kind (`application_id`), then replaces
/// `target` with it. The replaced store is kept as `<target>.before-restore-<time>`, with
/// its WAL. Run it with the service stopped: the service holds its store open.
pub fn restore(
    file: &Path,
    target: &Path,
    application_id: i32,
    expected_sha256: Option<&str>,
) -> Result<BackupInfo, BackupError> {
    let sidecar = PathBuf::from(format!("{}.json", file.display()));
    let info: Option<BackupInfo> = std::fs::read(&sidecar)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let expected = match (expected_sha256, &info) {
        (Some(s), _) => s.to_ascii_lowercase(),
        (None, Some(i)) => i.sha256.clone(),
        (None, None) => {
            return Err(BackupError::Invalid(format!(
                "no checksum for {}: keep its {}.json beside it or pass --sha256",
                file.display(),
                file.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )))
        }
    };
    let actual = sha256_file(file)?;
    if actual != expected {
        return Err(BackupError::Invalid(format!(
            "checksum mismatch: expected {expected}, file has {actual}"
        )));
    }
    {
        let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        if app != application_id {
            return Err(BackupError::Invalid(format!(
                "{} is not a store of this service (application_id {app:#x})",
                file.display()
            )));
        }
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(BackupError::Invalid(format!("integrity check failed: {check}")));
        }
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if target.exists() {
        // The replaced store is kept whole: its WAL may hold committed transactions not yet
        // checkpointed into the main file, so it moves with it (SQLite opens
        // `<kept>-wal` with `<kept>`). Only the shared-memory index, rebuilt on open, goes.
        let stamp = crate::clock::now_millis();
        let kept = PathBuf::from(format!("{}.before-restore-{stamp}", target.display()));
        let wal = PathBuf::from(format!("{}-wal", target.display()));
        if wal.exists() {
            std::fs::rename(&wal, format!("{}-wal", kept.display()))?;
        }
        std::fs::rename(target, &kept)?;
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    let tmp = PathBuf::from(format!("{}.restoring", target.display()));
    std::fs::copy(file, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, target)?;
    Ok(info.unwrap_or(BackupInfo {
        id: String::new(),
        service: String::new(),
        file_name: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        created_at: String::new(),
        size_bytes: std::fs::metadata(target)?.len(),
        sha256: actual,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Connection {
        let c = Connection::open(dir.join("live.db")).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "application_id", 7).unwrap();
        c.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1),(2),(3);")
            .unwrap();
        c
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "colmena-backup-{tag}-{}-{}",
            std::process::id(),
            crate::clock::now_millis()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn backup_verify_restore_round_trip_and_retention_keeps_exactly_n() {
        let d = tmpdir("rt");
        let live = store(&d);
        let b = Backups::new(d.join("backups"), "test", 2);
        let first = b.create(&live).unwrap();
        assert!(b.verify(&first.id).unwrap().ok);
        for _ in 0..3 {
            b.create(&live).unwrap();
        }
        assert_eq!(b.list().unwrap().len(), 2, "retention keeps exactly 2");
        let last = b.list().unwrap().pop().unwrap();
        let path = b.dir().join(&last.file_name);
        let target = d.join("restored.db");
        restore(&path, &target, 7, None).unwrap();
        let n: i64 = Connection::open(&target)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        // Wrong kind of store.
        assert!(restore(&path, &d.join("x.db"), 8, None).is_err());
        // Corrupt one byte: verify says so and restore refuses.
        let mut bytes = std::fs::read(&path).unwrap();
        let i = bytes.len() / 2;
        bytes[i] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        assert!(!b.verify(&last.id).unwrap().ok);
        assert!(restore(&path, &d.join("y.db"), 7, None).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn restore_keeps_the_replaced_store_whole_with_the_transactions_only_its_wal_held() {
        let d = tmpdir("keep-wal");
        let live = store(&d);
        let b = Backups::new(d.join("backups"), "test", 2);
        let backup = b.create(&live).unwrap();
        drop(live);
        // The store a crash left behind: its last rows only in the WAL.
        let target = d.join("live.db");
        let c = Connection::open(&target).unwrap();
        c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        c.execute_batch("INSERT INTO t VALUES (4),(5);").unwrap();
        std::mem::forget(c); // no close, no checkpoint: as after kill -9
        assert!(PathBuf::from(format!("{}-wal", target.display())).exists());
        restore(&b.dir().join(&backup.file_name), &target, 7, None).unwrap();
        let kept = std::fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                let name = p.to_string_lossy();
                name.contains("before-restore") && !name.ends_with("-wal")
            })
            .expect("the replaced store is kept");
        let rows = |p: &Path| -> i64 {
            Connection::open(p)
                .unwrap()
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(&kept), 5, "the kept store has the rows its WAL held");
        assert_eq!(rows(&target), 3, "the restored store is the backup");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_planted_sidecar_naming_a_file_outside_its_backup_is_ignored() {
        let dir = tmpdir("planted");
        let b = Backups::new(dir.clone(), "test", 5);
        let outside = dir.parent().unwrap().join(format!("victim-{}.db", std::process::id()));
        std::fs::write(&outside, b"keep me").unwrap();
        for (id, file_name) in [
            ("evil", outside.to_string_lossy().into_owned()),
            ("evil2", "../victim.db".to_string()),
            ("evil3", "backup-other.db".to_string()),
        ] {
            let info = serde_json::json!({"id": id, "service": "test", "file_name": file_name,
                "created_at": "2026-11-23T16:00:00Z", "size_bytes": 7, "sha256": "x"});
            std::fs::write(dir.join(format!("backup-{id}.db.json")), info.to_string()).unwrap();
        }
        std::fs::write(dir.join("backup-other.db"), b"x").unwrap();
        assert!(b.list().unwrap().is_empty());
        assert!(matches!(b.get("evil"), Err(BackupError::NotFound(_))));
        let _ = std::fs::remove_file(&outside);
    }

    #[test]
    fn ids_that_could_escape_the_directory_are_not_found() {
        let d = tmpdir("ids");
        let b = Backups::new(d.clone(), "test", 3);
        assert!(matches!(b.get("../etc/passwd"), Err(BackupError::NotFound(_))));
        let _ = std::fs::remove_dir_all(&d);
    }
}
