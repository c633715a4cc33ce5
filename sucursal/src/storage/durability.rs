//! Making commits durable: the syncer's one fsync per batch.
use std::path::{Path, PathBuf};

/// Makes every commit so far durable. [`WalFile`] in production; tests inject their own to
/// hold or fail the fsync.
pub trait Durability: Send + 'static {
    fn sync(&mut self) -> std::io::Result<()>;
}

/// fdatasyncs the store's WAL file. It is opened by path for every sync — an open(2) is
/// nothing beside the fsync — so it is always the WAL SQLite is writing. Its directory is
/// fsync'd once, so the WAL's own directory entry survives a power cut too.
///
/// The WAL is append-only between checkpoints, so one fdatasync covers every commit before
/// it; a power cut loses only unanswered batches, and SQLite's WAL recovery (frame
/// checksums) drops a half-written one whole.
pub struct WalFile {
    wal: PathBuf,
    dir: PathBuf,
    dir_synced: bool,
}

impl WalFile {
    /// For the SQLite database at `db`.
    pub fn for_db(db: &Path) -> WalFile {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        WalFile {
            wal: PathBuf::from(wal),
            dir: db.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")),
            dir_synced: false,
        }
    }
}

impl Durability for WalFile {
    fn sync(&mut self) -> std::io::Result<()> {
        if crate::failpoints::skip_fsync() {
            return Ok(());
        }
        std::fs::File::open(&self.wal)?.sync_data()?;
        if !self.dir_synced {
            std::fs::File::open(&self.dir)?.sync_all()?;
            self.dir_synced = true;
        }
        Ok(())
    }
}
