//! The listener and the broker's background work: accepting connections (bounded by `max.connections` and
//! `max.connections.per.ip`), the flush / retention / checkpoint tickers, and a clean shutdown on SIGTERM
//! or Ctrl-C: stop accepting, let every connection finish the request it is serving, then close the logs,
//! so nothing is appended after the clean-shutdown marker (mini-redis' broadcast-and-wait pattern).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use runnel_processor::runtime::metrics::render_jobs;
use runnel_processor::runtime::JobMetrics;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::connection_limits::ConnectionCounter;
use crate::security::Listener;

/// How long a shutdown waits for connections to finish their requests before closing the logs anyway
/// (later appends are then refused, never written after the marker).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no listeners configured")]
    NoListeners,
    #[error(transparent)]
    Listener(#[from] crate::security::listener::ListenerSetupError),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error("{0}")]
    Job(String),
    #[error("shutdown task failed: {0}")]
    Shutdown(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot join the cluster")]
    Cluster(#[from] crate::cluster::node::ClusterError),
}

/// Runs the broker until SIGTERM / Ctrl-C, then shuts down cleanly.
pub async fn run(config: BrokerConfig) -> Result<(), ServeError> {
    // Dynamic configs (AlterConfigs on the broker) stored by an earlier run shape the listeners too.
    let dynamic = crate::dynamic_config::DynamicConfigs::open(&config.data_dir)
        .map_err(crate::broker::BrokerError::from)?;
    let effective = dynamic.overlay(&config);
    let counter = ConnectionCounter::new(effective.connection_limits()?);
    runnel_storage::open_files::set_limit(config.max_open_files());
    // On a cluster every broker hosts an instance of each job: the node id tells them apart unless the
    // job's own settings name an instance.
    let instance = match config.cluster_settings() {
        Some(_) => config.node_id().to_string(),
        None => "0".to_string(),
    };
    let hosted = crate::colocated::prepare(&config.jobs, &instance).map_err(ServeError::Job)?;
    let metrics_listener = match &config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: addr.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let specs = config.listener_specs()?;
    // The `--listen` shorthand keeps its one-line banner; named listeners each get a line.
    let named = config
        .get("listeners")
        .is_some_and(|l| !l.trim().is_empty());
    let mut bound = Vec::new();
    for spec in &specs {
        let socket = bind(&spec.bind).await?;
        let local = socket.local_addr().map_err(|source| ServeError::Bind {
            addr: spec.bind.clone(),
            source,
        })?;
        let (host, port) = spec
            .advertised
            .clone()
            .unwrap_or_else(|| (local.ip().to_string(), i32::from(local.port())));
        let listener = crate::security::Listener::new(spec, &effective, host, port)?;
        bound.push((socket, local, listener));
    }
    let Some((_, first_local, first)) = bound.first() else {
        return Err(ServeError::NoListeners);
    };
    let first_local = *first_local;
    let (host, port) = (first.advertised_host.clone(), first.advertised_port);
    let cluster = match config.cluster_settings() {
        Some(settings) => {
            let listeners: Vec<String> = bound
                .iter()
                .map(|(_, _, l)| {
                    format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port)
                })
                .collect();
            Some(crate::cluster::ClusterNode::start(settings, &listeners.join(",")).await?)
        }
        None => None,
    };
    let broker = Arc::new(tokio::task::block_in_place(|| {
        Broker::open_with(config, dynamic, host, port, cluster.clone())
    })?);
    if let Some(node) = cluster {
        broker
            .sync_topics(&node)
            .await
            .map_err(crate::broker::BrokerError::from)?;
        broker
            .sync_documents(&node)
            .await
            .map_err(crate::broker::BrokerError::from)?;
        crate::shared_topics::spawn_topic_follower(&broker, Arc::clone(&node));
        crate::shared_documents::spawn_document_follower(&broker, node);
    }
    broker.recover_transactions().await;
    // Tests and scripts read the bound address (the port may have been 0) from this first stdout line, then
    // one line per listener; all in one write so a reader never sees half of them.
    let mut banner = format!("runnel listening on {first_local}\n");
    for (_, local, l) in &bound {
        if named {
            banner.push_str(&format!("runnel listener {} on {local}\n", l.name));
        }
        tracing::info!(listener = %l.name, protocol = %l.protocol, %local, advertised = %format!("{}:{}", l.advertised_host, l.advertised_port), "listening");
    }
    let _ = std::io::stdout().write_all(banner.as_bytes());
    let _ = std::io::stdout().flush();
    tracing::info!(cluster_id = %broker.cluster_id, "runnel broker started");

    spawn_ticker(
        &broker,
        broker.config.flush_scheduler_interval_ms(),
        Broker::flush_due,
    );
    spawn_ticker(
        &broker,
        broker.config.retention_check_interval_ms(),
        Broker::apply_retention,
    );
    spawn_ticker(
        &broker,
        broker.config.checkpoint_interval_ms(),
        Broker::checkpoint,
    );
    spawn_ticker(&broker, broker.config.cleaner_backoff_ms(), Broker::compact);
    spawn_ticker(
        &broker,
        broker.config.offsets_retention_check_interval_ms(),
        |b| b.groups.expire_offsets(),
    );
    spawn_group_timer(&broker);
    spawn_coordinator_sweep(&broker);
    spawn_housekeeping(&broker);
    spawn_ticker(&broker, broker.config.txn_cleanup_interval_ms(), |b| {
        tokio::runtime::Handle::current().block_on(b.abort_expired_transactions())
    });

    if let Some(l) = metrics_listener {
        let jobs: Vec<_> = hosted
            .iter()
            .map(|h| (h.config.name.clone(), Arc::clone(&h.metrics)))
            .collect();
        let b = Arc::clone(&broker);
        let render = move || {
            let jobs: Vec<(&str, &JobMetrics)> =
                jobs.iter().map(|(n, m)| (n.as_str(), m.as_ref())).collect();
            b.metrics.render(&b) + &render_jobs(&jobs)
        };
        tokio::spawn(runnel_processor::runtime::metrics::serve(
            l,
            Arc::new(render),
        ));
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let jobs: Vec<_> = hosted
        .into_iter()
        .map(|h| crate::colocated::spawn(&broker, h, stop_rx.clone()))
        .collect();

    spawn_dynamic_config_follower(
        &broker,
        bound.iter().map(|(_, _, l)| Arc::clone(l)).collect(),
        counter.clone(),
    );
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accepts = tokio::task::JoinSet::new();
    // OAUTHBEARER listeners load their JWKS before the first client can log in.
    for (_, _, l) in &bound {
        if let Some(oauth) = &l.oauth {
            if let Err(e) = oauth.keys.refresh_now().await {
                tracing::warn!(listener = %l.name, error = %e, "cannot load the JWKS yet; retrying every second");
            }
        }
    }
    for (socket, _, listener) in bound {
        spawn_ticker_tls(&listener);
        spawn_jwks_refresh(&listener);
        accepts.spawn(accept_loop(
            socket,
            listener,
            Arc::clone(&broker),
            counter.clone(),
            stop_rx.clone(),
            done_tx.clone(),
        ));
    }
    let accept = async {
        while accepts.join_next().await.is_some() {}
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = accept => {}
        _ = shutdown_signal() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    accepts.abort_all();
    let _ = stop_tx.send(true);
    drop(done_tx);
    // Connections and hosted jobs finish together, within one drain timeout.
    let drained = async {
        let _ = done_rx.recv().await;
        for job in jobs {
            let _ = job.await;
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!(
            timeout_s = DRAIN_TIMEOUT.as_secs(),
            "connections or hosted jobs still busy; closing the logs anyway"
        );
    }
    if let Some(node) = &broker.cluster {
        node.leave().await;
    }
    let b = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || b.shutdown())
        .await
        .map_err(|e| ServeError::Shutdown(e.to_string()))??;
    Ok(())
}

async fn bind(addr: &str) -> Result<TcpListener, ServeError> {
    // Kafka's `PLAINTEXT://:9092` means every interface.
    let addr = match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_string(),
    };
    TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Accepts on one listener for as long as the broker runs.
async fn accept_loop(
    socket: TcpListener,
    listener: Arc<Listener>,
    broker: Arc<Broker>,
    counter: ConnectionCounter,
    stop_rx: watch::Receiver<bool>,
    done_tx: mpsc::Sender<()>,
) {
    let mut refusals = RefusalLog::default();
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(listener = %listener.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admitted = match counter.admit(peer.ip()) {
            Ok(a) => a,
            Err(why) => {
                refusals.note(peer, &why);
                continue;
            }
        };
        let broker = Arc::clone(&broker);
        let listener = Arc::clone(&listener);
        let stop = stop_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            crate::connection::serve(stream, peer, broker, listener, stop).await;
            drop(admitted);
            drop(done);
        });
    }
}

/// How often TLS listeners look at their certificate files for changes.
const TLS_RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Keeps an OAUTHBEARER listener's JWKS fresh: at start, every refresh interval, and soon after a token
/// names a key the set does not have.
fn spawn_jwks_refresh(listener: &Arc<Listener>) {
    if listener.oauth.is_none() {
        return;
    }
    let listener = Arc::clone(listener);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(oauth) = &listener.oauth else { return };
            if oauth.keys.due() {
                match oauth.keys.refresh_now().await {
                    Ok(n) => tracing::debug!(listener = %listener.name, keys = n, "JWKS loaded"),
                    Err(e) => {
                        tracing::warn!(listener = %listener.name, error = %e, "cannot load the JWKS")
                    }
                }
            }
        }
    });
}

