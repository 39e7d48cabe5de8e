//! A partition's log: an ordered set of segments with one active segment at the end.
//!
//! The log assigns offsets, enforces batch limits and producer sequences, rolls segments, applies the flush
//! policy, answers offset and timestamp lookups, and deletes whole segments for retention. It is not
//! thread-safe by itself: the broker keeps each partition behind a lock and copies fetched bytes out through
//! [`ReadSlice`]s after releasing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::BatchHeader;
use crate::config::LogConfig;
use crate::error::Result;
use crate::producer_state::ProducerState;
use crate::segment::{ReadSlice, Segment, SegmentSettings};

mod append;
mod compaction;
mod open;
mod read;
mod retention;
mod transactions;
pub use append::validate_produce;
pub use compaction::{note_latest_keys, retain_latest, CompactionStats};
use transactions::TxnState;
pub use transactions::{control_type, marker_batch, AbortedTxn, ControlType};

const META_FILE: &str = "partition.json";
const PRODUCER_SNAPSHOT_FILE: &str = "producer-state.json";

/// What the log keeps about itself between runs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct PartitionMeta {
    log_start_offset: i64,
    /// Every batch below this offset was on disk (fsynced) when it was written.
    recovery_point: i64,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's time stamped on the batch for LogAppendTime topics, else -1.
    pub log_append_time: i64,
    /// The batch was a retry of one already in the log: nothing was written.
    pub duplicate: bool,
    pub records: i64,
}

/// A timestamp lookup's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: i64,
    pub timestamp: i64,
}

/// What a fetch will read: a slice of one segment (if any data lies at the offset) and the log's bounds.
pub struct ReadPlan {
    pub slice: Option<ReadSlice>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed reads: aborted transactions overlapping the readable range.
    pub aborted: Vec<AbortedTxn>,
}

pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Closed segments by base offset; the active one is kept apart so that there always is one.
    closed: BTreeMap<i64, Segment>,
    active: Segment,
    log_start_offset: i64,
    next_offset: i64,
    producers: ProducerState,
    unflushed_messages: i64,
    last_flush_ms: i64,
    recovery_point: i64,
    poisoned: bool,
    /// Set by [`PartitionLog::close`]: nothing may land after the clean-shutdown marker.
    shut: bool,
    /// (next offset, log start, recovery point) as of the last checkpoint written, so an idle partition's
    /// checkpoint (every minute, and at shutdown) costs no write and no fsync. None: write the next one.
    checkpointed: Option<(i64, i64, i64)>,
    /// Closed segments below this offset were compacted in this run (compaction skips them when nothing new closed).
    compacted_up_to: i64,
    txns: TxnState,
}

fn settings(config: &LogConfig) -> SegmentSettings {
    SegmentSettings {
        index_interval_bytes: config.index_interval_bytes,
        index_max_bytes: config.segment_index_bytes,
    }
}

impl PartitionLog {
    /// Updates transaction and producer state for one appended (or replayed) batch.
    fn observe_batch(&mut self, h: &BatchHeader, ctl: ControlType) -> Result<()> {
        if h.is_transactional() {
            let open = self
                .producers
                .get(h.producer_id)
                .and_then(|e| e.current_txn_first_offset);
            self.txns.observe(h, open, ctl)?;
        }
        self.producers.record(h);
        Ok(())
    }

    /// Every segment, oldest first.
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.closed.values().chain(std::iter::once(&self.active))
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.next_offset
    }
    pub fn producers(&self) -> &ProducerState {
        &self.producers
    }
    pub fn producers_mut(&mut self) -> &mut ProducerState {
        // Whatever the caller changes must reach the next snapshot.
        self.checkpointed = None;
        &mut self.producers
    }
    pub fn segment_count(&self) -> usize {
        self.closed.len() + 1
    }
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments().map(Segment::base_offset).collect()
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments().map(Segment::size).sum()
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
