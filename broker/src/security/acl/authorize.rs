//! The authorization decision of Kafka's `StandardAuthorizer` (`StandardAuthorizerData.authorize`).

use std::net::IpAddr;
use std::ops::ControlFlow;

use super::model::{Operation, Permission, ResourceType, WILDCARD_HOST, WILDCARD_PRINCIPAL};
use super::set::{Ace, AclSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny,
}

/// A `super.users` entry without the `Type:name` colon, which Kafka refuses at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a string in format principalType:principalName but got {0}")]
pub struct InvalidSuperUser(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    super_users: Vec<String>,
    allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    /// `super_users` is the `super.users` config: `User:a;User:b`, entries trimmed and empty ones
    /// skipped, as `StandardAuthorizer.getConfiguredSuperUsers` does. An entry with no colon, which Kafka
    /// refuses to start with (see [`Authorizer::try_new`]), is dropped so it cannot grant anything.
    pub fn new(super_users: &str, allow_everyone_if_no_acl_found: bool) -> Self {
        let super_users = split_super_users(super_users)
            .filter(|u| u.contains(':'))
            .map(str::to_string)
            .collect();
        Authorizer {
            super_users,
            allow_everyone_if_no_acl_found,
        }
    }

    /// Like [`Authorizer::new`] but refuses a malformed `super.users` entry, as Kafka does.
    pub fn try_new(
        super_users: &str,
        allow_everyone_if_no_acl_found: bool,
    ) -> Result<Self, InvalidSuperUser> {
        if let Some(bad) = split_super_users(super_users).find(|u| !u.contains(':')) {
            return Err(InvalidSuperUser(bad.to_string()));
        }
        Ok(Authorizer::new(super_users, allow_everyone_if_no_acl_found))
    }

    pub fn super_users(&self) -> &[String] {
        &self.super_users
    }

    pub fn allow_everyone_if_no_acl_found(&self) -> bool {
        self.allow_everyone_if_no_acl_found
    }

    /// `principal` is `Type:name` (e.g. `User:alice`); `host` is the client's address.
    pub fn authorize(
        &self,
        acls: &AclSet,
        principal: &str,
        host: IpAddr,
        op: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> Decision {
        if self.is_super_user(principal) {
            return Decision::Allow;
        }
        let host = java_host_address(host);
        self.decide(acls, principal, &host, op, resource_type, resource_name)
    }

    /// [`Authorizer::authorize`] for a host already in Java's textual form.
    pub fn authorize_host(
        &self,
        acls: &AclSet,
        principal: &str,
        host: &str,
        op: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> Decision {
        if self.is_super_user(principal) {
            return Decision::Allow;
        }
        self.decide(acls, principal, host, op, resource_type, resource_name)
    }

    /// Kafka compares the principal's `toString()` with the configured strings, so this is exact and
    /// case-sensitive.
    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.iter().any(|u| u == principal)
    }

    fn decide(
        &self,
        acls: &AclSet,
        principal: &str,
        host: &str,
        op: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> Decision {
        // Kafka's MatchingRuleBuilder: "the resource has ACLs" counts every ACL whose pattern covers the
        // resource, whoever it is for and whatever it grants. So once a resource has any ACL at all,
        // allow.everyone.if.no.acl.found no longer applies to it, even for principals it does not name.
        let mut resource_has_acls = false;
        let mut allowed = false;
        let mut denied = false;
        acls.for_each_applicable(resource_type, resource_name, |ace| {
            resource_has_acls = true;
            match ace_result(ace, principal, host, op) {
                Some(Permission::Deny) => {
                    // Any matching DENY wins, so there is nothing left to learn.
                    denied = true;
                    ControlFlow::Break(())
                }
                Some(_) => {
                    allowed = true;
                    ControlFlow::Continue(())
                }
                None => ControlFlow::Continue(()),
            }
        });
        if denied {
            Decision::Deny
        } else if allowed || (!resource_has_acls && self.allow_everyone_if_no_acl_found) {
            Decision::Allow
        } else {
            Decision::Deny
        }
    }
}

fn split_super_users(config: &str) -> impl Iterator<Item = &str> {
    config.split(';').map(str::trim).filter(|u| !u.is_empty())
}

/// Kafka's `allow.everyone.if.no.acl.found` parsing: Java's `Boolean.parseBoolean` of the trimmed value,
/// so only `true` in any case is true and anything else (including a typo) is false.
pub fn parse_allow_everyone(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

/// `StandardAuthorizerData.findResult` for an ACE whose resource pattern already covers the resource:
/// the ACE's permission if it applies to this principal, host and operation, else `None`.
fn ace_result(ace: &Ace, principal: &str, host: &str, op: Operation) -> Option<Permission> {
    if ace.principal != principal && ace.principal != WILDCARD_PRINCIPAL {
        return None;
    }
    if ace.host != WILDCARD_HOST && ace.host != host {
        return None;
    }
    let applies = ace.operation == Operation::All
        || ace.operation == op
        // Implication is for ALLOW only: DENY READ does not deny DESCRIBE.
        || (ace.permission == Permission::Allow && implies(ace.operation, op));
    applies.then_some(ace.permission)
}

/// Operations an ALLOW ACL grants besides its own (`StandardAuthorizerData.IMPLIES_DESCRIBE` and
/// `IMPLIES_DESCRIBE_CONFIGS`; ALL is handled by the caller).
fn implies(granted: Operation, requested: Operation) -> bool {
    match requested {
        Operation::Describe => matches!(
            granted,
            Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
        ),
        Operation::DescribeConfigs => granted == Operation::AlterConfigs,
        _ => false,
    }
}

/// The client address as Java's `InetAddress.getHostAddress()` prints it, which is the string Kafka
/// compares ACL hosts with. An IPv4 client on a dual-stack socket is an `Inet4Address` in Java, so a
/// v4-mapped address prints as plain IPv4; other IPv6 addresses print as eight lowercase hex groups
/// without `::` compression or leading zeros (`0:0:0:0:0:0:0:1`, not `::1`). An ACL host written as
/// `::1` therefore never matches in Kafka, nor here.
pub fn java_host_address(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}
