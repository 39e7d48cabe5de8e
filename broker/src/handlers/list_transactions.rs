//! ListTransactions: transactional ids, optionally filtered by state, producer id and (v1+) minimum age.
//! Only the ids the principal may DESCRIBE are listed, as in Kafka's `handleListTransactionsRequest`.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::transactions::TxnStatus;

const STATES: &[TxnStatus] = &[
    TxnStatus::Empty,
    TxnStatus::Ongoing,
    TxnStatus::PrepareCommit,
    TxnStatus::PrepareAbort,
    TxnStatus::CompleteCommit,
    TxnStatus::CompleteAbort,
];

pub async fn handle(
    broker: &Broker,
    req: ListTransactionsRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<ListTransactionsResponse> {
    let filters: Vec<String> = req.state_filters.iter().map(|s| s.to_string()).collect();
    let unknown: Vec<_> = filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .map(|f| str_bytes(f))
        .collect();
    let now = runnel_storage::now_ms();
    let states = broker
        .txns
        .list()
        .into_iter()
        .filter(|(_, m)| filters.is_empty() || filters.iter().any(|f| f == m.state.name()))
        .filter(|(_, m)| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
        })
        .filter(|(_, m)| {
            version < 1
                || req.duration_filter < 0
                || (m.start_ms >= 0 && now - m.start_ms >= req.duration_filter)
        })
        .filter(|(id, _)| {
            ctx.allowed(
                broker,
                Operation::Describe,
                ResourceType::TransactionalId,
                id,
            )
        })
        .map(|(id, m)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(&id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(str_bytes(m.state.name()))
        })
        .collect();
    Some(
        ListTransactionsResponse::default()
            .with_error_code(ErrorCode::NONE.code())
            .with_unknown_state_filters(unknown)
            .with_transaction_states(states),
    )
}
