//! Consumer groups with the classic protocol: membership and rebalances ([`group`]), the coordinator that
//! owns every group and its timers ([`coordinator`]), and durable offsets and metadata ([`store`]).

pub mod coordinator;
pub mod group;
pub mod store;

pub use coordinator::{
    CommitEntry, CommitParams, FetchedOffsets, GroupCoordinator, GroupSettings, JoinParams,
    PartitionCodes, Pending, SyncParams,
};
