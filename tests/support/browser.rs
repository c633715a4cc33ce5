//! A real browser for the cashier's page tests: Debian's `chromium`, headless, driven over
//! WebDriver by `fantoccini` through a `chromedriver` child started on a free port.
//!
//! Chromium is started with the background-networking features off: without them it keeps
//! trying to reach Google's services, which on a closed test network only floods it with
//! refused connections. Every browser gets a fresh profile directory, removed afterwards.
//!
//! A missing chromium or chromedriver fails the test (`scripts/test.sh` installs both as
//! root, as CI runs); `COLMENA_SKIP_BROWSER_TESTS=1` turns that into a printed `SKIPPED`,
//! for a developer's machine without them. `COLMENA_CHROMIUM` / `COLMENA_CHROMEDRIVER`
//! point at other binaries.
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The counter screen the page is designed for.
pub const WINDOW: (u32, u32) = (1366, 768);

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: super::TempDir,
    tag: String,
}

fn find_binary(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Where screenshots go: `target/screenshots/` beside the test binary's profile dir.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's own path");
    // target/<profile>/deps/<test> → target/screenshots
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target dir");
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at 1366×768, or `None` (after printing
    /// SKIPPED) when they are absent and `COLMENA_SKIP_BROWSER_TESTS` allows it.
    pub async fn start(tag: &str) -> Option<Browser> {
        let chromium = find_binary("COLMENA_CHROMIUM", &["/usr/lib/chromium/chromium", "/usr/bin/chromium"]);
        let driver = find_binary("COLMENA_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let banner = "!".repeat(78);
            eprintln!("{banner}\n!! chromium or chromedriver not found (apt-get install chromium chromium-driver;");
            eprintln!("!! scripts/test.sh installs them as root).\n{banner}");
            assert!(
                std::env::var_os("COLMENA_SKIP_BROWSER_TESTS").is_some(),
                "the cashier's page tests need chromium and chromium-driver; \
                 set COLMENA_SKIP_BROWSER_TESTS=1 to skip them on a machine without them"
            );
            eprintln!("!! SKIPPED: {tag} (COLMENA_SKIP_BROWSER_TESTS is set)");
            return None;
        };
        let port = super::free_port();
        let profile = super::TempDir::new(&format!("chromium-{tag}"));
        let log = profile.path().join("chromedriver.log");
        let log_file = std::fs::File::create(&log).expect("chromedriver log");
        let mut cmd = Command::new(&driver);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().expect("log")))
            .stderr(Stdio::from(log_file));
        // Its own process group, so the browser it starts is ended with it (see Drop).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
        let url = format!("http://127.0.0.1:{port}");
        let data_dir = profile.path().join("profile");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
                    "--disable-dev-shm-usage", "--lang=es-PE",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                    format!("--user-data-dir={}", data_dir.display()),
                ],
            },
        });
        let caps: serde_json::Map<String, Value> = match caps {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object literal"),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        // chromedriver takes a moment to listen; retry the session for up to 30 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "no WebDriver session from {}: {e}; log:\n{}",
                        driver.display(),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let b = Browser {
            client,
            driver: child,
            _profile: profile,
            tag: tag.to_string(),
        };
        b.fit_viewport().await;
        Some(b)
    }

    /// Sizes the window so that the page itself (the viewport) is [`WINDOW`]: the window
    /// size WebDriver sets includes the browser's own frame.
    async fn fit_viewport(&self) {
        let _ = self.client.set_window_size(WINDOW.0, WINDOW.1).await;
        let inner = self.js("return [window.innerWidth, window.innerHeight]").await;
        let (w, h) = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
        if w > 0 && h > 0 {
            let extra_w = u64::from(WINDOW.0).saturating_sub(w);
            let extra_h = u64::from(WINDOW.1).saturating_sub(h);
            let (ww, hh) = (u64::from(WINDOW.0) + extra_w, u64::from(WINDOW.1) + extra_h);
            let _ = self
                .client
                .set_window_size(
                    u32::try_from(ww).unwrap_or(WINDOW.0),
                    u32::try_from(hh).unwrap_or(WINDOW.1),
                )
                .await;
        }
    }

    /// Opens `url` and waits until the page says it is ready (`<html data-ready>`).
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
        self.until(
            "the page is ready",
            Duration::from_secs(15),
            "return document.documentElement.dataset.ready === 'true'",
        )
        .await;
    }

    /// Runs `script` (a function body) and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("execute script")
    }

    /// Polls `script` every 50 ms until it returns something truthy; returns it.
    pub async fn until(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.client.execute(script, vec![]).await.unwrap_or(Value::Null);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let screen = self.screen().await;
                let msgs = self
                    .js("return [...document.querySelectorAll('.msg, #toast')].map(e => e.textContent).join(' | ')")
                    .await;
                self.shot(&format!("{}-timeout", self.tag)).await;
                panic!("timed out after {timeout:?} waiting for: {what} (screen {screen}; messages: {msgs})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the page to show `screen` (`<main data-screen>`).
    pub async fn on_screen(&self, screen: &str) {
        let script = format!("return document.getElementById('screen').dataset.screen === '{screen}'");
        self.until(&format!("screen {screen}"), Duration::from_secs(15), &script)
            .await;
    }

    pub async fn screen(&self) -> String {
        self.js("return document.getElementById('screen').dataset.screen")
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Clears the field `css` and types `text` into it (as a person or a scanner would).
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    /// Types `text` wherever the focus is (the keyboard alone).
    pub async fn keys(&self, text: &str) {
        let el = self.client.active_element().await.expect("focused element");
        el.send_keys(text).await.expect("keys");
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// Saves a PNG of the window as `target/screenshots/<name>.png`.
    pub async fn shot(&self, name: &str) {
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        match self.client.screenshot().await {
            Ok(png) => {
                let _ = std::fs::write(dir.join(format!("{name}.png")), png);
            }
            Err(e) => eprintln!("screenshot {name}: {e}"),
        }
    }

    /// Ends the WebDriver session (the browser), then chromedriver.
    pub async fn close(self) {
        let Browser { client, .. } = &self;
        let _ = client.clone().close().await;
    }
}

/// A key as the character WebDriver sends for it.
pub fn key(k: fantoccini::key::Key) -> String {
    char::from(k).to_string()
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group holds chromedriver and the Chromium it started (process_group above).
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
