//! `runnel-fuzz`: the stable-Rust mutation fuzzer over the broker's request path and the record decoders
//! (see `runnel_broker::fuzz`). `scripts/fuzz` runs it for 10^7 inputs; the test suite runs 10^5.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Fuzz the broker's request path and record decoders with mutated client frames")]
struct Args {
    /// Directory of seed frames (`*.bin`, one request frame each, without the length prefix).
    #[arg(long, default_value = "tests/fuzz/seeds")]
    seeds: PathBuf,
    /// How many mutated inputs to run.
    #[arg(long, default_value_t = 10_000_000)]
    inputs: u64,
    /// The generator's seed (runs are reproducible from it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where inputs that panic are saved.
    #[arg(long, default_value = "target/fuzz-findings")]
    findings: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seeds = runnel_broker::fuzz::load_seeds(&args.seeds)
        .with_context(|| format!("loading seeds from {}", args.seeds.display()))?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report =
        runnel_broker::fuzz::run(&seeds, args.inputs, args.seed, Some(&args.findings), |r| {
            if tty {
                eprint!(
                    "\r{} / {} inputs, {:.0}/s, {} panics ",
                    r.inputs,
                    args.inputs,
                    r.inputs as f64 / r.elapsed.as_secs_f64().max(1e-9),
                    r.panics
                );
            }
        })?;
    if tty {
        eprintln!();
    }
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "inputs={} seeds={} seconds={:.1} inputs_per_s={:.0} answered={} closed={} timed_out={} panics={} aborts=0 peak_rss_mb={:.1}",
        report.inputs,
        seeds.len(),
        secs,
        report.inputs as f64 / secs,
        report.answered,
        report.closed,
        report.timed_out,
        report.panics,
        report.peak_rss_kb as f64 / 1024.0
    );
    if report.panics > 0 {
        anyhow::bail!(
            "{} inputs panicked; saved in {}",
            report.panics,
            args.findings.display()
        );
    }
    Ok(())
}
