//! DescribeAcls / DeleteAcls filters: Kafka's `AclBindingFilter`, i.e. a `ResourcePatternFilter` and an
//! `AccessControlEntryFilter`.

use serde::{Deserialize, Serialize};

use super::model::{
    AclBinding, InvalidAcl, Operation, PatternType, Permission, ResourceType, INVALID_REQUEST,
    WILDCARD_RESOURCE,
};

/// `None` in a string field matches any value, as Java's `null` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// Kafka's `AclBindingFilter.ANY`: matches every binding.
    pub fn any() -> Self {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    /// The filter that matches exactly this binding and nothing else (`AclBinding.toFilter`).
    pub fn exact(b: &AclBinding) -> Self {
        AclFilter {
            resource_type: b.resource_type,
            resource_name: Some(b.resource_name.clone()),
            pattern_type: b.pattern_type,
            principal: Some(b.principal.clone()),
            host: Some(b.host.clone()),
            operation: b.operation,
            permission: b.permission,
        }
    }

    pub fn matches(&self, b: &AclBinding) -> bool {
        self.matches_pattern(b.resource_type, &b.resource_name, b.pattern_type)
            && self.matches_entry(b)
    }

    /// `ResourcePatternFilter.matches`.
    pub(crate) fn matches_pattern(
        &self,
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
    ) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != pattern_type
        {
            return false;
        }
        let Some(filter_name) = &self.resource_name else {
            return true;
        };
        // ANY (and an exact pattern type) compare names literally: an ANY filter for `foo` does not
        // return the `*` ACL, only MATCH does.
        if self.pattern_type == PatternType::Any || self.pattern_type == pattern_type {
            return filter_name == name;
        }
        // Only MATCH gets here: would an ACL with this pattern apply to a resource named `filter_name`?
        match pattern_type {
            PatternType::Literal => filter_name == name || name == WILDCARD_RESOURCE,
            PatternType::Prefixed => filter_name.starts_with(name),
            // Java throws IllegalArgumentException here; such a binding cannot have been created.
            _ => false,
        }
    }

    /// `AccessControlEntryFilter.matches`: exact comparisons only; `User:*` and `*` in a filter are
    /// ordinary strings, not wildcards.
    fn matches_entry(&self, b: &AclBinding) -> bool {
        if self.principal.as_ref().is_some_and(|p| *p != b.principal) {
            return false;
        }
        if self.host.as_ref().is_some_and(|h| *h != b.host) {
            return false;
        }
        if self.operation != Operation::Any && self.operation != b.operation {
            return false;
        }
        self.permission == Permission::Any || self.permission == b.permission
    }

    /// `AclBindingFilter.isUnknown`.
    pub fn is_unknown(&self) -> bool {
        self.resource_type == ResourceType::Unknown
            || self.pattern_type == PatternType::Unknown
            || self.operation == Operation::Unknown
            || self.permission == Permission::Unknown
    }

    /// `AclControlManager.validateFilter`, which DeleteAcls applies per filter (DescribeAcls does not:
    /// there an unknown filter simply matches nothing).
    pub fn validate_for_delete(&self) -> Result<(), InvalidAcl> {
        let message = if self.resource_type == ResourceType::Unknown
            || self.pattern_type == PatternType::Unknown
        {
            "Unknown patternFilter."
        } else if self.operation == Operation::Unknown || self.permission == Permission::Unknown {
            "Unknown entryFilter."
        } else {
            return Ok(());
        };
        Err(InvalidAcl {
            code: INVALID_REQUEST,
            message: message.to_string(),
            whole_request: false,
        })
    }
}
