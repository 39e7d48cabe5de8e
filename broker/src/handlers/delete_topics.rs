//! DeleteTopics: by name, or by topic ID on v6+.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

use super::{topic_name, ErrorCode};
use crate::broker::Broker;
use crate::error_code::code_and_message;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: DeleteTopicsRequest,
    version: i16,
    _ctx: &RequestContext,
) -> Option<DeleteTopicsResponse> {
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
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let mut r = DeletableTopicResult::default();
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
            match broker.delete_topic(&name) {
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
        })
        .collect();
    Some(DeleteTopicsResponse::default().with_responses(responses))
}
