//! The everyday commands beside `serve`, named after Kafka's tools: topics, produce, consume, groups,
//! bench. Each talks to any Kafka-compatible cluster through the clients crate.

pub mod acls;
pub mod bench;
pub mod cluster;
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
    /// Client settings for a secured cluster, as Kafka's tools take them: a properties file with
    /// security.protocol, ssl.truststore.location, ssl.keystore.location, sasl.mechanism, sasl.jaas.config.
    #[arg(
        long = "command-config",
        global = true,
        env = "RUNNEL_COMMAND_CONFIG",
        value_name = "FILE"
    )]
    pub command_config: Option<std::path::PathBuf>,
}

impl Connect {
    pub async fn cluster(&self) -> anyhow::Result<Arc<Cluster>> {
        let mut config = ClientConfig::new(&self.bootstrap)
            .with_client_id("runnel-cli")
            .with_request_timeout(Duration::from_millis(self.request_timeout_ms));
        if let Some(path) = &self.command_config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --command-config {}", path.display()))?;
            let props = parse_properties(&text);
            let security = runnel_clients::security::Security::from_properties(&props)
                .with_context(|| format!("--command-config {}", path.display()))?;
            config = config.with_security(security);
        }
        Cluster::connect(config)
            .await
            .with_context(|| format!("cannot connect to {}", self.bootstrap))
    }
}

/// A Java properties file as Kafka's tools read one: `key=value` or `key: value` lines, `#` / `!` comments,
/// a trailing backslash continuing the line.
pub fn parse_properties(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut props = std::collections::BTreeMap::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if pending.is_empty() && (line.starts_with('#') || line.starts_with('!') || line.is_empty())
        {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':']).unwrap_or(entry.len());
        let (k, v) = entry.split_at(split);
        let v = v.get(1..).unwrap_or_default();
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    props
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