/// Brings the listeners' TLS and the connection limits along when dynamic broker configs change.
fn spawn_dynamic_config_follower(
    broker: &Arc<Broker>,
    listeners: Vec<Arc<Listener>>,
    counter: ConnectionCounter,
) {
    let mut changed = broker.dynamic.subscribe();
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        while changed.changed().await.is_ok() {
            let effective = broker.effective_config();
            match effective.connection_limits() {
                Ok(limits) => counter.set_limits(limits),
                Err(e) => tracing::error!(error = %e, "keeping the previous connection limits"),
            }
            for l in &listeners {
                let Some(tls) = &l.tls else { continue };
                let settings = crate::security::tls::TlsSettings::from_config(&l.name, |k| {
                    effective.listener_value(&l.name, k)
                });
                let result =
                    tokio::task::block_in_place(|| settings.and_then(|s| tls.use_settings(s)));
                if let Err(e) = result {
                    tracing::error!(listener = %l.name, error = %e, "keeping the previous TLS certificate");
                }
            }
        }
    });
}

fn spawn_ticker_tls(listener: &Arc<Listener>) {
    if listener.tls.is_none() {
        return;
    }
    let listener = Arc::clone(listener);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TLS_RELOAD_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let l = Arc::clone(&listener);
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(tls) = &l.tls {
                    tls.reload_if_changed();
                }
            })
            .await;
        }
    });
}

