//! DeleteTopics: by name, or by topic ID on v6+. Authorization as in Kafka's controller
//! (`ControllerApis.deleteTopics`): DELETE on the cluster covers every topic; otherwise a topic named
//! without DESCRIBE is refused before its existence is looked at, and one without DELETE is refused; a
//! topic given by id keeps its name secret unless the principal may describe it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

use super::{str_bytes, topic_name, ErrorCode};
use crate::broker::Broker;
use crate::error_code::code_and_message;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// Whether a resolved topic is refused with TOPIC_AUTHORIZATION_FAILED: `Some(true)` keeps its name in the
/// answer, `Some(false)` hides it (given by id, and the principal may not describe it). A named topic the
/// principal may describe but that does not exist is not refused here: it is unknown.
fn refusal(
    broker: &Broker,
    ctx: &RequestContext,
    cluster_delete: bool,
    name: &str,
    by_id: bool,
) -> Option<bool> {
    if cluster_delete {
        return None;
    }
    let describable = ctx.allowed(broker, Operation::Describe, ResourceType::Topic, name);
    if !by_id && !describable {
        return Some(true);
    }
    if !by_id && broker.topic_meta(name).is_none() {
        return None;
    }
    (!ctx.allowed(broker, Operation::Delete, ResourceType::Topic, name)).then_some(describable)
}

pub async fn handle(
    broker: &Broker,
    req: DeleteTopicsRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<DeleteTopicsResponse> {
    let cluster_delete = ctx.allowed_on_cluster(broker, Operation::Delete);
    // v0-5 name topics in `topic_names`; v6+ in `topics`, each by name or by ID.
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::new();
    for (name, id) in targets {
        responses.push(
            async {
                let mut r = DeletableTopicResult::default();
                let by_id = name.is_none();
                let name = name.or_else(|| broker.topic_by_id(id).map(|m| m.name));
                if version >= 6 {
                    r.topic_id = id;
                }
                r.name = name.as_deref().map(topic_name);
                let Some(name) = name else {
                    r.error_code = ResponseError::UnknownTopicId.code();
                    return r;
                };
                if !broker.config.delete_topic_enable() {
                    r.error_code = ResponseError::TopicDeletionDisabled.code();
                    return r;
                }
                if let Some(name_shown) = refusal(broker, ctx, cluster_delete, &name, by_id) {
                    r.error_code = ResponseError::TopicAuthorizationFailed.code();
                    if version >= 5 {
                        r.error_message = Some(str_bytes("Topic authorization failed."));
                    }
                    if !name_shown {
                        r.name = None;
                    }
                    return r;
                }
                match broker.delete_topic(&name).await {
                    Ok(meta) => {
                        r.error_code = ErrorCode::NONE.code();
                        if version >= 6 {
                            r.topic_id = meta.id;
                        }
                    }
                    Err(e) => {
                        let (code, message) = code_and_message(&e);
                        r.error_code = code;
                        if version >= 5 {
                            r.error_message = message;
                        }
                    }
                }
                r
            }
            .await,
        );
    }
    Some(DeleteTopicsResponse::default().with_responses(responses))
}
