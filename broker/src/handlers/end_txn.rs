//! EndTxn: commit or abort. Markers go to every partition of the transaction and its group offsets are
//! settled before the answer, so a read_committed consumer sees the outcome once the producer does.
//! WRITE on the transactional id is needed, as in Kafka's `handleEndTxnRequest`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::{fenced_code, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: EndTxnRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<EndTxnResponse> {
    let txn_id = &req.transactional_id;
    if !ctx.allowed(
        broker,
        Operation::Write,
        ResourceType::TransactionalId,
        txn_id,
    ) {
        return Some(
            EndTxnResponse::default()
                .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
        );
    }
    if let Err(code) = broker.hold_txn(txn_id).await {
        return Some(EndTxnResponse::default().with_error_code(code));
    }
    let prepared = tokio::task::block_in_place(|| {
        broker.txns.prepare_end(
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            fenced_code(version),
            req.committed,
        )
    });
    let code = match prepared {
        // The decision is in the database before the first marker: whoever finishes the transaction
        // (this broker, or the next holder after a crash) writes the same markers.
        Ok(Some(plan)) => match broker.durable(&broker.txns, txn_id).await {
            Err(code) => code,
            Ok(()) => match broker.complete_transaction(&plan).await {
                Ok(()) => broker
                    .durable(&broker.txns, txn_id)
                    .await
                    .err()
                    .unwrap_or(ErrorCode::NONE.code()),
                Err(code) => code,
            },
        },
        Ok(None) => ErrorCode::NONE.code(),
        Err(code) => broker.confirmed_refusal(&broker.txns, txn_id, code).await,
    };
    Some(EndTxnResponse::default().with_error_code(code))
}
