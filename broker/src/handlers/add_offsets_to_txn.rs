//! AddOffsetsToTxn: the consumer group whose offsets the transaction will commit (sendOffsetsToTransaction).
//! WRITE on the transactional id, then READ on the group, as in Kafka's `handleAddOffsetsToTxnRequest`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::{fenced_code, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: AddOffsetsToTxnRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<AddOffsetsToTxnResponse> {
    let txn_id = &req.transactional_id;
    let refused = if !ctx.allowed(
        broker,
        Operation::Write,
        ResourceType::TransactionalId,
        txn_id,
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.allowed(broker, Operation::Read, ResourceType::Group, &req.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(e) = refused {
        return Some(AddOffsetsToTxnResponse::default().with_error_code(e.code()));
    }
    if let Err(code) = broker.hold_txn(txn_id).await {
        return Some(AddOffsetsToTxnResponse::default().with_error_code(code));
    }
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
    let result = match result {
        Ok(()) => broker.durable(&broker.txns, txn_id).await,
        Err(code) => Err(broker.confirmed_refusal(&broker.txns, txn_id, code).await),
    };
    Some(
        AddOffsetsToTxnResponse::default()
            .with_error_code(result.err().unwrap_or(ErrorCode::NONE.code())),
    )
}
