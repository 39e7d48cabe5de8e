//! What the handlers share about authorization beyond the one question of
//! [`RequestContext::allowed`]: asking it once per distinct resource (Kafka's `filterByAuthorized`), the
//! authorized-operations bit fields some responses carry, and Kafka's "any resource of this type" check.

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::groups::{CommitEntry, PartitionCodes};
use crate::request::RequestContext;
use crate::security::acl::{
    java_host_address, AclFilter, Operation, PatternType, Permission, ResourceType,
    WILDCARD_PRINCIPAL, WILDCARD_RESOURCE,
};

/// Kafka's "authorized operations not requested" marker (`AUTHORIZED_OPERATIONS_OMITTED`).
pub const OPS_NOT_REQUESTED: i32 = i32::MIN;

/// Kafka's `Topic.isInternal` names: never writable through AddPartitionsToTxn, whatever the ACLs, and
/// marked internal when Metadata refuses to auto-create them.
const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// The names among `names` the principal may do `op` on, asking once per distinct name however often it
/// repeats in the request (Kafka's `AuthHelper.filterByAuthorized`).
pub fn allowed_names<'a>(
    broker: &Broker,
    ctx: &RequestContext,
    op: Operation,
    resource_type: ResourceType,
    names: impl IntoIterator<Item = &'a str>,
) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut allowed = HashSet::new();
    for name in names {
        if seen.insert(name) && ctx.allowed(broker, op, resource_type, name) {
            allowed.insert(name.to_string());
        }
    }
    allowed
}

/// Splits an offset commit's topics into those the principal may READ and the answer for the others,
/// every partition TOPIC_AUTHORIZATION_FAILED. Kafka's `handleOffsetCommitRequest` and
/// `handleTxnOffsetCommitRequest` answer the refused topics first and hand only the rest to the
/// coordinator.
pub fn split_readable(
    broker: &Broker,
    ctx: &RequestContext,
    topics: Vec<(String, Vec<CommitEntry>)>,
) -> (Vec<(String, Vec<CommitEntry>)>, PartitionCodes) {
    let readable = allowed_names(
        broker,
        ctx,
        Operation::Read,
        ResourceType::Topic,
        topics.iter().map(|(t, _)| t.as_str()),
    );
    let (allowed, refused): (Vec<_>, Vec<_>) =
        topics.into_iter().partition(|(t, _)| readable.contains(t));
    let code = ResponseError::TopicAuthorizationFailed.code();
    let refused = refused
        .into_iter()
        .map(|(t, parts)| (t, parts.iter().map(|e| (e.partition, code)).collect()))
        .collect();
    (allowed, refused)
}

/// The operations an ACL can name for a resource type (`AclEntry.supportedOperations`).
fn supported_operations(resource_type: ResourceType) -> &'static [Operation] {
    use Operation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        _ => &[],
    }
}

/// The bit field of the operations the principal may do on the resource, bit `code` set for each
/// (`AuthHelper.authorizedOperations` with `Utils.to32BitField`).
pub fn authorized_operations(
    broker: &Broker,
    ctx: &RequestContext,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    supported_operations(resource_type)
        .iter()
        .filter(|op| ctx.allowed(broker, **op, resource_type, name))
        .fold(0, |bits, op| bits | 1 << op.code())
}

/// Whether the principal may do `op` on at least one resource of the type: Kafka's default
/// `Authorizer.authorizeByResourceType`, which InitProducerId uses for "WRITE on any topic". The first
/// question goes through [`RequestContext::allowed`] on a made-up name, so super users and
/// `allow.everyone.if.no.acl.found` pass as in Kafka; otherwise the principal's ALLOW ACLs for the type
/// must name a resource that no DENY ACL of theirs covers.
pub fn allowed_on_any(
    broker: &Broker,
    ctx: &RequestContext,
    op: Operation,
    resource_type: ResourceType,
) -> bool {
    if ctx.allowed(broker, op, resource_type, "hardcode") {
        return true;
    }
    let principal = ctx.principal.to_string();
    let host = java_host_address(ctx.peer.ip());
    let filter = AclFilter {
        resource_type,
        ..AclFilter::any()
    };
    let mut deny_literal = HashSet::new();
    let mut deny_prefixed = HashSet::new();
    let mut allow = Vec::new();
    let mut wildcard_allow = false;
    for b in broker.acls.matching(&filter) {
        let applies = (b.host == host || b.host == "*")
            && (b.principal == principal || b.principal == WILDCARD_PRINCIPAL)
            && (b.operation == op || b.operation == Operation::All);
        if !applies {
            continue;
        }
        match (b.permission, b.pattern_type) {
            (Permission::Deny, PatternType::Literal) if b.resource_name == WILDCARD_RESOURCE => {
                return false
            }
            (Permission::Deny, PatternType::Literal) => {
                deny_literal.insert(b.resource_name);
            }
            (Permission::Deny, PatternType::Prefixed) => {
                deny_prefixed.insert(b.resource_name);
            }
            (Permission::Allow, PatternType::Literal) if b.resource_name == WILDCARD_RESOURCE => {
                wildcard_allow = true;
            }
            (Permission::Allow, PatternType::Literal | PatternType::Prefixed) => {
                allow.push((b.pattern_type, b.resource_name));
            }
            _ => {}
        }
    }
    // A wildcard DENY anywhere wins over a wildcard ALLOW, whatever order the ACLs come in.
    wildcard_allow
        || allow.iter().any(|(pattern, name)| {
            let denied_literal = *pattern == PatternType::Literal && deny_literal.contains(name);
            let denied_prefix = name
                .char_indices()
                .filter_map(|(i, c)| name.get(..i + c.len_utf8()))
                .any(|prefix| deny_prefixed.contains(prefix));
            !denied_literal && !denied_prefix
        })
}
