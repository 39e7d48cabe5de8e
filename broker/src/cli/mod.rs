//! The everyday commands beside `serve`, named after Kafka's tools: topics, produce, consume, groups,
//! bench. Each talks to any Kafka-compatible cluster through the clients crate.

pub mod bench;
pub mod consume;
pub mod groups;
pub mod jobs;
pub mod produce;
pub mod time;
pub mod topics;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use runnel_clients::{ClientConfig, Cluster};

/// println! that returns the write error instead of panicking, so `runnel ... | head` ends quietly.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// Where to connect, shared by every client command.
#[derive(Args, Debug, Clone)]
pub struct Connect {
    /// Bootstrap broker(s), comma separated.
    #[arg(
        long,
        global = true,
        env = "RUNNEL_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    pub bootstrap: String,
    /// How long to wait for the cluster before giving up (connecting and each request).
    #[arg(
        long = "request-timeout-ms",
        global = true,
        default_value_t = 30_000,
        value_name = "MS"
    )]
    pub request_timeout_ms: u64,
}

impl Connect {
    pub async fn cluster(&self) -> anyhow::Result<Arc<Cluster>> {
        let config = ClientConfig::new(&self.bootstrap)
            .with_client_id("runnel-cli")
            .with_request_timeout(Duration::from_millis(self.request_timeout_ms));
        Cluster::connect(config)
            .await
            .with_context(|| format!("cannot connect to {}", self.bootstrap))
    }
}

/// Parses `key=value`.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not of the form key=value")),
    }
}

/// A progress line on stderr for long runs, only when stderr is a terminal so piped output stays clean.
pub fn progress(total: Option<u64>, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "{spinner} {msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})"
    } else {
        "{spinner} {msg} {pos} ({per_sec})"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    bar
}
