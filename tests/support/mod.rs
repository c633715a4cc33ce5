//! Test support: start the real `colmena-central` / `colmena-sucursal` binaries the way an
//! operator does, on port 0 with a fresh data dir each, and talk to them over real HTTP.
//!
//! Each binary prints `listening on <addr>` on stdout once its socket is bound; `spawn`
//! waits for that line, so no test sleeps to guess readiness. Logs (stderr) go to a file in
//! the process's temp dir and are printed when a test fails to start a process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const POS_TOKEN: &str = "test-pos-token";

/// Token a branch uses towards central in tests.
pub fn branch_token(branch: &str) -> String {
    format!("tok-{branch}")
}

static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Path of a workspace binary. The test command builds every binary first; when a test is
/// run on its own, the binary is built here (once per test process) so it is never stale.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let path = dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if std::env::var_os("COLMENA_BINS_BUILT").is_none() && !built.iter().any(|b| b == name) {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", name, "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --bin {name} failed");
        built.push(name.to_string());
    }
    assert!(path.exists(), "binary {} not found", path.display());
    path
}

/// A temp dir removed on drop (kept when `COLMENA_KEEP_TMP` is set, for post-mortems).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::var_os("COLMENA_TEST_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let p = base.join(format!("colmena-{tag}-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("COLMENA_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A running service process.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub addr: String,
    pub url: String,
    bin: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
}

impl Proc {
    /// Starts `bin` with `args` (which should include `--listen 127.0.0.1:0` or a fixed port)
    /// and waits for it to report its address.
    pub fn spawn(name: &str, bin_name: &str, args: Vec<String>, envs: Vec<(String, String)>, log_dir: &Path) -> Proc {
        let mut p = Proc {
            name: name.to_string(),
            child: None,
            addr: String::new(),
            url: String::new(),
            bin: bin(bin_name),
            args,
            envs,
            log: log_dir.join(format!("{name}.log")),
        };
        p.start();
        p
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open log");
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log));
        cmd.env_remove("COLMENA_LISTEN").env_remove("COLMENA_DATABASE").env_remove("COLMENA_DATA_DIR");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => {
                self.addr = addr.clone();
                self.url = format!("http://{addr}");
                self.child = Some(child);
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "{} did not start (exit {:?}); log:\n{}",
                    self.name,
                    status,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `kill -9`: no shutdown hook runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit status (None if it had to be killed after `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again with the same arguments, on the same address it had.
    pub fn restart(&mut self) {
        self.kill9();
        let addr = self.addr.clone();
        if let Some(i) = self.args.iter().position(|a| a == "--listen") {
            self.args[i + 1] = addr;
        }
        // The old socket may linger for a moment; retry the bind a few times.
        for attempt in 0.. {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.start()));
            if r.is_ok() {
                return;
            }
            assert!(attempt < 20, "{} could not restart", self.name);
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn set_arg(&mut self, flag: &str, value: &str) {
        match self.args.iter().position(|a| a == flag) {
            Some(i) => self.args[i + 1] = value.to_string(),
            None => {
                self.args.push(flag.to_string());
                self.args.push(value.to_string());
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts central on an embedded SQLite file in `dir`, with branch tokens for `branches`.
pub fn spawn_central(dir: &Path, branches: &[&str], extra: &[&str]) -> Proc {
    let db = dir.join("central.db");
    spawn_central_db(dir, &db.to_string_lossy(), branches, extra)
}

/// Starts central on `database` (a file path or a `postgres://` URL).
pub fn spawn_central_db(dir: &Path, database: &str, branches: &[&str], extra: &[&str]) -> Proc {
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--database".into(),
        database.into(),
        "--admin-token".into(),
        ADMIN_TOKEN.into(),
    ];
    for b in branches {
        args.push("--branch-token".into());
        args.push(format!("{b}={}", branch_token(b)));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let name = format!("central-{}", fastrand::u32(..));
    Proc::spawn(&name, "colmena-central", args, vec![], dir)
}

/// Starts a branch with its data in `dir/<branch>`, syncing to `central_url`.
pub fn spawn_branch(dir: &Path, branch: &str, central_url: &str, extra: &[&str]) -> Proc {
    let data = dir.join(format!("branch-{branch}"));
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--branch-id".into(),
        branch.into(),
        "--data-dir".into(),
        data.to_string_lossy().into_owned(),
        "--central-url".into(),
        central_url.into(),
        "--central-token".into(),
        branch_token(branch),
        "--pos-token".into(),
        POS_TOKEN.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::spawn(&format!("branch-{branch}"), "colmena-sucursal", args, vec![], dir)
}

/// A URL on which nothing listens (a port bound then released).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A shared HTTP client for tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
