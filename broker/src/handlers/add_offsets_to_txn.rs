//! AddOffsetsToTxn: the consumer group whose offsets the transaction will commit (sendOffsetsToTransaction).

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::{fenced_code, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: AddOffsetsToTxnRequest,
    version: i16,
    _ctx: &RequestContext,
) -> Option<AddOffsetsToTxnResponse> {
    let result = tokio::task::block_in_place(|| {
        broker.txns.add(
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            fenced_code(version),
            &[],
            Some(&req.group_id),
        )
    });
    Some(
        AddOffsetsToTxnResponse::default()
            .with_error_code(result.err().unwrap_or(ErrorCode::NONE.code())),
    )
}
