//! The cashier page's benchmark (run by `scripts/bench.sh`, figure P13; ignored by plain
//! `cargo test`): what the page weighs on the wire, how soon headless Chromium can use it on
//! localhost, and how long a scan takes to reach the basket with a big catalog.
//!
//! - **Weight**: `GET /` and every asset it names, with `Accept-Encoding: gzip`, summed as
//!   sent (the branch serves them gzipped).
//! - **Time to interactive**: the page sets `<html data-ready-ms>` to `performance.now()`
//!   (whose origin is the navigation's start) once its first screen is on and focused; read
//!   after the first load (empty cache) and after each of `COLMENA_PAGE_BENCH_LOADS` reloads.
//! - **Scan to basket**: a barcode typed into the search box and Enter dispatched, until the
//!   basket's rows change (a `MutationObserver`), timed in the page: the branch's barcode
//!   lookup over `COLMENA_PAGE_BENCH_PRODUCTS` products (default 100,000, fed to the branch
//!   by a stand-in central) plus the page's own work.
//!
//! Prints one `page-bench:` line per figure, which the script reads.
use crate::support::browser::{key, Browser};
use crate::support::fake_central::{user, FakeCentral};
use crate::support::*;
use fantoccini::key::Key;
use serde_json::json;
use std::time::Duration;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn barcode(i: usize) -> String {
    format!("775{i:010}")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Adds up the bytes of `/` and its assets as the branch sends them to a gzip client.
async fn page_weight(base: &str) -> (usize, usize, usize) {
    let c = client();
    let get = |path: String| {
        let c = c.clone();
        async move {
            let r = c.get(path).header("Accept-Encoding", "gzip").send().await.expect("GET");
            assert_eq!(r.status(), 200);
            r.bytes().await.expect("body").to_vec()
        }
    };
    let index = get(format!("{base}/")).await;
    let mut plain = flate2::read::GzDecoder::new(&index[..]);
    let mut html = String::new();
    std::io::Read::read_to_string(&mut plain, &mut html).expect("gzipped index");
    let assets: Vec<String> = html
        .split('"')
        .filter(|s| s.starts_with("/app/"))
        .map(str::to_string)
        .collect();
    let (mut gz, mut raw) = (index.len(), html.len());
    for a in &assets {
        let body = get(format!("{base}{a}")).await;
        gz += body.len();
        let mut d = flate2::read::GzDecoder::new(&body[..]);
        let mut out = Vec::new();
        raw += match std::io::Read::read_to_end(&mut d, &mut out) {
            Ok(n) => n,
            Err(_) => body.len(), // sent as is (too small to gain from gzip)
        };
    }
    (gz, raw, assets.len() + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench.sh runs it"]
async fn cashier_page_benchmark() {
    let products = env_num("COLMENA_PAGE_BENCH_PRODUCTS", 100_000);
    let loads = env_num("COLMENA_PAGE_BENCH_LOADS", 20);
    let scans = env_num("COLMENA_PAGE_BENCH_SCANS", 200);
    let mut feed = vec![user("ana", "cashier", &["CUS"], true, 1, "4821")];
    for i in 0..products {
        feed.push(
            json!({"kind": "product", "product_id": format!("P{i}"), "name": format!("Producto de prueba {i}"),
            "price_cents": 100 + (i % 900) as i64, "version": 1, "barcode": barcode(i)}),
        );
        feed.push(json!({"kind": "allocation", "product_id": format!("P{i}"), "quantity": 1000}));
    }
    let central = FakeCentral::start(feed).await;
    let dir = TempDir::new("page-bench");
    let branch = spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "300ms"]);
    let c = client();
    let last = barcode(products - 1);
    let url = branch.url.clone();
    eventually(Duration::from_secs(600), "the whole catalog at the branch", || async {
        let v = get_json(&c, &format!("{url}/products/search?barcode={last}"), POS_TOKEN).await;
        (v["products"][0]["stock"] == 1000).then_some(())
    })
    .await;

    let (gz, raw, files) = page_weight(&branch.url).await;
    println!(
        "page-bench: weight gzip_bytes={gz} raw_bytes={raw} files={files} gzip_kb={:.1}",
        gz as f64 / 1024.0
    );

    let Some(b) = Browser::start("page-bench").await else {
        return;
    };
    let page = format!("{}/", branch.url);
    let ready = "return Number(document.documentElement.dataset.readyMs || 0)";
    b.open(&page).await;
    let cold = b.js(ready).await.as_f64().unwrap_or(f64::NAN);
    let mut warm = Vec::new();
    for _ in 0..loads {
        b.client.refresh().await.expect("reload");
        warm.push(
            b.until("ready", Duration::from_secs(10), ready)
                .await
                .as_f64()
                .unwrap_or(f64::NAN),
        );
    }
    warm.sort_by(f64::total_cmp);
    println!(
        "page-bench: tti cold_ms={cold:.0} warm_p50_ms={:.0} warm_max_ms={:.0} loads={loads}",
        percentile(&warm, 0.5),
        percentile(&warm, 1.0)
    );

    b.type_into("#login-user", "ana").await;
    b.type_into("#login-pin", &format!("4821{}", key(Key::Enter))).await;
    b.on_screen("open").await;
    b.type_into("#open-float", &format!("0{}", key(Key::Enter))).await;
    b.on_screen("sell").await;
    let script = r#"
        const [code, done] = arguments;
        const input = document.getElementById('search');
        const rows = document.getElementById('basket-lines');
        const t0 = performance.now();
        const obs = new MutationObserver(() => {
          if (rows.querySelector(`tr[data-product]`)) { obs.disconnect(); done(performance.now() - t0); }
        });
        obs.observe(rows, {childList: true, subtree: true, attributes: true});
        input.value = code;
        input.dispatchEvent(new Event('input', {bubbles: true}));
        input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
    "#;
    let mut took = Vec::new();
    for n in 0..scans {
        // An empty basket before each scan: every scan adds a new line.
        b.js("document.getElementById('clear').click(); return true").await;
        let code = barcode(fastrand::usize(..products));
        let v = b
            .client
            .execute_async(script, vec![json!(code)])
            .await
            .unwrap_or_else(|e| panic!("scan {n}: {e}"));
        took.push(v.as_f64().unwrap_or(f64::NAN));
    }
    took.sort_by(f64::total_cmp);
    println!(
        "page-bench: scan products={products} scans={scans} p50_ms={:.1} p95_ms={:.1} max_ms={:.1}",
        percentile(&took, 0.5),
        percentile(&took, 0.95),
        percentile(&took, 1.0)
    );
    b.close().await;
    central.stop().await;
}
