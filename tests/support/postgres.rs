//! A private PostgreSQL cluster for tests, started from the server binaries the machine has
//! (`/usr/lib/postgresql/15/bin`, or `COLMENA_PG_BIN`), so no test depends on a database
//! someone else runs.
//!
//! - `initdb` into a temp dir, `pg_ctl start` on a free TCP port of 127.0.0.1 with its unix
//!   socket in the same temp dir: nothing outside that dir is touched.
//! - `initdb` refuses to run as root, so as root every server command runs as the `postgres`
//!   user (`runuser -u postgres --`), over a temp dir it owns.
//! - [`shared`] is one cluster per test binary (a `OnceLock`), and [`PgCluster::create_database`]
//!   gives each test a fresh database. A static is never dropped, so a watchdog shell stops
//!   that cluster and removes its dir once the test process has exited, however it exited.
//!   A cluster a test owns itself ([`PgCluster::start`]) is stopped on drop.
//! - TLS on, with a certificate from a private CA made for the cluster
//!   ([`super::tls::Pki`]); [`PgCluster::url`] asks for `sslmode=verify-full` against that
//!   CA, so every PostgreSQL test runs central over verified TLS, as a deployment should.
//! - `fsync=off`: a killed server process still leaves every committed write in the
//!   kernel's page cache, so durability across a process kill needs no fsync. The one test
//!   that pulls the power (tests/failpoints.rs) starts its own cluster with the server's
//!   defaults ([`PgCluster::start_durable_in`]), as the benchmark (scripts/bench.sh) does.
#![allow(dead_code)]

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where the PostgreSQL server binaries are.
pub fn pg_bin_dir() -> PathBuf {
    std::env::var_os("COLMENA_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// Whether this machine can run the PostgreSQL tests at all.
pub fn available() -> bool {
    pg_bin_dir().join("initdb").exists() && pg_bin_dir().join("pg_ctl").exists()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A running PostgreSQL cluster in its own temp dir.
pub struct PgCluster {
    dir: PathBuf,
    pub port: u16,
    as_postgres: bool,
    /// Whether drop stops it (false for the shared cluster, stopped by its watchdog).
    owned: bool,
    /// Server defaults (`fsync`, `full_page_writes` on) instead of the suite's `fsync=off`.
    durable: bool,
}

impl PgCluster {
    /// Initialises and starts a new cluster; stopped and removed on drop.
    pub fn start(tag: &str) -> PgCluster {
        // Under the system temp dir, not COLMENA_TEST_TMP: the `postgres` user must be able to
        // reach it, and a socket path must stay short (about 100 bytes at most).
        let dir = std::env::temp_dir().join(format!("colmena-pg-{tag}-{}-{}", std::process::id(), fastrand::u32(..)));
        PgCluster::start_at(dir, false)
    }

    /// A cluster in `dir` (which the `postgres` user must be able to reach, with a short
    /// path) running with the server's durable defaults, for the power-cut test. initdb
    /// runs with `--no-sync`: sync the file system before relying on it.
    pub fn start_durable_in(dir: PathBuf) -> PgCluster {
        PgCluster::start_at(dir, true)
    }

    fn start_at(dir: PathBuf, durable: bool) -> PgCluster {
        assert!(
            available(),
            "PostgreSQL server binaries not found in {} (set COLMENA_PG_BIN)",
            pg_bin_dir().display()
        );
        let as_postgres = is_root();
        std::fs::create_dir_all(&dir).expect("create the PostgreSQL temp dir");
        let mut c = PgCluster {
            dir,
            port: 0,
            as_postgres,
            owned: true,
            durable,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&c.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", c.dir.display());
        }
        c.make_tls_files();
        let data = c.data_dir();
        c.run_ok(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        // A port may be taken between choosing and binding it: try a few.
        for attempt in 0.. {
            c.port = free_port();
            if c.try_start() {
                break;
            }
            assert!(attempt < 5, "PostgreSQL did not start; log:\n{}", c.log_text());
        }
        c
    }

    /// The private CA's certificate (what `sslrootcert` names).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls").join("ca.pem")
    }

    /// A CA and a server certificate for 127.0.0.1 in `dir/tls`, readable by the server only
    /// (PostgreSQL refuses a key others can read).
    fn make_tls_files(&self) {
        use std::os::unix::fs::PermissionsExt;
        let pki = super::tls::Pki::new(&self.dir, "tls");
        std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
        if self.as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(self.dir.join("tls"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of the TLS files to postgres failed");
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("pg.log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `pg_ctl start` (waits until it accepts connections). False if it did not come up.
    pub fn try_start(&self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} {}-c max_connections=300 -c shared_buffers=64MB \
             -c ssl=on -c ssl_cert_file={tls}/server.pem -c ssl_key_file={tls}/server-key.pem",
            self.port,
            self.dir.display(),
            if self.durable {
                ""
            } else {
                "-c fsync=off -c full_page_writes=off "
            },
            tls = self.dir.join("tls").display(),
        );
        let data = self.data_dir();
        let log = self.log_path();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        )
    }

    /// Starts it again after [`PgCluster::stop`] or [`PgCluster::kill9`], on the same port.
    pub fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.try_start() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not restart; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `pg_ctl -m immediate stop`.
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run("pg_ctl", &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"]);
    }

    /// The postmaster's pid, from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// `kill -9` of the postmaster only, as a crash would. Its backends notice and exit; a
    /// restart runs crash recovery.
    pub fn kill9(&self) {
        if let Some(pid) = self.postmaster_pid() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            // Wait until the port is free again, so a restart can bind it.
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The URL of database `db`, over TLS verified against the cluster's CA.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=verify-full&sslrootcert={}",
            self.port,
            self.ca_file().display()
        )
    }

    /// Creates a new, empty database and returns its URL.
    pub fn create_database(&self, tag: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name: String = format!("t_{tag}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let out = Command::new(pg_bin_dir().join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", &name])
            .stdin(Stdio::null())
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    /// Runs a server command (as `postgres` when we are root); true on success.
    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let exe = pg_bin_dir().join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        // pg_ctl's server inherits our stdout/stderr unless told otherwise; it has its log.
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn run_ok(&self, tool: &str, args: &[&str]) {
        assert!(self.run(tool, args), "{tool} {args:?} failed");
    }

    /// Stops the cluster and removes its dir when the process `pid` has exited.
    fn watch(&self, pid: u32) {
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- {} -D {} -m immediate stop",
                pg_bin_dir().join("pg_ctl").display(),
                self.data_dir().display()
            )
        } else {
            format!(
                "{} -D {} -m immediate stop",
                pg_bin_dir().join("pg_ctl").display(),
                self.data_dir().display()
            )
        };
        let keep = std::env::var_os("COLMENA_KEEP_TMP").is_some();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; {}",
            if keep {
                String::new()
            } else {
                format!("rm -rf {}", self.dir.display())
            }
        );
        // Detached from the test's stdio, so the test runner does not wait for it.
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
            if std::env::var_os("COLMENA_KEEP_TMP").is_none() {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

/// The test binary's one cluster, started on first use.
pub fn shared() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let mut c = PgCluster::start("suite");
        c.owned = false;
        c.watch(std::process::id());
        c
    })
}

/// A fresh database on the shared cluster.
pub fn fresh_database(tag: &str) -> String {
    shared().create_database(tag)
}

/// The dir a cluster lives in (for logs in failure messages).
pub fn dir_of(c: &PgCluster) -> &Path {
    &c.dir
}

/// Which store a central under test runs on: the same tests run against both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    /// A fresh `--database` for one test: a file in `dir`, or a new database on the shared
    /// cluster.
    pub fn database(self, dir: &Path, tag: &str) -> String {
        match self {
            StoreKind::Sqlite => dir.join("central.db").to_string_lossy().into_owned(),
            StoreKind::Postgres => fresh_database(tag),
        }
    }
}

/// Runs each listed `async fn(StoreKind)` as a test on each store: `sqlite::name` and
/// `postgres::name`. Multi-threaded, so tests that race pushes really race.
#[allow(unused_macros)]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::StoreKind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::StoreKind::Postgres).await
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_stores;
