//! Kafka ACLs with the semantics of Kafka 4.x's `StandardAuthorizer`: the binding model and CreateAcls
//! validation (`model`), DescribeAcls/DeleteAcls filters (`filter`), the indexed ACL store (`set`) and
//! the per-request decision (`authorize`).

mod authorize;
mod filter;
mod model;
mod set;
#[cfg(test)]
mod tests;

pub use authorize::{
    java_host_address, parse_allow_everyone, Authorizer, Decision, InvalidSuperUser,
};
pub use filter::AclFilter;
pub use model::{
    request_has_unknown_code, validate_new_binding, AclBinding, InvalidAcl, Operation, PatternType,
    Permission, ResourceType, CLUSTER_NAME, INVALID_REQUEST, UNKNOWN_SERVER_ERROR, WILDCARD_HOST,
    WILDCARD_PRINCIPAL, WILDCARD_RESOURCE,
};
pub use set::AclSet;
