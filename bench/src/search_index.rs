//! `colmena-bench search-index`: the branch's product search, timed where it runs — the
//! in-memory index of `GET /products/search` (docs/protocol.md, "Catalog at the branch").
//!
//! Builds the index of N products (Spanish grocery names with accents, one in ten with a
//! barcode), then runs each kind of query many times and prints the build time, the index's
//! heap size and each query's p50 / p99 / max in microseconds. The goal is p99 ≤ 1 ms of
//! server time for 100,000 products; the HTTP round trip adds the same as any GET.
use colmena_sucursal::catalog::Snapshot;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of products.
    #[arg(long, default_value_t = 100_000)]
    products: u32,
    /// Runs of each query.
    #[arg(long, default_value_t = 2_000)]
    runs: u32,
}

const WORDS: [&str; 12] = [
    "Azúcar rubia",
    "Arroz Costeño",
    "Leche evaporada",
    "Café tostado",
    "Fideo canuto",
    "Aceite vegetal",
    "Atún en trozos",
    "Galletas de soda",
    "Yogur de fresa",
    "Menestra pallar",
    "Papel higiénico",
    "Detergente limón",
];

fn rows(n: u32) -> Vec<(String, String, Option<String>)> {
    (0..n)
        .map(|i| {
            let name = format!("{} {} g", WORDS[i as usize % WORDS.len()], 100 + i % 900);
            let barcode = (i % 10 == 0).then(|| format!("{:013}", 7_750_000_000_000u64 + u64::from(i)));
            (format!("SKU-{i:06}"), name, barcode)
        })
        .collect()
}

/// The `p` quantile (0..=1) of an ascending sample; 0 for an empty one.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

pub fn run(a: Args) -> Result<(), String> {
    let started = Instant::now();
    let index = Snapshot::build(rows(a.products));
    println!(
        "build: {} products in {:.1} ms, index heap {:.1} MiB",
        index.len(),
        started.elapsed().as_secs_f64() * 1e3,
        index.heap_bytes() as f64 / (1024.0 * 1024.0)
    );
    let queries: [(&str, &str); 6] = [
        ("common word, first 20", "azucar"),
        ("accented, first 20", "CAFÉ"),
        ("one product by id", "SKU-054321"),
        ("rare: few matches", "limon 999"),
        ("no match: full scan", "quinua"),
        ("barcode", "7750000054320"),
    ];
    for (what, q) in queries {
        let mut times = Vec::with_capacity(a.runs as usize);
        let mut found = 0;
        for _ in 0..a.runs {
            let t = Instant::now();
            found = if q.bytes().all(|b| b.is_ascii_digit()) {
                index.find_barcode(q, |_| true).len()
            } else {
                index.find_text(q, 20, |_| true).len()
            };
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(|x, y| x.total_cmp(y));
        println!(
            "{what:<24} q={q:<16} hits {found:>3}  p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>7.1} µs",
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            percentile(&times, 1.0)
        );
    }
    Ok(())
}
