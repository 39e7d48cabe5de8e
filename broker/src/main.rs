//! The `runnel` binary: the command line edge, where configuration is gathered and errors become messages.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use runnel_broker::cli;
use runnel_broker::config::BrokerConfig;

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "Runnel: a Kafka-compatible streaming broker with an integrated stream processor",
    long_about = "Runnel serves the Kafka wire protocol: point existing Kafka producers and consumers at it.\n\
                  Start a broker with `runnel serve` (127.0.0.1:9092, data in ./runnel-data)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker.
    Serve(ServeArgs),
    /// Create, list, describe, alter and delete topics.
    Topics(cli::topics::TopicsArgs),
    /// Produce records from stdin or a file, one per line.
    Produce(cli::produce::ProduceArgs),
    /// Print records of a topic.
    Consume(cli::consume::ConsumeArgs),
    /// List, describe (with lag), reset and delete consumer groups.
    Groups(cli::groups::GroupsArgs),
    /// Measure produce and consume throughput and end-to-end latency.
    Bench(cli::bench::BenchArgs),
    /// Run stream-processing jobs against any Kafka-compatible cluster, list them, show their batches.
    Jobs(cli::jobs::JobsArgs),
    /// Add, list and remove ACLs (like kafka-acls.sh).
    Acls(cli::acls::AclsArgs),
    /// Look at a cluster (brokers on object storage and PostgreSQL) through its metadata database.
    Cluster(cli::cluster::ClusterArgs),
    /// Add, list and delete SCRAM users in a data directory, before a secured broker's first start.
    Users(cli::users::UsersArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on stdout).
    #[arg(long, env = "RUNNEL_LISTEN", value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address clients are told to connect to (defaults to the bound address).
    #[arg(long, env = "RUNNEL_ADVERTISED", value_name = "HOST:PORT")]
    advertised: Option<String>,
    /// Directory holding the logs and metadata.
    #[arg(long, env = "RUNNEL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file with Kafka broker keys (e.g. `num.partitions = 3`).
    #[arg(long, env = "RUNNEL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// A Kafka broker config key, e.g. --set log.retention.ms=60000 (repeatable). Each key can also be set
    /// as an environment variable: RUNNEL_ plus the key in upper case with dots as underscores.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Host a job in the broker, e.g. --job wordcount:input=lines,output=counts (repeatable; settings as in
    /// `runnel jobs run`, with interval.ms, max.rate.per.partition, instance.id, dead.letter.topic, ...).
    #[arg(long = "job", value_name = "NAME:KEY=VALUE,...")]
    jobs: Vec<String>,
    /// Serve Prometheus metrics (the broker's and its hosted jobs') on this address.
    #[arg(long = "metrics-listen", value_name = "HOST:PORT")]
    metrics_listen: Option<String>,
    /// Cluster mode: this broker's id, unique among the brokers sharing the storage (the `node.id` key).
    #[arg(long = "node-id", env = "RUNNEL_NODE_ID", value_name = "N")]
    node_id: Option<i32>,
    /// Cluster mode: record data in this S3 bucket and prefix; endpoint, region and credentials from the
    /// usual AWS_* variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ALLOW_HTTP) or `s3.*` keys. Needs --metadata.
    #[arg(long, env = "RUNNEL_STORAGE", value_name = "s3://BUCKET/PREFIX")]
    storage: Option<String>,
    /// Cluster mode: the PostgreSQL database holding offsets, topics, groups and membership. Needs
    /// --storage.
    #[arg(
        long,
        env = "RUNNEL_METADATA",
        value_name = "postgres://USER:PASSWORD@HOST:PORT/DB"
    )]
    metadata: Option<String>,
    /// Log filter (tracing's EnvFilter syntax); RUST_LOG wins when set.
    #[arg(long, env = "RUNNEL_LOG", default_value = "info")]
    log: String,
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn broker_config(args: &ServeArgs) -> anyhow::Result<BrokerConfig> {
    let mut config = BrokerConfig::default();
    if let Some(path) = &args.config {
        config.load_file(path)?;
    }
    config.load_env()?;
    for pair in &args.set {
        config
            .set_pair(pair)
            .with_context(|| format!("--set {pair}"))?;
    }
    if let Some(listen) = &args.listen {
        anyhow::ensure!(
            config.get("listeners").is_none_or(|l| l.trim().is_empty()),
            "--listen is the shorthand for one PLAINTEXT listener; with `listeners` set, give every listener there"
        );
        config.listen = listen.clone();
    }
    if let Some(adv) = &args.advertised {
        config.advertised = Some(adv.clone());
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    config.jobs = args.jobs.clone();
    config.metrics_listen = args.metrics_listen.clone();
    if let Some(id) = args.node_id {
        config.set("node.id", &id.to_string())?;
    }
    if let Some(url) = &args.storage {
        config.set("storage", url)?;
    }
    if let Some(url) = &args.metadata {
        config.set("metadata", url)?;
    }
    let has = |k: &str| config.get(k).is_some_and(|v| !v.is_empty());
    anyhow::ensure!(
        has("storage") == has("metadata"),
        "cluster mode needs both --storage (object storage for records) and --metadata (the PostgreSQL database)"
    );
    Ok(config)
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A reader that went away (`| head`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            // The whole cause chain on one line, for people; no backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard one, as the JVM does for Kafka: connections and segment
/// files share it, and the usual soft default (1024) is far below what a broker is allowed.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let from = limit.current;
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => tracing::debug!(?from, to = ?limit.maximum, "raised the open-file limit"),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Users(args) => {
            init_logging("warn");
            cli::users::run(args)
        }
        Command::Serve(args) => {
            init_logging(&args.log);
            let config = broker_config(&args)?;
            raise_open_file_limit();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("runnel")
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(runnel_broker::server::run(config))?;
            Ok(())
        }
        other => {
            init_logging("warn");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async move {
                match other {
                    Command::Topics(a) => cli::topics::run(a).await,
                    Command::Produce(a) => cli::produce::run(a).await,
                    Command::Consume(a) => cli::consume::run(a).await,
                    Command::Groups(a) => cli::groups::run(a).await,
                    Command::Bench(a) => cli::bench::run(a).await,
                    Command::Jobs(a) => cli::jobs::run(a).await,
                    Command::Acls(a) => cli::acls::run(a).await,
                    Command::Cluster(a) => cli::cluster::run(a).await,
                    Command::Serve(_) | Command::Users(_) => Ok(()),
                }
            })
        }
    }
}
