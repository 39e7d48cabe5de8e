//! CreateAcls / DescribeAcls / DeleteAcls, as Kafka answers them: SECURITY_DISABLED without an authorizer,
//! ALTER (create, delete) or DESCRIBE (describe) on the cluster required, bindings validated as Kafka does,
//! filters matched with Kafka's rules (ANY, MATCH, LITERAL, PREFIXED).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::broker::Broker;
use crate::request::{Outcome, RequestContext};
use crate::security::acl::{
    request_has_unknown_code, validate_new_binding, AclBinding, AclFilter, Operation, PatternType,
    Permission, ResourceType,
};

/// A binding CreateAcls refuses: code, message (None for -1, as Kafka sends it), whether the whole request
/// fails with it.
type Refused = (i16, Option<String>, bool);

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// The error every entry of a refused request carries, if it is refused as a whole.
fn refusal(broker: &Broker, ctx: &RequestContext, op: Operation) -> Option<(i16, &'static str)> {
    if !broker.acls.enabled() {
        return Some((ResponseError::SecurityDisabled.code(), NO_AUTHORIZER));
    }
    (!ctx.allowed_on_cluster(broker, op)).then_some((
        ResponseError::ClusterAuthorizationFailed.code(),
        "Cluster authorization failed.",
    ))
}

