//! A mutation fuzzer that runs on stable Rust (no nightly, no sanitizer runtime needed).
//!
//! Inputs are real client frames (`tests/fuzz/seeds`, captured by `scripts/fuzz-seeds` from librdkafka and
//! kafka-python sessions) mutated by a seeded xorshift generator: bit flips, byte and integer overwrites
//! with boundary values, insertions, deletions, truncation, splices of two seeds. Each input goes through
//! the broker's request path in process (header checks, decoding, the handler, encoding, on a broker with
//! a scratch data directory) and, as a record set, through the storage decoders a consumer and compaction
//! use (batch validation, bounded decompression, record parsing). A panic in either is a finding; an abort
//! (allocation failure, stack overflow) ends the run, so finishing means none happened. Requests that wait
//! (long polls, joins) are cut off after a short deadline: waiting is not a bug.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::dispatch::{dispatch, Caller};
use crate::request::Reply;

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub inputs: u64,
    pub answered: u64,
    pub closed: u64,
    pub timed_out: u64,
    /// Inputs that made the request path or a decoder panic (saved to the findings directory).
    pub panics: u64,
    pub elapsed: Duration,
    pub peak_rss_kb: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    #[error("no seed frames in {0}")]
    NoSeeds(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the broker under test: {0}")]
    Broker(String),
}

/// xorshift64*: small, fast and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    -0x8000,
    0xffff,
    0x7fff_ffff,
    -0x8000_0000,
    0xffff_ffff,
    i64::MAX,
    i64::MIN,
];

/// One mutation of `input` (a frame without its length prefix), possibly splicing in `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                if let Some(b) = out.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 if len > 0 => {
                let at = rng.below(len);
                if let Some(b) = out.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
            2 if len >= 8 => {
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let at = rng.below(len - width + 1);
                let v = INTERESTING[rng.below(INTERESTING.len())].to_be_bytes();
                if let (Some(dst), Some(src)) = (out.get_mut(at..at + width), v.get(8 - width..)) {
                    dst.copy_from_slice(src);
                }
            }
            3 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let fill: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, fill);
            }
            4 if len > 1 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                out.drain(at..at + n);
            }
            5 if len > 0 => out.truncate(rng.below(len)),
            6 if !other.is_empty() => {
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                let n = 1 + rng.below(other.len() - from);
                out.truncate(at);
                out.extend_from_slice(other.get(from..from + n).unwrap_or_default());
            }
            _ if len >= 4 => {
                // Keep the header (api key, version) mostly intact but vary the version.
                let v = rng.below(20) as i16;
                if let Some(dst) = out.get_mut(2..4) {
                    dst.copy_from_slice(&v.to_be_bytes());
                }
            }
            _ => {}
        }
    }
    out
}

/// Reads every `*.bin` seed frame (without length prefix) from `dir`.
pub fn load_seeds(dir: &Path) -> Result<Vec<Vec<u8>>, FuzzError> {
    let io = |source| FuzzError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()
        .map_err(io)?;
    if seeds.is_empty() {
        return Err(FuzzError::NoSeeds(dir.display().to_string()));
    }
    Ok(seeds)
}

/// A broker on a scratch directory with limits that keep a long run's disk use small.
fn scratch_broker(data_dir: &Path) -> Result<Broker, FuzzError> {
    let mut config = BrokerConfig::default();
    config.data_dir = data_dir.to_path_buf();
    for (k, v) in [
        ("max.broker.partitions", "200"),
        ("max.partitions.per.request", "50"),
        ("group.initial.rebalance.delay.ms", "0"),
        ("log.segment.bytes", "1048576"),
    ] {
        config
            .set(k, v)
            .map_err(|e| FuzzError::Broker(e.to_string()))?;
    }
    Broker::open(config, "127.0.0.1".into(), 9092).map_err(|e| FuzzError::Broker(e.to_string()))
}

