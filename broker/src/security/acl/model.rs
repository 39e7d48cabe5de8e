//! The ACL vocabulary (Kafka's four enums and `AclBinding`) and the checks Kafka applies to a binding
//! before CreateAcls stores it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Kafka's `Errors.UNKNOWN_SERVER_ERROR`.
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
/// Kafka's `Errors.INVALID_REQUEST`.
pub const INVALID_REQUEST: i16 = 42;

/// The resource name Kafka's `ResourcePattern.WILDCARD_RESOURCE` gives a LITERAL ACL that covers every
/// resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";
/// The host an ACL names to cover every client address.
pub const WILDCARD_HOST: &str = "*";
/// The principal an ACL names to cover every principal. Only the `User` type is a wildcard in Kafka:
/// `Group:*` is an ordinary principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The only name Kafka accepts for a CLUSTER resource (`Resource.CLUSTER_NAME`).
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Declares one of Kafka's byte-coded enums. The wire code and the Kafka name travel together so the
/// two can never drift apart, and the JSON form is the Kafka name because a persisted file written with
/// codes would be unreadable to an operator.
macro_rules! kafka_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal => $kafka:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(i8)]
        pub enum $name {
            $($variant = $code,)+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant,)+];

            /// Codes Kafka does not know map to `Unknown`, as Kafka's `fromCode` does.
            pub fn from_code(code: i8) -> Self {
                match code {
                    $($code => $name::$variant,)+
                    _ => $name::Unknown,
                }
            }

            pub fn code(self) -> i8 {
                self as i8
            }

            /// The Kafka (Java enum) name, e.g. `DESCRIBE_CONFIGS`.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $kafka,)+
                }
            }

            /// Case-insensitive, as Kafka's `fromString` is; `None` (rather than Kafka's `UNKNOWN`) so a
            /// typo in a persisted file is reported instead of silently disabling an ACL.
            pub fn from_name(name: &str) -> Option<Self> {
                $name::ALL_VALUES
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(name))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::from_name(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($name), " '{}'"),
                        s
                    ))
                })
            }
        }
    };
}

kafka_enum!(
    /// `org.apache.kafka.common.resource.ResourceType`.
    ResourceType {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Topic = 2 => "TOPIC",
        Group = 3 => "GROUP",
        Cluster = 4 => "CLUSTER",
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        DelegationToken = 6 => "DELEGATION_TOKEN",
        User = 7 => "USER",
    }
);

kafka_enum!(
    /// `org.apache.kafka.common.resource.PatternType`. `Any` and `Match` exist only in filters.
    PatternType {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Match = 2 => "MATCH",
        Literal = 3 => "LITERAL",
        Prefixed = 4 => "PREFIXED",
    }
);

kafka_enum!(
    /// `org.apache.kafka.common.acl.AclOperation`. `TwoPhaseCommit` (KIP-939) implies nothing and is
    /// implied only by `All`.
    Operation {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        All = 2 => "ALL",
        Read = 3 => "READ",
        Write = 4 => "WRITE",
        Create = 5 => "CREATE",
        Delete = 6 => "DELETE",
        Alter = 7 => "ALTER",
        Describe = 8 => "DESCRIBE",
        ClusterAction = 9 => "CLUSTER_ACTION",
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        AlterConfigs = 11 => "ALTER_CONFIGS",
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        CreateTokens = 13 => "CREATE_TOKENS",
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
        TwoPhaseCommit = 15 => "TWO_PHASE_COMMIT",
    }
);

kafka_enum!(
    /// `org.apache.kafka.common.acl.AclPermissionType`.
    Permission {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Deny = 2 => "DENY",
        Allow = 3 => "ALLOW",
    }
);

/// One ACL: Kafka's `AclBinding` (a `ResourcePattern` plus an `AccessControlEntry`) flattened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`; `User:*` for everyone.
    pub principal: String,
    /// A client IP as Java prints it (see `authorize::java_host_address`), or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Why CreateAcls refuses a binding, with the error code and message Kafka answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidAcl {
    /// The Kafka error code (`INVALID_REQUEST` or `UNKNOWN_SERVER_ERROR`).
    pub code: i16,
    pub message: String,
    /// Kafka fails the whole CreateAcls request, every creation in it, rather than this one binding:
    /// Java's `ResourcePattern` / `AccessControlEntry` constructors throw `IllegalArgumentException` for
    /// ANY/MATCH while the request is turned into bindings, before any per-binding check runs, so no ACL
    /// of that request is created.
    pub whole_request: bool,
}

