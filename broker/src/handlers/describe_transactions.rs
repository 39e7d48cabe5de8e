//! DescribeTransactions: state, timeout, producer and partitions of each transactional id. Each id needs
//! DESCRIBE (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for it), and only the topics the principal may
//! DESCRIBE are listed, as in Kafka's `handleDescribeTransactionsRequest`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};

use super::{str_bytes, topic_name, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: DescribeTransactionsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<DescribeTransactionsResponse> {
    // In a cluster each transactional id is described by the broker holding it; an id the principal may
    // not describe is refused before that, so asking never moves it to this broker.
    let mut refused = std::collections::HashMap::new();
    for id in &req.transactional_ids {
        if !ctx.allowed(
            broker,
            Operation::Describe,
            ResourceType::TransactionalId,
            id,
        ) {
            refused.insert(
                id.clone(),
                ResponseError::TransactionalIdAuthorizationFailed.code(),
            );
        } else if let Err(code) = broker.hold_txn(id).await {
            refused.insert(id.clone(), code);
        }
    }
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let base = TransactionState::default().with_transactional_id(id.clone());
            if let Some(&code) = refused.get(&id) {
                return base.with_error_code(code);
            }
            match broker.txns.describe(&id) {
                None => base
                    .with_error_code(ResponseError::TransactionalIdNotFound.code())
                    .with_transaction_state(str_bytes(""))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
                Some(m) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    let mut describable = std::collections::HashMap::new();
                    for (t, p) in &m.partitions {
                        let shown = *describable.entry(t.as_str()).or_insert_with(|| {
                            ctx.allowed(broker, Operation::Describe, ResourceType::Topic, t)
                        });
                        if !shown {
                            continue;
                        }
                        match topics.last_mut() {
                            Some(last) if *last.topic == **t => last.partitions.push(*p),
                            _ => topics.push(
                                TopicData::default()
                                    .with_topic(topic_name(t))
                                    .with_partitions(vec![*p]),
                            ),
                        }
                    }
                    base.with_error_code(ErrorCode::NONE.code())
                        .with_transaction_state(str_bytes(m.state.name()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(topics)
                }
            }
        })
        .collect();
    Some(DescribeTransactionsResponse::default().with_transaction_states(states))
}
