//! `runnel acls`: add, list and remove ACLs on any Kafka-compatible cluster, like kafka-acls.sh.

use clap::{Args, Subcommand};
use runnel_clients::acls::Acl;
use runnel_clients::Admin;

use super::Connect;
use crate::outln;
use crate::security::acl::{Operation, PatternType, Permission, ResourceType};

#[derive(Args, Debug)]
pub struct AclsArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: AclsCommand,
}

/// Which resource: exactly one of these for `add`; any (or none, meaning all) for `list` / `remove`.
#[derive(Args, Debug, Clone)]
pub struct Resource {
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long = "transactional-id")]
    pub transactional_id: Option<String>,
    /// The cluster resource (kafka-cluster).
    #[arg(long)]
    pub cluster: bool,
    /// literal or prefixed (list / remove also take any and match).
    #[arg(long = "resource-pattern-type", default_value = "literal")]
    pub pattern: String,
}

#[derive(Subcommand, Debug)]
pub enum AclsCommand {
    /// Allow (or deny) a principal an operation on a resource.
    Add {
        /// e.g. User:alice (User:* for everyone).
        #[arg(long)]
        principal: String,
        /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALL, ...
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        #[arg(long)]
        deny: bool,
        #[arg(long, default_value = "*")]
        host: String,
        #[command(flatten)]
        resource: Resource,
    },
    /// List ACLs (all, or those on a resource / of a principal).
    List {
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        resource: Resource,
    },
    /// Remove the ACLs that match.
    Remove {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long = "operation")]
        operation: Option<String>,
        #[command(flatten)]
        resource: Resource,
    },
}

fn parse<T>(what: &str, value: &str, f: impl Fn(&str) -> Option<T>) -> anyhow::Result<T> {
    f(&value.replace('-', "_")).ok_or_else(|| anyhow::anyhow!("unknown {what} '{value}'"))
}

/// The resource as (type, name); `None` type means any.
fn resource(r: &Resource) -> anyhow::Result<(ResourceType, Option<String>)> {
    let picked: Vec<(ResourceType, Option<String>)> = [
        r.topic.clone().map(|t| (ResourceType::Topic, Some(t))),
        r.group.clone().map(|g| (ResourceType::Group, Some(g))),
        r.transactional_id
            .clone()
            .map(|t| (ResourceType::TransactionalId, Some(t))),
        r.cluster
            .then(|| (ResourceType::Cluster, Some("kafka-cluster".to_string()))),
    ]
    .into_iter()
    .flatten()
    .collect();
    match picked.as_slice() {
        [] => Ok((ResourceType::Any, None)),
        [one] => Ok(one.clone()),
        _ => anyhow::bail!("name one resource: --topic, --group, --transactional-id or --cluster"),
    }
}

/// The ACLs on a resource (any, when none is named), of a principal and operation when given.
fn filter(r: &Resource, principal: Option<String>, operation: Option<&str>) -> anyhow::Result<Acl> {
    let (rt, name) = resource(r)?;
    let pattern = if name.is_some() {
        parse("pattern type", &r.pattern, PatternType::from_name)?
    } else {
        PatternType::Any
    };
    let operation = match operation {
        Some(op) => parse("operation", op, Operation::from_name)?,
        None => Operation::Any,
    };
    Ok(Acl {
        resource_type: rt.code(),
        resource_name: name,
        pattern_type: pattern.code(),
        principal,
        host: None,
        operation: operation.code(),
        permission: Permission::Any.code(),
    })
}

fn show(a: &Acl) -> String {
    format!(
        "{}\t{}:{}\t{}\t{}\t{}\thost={}",
        a.principal.as_deref().unwrap_or_default(),
        ResourceType::from_code(a.resource_type).name(),
        a.resource_name.as_deref().unwrap_or_default(),
        PatternType::from_code(a.pattern_type).name(),
        Permission::from_code(a.permission).name(),
        Operation::from_code(a.operation).name(),
        a.host.as_deref().unwrap_or_default(),
    )
}

pub async fn run(args: AclsArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.cluster().await?);
    match args.command {
        AclsCommand::Add {
            principal,
            operations,
            deny,
            host,
            resource: r,
        } => {
            let (rt, name) = resource(&r)?;
            anyhow::ensure!(
                rt != ResourceType::Any,
                "add needs a resource: --topic, --group, --transactional-id or --cluster"
            );
            let pattern = parse("pattern type", &r.pattern, PatternType::from_name)?;
            let mut acls = Vec::new();
            for op in &operations {
                acls.push(Acl {
                    resource_type: rt.code(),
                    resource_name: name.clone(),
                    pattern_type: pattern.code(),
                    principal: Some(principal.clone()),
                    host: Some(host.clone()),
                    operation: parse("operation", op, Operation::from_name)?.code(),
                    permission: if deny {
                        Permission::Deny
                    } else {
                        Permission::Allow
                    }
                    .code(),
                });
            }
            admin.create_acls(&acls).await?;
            for a in &acls {
                outln!("added\t{}", show(a))?;
            }
        }
        AclsCommand::List {
            principal,
            resource: r,
        } => {
            for a in admin.describe_acls(&filter(&r, principal, None)?).await? {
                outln!("{}", show(&a))?;
            }
        }
        AclsCommand::Remove {
            principal,
            operation,
            resource: r,
        } => {
            let filter = filter(&r, principal, operation.as_deref())?;
            for a in admin.delete_acls(&filter).await? {
                outln!("removed\t{}", show(&a))?;
            }
        }
    }
    Ok(())
}
