//! Jobs hosted in the broker (`runnel serve --job NAME:k=v,...`): the job's client reaches this broker in
//! process, handing request frames straight to the dispatcher (no socket, no network hop), so it reads the
//! log and commits through the broker's own transaction coordinator, with the same semantics as remote.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use runnel_clients::connection::InProcess;
use runnel_clients::{ClientConfig, Cluster};
use runnel_processor::runtime::{run, JobConfig, JobFn, JobMetrics};

use crate::broker::Broker;
use crate::dispatch::{dispatch, Caller};
use crate::request::Reply;

struct Local(Arc<Broker>);

impl InProcess for Local {
    fn handle(&self, frame: Bytes) -> Pin<Box<dyn Future<Output = Option<Bytes>> + Send>> {
        let broker = Arc::clone(&self.0);
        Box::pin(async move {
            let caller = Caller {
                peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                listener: Arc::clone(&broker.internal_listener),
                principal: Arc::clone(&broker.job_principal),
            };
            match dispatch(&broker, frame, &caller).await.0 {
                // The frame carries its size prefix; the in-process client wants the body.
                Reply::Frame(b) => Some(b.slice(4..)),
                Reply::Nothing => None,
                Reply::Close(reason) | Reply::FrameThenClose(_, reason) => {
                    tracing::warn!(%reason, "co-located job request refused");
                    Some(Bytes::new())
                }
            }
        })
    }
}

/// `NAME:k=v,k=v` → the job's name and settings.
pub fn parse_spec(spec: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let (name, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let mut settings = BTreeMap::new();
    for pair in rest.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("--job {spec}: '{pair}' is not key=value"))?;
        settings.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok((name.trim().to_string(), settings))
}

/// A job checked and ready to host.
pub struct HostedJob {
    pub config: JobConfig,
    pub job: JobFn,
    pub metrics: Arc<JobMetrics>,
}

/// The jobs of `--job` specs; `instance` is the instance id of those whose settings name none.
pub fn prepare(specs: &[String], instance: &str) -> Result<Vec<HostedJob>, String> {
    specs
        .iter()
        .map(|spec| {
            let (name, mut settings) = parse_spec(spec)?;
            settings
                .entry("instance.id".to_string())
                .or_insert_with(|| instance.to_string());
            let (config, job) =
                runnel_processor::jobs::configure(&name, &settings).map_err(|e| e.to_string())?;
            Ok(HostedJob {
                config,
                job,
                metrics: Arc::new(JobMetrics::default()),
            })
        })
        .collect()
}

/// Runs a hosted job until `stop` turns true; a failed job is logged and started again after a pause (it
/// resumes from its checkpoint), so a bad record or a fenced instance never stops the broker. The broker
/// waits for the returned task before it closes its logs, so the job's last commit is not cut off.
pub fn spawn(
    broker: &Arc<Broker>,
    hosted: HostedJob,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let broker = Arc::clone(broker);
    let stopped = move || {
        let mut stop = stop.clone();
        async move {
            // An error means the sender is gone: the broker is going away too.
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(async move {
        let addr = format!("{}:{}", broker.advertised_host, broker.advertised_port);
        loop {
            let config =
                ClientConfig::new(&addr).with_client_id(format!("job-{}", hosted.config.name));
            let result = async {
                let cluster =
                    Cluster::connect_in_process(config, Arc::new(Local(Arc::clone(&broker))))
                        .await
                        .map_err(|e| e.to_string())?;
                tracing::info!(job = %hosted.config.name, "co-located job starting");
                run(
                    cluster,
                    hosted.config.clone(),
                    Arc::clone(&hosted.job),
                    Arc::clone(&hosted.metrics),
                    stopped(),
                )
                .await
                .map_err(|e| e.to_string())
            }
            .await;
            match result {
                Ok(s) => {
                    tracing::info!(job = %hosted.config.name, rounds = s.rounds, records = s.records, "co-located job finished");
                    return;
                }
                Err(e) => {
                    tracing::error!(job = %hosted.config.name, error = %e, "co-located job failed; restarting it in 5 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stopped() => return,
                    }
                }
            }
        }
    })
}
