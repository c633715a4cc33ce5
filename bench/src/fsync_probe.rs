//! `fsync-probe`: the disk's durability floor. Appends 8 KiB and `fdatasync`s, N times, in
//! the directory the branch stores its data in, and prints the latency percentiles.
//!
//! A durable `/sell` cannot be answered before its group commit's fsync returns, so the
//! fsync p99 measured here, in the same run, is a floor under the branch's `/sell` p99
//! (figure P2) that no code change can lower; only a faster disk can.
use clap::Args as ClapArgs;
use std::io::Write;
use std::time::Instant;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Directory to write the probe file in (the filesystem under test).
    #[arg(long)]
    dir: std::path::PathBuf,
    /// Number of write + fdatasync rounds.
    #[arg(long, default_value_t = 2000)]
    count: usize,
}

pub fn run(a: Args) -> Result<(), String> {
    let path = a.dir.join("fsync-probe.bin");
    let mut f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let buf = vec![0x5au8; 8192];
    let mut lat_us: Vec<f64> = Vec::with_capacity(a.count);
    for _ in 0..a.count.max(1) {
        f.write_all(&buf).map_err(|e| format!("write: {e}"))?;
        let t = Instant::now();
        f.sync_data().map_err(|e| format!("fdatasync: {e}"))?;
        lat_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    lat_us.sort_by(|x, y| x.total_cmp(y));
    let pct = |p: f64| lat_us[((lat_us.len() as f64 * p) as usize).min(lat_us.len() - 1)] / 1000.0;
    println!(
        "fsync_ms count={} p50={:.3} p90={:.3} p99={:.3} p999={:.3} max={:.3}",
        lat_us.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        lat_us[lat_us.len() - 1] / 1000.0
    );
    Ok(())
}
