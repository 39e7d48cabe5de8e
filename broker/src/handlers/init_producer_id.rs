//! InitProducerId. Without a transactional id: a fresh producer id, epoch 0, as Kafka does for idempotent
//! producers. With one: the transaction coordinator's id and a bumped epoch, which fences older instances of
//! the producer (aborting the transaction one of them left open first). Authorization as in Kafka's
//! `handleInitProducerIdRequest`, before anything else: WRITE on the transactional id, or, without one,
//! IDEMPOTENT_WRITE on the cluster or WRITE on some topic (CLUSTER_AUTHORIZATION_FAILED otherwise).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::authz::allowed_on_any;
use super::ErrorCode;
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::transactions::InitOutcome;

fn failed(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

fn ready(producer_id: i64, epoch: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(ErrorCode::NONE.code())
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}

pub async fn handle(
    broker: &Broker,
    req: InitProducerIdRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<InitProducerIdResponse> {
    let refused = match req.transactional_id.as_deref() {
        Some(id) => (!ctx.allowed(broker, Operation::Write, ResourceType::TransactionalId, id))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => (!ctx.allowed_on_cluster(broker, Operation::IdempotentWrite)
            && !allowed_on_any(broker, ctx, Operation::Write, ResourceType::Topic))
        .then_some(ResponseError::ClusterAuthorizationFailed),
    };
    if let Some(e) = refused {
        return Some(failed(e.code()));
    }
    // An empty transactional id is refused, as Kafka's coordinator does (null means "idempotent only").
    if req.transactional_id.as_ref().is_some_and(|t| t.is_empty()) {
        return Some(failed(ResponseError::InvalidRequest.code()));
    }
    let Some(txn_id) = req.transactional_id.as_ref() else {
        return Some(match broker.producer_ids.next_id().await {
            Ok(id) => ready(id, 0),
            Err(e) => {
                tracing::error!(error = %e, "cannot allocate a producer id");
                failed(ResponseError::KafkaStorageError.code())
            }
        });
    };
    if let Err(code) = broker.hold_txn(txn_id).await {
        return Some(failed(code));
    }
    // A new id is taken before the coordinator's lock, and only when the id may need one: the database
    // is not asked while the lock is held.
    let needs_id = broker
        .txns
        .describe(txn_id)
        .is_none_or(|m| m.producer_epoch >= i16::MAX - 1);
    let fresh = if needs_id {
        broker.producer_ids.next_id().await.ok()
    } else {
        None
    };
    let outcome = tokio::task::block_in_place(|| {
        broker
            .txns
            .init(txn_id, req.transaction_timeout_ms, || fresh)
    });
    // The new epoch (or the abort that fences the old producer) is in the database before anyone acts on it.
    if outcome.is_ok() {
        if let Err(code) = broker.durable(&broker.txns, txn_id).await {
            return Some(failed(code));
        }
    }
    let resp = match outcome {
        Ok(InitOutcome::Ready {
            producer_id,
            producer_epoch,
        }) => ready(producer_id, producer_epoch),
        Ok(InitOutcome::AbortFirst(plan)) => {
            let done = broker
                .complete_transaction(&plan)
                .await
                .and_then(|()| broker.txns.after_forced_abort(txn_id));
            let done = match done {
                Ok(ids) => broker.durable(&broker.txns, txn_id).await.map(|()| ids),
                Err(code) => Err(code),
            };
            match done {
                Ok((pid, epoch)) => ready(pid, epoch),
                Err(code) => failed(code),
            }
        }
        Err(code) if code == ResponseError::ProducerFenced.code() && version < 4 => {
            failed(ResponseError::InvalidProducerEpoch.code())
        }
        Err(code) => failed(code),
    };
    Some(resp)
}