/// The storage decoders a consumer, compaction and the produce path run on a record set.
fn decode_records(bytes: &[u8]) {
    let Ok(batches) = runnel_storage::batch::split_validated(bytes) else {
        // Framing refused: still try the record decoders on what looks like a header.
        if let Ok(h) = runnel_storage::batch::BatchHeader::parse(bytes) {
            decode_batch(bytes, &h);
        }
        return;
    };
    for (pos, h) in batches {
        if let Some(one) = bytes.get(pos..pos + h.total_len()) {
            decode_batch(one, &h);
        }
    }
}

/// Both record decoders on one batch: the produce path's walk and the consumer's full read.
fn decode_batch(batch: &[u8], h: &runnel_storage::batch::BatchHeader) {
    let _ = runnel_storage::records::check_records(batch, h, 1 << 20);
    let _ = runnel_storage::records::read_records(&Bytes::copy_from_slice(batch), h);
}

/// Runs `inputs` mutated inputs from `seeds`; saves panicking inputs to `findings` (if given). `progress`
/// is called now and then with the inputs done so far.
pub fn run(
    seeds: &[Vec<u8>],
    inputs: u64,
    seed: u64,
    findings: Option<&Path>,
    mut progress: impl FnMut(&Report),
) -> Result<Report, FuzzError> {
    if seeds.is_empty() {
        return Err(FuzzError::NoSeeds("the seed list".into()));
    }
    let scratch = tempfile::tempdir().map_err(|source| FuzzError::Io {
        path: "temporary directory".into(),
        source,
    })?;
    let broker = Arc::new(scratch_broker(scratch.path())?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| FuzzError::Broker(e.to_string()))?;
    // Panics are expected findings: keep their messages out of the output, count them instead.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caller = Arc::new(Caller {
        peer: SocketAddr::from(([127, 0, 0, 1], 1)),
        listener: Arc::clone(&broker.internal_listener),
        principal: Arc::new(crate::security::Principal::anonymous()),
    });
    let mut rng = Rng(seed | 1);
    let mut report = Report::default();
    let started = Instant::now();
    for i in 0..inputs {
        let base = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, other);
        let frame = Bytes::from(input.clone());
        let b = Arc::clone(&broker);
        let c = Arc::clone(&caller);
        let outcome = runtime.block_on(async move {
            let task = tokio::spawn(async move { dispatch(&b, frame, &c).await.0 });
            let abort = task.abort_handle();
            match tokio::time::timeout(Duration::from_millis(20), task).await {
                Ok(Ok(reply)) => Ok(Some(reply)),
                Ok(Err(e)) if e.is_panic() => Err(()),
                Ok(Err(_)) => Ok(None),
                Err(_) => {
                    abort.abort();
                    Ok(None)
                }
            }
        });
        let decoders_panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            // The body after a typical header, and the whole input, as record sets.
            decode_records(input.get(input.len().min(40)..).unwrap_or_default());
            decode_records(&input);
        }))
        .is_err();
        report.inputs += 1;
        match outcome {
            Ok(Some(Reply::Frame(_) | Reply::Nothing)) => report.answered += 1,
            Ok(Some(Reply::Close(_) | Reply::FrameThenClose(..))) => report.closed += 1,
            Ok(None) => report.timed_out += 1,
            Err(()) => {}
        }
        if outcome.is_err() || decoders_panicked {
            report.panics += 1;
            if let Some(dir) = findings {
                let _ = std::fs::create_dir_all(dir);
                let _ = std::fs::write(dir.join(format!("panic-{seed}-{i}.bin")), &input);
            }
        }
        if i % 10_000 == 0 {
            report.elapsed = started.elapsed();
            progress(&report);
        }
    }
    std::panic::set_hook(default_hook);
    report.elapsed = started.elapsed();
    report.peak_rss_kb = peak_rss_kb();
    Ok(report)
}

/// The process's peak resident set (VmHWM), in KiB; 0 where /proc is missing.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
