//! AlterClientQuotas / DescribeClientQuotas (KIP-546): what `kafka-configs.sh --entity-type users|clients`
//! and the AdminClient's quota calls use. ALTER_CONFIGS / DESCRIBE_CONFIGS on the cluster, Kafka's entity
//! types (user, client-id; `ip` is refused here), its keys and its filter semantics.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlterEntity, EntryData as AlterEntry,
};
use kafka_protocol::messages::describe_client_quotas_response::{
    EntityData as DescribeEntity, EntryData as DescribeEntry, ValueData,
};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::quotas::store::{Entity, QUOTA_KEYS};
use crate::request::RequestContext;
use crate::security::acl::Operation;

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// (type, name) pairs → an entity, or Kafka's message for what is wrong with them.
fn entity(parts: &[(String, Option<String>)]) -> Result<Entity, String> {
    let mut e = Entity {
        user: None,
        client_id: None,
    };
    for (kind, name) in parts {
        let slot = match kind.as_str() {
            "user" => &mut e.user,
            "client-id" => &mut e.client_id,
            "ip" => {
                return Err(
                    "IP quotas (connection_creation_rate) are not supported by Runnel".into(),
                )
            }
            other => return Err(format!("Unexpected entity type: {other}")),
        };
        if slot.is_some() {
            return Err(format!("Duplicate {kind} entity"));
        }
        *slot = Some(name.clone());
    }
    if e.user.is_none() && e.client_id.is_none() {
        return Err("Invalid empty client quota entity".into());
    }
    Ok(e)
}

fn parts(e: &Entity) -> Vec<(String, Option<String>)> {
    e.components()
}

pub async fn alter(
    broker: &Broker,
    req: AlterClientQuotasRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<AlterClientQuotasResponse> {
    let allowed = ctx.allowed_on_cluster(broker, Operation::AlterConfigs);
    let mut changes = Vec::new();
    let mut results = Vec::new();
    for entry in req.entries {
        let raw: Vec<(String, Option<String>)> = entry
            .entity
            .iter()
            .map(|p| {
                (
                    p.entity_type.to_string(),
                    p.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        let echo: Vec<AlterEntity> = entry
            .entity
            .iter()
            .map(|p| {
                AlterEntity::default()
                    .with_entity_type(p.entity_type.clone())
                    .with_entity_name(p.entity_name.clone())
            })
            .collect();
        let checked = if !allowed {
            Err((
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.".to_string(),
            ))
        } else {
            entity(&raw)
                .map_err(|m| (ResponseError::InvalidRequest, m))
                .and_then(|e| {
                    let mut ops = Vec::new();
                    for op in &entry.ops {
                        let key = op.key.to_string();
                        if !QUOTA_KEYS.contains(&key.as_str()) {
                            return Err((
                                ResponseError::InvalidRequest,
                                format!("Invalid configuration key {key}"),
                            ));
                        }
                        if !op.remove && key != "request_percentage" && op.value.fract() != 0.0 {
                            return Err((
                                ResponseError::InvalidRequest,
                                format!("Configuration {key} must be a Long value"),
                            ));
                        }
                        if !op.remove && op.value <= 0.0 {
                            return Err((
                                ResponseError::InvalidRequest,
                                format!("Configuration {key} must be positive"),
                            ));
                        }
                        ops.push((key, (!op.remove).then_some(op.value)));
                    }
                    Ok((e, ops))
                })
        };
        let result = AlterEntry::default().with_entity(echo);
        match checked {
            Ok(change) => {
                if !req.validate_only {
                    changes.push(change);
                }
                results.push(Ok(result));
            }
            Err((code, msg)) => results.push(Err(result
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(&msg))))),
        }
    }
    let stored = broker
        .change_shared(&broker.quotas.store, || broker.quotas.store.alter(changes))
        .await;
    let entries = results
        .into_iter()
        .map(|r| match (r, &stored) {
            (Ok(e), Ok(())) => e,
            (Ok(e), Err(err)) => e
                .with_error_code(ResponseError::UnknownServerError.code())
                .with_error_message(Some(str_bytes(&err.to_string()))),
            (Err(e), _) => e,
        })
        .collect();
    Some(AlterClientQuotasResponse::default().with_entries(entries))
}

pub async fn describe(
    broker: &Broker,
    req: DescribeClientQuotasRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<DescribeClientQuotasResponse> {
    let fail = |code: ResponseError, msg: String| {
        Some(
            DescribeClientQuotasResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(&msg))),
        )
    };
    if !ctx.allowed_on_cluster(broker, Operation::DescribeConfigs) {
        return fail(
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        );
    }
    let mut filters = Vec::new();
    for c in &req.components {
        let kind = c.entity_type.to_string();
        if !["user", "client-id", "ip"].contains(&kind.as_str()) {
            return fail(
                ResponseError::InvalidRequest,
                format!("Custom entity type '{kind}' not supported"),
            );
        }
        if filters
            .iter()
            .any(|(k, _, _): &(String, i8, Option<String>)| *k == kind)
        {
            return fail(
                ResponseError::InvalidRequest,
                format!("Duplicate {kind} filter component entity type"),
            );
        }
        if ![MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED].contains(&c.match_type) {
            return fail(
                ResponseError::InvalidRequest,
                format!("Unknown match type {}", c.match_type),
            );
        }
        filters.push((kind, c.match_type, c._match.as_ref().map(|m| m.to_string())));
    }
    let entries = broker
        .quotas
        .store
        .all()
        .into_iter()
        .filter(|(e, _)| {
            let parts = parts(e);
            let each = filters.iter().all(|(kind, match_type, name)| {
                parts.iter().any(|(k, n)| {
                    k == kind
                        && match *match_type {
                            MATCH_EXACT => n == name,
                            MATCH_DEFAULT => n.is_none(),
                            _ => n.is_some(),
                        }
                })
            });
            // strict: the entity has no component the filter does not name.
            each && (!req.strict
                || parts
                    .iter()
                    .all(|(k, _)| filters.iter().any(|(f, _, _)| f == k)))
        })
        .map(|(e, values)| {
            DescribeEntry::default()
                .with_entity(
                    parts(&e)
                        .into_iter()
                        .map(|(k, n)| {
                            DescribeEntity::default()
                                .with_entity_type(str_bytes(&k))
                                .with_entity_name(n.as_deref().map(str_bytes))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(k, v)| ValueData::default().with_key(str_bytes(k)).with_value(*v))
                        .collect(),
                )
        })
        .collect();
    Some(DescribeClientQuotasResponse::default().with_entries(Some(entries)))
}
