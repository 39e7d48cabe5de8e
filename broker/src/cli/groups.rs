//! `runnel groups`: list, describe (members and lag), reset offsets and delete consumer groups, like
//! kafka-consumer-groups.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use runnel_clients::Admin;

use super::Connect;
use crate::outln;

#[derive(Args, Debug)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: GroupsCommand,
}

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// List groups with their state.
    List,
    /// Members, assignments, committed offsets and lag of a group.
    Describe { group: String },
    /// Move a group's committed offsets (the group must have no active members).
    ResetOffsets {
        group: String,
        /// Topic whose partitions to reset (all partitions).
        #[arg(long)]
        topic: String,
        #[arg(long = "to-earliest", group = "target")]
        to_earliest: bool,
        #[arg(long = "to-latest", group = "target")]
        to_latest: bool,
        #[arg(long = "to-offset", group = "target")]
        to_offset: Option<i64>,
        /// First record at or after this time (epoch ms or 2024-05-01T12:00:00).
        #[arg(long = "to-datetime", group = "target")]
        to_datetime: Option<String>,
        /// Apply the change (otherwise only show it).
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups without members, with their offsets.
    Delete { groups: Vec<String> },
}

/// Committed offset, log end and lag of every partition a group has offsets for or is assigned.
pub async fn lag(
    admin: &Admin,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), (Option<i64>, i64)>> {
    let committed = admin.list_group_offsets(group).await?;
    let described = admin.describe_group(group).await?;
    let mut parts: Vec<(String, i32)> = committed.keys().cloned().collect();
    for m in &described.members {
        parts.extend(m.assignment.iter().cloned());
    }
    parts.sort();
    parts.dedup();
    let ends = admin.list_offsets(&parts, -1).await?;
    Ok(parts
        .into_iter()
        .map(|tp| {
            let end = ends.get(&tp).map_or(-1, |e| e.0);
            let c = committed.get(&tp).copied();
            (tp, (c, end))
        })
        .collect())
}

pub async fn run(args: GroupsArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.cluster().await?);
    match args.command {
        GroupsCommand::List => {
            outln!("{:<40} {:<20} STATE", "GROUP", "PROTOCOL-TYPE")?;
            for g in admin.list_groups().await? {
                outln!("{:<40} {:<20} {}", g.group_id, g.protocol_type, g.state)?;
            }
        }
        GroupsCommand::Describe { group } => {
            let d = admin.describe_group(&group).await?;
            outln!(
                "Group {group} is {} ({} members, protocol {})",
                d.state,
                d.members.len(),
                d.protocol
            )?;
            let owner: BTreeMap<(String, i32), String> = d
                .members
                .iter()
                .flat_map(|m| {
                    m.assignment
                        .iter()
                        .map(move |tp| (tp.clone(), format!("{} {}", m.member_id, m.host)))
                })
                .collect();
            outln!(
                "{:<30} {:>9} {:>16} {:>16} {:>10}  CONSUMER",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG"
            )?;
            for ((t, p), (committed, end)) in lag(&admin, &group).await? {
                let (cur, lag) = match committed {
                    Some(c) => (c.to_string(), (end - c).max(0).to_string()),
                    None => ("-".to_string(), "-".to_string()),
                };
                let who = owner
                    .get(&(t.clone(), p))
                    .cloned()
                    .unwrap_or_else(|| "-".into());
                outln!("{t:<30} {p:>9} {cur:>16} {end:>16} {lag:>10}  {who}")?;
            }
        }
        GroupsCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            execute,
        } => {
            let info = admin.cluster().topic(&topic).await?;
            let parts: Vec<(String, i32)> = (0..info.partitions.len() as i32)
                .map(|p| (topic.clone(), p))
                .collect();
            let targets: Vec<(String, i32, i64)> = if let Some(o) = to_offset {
                parts.iter().map(|(t, p)| (t.clone(), *p, o)).collect()
            } else {
                let ts = if to_earliest {
                    -2
                } else if to_latest {
                    -1
                } else if let Some(d) = &to_datetime {
                    super::time::parse_datetime(d).map_err(anyhow::Error::msg)?
                } else {
                    anyhow::bail!(
                        "say where to: --to-earliest, --to-latest, --to-offset or --to-datetime"
                    );
                };
                let found = admin.list_offsets(&parts, ts).await?;
                let ends = admin.list_offsets(&parts, -1).await?;
                parts
                    .iter()
                    .map(|tp| {
                        let o = match found.get(tp) {
                            Some((o, _)) if *o >= 0 => *o,
                            _ => ends.get(tp).map_or(0, |e| e.0),
                        };
                        (tp.0.clone(), tp.1, o)
                    })
                    .collect()
            };
            let d = admin.describe_group(&group).await?;
            if !d.members.is_empty() && execute {
                anyhow::bail!(
                    "group {group} has {} active members; stop them before resetting offsets",
                    d.members.len()
                );
            }
            outln!("{:<30} {:>9} {:>16}", "TOPIC", "PARTITION", "NEW-OFFSET")?;
            for (t, p, o) in &targets {
                outln!("{t:<30} {p:>9} {o:>16}")?;
            }
            if execute {
                admin.alter_group_offsets(&group, &targets).await?;
                outln!("Offsets of {group} reset.")?;
            } else {
                outln!("(dry run: add --execute to apply)")?;
            }
        }
        GroupsCommand::Delete { groups } => {
            if groups.is_empty() {
                anyhow::bail!("name at least one group to delete");
            }
            let mut failed = false;
            for (g, r) in admin.delete_groups(&groups).await? {
                match r {
                    Ok(()) => outln!("Deleted group {g}.")?,
                    Err(e) => {
                        failed = true;
                        eprintln!("Cannot delete group {g}: {e}");
                    }
                }
            }
            if failed {
                anyhow::bail!("some groups were not deleted");
            }
        }
    }
    Ok(())
}
