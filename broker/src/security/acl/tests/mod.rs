//! Tests of the ACL module: validation and enums (`model`), filters and the store (`filter_and_set`),
//! decisions (`authorize`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;

use super::*;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn acl(
    rt: ResourceType,
    name: &str,
    pt: PatternType,
    principal: &str,
    op: Operation,
    perm: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: rt,
        resource_name: name.to_string(),
        pattern_type: pt,
        principal: principal.to_string(),
        host: "*".to_string(),
        operation: op,
        permission: perm,
    }
}

fn topic(
    name: &str,
    pt: PatternType,
    principal: &str,
    op: Operation,
    perm: Permission,
) -> AclBinding {
    acl(ResourceType::Topic, name, pt, principal, op, perm)
}

fn set(bindings: impl IntoIterator<Item = AclBinding>) -> AclSet {
    let mut s = AclSet::default();
    for b in bindings {
        s.add(b);
    }
    s
}

fn auth(acls: &AclSet, principal: &str, op: Operation, name: &str) -> Decision {
    Authorizer::new("", false).authorize(acls, principal, CLIENT, op, ResourceType::Topic, name)
}

use Decision::{Allow, Deny};
use Operation as Op;
use PatternType::{Literal, Prefixed};
use Permission::{Allow as A, Deny as D};

const ALICE: &str = "User:alice";

mod authorize;
mod filter_and_set;
mod model;
