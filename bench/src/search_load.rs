//! `colmena-bench search-load`: how long does a till wait for `GET /products/search`?
//!
//! One client, one request at a time (a cashier typing), over a branch booted from
//! `colmena-bench catalog` (names like "Azúcar rubia Costeño 1 kg"). Each search is
//! followed by `GET /inventory/{id}` — one DashMap lookup behind the same HTTP stack,
//! authentication and JSON — as the baseline measured in the same run, so the ratio says
//! what the search itself costs whatever this machine's loopback and HTTP overhead are.
//! Latencies are measured at the client, so they bound the server's time from above.
//!
//! The queries mix the cases a till meets: a common word (many hits, the scan stops at
//! `limit`), accents typed or not, a brand and size, a product id, a short prefix, and a
//! word no product has (the whole index is scanned: the worst case).
use super::catalog::{BRANDS, KINDS};
use super::search_index::percentile;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The branch's base URL.
    #[arg(long)]
    branch: String,
    /// Bearer token (the POS token).
    #[arg(long, env = "COLMENA_POS_TOKEN", hide_env_values = true)]
    pos_token: String,
    /// Products in the branch's catalog (`P1…PN`), for the baseline's ids.
    #[arg(long, default_value_t = 100_000)]
    products: u32,
    /// Searches to time (each followed by one baseline request).
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
}

/// The query strings, URL-encoded.
fn queries() -> Vec<String> {
    let mut q: Vec<String> = vec![
        "azucar".into(),
        "AZ%C3%9ACAR%20RUBIA".into(),
        "z%C3%BAc".into(),
        "costeno%201%20kg".into(),
        "leche%20gloria".into(),
        "p4242".into(),
        "ar".into(),
        "zzzz-ninguno".into(),
    ];
    q.extend(KINDS.iter().take(6).map(|k| enc(&k.to_lowercase())));
    q.extend(BRANDS.iter().take(6).map(|b| enc(&b.to_lowercase())));
    q
}

/// Percent-encodes everything but ASCII letters and digits.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn run(a: Args) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let qs = queries();
        let timed = |url: String| {
            let c = client.clone();
            let token = a.pos_token.clone();
            async move {
                let t = Instant::now();
                let r = c.get(&url).bearer_auth(token).send().await.map_err(|e| e.to_string())?;
                let ok = r.status().is_success();
                let body = r.bytes().await.map_err(|e| e.to_string())?;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if !ok {
                    return Err(format!("{url}: {}", String::from_utf8_lossy(&body)));
                }
                Ok::<(f64, usize), String>((ms, body.len()))
            }
        };
        // Warm-up: connections, caches, the first page of every query.
        for q in &qs {
            timed(format!("{}/products/search?q={q}", a.branch)).await?;
        }
        let (mut search, mut base, mut hits_bytes) = (Vec::<f64>::new(), Vec::<f64>::new(), 0usize);
        for i in 0..a.requests {
            let q = &qs[i % qs.len()];
            let (ms, n) = timed(format!("{}/products/search?q={q}", a.branch)).await?;
            search.push(ms);
            hits_bytes += n;
            let id = 1 + (i as u32 * 7919) % a.products.max(1);
            base.push(timed(format!("{}/inventory/P{id}", a.branch)).await?.0);
        }
        search.sort_by(|x, y| x.total_cmp(y));
        base.sort_by(|x, y| x.total_cmp(y));
        let (s50, s99) = (percentile(&search, 0.50), percentile(&search, 0.99));
        let (b50, b99) = (percentile(&base, 0.50), percentile(&base, 0.99));
        println!(
            "search-load: {} searches over {} products ({} queries, {} bytes of answers): search p50={s50:.3} p99={s99:.3} ms; \
             baseline GET /inventory/{{id}} p50={b50:.3} p99={b99:.3} ms; p99 ratio={:.2}",
            a.requests,
            a.products,
            qs.len(),
            hits_bytes,
            if b99 > 0.0 { s99 / b99 } else { 0.0 }
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_url_safe() {
        for q in queries() {
            assert!(
                q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'%' || b == b'-'),
                "{q}"
            );
        }
        assert_eq!(enc("winter's"), "winter%27s");
    }
}
