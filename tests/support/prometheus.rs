//! A real Prometheus server for tests (the `prometheus` binary of the machine, see
//! [`super::dashboards::prometheus_tool`]): started on a free port with its data in a temp
//! dir, ready when `start` returns, killed on drop.
use super::dashboards::prometheus_tool;
use super::{free_port, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Prometheus server started by a test, killed on drop.
pub struct Prometheus {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `config` (run from the config's directory, as an operator would)
    /// and waits until it is ready.
    pub async fn start(config: &Path) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let log = dir.path().join("prometheus.log");
        let port = free_port();
        let child = Command::new(prometheus_tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(config.parent().expect("config dir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn prometheus");
        let mut p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let client = super::client_builder().build().expect("client");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", p.log_text());
            }
            if let Ok(r) = client.get(format!("{}/-/ready", p.url)).send().await {
                if r.status().is_success() {
                    return p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 30 s:\n{}",
                p.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes `config` to `dir/prometheus.yml` and starts Prometheus on it.
    pub async fn start_with(dir: &Path, config: &str) -> Prometheus {
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config).expect("write prometheus.yml");
        Prometheus::start(&cfg).await
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn api(&self, path: &str) -> Value {
        let r = reqwest::get(format!("{}{path}", self.url))
            .await
            .expect("prometheus api");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("json")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
