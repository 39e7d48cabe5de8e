//! `runnel topics`: create, list, describe, alter and delete topics (like kafka-topics and kafka-configs).

use clap::{Args, Subcommand};
use runnel_clients::admin::NewTopic;
use runnel_clients::Admin;

use super::{key_value, Connect};
use crate::outln;

#[derive(Args, Debug)]
pub struct TopicsArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: TopicsCommand,
}

#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        #[arg(long = "replication-factor", default_value_t = -1)]
        replication_factor: i16,
        /// Topic config, e.g. --config retention.ms=60000 (repeatable).
        #[arg(long = "config", value_parser = key_value, value_name = "KEY=VALUE")]
        configs: Vec<(String, String)>,
        /// Only check that the topic could be created.
        #[arg(long)]
        validate_only: bool,
    },
    /// List topic names.
    List,
    /// Show partitions, leaders and configs.
    Describe {
        /// Topics to describe (all when none).
        names: Vec<String>,
    },
    /// Add partitions or change configs.
    Alter {
        name: String,
        /// New total number of partitions.
        #[arg(long)]
        partitions: Option<i32>,
        /// Set a topic config (repeatable).
        #[arg(long = "config", value_parser = key_value, value_name = "KEY=VALUE")]
        configs: Vec<(String, String)>,
        /// Remove a topic config override (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete topics.
    Delete { names: Vec<String> },
}

pub async fn run(args: TopicsArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.cluster().await?);
    match args.command {
        TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            validate_only,
        } => {
            admin
                .create_topics(
                    &[NewTopic {
                        name: name.clone(),
                        partitions,
                        replication: replication_factor,
                        configs,
                    }],
                    validate_only,
                )
                .await?;
            if validate_only {
                outln!("Topic {name} could be created.")?;
            } else {
                outln!("Created topic {name}.")?;
            }
        }
        TopicsCommand::List => {
            for t in admin.list_topics().await? {
                outln!("{t}")?;
            }
        }
        TopicsCommand::Describe { names } => {
            let names = if names.is_empty() {
                admin.list_topics().await?
            } else {
                names
            };
            for d in admin.describe_topics(&names).await? {
                let overrides: Vec<String> = admin
                    .describe_topic_configs(&d.name)
                    .await?
                    .into_iter()
                    .filter(|c| c.source == 1)
                    .map(|c| format!("{}={}", c.name, c.value.unwrap_or_default()))
                    .collect();
                outln!(
                    "Topic: {}\tTopicId: {}\tPartitionCount: {}\tConfigs: {}",
                    d.name,
                    d.id,
                    d.partitions.len(),
                    overrides.join(",")
                )?;
                for (p, leader) in d.partitions {
                    outln!("\tTopic: {}\tPartition: {p}\tLeader: {leader}\tReplicas: {leader}\tIsr: {leader}", d.name)?;
                }
            }
        }
        TopicsCommand::Alter {
            name,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                anyhow::bail!("nothing to alter: give --partitions, --config or --delete-config");
            }
            if let Some(n) = partitions {
                admin.create_partitions(&name, n).await?;
                outln!("Topic {name} now has {n} partitions.")?;
            }
            if !configs.is_empty() || !delete_configs.is_empty() {
                admin
                    .alter_topic_configs(&name, &configs, &delete_configs)
                    .await?;
                outln!("Updated configs of {name}.")?;
            }
        }
        TopicsCommand::Delete { names } => {
            if names.is_empty() {
                anyhow::bail!("name at least one topic to delete");
            }
            admin.delete_topics(&names).await?;
            for n in names {
                outln!("Deleted topic {n}.")?;
            }
        }
    }
    Ok(())
}