fn filter(
    resource_type: i8,
    name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> AclFilter {
    AclFilter {
        resource_type: ResourceType::from_code(resource_type),
        resource_name: name.as_ref().map(|s| s.to_string()),
        pattern_type: PatternType::from_code(pattern_type),
        principal: principal.as_ref().map(|s| s.to_string()),
        host: host.as_ref().map(|s| s.to_string()),
        operation: Operation::from_code(operation),
        permission: Permission::from_code(permission),
    }
}

/// Kafka refuses a request naming code 0 (UNKNOWN) while parsing it, and closes the connection.
const UNKNOWN_CODE: &str =
    "ACL request with an UNKNOWN (0) resource type, pattern type, operation or permission";

pub async fn create(
    broker: &Broker,
    req: CreateAclsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Outcome<CreateAclsResponse> {
    let result = |code: i16, msg: Option<&str>| {
        AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(msg.map(str_bytes))
    };
    if let Some((code, msg)) = refusal(broker, ctx, Operation::Alter) {
        let results = req
            .creations
            .iter()
            .map(|_| result(code, Some(msg)))
            .collect();
        return Outcome::Respond(CreateAclsResponse::default().with_results(results));
    }
    if req.creations.iter().any(|c| {
        request_has_unknown_code(
            c.resource_type,
            c.resource_pattern_type,
            c.operation,
            c.permission_type,
        )
    }) {
        return Outcome::Close(UNKNOWN_CODE.into());
    }
    let mut outcome: Vec<Result<AclBinding, Refused>> = req
        .creations
        .into_iter()
        .map(|c| {
            let b = AclBinding {
                resource_type: ResourceType::from_code(c.resource_type),
                resource_name: c.resource_name.to_string(),
                pattern_type: PatternType::from_code(c.resource_pattern_type),
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: Operation::from_code(c.operation),
                permission: Permission::from_code(c.permission_type),
            };
            validate_new_binding(&b).map(|()| b)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|r| r.map_err(|e| (e.code, e.wire_message().map(String::from), e.whole_request)))
        .collect();
    // A binding Kafka cannot even build (ANY / MATCH types) fails the whole request, storing nothing.
    if let Some((code, msg)) = outcome.iter().find_map(|o| match o {
        Err((code, msg, true)) => Some((*code, msg.clone())),
        _ => None,
    }) {
        let results = outcome
            .iter()
            .map(|_| result(code, msg.as_deref()))
            .collect();
        return Outcome::Respond(CreateAclsResponse::default().with_results(results));
    }
    let valid: Vec<AclBinding> = outcome
        .iter()
        .filter_map(|o| o.as_ref().ok().cloned())
        .collect();
    if let Err(e) = broker
        .change_shared(&broker.acls, || broker.acls.add(valid))
        .await
    {
        tracing::error!(error = %e, "cannot store ACLs");
        for o in &mut outcome {
            if o.is_ok() {
                *o = Err((
                    ResponseError::UnknownServerError.code(),
                    Some(e.to_string()),
                    false,
                ));
            }
        }
    }
    let results = outcome
        .iter()
        .map(|o| match o {
            Ok(_) => result(0, None),
            Err((code, msg, _)) => result(*code, msg.as_deref()),
        })
        .collect();
    Outcome::Respond(CreateAclsResponse::default().with_results(results))
}

pub async fn describe(
    broker: &Broker,
    req: DescribeAclsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Outcome<DescribeAclsResponse> {
    let error = |code: i16, msg: &str| {
        Outcome::Respond(
            DescribeAclsResponse::default()
                .with_error_code(code)
                .with_error_message(Some(str_bytes(msg))),
        )
    };
    if let Some((code, msg)) = refusal(broker, ctx, Operation::Describe) {
        return error(code, msg);
    }
    if request_has_unknown_code(
        req.resource_type_filter,
        req.pattern_type_filter,
        req.operation,
        req.permission_type,
    ) {
        return Outcome::Close(UNKNOWN_CODE.into());
    }
    // Other unknown codes are not refused: such a filter matches nothing, as in Kafka.
    let f = filter(
        req.resource_type_filter,
        &req.resource_name_filter,
        req.pattern_type_filter,
        &req.principal_filter,
        &req.host_filter,
        req.operation,
        req.permission_type,
    );
    // One resource entry per (type, name, pattern), as Kafka groups them; bindings come sorted.
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for b in broker.acls.matching(&f) {
        let acl = AclDescription::default()
            .with_principal(str_bytes(&b.principal))
            .with_host(str_bytes(&b.host))
            .with_operation(b.operation.code())
            .with_permission_type(b.permission.code());
        match resources.iter_mut().find(|r| {
            r.resource_type == b.resource_type.code()
                && *r.resource_name == *b.resource_name
                && r.pattern_type == b.pattern_type.code()
        }) {
            Some(r) => r.acls.push(acl),
            None => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(str_bytes(&b.resource_name))
                    .with_pattern_type(b.pattern_type.code())
                    .with_acls(vec![acl]),
            ),
        }
    }
    Outcome::Respond(DescribeAclsResponse::default().with_resources(resources))
}

pub async fn delete(
    broker: &Broker,
    req: DeleteAclsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Outcome<DeleteAclsResponse> {
    let failed = |code: i16, msg: &str| {
        DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(msg)))
    };
    if let Some((code, msg)) = refusal(broker, ctx, Operation::Alter) {
        let results = req.filters.iter().map(|_| failed(code, msg)).collect();
        return Outcome::Respond(DeleteAclsResponse::default().with_filter_results(results));
    }
    if req.filters.iter().any(|f| {
        request_has_unknown_code(
            f.resource_type_filter,
            f.pattern_type_filter,
            f.operation,
            f.permission_type,
        )
    }) {
        return Outcome::Close(UNKNOWN_CODE.into());
    }
    let parsed: Vec<Result<AclFilter, String>> = req
        .filters
        .iter()
        .map(|f| {
            let f = filter(
                f.resource_type_filter,
                &f.resource_name_filter,
                f.pattern_type_filter,
                &f.principal_filter,
                &f.host_filter,
                f.operation,
                f.permission_type,
            );
            f.validate_for_delete().map(|()| f).map_err(|e| e.message)
        })
        .collect();
    let valid: Vec<AclFilter> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let mut removed = match broker
        .change_shared(&broker.acls, || broker.acls.remove(&valid))
        .await
    {
        Ok(r) => r.into_iter(),
        Err(e) => {
            tracing::error!(error = %e, "cannot store ACLs");
            let msg = e.to_string();
            let code = ResponseError::UnknownServerError.code();
            let results = parsed.iter().map(|_| failed(code, &msg)).collect();
            return Outcome::Respond(DeleteAclsResponse::default().with_filter_results(results));
        }
    };
    let results = parsed
        .iter()
        .map(|p| match p {
            Err(msg) => failed(ResponseError::InvalidRequest.code(), msg),
            Ok(_) => {
                let matching = removed
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(str_bytes(&b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(str_bytes(&b.principal))
                            .with_host(str_bytes(&b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect();
                DeleteAclsFilterResult::default().with_matching_acls(matching)
            }
        })
        .collect();
    Outcome::Respond(DeleteAclsResponse::default().with_filter_results(results))
}
