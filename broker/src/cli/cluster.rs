//! `runnel cluster status`: a cluster as its metadata database sees it, without asking any broker (so it
//! also answers when every broker is down): the brokers and their leases, the topics, the batch index and
//! the objects it names, and what object compaction still has to do.

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::outln;

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Brokers with their leases, topics, index rows, object count and bytes.
    Status {
        /// The cluster's metadata database (what its brokers were given as --metadata).
        #[arg(
            long,
            env = "RUNNEL_METADATA",
            value_name = "postgres://USER:PASSWORD@HOST:PORT/DB"
        )]
        metadata: String,
    },
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let ClusterCommand::Status { metadata } = args.command;
    let db = crate::cluster::connect(&metadata)
        .await
        .context("cannot reach the metadata database")?;
    let cluster_id: Option<String> = db
        .query_opt("SELECT cluster_id FROM runnel_cluster", &[])
        .await
        .context("not a Runnel metadata database (no runnel_cluster table)")?
        .map(|r| r.get(0));
    let brokers = db
        .query(
            "SELECT node_id, listeners, coalesce(rack, '-'),
                    extract(epoch FROM lease_until - now())::float8,
                    to_char(started_at, 'YYYY-MM-DD HH24:MI:SS')
             FROM runnel_brokers ORDER BY node_id",
            &[],
        )
        .await?;
    let counts = db
        .query_one(
            "SELECT (SELECT count(*) FROM runnel_topics),
                    (SELECT count(*) FROM runnel_partitions),
                    (SELECT count(*) FROM runnel_batches),
                    (SELECT count(*) FROM runnel_objects),
                    (SELECT coalesce(sum(size_bytes), 0)::bigint FROM runnel_objects),
                    (SELECT count(*) FROM runnel_objects o
                     WHERE NOT EXISTS (SELECT 1 FROM runnel_batches b WHERE b.object_key = o.object_key)),
                    (SELECT count(*) FROM runnel_objects WHERE object_key NOT LIKE 'objects/seg-%'),
                    (SELECT coalesce(sum(byte_length), 0)::bigint FROM runnel_batches
                     WHERE object_key NOT LIKE 'objects/seg-%')",
            &[],
        )
        .await?;
    let live = brokers.iter().filter(|b| b.get::<_, f64>(3) > 0.0).count();
    outln!(
        "cluster {}: {live} of {} registered brokers live",
        cluster_id
            .as_deref()
            .unwrap_or("(no broker has started yet)"),
        brokers.len()
    )?;
    outln!(
        "{:>5}  {:<40} {:<10} {:>10}  STARTED",
        "NODE",
        "LISTENERS",
        "RACK",
        "LEASE"
    )?;
    for b in &brokers {
        let left: f64 = b.get(3);
        let lease = if left > 0.0 {
            format!("{left:.1}s")
        } else {
            "expired".to_string()
        };
        outln!(
            "{:>5}  {:<40} {:<10} {:>10}  {}",
            b.get::<_, i32>(0),
            b.get::<_, String>(1),
            b.get::<_, String>(2),
            lease,
            b.get::<_, String>(4)
        )?;
    }
    let n = |i: usize| counts.get::<_, i64>(i);
    outln!("topics {}, partitions {}", n(0), n(1))?;
    outln!("batch index rows {}", n(2))?;
    outln!("objects {} ({})", n(3), mib(n(4)))?;
    outln!(
        "compaction: {} produce-round objects, {} of batches not yet copied into segment objects; {} objects no batch names (awaiting deletion)",
        n(6),
        mib(n(7)),
        n(5)
    )?;
    Ok(())
}
