//! `colmena-bench stats …`: every number `scripts/bench.sh` prints is computed here, so the
//! script only starts processes, runs the load and saves the tools' raw output.
//!
//! Two kinds of subcommand:
//! - arithmetic on figures the script already holds (`median`, `ratio`, `round`, `max`,
//!   `diff`, `check`, `met`): arguments in, one line out (or an exit status for `check`);
//! - readers of a saved output (`wrk`, `oha`, `hist`, `rss`, `peak-rss`, `box-ticks`,
//!   `analysis`): a file or `/proc` in, and for the multi-valued ones `KEY=VALUE` lines the
//!   script loads into variables; an empty value means the tool did not print that figure.
//!
//! Invariants: the computations are the pure functions of the submodules, unit-tested on
//! captured tool outputs (`bench/fixtures/`); they keep the figures the script's former
//! `awk` produced (see [`num`]). Nothing here judges speed except `met`, which the table's
//! status column uses and which never judges a smoke run.

mod analysis;
mod hist;
mod num;
mod oha;
mod procfs;
mod wrk;

use clap::Subcommand;
use num::Cmp;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: StatsCommand,
}

#[derive(Subcommand, Debug)]
enum StatsCommand {
    /// Median of VALUES (odd count: the middle value as given; "n/a" for none).
    Median {
        /// Round to this many decimals (as bash's printf did) instead of printing it as is.
        #[arg(long)]
        decimals: Option<usize>,
        #[arg(allow_hyphen_values = true)]
        values: Vec<String>,
    },
    /// A ÷ B ("n/a" when B is 0).
    Ratio {
        a: String,
        b: String,
        #[arg(long, default_value_t = 2)]
        decimals: usize,
    },
    /// Each value rounded, space separated.
    Round {
        #[arg(long, default_value_t = 0)]
        decimals: usize,
        #[arg(allow_hyphen_values = true)]
        values: Vec<String>,
    },
    /// The largest value, as given.
    Max {
        #[arg(allow_hyphen_values = true)]
        values: Vec<String>,
    },
    /// TO − FROM, e.g. the seconds between two `date +%s.%N` readings.
    Diff {
        from: String,
        to: String,
        /// Round to this many decimals (default: the exact difference).
        #[arg(long)]
        decimals: Option<usize>,
    },
    /// Exit status 0 when `A CMP B` holds, 1 when it does not.
    Check { a: String, cmp: Cmp, b: String },
    /// The status column of a figure: VALUE against GOAL.
    Met {
        value: String,
        cmp: Cmp,
        goal: String,
        /// A smoke run: its numbers are never judged.
        #[arg(long)]
        quick: bool,
    },
    /// A wrk `--latency` report (and the run's CPU readings): KEY=VALUE lines.
    Wrk(WrkArgs),
    /// An oha `--no-tui` report: KEY=VALUE lines.
    Oha { report: PathBuf },
    /// A quantile of a Prometheus histogram in a saved /metrics page: KEY=VALUE lines.
    Hist {
        metrics: PathBuf,
        name: String,
        #[arg(long, default_value_t = 0.99)]
        quantile: f64,
        /// Also report the share of observations in buckets up to this bound (seconds).
        #[arg(long, default_value_t = 0.05)]
        bound: f64,
        /// Decimals of the quantile in milliseconds.
        #[arg(long, default_value_t = 3)]
        decimals: usize,
    },
    /// The box's CPU ticks from /proc/stat: "TOTAL IDLE".
    BoxTicks,
    /// A process's resident set: "X MiB (anonymous Y MiB)".
    Rss { pid: u32 },
    /// A process's peak resident set in MiB.
    PeakRss { pid: u32 },
    /// The hand-written analysis block of a previous BENCHMARKS.md (or a placeholder).
    Analysis { page: PathBuf },
}

#[derive(clap::Args, Debug)]
struct WrkArgs {
    report: PathBuf,
    /// bash's `time` of wrk (TIMEFORMAT='%U %S'), for wrk's own CPU per request.
    #[arg(long)]
    time: Option<PathBuf>,
    /// The server's utime+stime over the run, in clock ticks.
    #[arg(long)]
    server_ticks: Option<u64>,
    /// Clock ticks per second (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    hz: u64,
    /// /proc/stat's total and idle ticks before, then after the run.
    #[arg(long = "box", num_args = 4, value_names = ["TOTAL0", "IDLE0", "TOTAL1", "IDLE1"])]
    box_ticks: Option<Vec<u64>>,
}

pub fn run(a: Args) -> ExitCode {
    match execute(a.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("colmena-bench stats: {e}");
            ExitCode::from(2)
        }
    }
}

