//! ACL administration on the admin client: CreateAcls, DescribeAcls, DeleteAcls with Kafka's codes
//! (resource type, pattern type, operation and permission as the wire carries them).

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{check, Result};

/// One ACL, or (with `None`s and ANY codes) a filter over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn opt(s: &Option<String>) -> Option<StrBytes> {
    s.as_deref().map(sb)
}

impl Admin {
    pub async fn create_acls(&self, acls: &[Acl]) -> Result<()> {
        let conn = self.cluster().any().await?;
        let req = CreateAclsRequest::default().with_creations(
            acls.iter()
                .map(|a| {
                    AclCreation::default()
                        .with_resource_type(a.resource_type)
                        .with_resource_name(sb(a.resource_name.as_deref().unwrap_or_default()))
                        .with_resource_pattern_type(a.pattern_type)
                        .with_principal(sb(a.principal.as_deref().unwrap_or_default()))
                        .with_host(sb(a.host.as_deref().unwrap_or("*")))
                        .with_operation(a.operation)
                        .with_permission_type(a.permission)
                })
                .collect(),
        );
        let resp = conn.call(&req).await?;
        for r in &resp.results {
            let msg = r
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            check(|| format!("create ACL {msg}"), r.error_code)?;
        }
        Ok(())
    }

    pub async fn describe_acls(&self, filter: &Acl) -> Result<Vec<Acl>> {
        let conn = self.cluster().any().await?;
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type)
            .with_resource_name_filter(opt(&filter.resource_name))
            .with_pattern_type_filter(filter.pattern_type)
            .with_principal_filter(opt(&filter.principal))
            .with_host_filter(opt(&filter.host))
            .with_operation(filter.operation)
            .with_permission_type(filter.permission);
        let resp = conn.call(&req).await?;
        check(|| "describe ACLs".to_string(), resp.error_code)?;
        Ok(resp
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(|a| Acl {
                    resource_type: r.resource_type,
                    resource_name: Some(r.resource_name.to_string()),
                    pattern_type: r.pattern_type,
                    principal: Some(a.principal.to_string()),
                    host: Some(a.host.to_string()),
                    operation: a.operation,
                    permission: a.permission_type,
                })
            })
            .collect())
    }

    /// Deletes what the filter matches; returns the deleted ACLs.
    pub async fn delete_acls(&self, filter: &Acl) -> Result<Vec<Acl>> {
        let conn = self.cluster().any().await?;
        let req = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(filter.resource_type)
            .with_resource_name_filter(opt(&filter.resource_name))
            .with_pattern_type_filter(filter.pattern_type)
            .with_principal_filter(opt(&filter.principal))
            .with_host_filter(opt(&filter.host))
            .with_operation(filter.operation)
            .with_permission_type(filter.permission)]);
        let resp = conn.call(&req).await?;
        let mut deleted = Vec::new();
        for r in &resp.filter_results {
            check(|| "delete ACLs".to_string(), r.error_code)?;
            deleted.extend(r.matching_acls.iter().map(|a| Acl {
                resource_type: a.resource_type,
                resource_name: Some(a.resource_name.to_string()),
                pattern_type: a.pattern_type,
                principal: Some(a.principal.to_string()),
                host: Some(a.host.to_string()),
                operation: a.operation,
                permission: a.permission_type,
            }));
        }
        Ok(deleted)
    }
}