impl InvalidAcl {
    fn invalid_request(message: String) -> Self {
        InvalidAcl {
            code: INVALID_REQUEST,
            message,
            whole_request: false,
        }
    }

    fn unconstructible(message: &str) -> Self {
        InvalidAcl {
            code: UNKNOWN_SERVER_ERROR,
            message: message.to_string(),
            whole_request: true,
        }
    }

    /// The message Kafka puts on the wire: `ApiError.fromThrowable` sends none for UNKNOWN_SERVER_ERROR
    /// so internal exception text does not leak to clients.
    pub fn wire_message(&self) -> Option<&str> {
        (self.code != UNKNOWN_SERVER_ERROR).then_some(self.message.as_str())
    }
}

/// What Kafka's CreateAcls refuses, checked in the order Kafka checks it (the first failure is the one
/// reported): the Java constructors run while `AclApis.handleCreateAcls` builds the bindings, then
/// `AclApis`' own CLUSTER-name and empty-name checks, then `AclControlManager.validateNewAcl` on the
/// controller.
///
/// Codes that are literally 0 (UNKNOWN) on the wire never get this far: `CreateAclsRequest.validate`
/// rejects the whole request while parsing it and the broker closes the connection (see
/// [`request_has_unknown_code`]). Other unrecognised codes arrive here as `Unknown` and are refused per
/// binding.
pub fn validate_new_binding(b: &AclBinding) -> Result<(), InvalidAcl> {
    if b.resource_type == ResourceType::Any {
        return Err(InvalidAcl::unconstructible("resourceType must not be ANY"));
    }
    if matches!(b.pattern_type, PatternType::Match | PatternType::Any) {
        return Err(InvalidAcl::unconstructible(&format!(
            "patternType must not be {}",
            b.pattern_type
        )));
    }
    if b.operation == Operation::Any {
        return Err(InvalidAcl::unconstructible("operation must not be ANY"));
    }
    if b.permission == Permission::Any {
        return Err(InvalidAcl::unconstructible(
            "permissionType must not be ANY",
        ));
    }
    if b.resource_type == ResourceType::Cluster && b.resource_name != CLUSTER_NAME {
        return Err(InvalidAcl::invalid_request(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        )));
    }
    if b.resource_name.is_empty() {
        return Err(InvalidAcl::invalid_request(
            "Invalid empty resource name".to_string(),
        ));
    }
    if b.resource_type == ResourceType::Unknown {
        return Err(InvalidAcl::invalid_request(format!(
            "Invalid resourceType {}",
            b.resource_type
        )));
    }
    if b.pattern_type == PatternType::Unknown {
        return Err(InvalidAcl::invalid_request(format!(
            "Invalid patternType {}",
            b.pattern_type
        )));
    }
    if b.operation == Operation::Unknown {
        return Err(InvalidAcl::invalid_request(format!(
            "Invalid operation {}",
            b.operation
        )));
    }
    if b.permission == Permission::Unknown {
        return Err(InvalidAcl::invalid_request(format!(
            "Invalid permissionType {}",
            b.permission
        )));
    }
    // Kafka accepts any `Type:name` (even `:x` or `User:`) and refuses only a principal with no colon,
    // which its authorizer could not parse later.
    if !b.principal.contains(':') {
        return Err(InvalidAcl::invalid_request(format!(
            "Could not parse principal from `{}` (no colon is present separating the principal type \
             from the principal name)",
            b.principal
        )));
    }
    Ok(())
}

/// Kafka's CreateAcls, DescribeAcls and DeleteAcls request classes refuse to parse a request in which a
/// creation or filter carries the literal code 0 (UNKNOWN) for its resource type, pattern type,
/// operation or permission; the broker then closes the connection instead of answering. Out-of-range
/// codes pass this check and become `Unknown` values.
pub fn request_has_unknown_code(
    resource_type: i8,
    pattern_type: i8,
    operation: i8,
    permission: i8,
) -> bool {
    [resource_type, pattern_type, operation, permission].contains(&0)
}
