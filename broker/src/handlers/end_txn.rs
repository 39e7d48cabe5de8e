//! EndTxn: commit or abort. Markers go to every partition of the transaction and its group offsets are
//! settled before the answer, so a read_committed consumer sees the outcome once the producer does.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::{fenced_code, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: EndTxnRequest,
    version: i16,
    _ctx: &RequestContext,
) -> Option<EndTxnResponse> {
    let code = tokio::task::block_in_place(|| {
        match broker.txns.prepare_end(
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            fenced_code(version),
            req.committed,
        ) {
            Ok(Some(plan)) => broker
                .complete_transaction(&plan)
                .err()
                .unwrap_or(ErrorCode::NONE.code()),
            Ok(None) => ErrorCode::NONE.code(),
            Err(code) => code,
        }
    });
    Some(EndTxnResponse::default().with_error_code(code))
}