/// Logs refused connections without letting a peer that retries in a loop flood the log: the first
/// refusal of each second is logged with how many were refused since the last line.
#[derive(Default)]
struct RefusalLog {
    last: Option<std::time::Instant>,
    unlogged: u64,
}

impl RefusalLog {
    fn note(&mut self, peer: std::net::SocketAddr, why: &crate::connection_limits::Refusal) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(%peer, reason = %why, refused_since_last_line = self.unlogged, "refusing connection");
        self.last = Some(now);
        self.unlogged = 0;
    }
}

fn spawn_ticker(broker: &Arc<Broker>, every_ms: u64, work: fn(&Broker)) {
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let b = Arc::clone(&broker);
            if tokio::task::spawn_blocking(move || work(&b)).await.is_err() {
                tracing::error!("background task panicked");
            }
        }
    });
}

/// Session and rebalance timeouts: cheap in-memory checks, so they run on the runtime every 100 ms.
fn spawn_group_timer(broker: &Arc<Broker>) {
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            broker.groups.tick();
        }
    });
}

/// Cluster mode: the coordinators' sweep every second (keys placed elsewhere forgotten, refused writes
/// noticed, markers applied), taking over dead brokers' keys every fifth; group markers also at once when a
/// transaction's coordinator announces them.
fn spawn_coordinator_sweep(broker: &Arc<Broker>) {
    let Some(node) = broker.cluster.clone() else {
        return;
    };
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    broker.sweep_coordinators(round.is_multiple_of(5)).await;
                    round += 1;
                }
                _ = node.watch.markers_written.notified() => broker.apply_group_markers().await,
            }
        }
    });
}

/// Cluster mode: retention and object deletion every `log.retention.check.interval.ms`.
fn spawn_housekeeping(broker: &Arc<Broker>) {
    if broker.cluster.is_none() {
        return;
    }
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let every = Duration::from_millis(broker.config.retention_check_interval_ms());
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            broker.cluster_housekeeping().await;
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
