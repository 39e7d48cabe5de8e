//! Transactions: the coordinator's state per transactional id ([`coordinator`]), its durable log
//! ([`store`]), and the broker-side work of ending one: markers to partitions, offsets to groups
//! ([`Broker::complete_transaction`](crate::broker::Broker::complete_transaction)).

pub mod coordinator;
pub mod store;

pub use coordinator::{EndPlan, InitOutcome, TxnCoordinator, TxnMeta, TxnSettings, TxnStatus};
