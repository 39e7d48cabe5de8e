//! InitProducerId for idempotent producers (no transactional.id): a fresh producer id, epoch 0, as Kafka
//! does for every such request. Transactional ids arrive with the transaction coordinator.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::NONE;
use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: InitProducerIdRequest,
    _version: i16,
    _ctx: &RequestContext,
) -> Option<InitProducerIdResponse> {
    let failed = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req.transactional_id.is_some() {
        return Some(failed(
            ResponseError::TransactionalIdAuthorizationFailed.code(),
        ));
    }
    match broker.producer_ids.next_id() {
        Ok(id) => Some(
            InitProducerIdResponse::default()
                .with_error_code(NONE)
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            Some(failed(ResponseError::KafkaStorageError.code()))
        }
    }
}