fn execute(command: StatsCommand) -> Result<ExitCode, String> {
    match command {
        StatsCommand::Median { decimals, values } => {
            let m = num::median(&values);
            match decimals {
                Some(d) if m != "n/a" => println!("{}", num::fixed_as_bash_printf(&m, d)),
                _ => println!("{m}"),
            }
        }
        StatsCommand::Ratio { a, b, decimals } => println!("{}", num::ratio(&a, &b, decimals)),
        StatsCommand::Round { decimals, values } => {
            let rounded: Vec<String> = values.iter().map(|v| num::fixed(num::awk_num(v), decimals)).collect();
            println!("{}", rounded.join(" "));
        }
        StatsCommand::Max { values } => println!("{}", num::max(&values).unwrap_or("n/a")),
        StatsCommand::Diff { from, to, decimals } => {
            let d = num::awk_num(&to) - num::awk_num(&from);
            match decimals {
                Some(places) => println!("{}", num::fixed(d, places)),
                None => println!("{d}"),
            }
        }
        StatsCommand::Check { a, cmp, b } => {
            return Ok(if cmp.holds(&a, &b) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        StatsCommand::Met {
            value,
            cmp,
            goal,
            quick,
        } => println!("{}", num::met(&value, cmp, &goal, quick)),
        StatsCommand::Wrk(w) => wrk_report(&w)?,
        StatsCommand::Oha { report } => {
            let run = oha::OhaRun::from_report(&read(&report)?);
            print_vars(&[
                ("P50", run.p50_ms),
                ("P99", run.p99_ms),
                ("RPS", run.rps),
                ("OK", run.created),
                ("OTHER_LINES", Some(run.other_lines.to_string())),
            ]);
        }
        StatsCommand::Hist {
            metrics,
            name,
            quantile,
            bound,
            decimals,
        } => {
            let h = hist::summarise(&read(&metrics)?, &name, quantile, bound);
            print_vars(&[
                ("QUANTILE_MS", Some(h.quantile_ms(decimals))),
                ("SHARE_PCT", Some(h.share_percent())),
                ("COUNT", Some(h.count.to_string())),
            ]);
        }
        StatsCommand::BoxTicks => {
            let (total, idle) =
                procfs::box_ticks(&read(Path::new("/proc/stat"))?).ok_or("no aggregate cpu line in /proc/stat")?;
            println!("{total} {idle}");
        }
        StatsCommand::Rss { pid } => println!("{}", procfs::rss_note(&proc_status(pid))),
        StatsCommand::PeakRss { pid } => println!("{}", procfs::peak_mib(&proc_status(pid))),
        StatsCommand::Analysis { page } => {
            // A page that cannot be read has no analysis to keep: the placeholder starts one.
            println!("{}", analysis::preserved(std::fs::read_to_string(page).ok().as_deref()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn wrk_report(w: &WrkArgs) -> Result<(), String> {
    let run = wrk::WrkRun::from_report(&read(&w.report)?);
    let cost = match (&w.server_ticks, w.box_ticks.as_deref()) {
        (Some(ticks), Some(&[t0, i0, t1, i1])) => Some(wrk::RunCost {
            server_ticks: *ticks,
            hz: w.hz,
            box_before: (t0, i0),
            box_after: (t1, i1),
        }),
        (Some(ticks), _) => Some(wrk::RunCost {
            server_ticks: *ticks,
            hz: w.hz,
            box_before: (0, 0),
            box_after: (0, 0),
        }),
        _ => None,
    };
    let generator = match &w.time {
        Some(path) => run.generator_cpu_us(&read(path)?),
        None => None,
    };
    let cpu = cost.as_ref().and_then(|c| run.server_cpu_us(c));
    let idle = cost.as_ref().and_then(wrk::idle_percent);
    print_vars(&[
        ("RPS", run.rps),
        ("P50", run.p50_ms),
        ("P99", run.p99_ms),
        ("REQUESTS", run.requests.map(|n| n.to_string())),
        ("NON2XX", Some(run.non2xx.to_string())),
        ("SOCKET_ERRORS", run.socket_errors),
        ("CPU_US", cpu),
        ("GEN_US", generator),
        ("IDLE", idle),
    ]);
    Ok(())
}

/// `KEY=VALUE` lines for the script's loader; a figure the tool did not print is empty.
fn print_vars(vars: &[(&str, Option<String>)]) {
    for (k, v) in vars {
        println!("{k}={}", v.as_deref().unwrap_or(""));
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A process's `/proc/PID/status`; empty (every field 0) when it is gone, as the report has
/// always shown a process that exited before it was measured.
fn proc_status(pid: u32) -> String {
    let path = format!("/proc/{pid}/status");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("colmena-bench stats: {path}: {e}");
        String::new()
    })
}
