//! `fsync-probe`: the disk's durability floor. Writes 8 KiB and `fdatasync`s, N times, in
//! the directory the branch stores its data in, and prints the latency percentiles.
//!
//! A durable `/sell` cannot be answered before its group commit's fsync returns, so the
//! fsync p99 measured here, in the same run, is a floor under the branch's `/sell` p99
//! (figure P2) that no code change can lower; only a faster disk can.
//!
//! By default one thread appends, as the bench's P2 note assumes. `--rewrite` overwrites a
//! preallocated 16 MiB region instead (as the outbox's WAL does once it restarts), and
//! `--threads N` runs N such writers on the one file at once, to see whether the disk
//! overlaps concurrent fsyncs. `over_25ms` counts the stalls a p99 hides.
use clap::Args as ClapArgs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Directory to write the probe file in (the filesystem under test).
    #[arg(long)]
    dir: std::path::PathBuf,
    /// Number of write + fdatasync rounds (in all, over every thread).
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Overwrite a preallocated region instead of appending.
    #[arg(long)]
    rewrite: bool,
    /// Writers at once on the same file (implies --rewrite when above 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    threads: u32,
}

const BLOCK: usize = 8192;
const REGION_BLOCKS: u64 = 2048; // 16 MiB

pub fn run(a: Args) -> Result<(), String> {
    let path = a.dir.join("fsync-probe.bin");
    let threads = a.threads as usize;
    let rewriting = a.rewrite || threads > 1;
    let per_thread = a.count.max(1).div_ceil(threads);
    let started = Instant::now();
    let lat_us = if rewriting {
        rewrite(&path, threads, per_thread)
    } else {
        append(&path, per_thread)
    };
    let elapsed = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    let mut lat_us = lat_us?;
    lat_us.sort_by(|x, y| x.total_cmp(y));
    let pct = |p: f64| lat_us[((lat_us.len() as f64 * p) as usize).min(lat_us.len() - 1)] / 1000.0;
    println!(
        "fsync_ms count={} threads={} mode={} p50={:.3} p90={:.3} p99={:.3} p999={:.3} max={:.3} over_25ms={} fsyncs_per_s={:.0}",
        lat_us.len(),
        threads,
        if rewriting { "rewrite" } else { "append" },
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        lat_us[lat_us.len() - 1] / 1000.0,
        lat_us.iter().filter(|&&us| us > 25_000.0).count(),
        lat_us.len() as f64 / elapsed
    );
    Ok(())
}

fn append(path: &std::path::Path, count: usize) -> Result<Vec<f64>, String> {
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let buf = vec![0x5au8; BLOCK];
    let mut lat_us = Vec::with_capacity(count);
    for _ in 0..count {
        f.write_all(&buf).map_err(|e| format!("write: {e}"))?;
        lat_us.push(timed_fdatasync(&f)?);
    }
    Ok(lat_us)
}

/// One fdatasync of `f`, in microseconds.
fn timed_fdatasync(f: &std::fs::File) -> Result<f64, String> {
    let t = Instant::now();
    f.sync_data().map_err(|e| format!("fdatasync: {e}"))?;
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

fn rewrite(path: &std::path::Path, threads: usize, per_thread: usize) -> Result<Vec<f64>, String> {
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let buf = vec![0x5au8; BLOCK];
    for i in 0..REGION_BLOCKS {
        f.write_all_at(&buf, i * BLOCK as u64)
            .map_err(|e| format!("write: {e}"))?;
    }
    f.sync_all().map_err(|e| format!("fsync: {e}"))?;
    let results: Vec<Result<Vec<f64>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|id| {
                let (f, buf) = (&f, &buf);
                s.spawn(move || {
                    let mut lat_us = Vec::with_capacity(per_thread);
                    for i in 0..per_thread {
                        let block = (i * threads + id) as u64 % REGION_BLOCKS;
                        f.write_all_at(buf, block * BLOCK as u64)
                            .map_err(|e| format!("write: {e}"))?;
                        lat_us.push(timed_fdatasync(f)?);
                    }
                    Ok(lat_us)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a probe thread panicked".into())))
            .collect()
    });
    let mut all = Vec::with_capacity(threads * per_thread);
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}
