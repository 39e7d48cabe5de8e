//! Per-partition state of idempotent producers: the last batches of each producer id, so that a retried batch
//! is acknowledged with its original offsets, a gap is refused and a stale epoch is fenced.
//!
//! The state is a function of the log: it is rebuilt by reading batch headers (never records) from a
//! snapshot's offset onward, and snapshotted at clean shutdown and when segments roll.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::batch::BatchHeader;
use crate::error::{IoContext, Result, StorageError};

/// How many recent batches per producer are remembered for duplicate detection (Kafka keeps five, which is
/// also the most in-flight requests an idempotent producer may have).
const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    pub last_timestamp: i64,
    /// First offset of the producer's open transaction in this partition, if any.
    #[serde(default)]
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// The verdict on a batch from a producer with an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Accept,
    /// Already in the log: acknowledge with these offsets, append nothing.
    Duplicate(BatchMeta),
    /// The batch's epoch is older than the producer's current epoch.
    StaleEpoch,
    /// The sequence does not follow the last one.
    OutOfOrder { expected: i32, got: i32 },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

impl ProducerState {
    /// Decides what to do with a batch, as Kafka's ProducerStateManager does.
    pub fn check(&self, h: &BatchHeader) -> SequenceCheck {
        if !h.has_producer_id() || h.is_control() {
            return SequenceCheck::Accept;
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer (new, or its state was removed with the log): any sequence is accepted.
            return SequenceCheck::Accept;
        };
        if h.producer_epoch < entry.epoch {
            return SequenceCheck::StaleEpoch;
        }
        if h.base_sequence < 0 {
            return SequenceCheck::Accept;
        }
        if h.producer_epoch == entry.epoch {
            if let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
            {
                return SequenceCheck::Duplicate(*dup);
            }
            // A known epoch with no batch yet (say, only a transaction marker) starts at sequence zero,
            // as Kafka's NO_SEQUENCE (-1) + 1.
            let last = entry.last_seq().unwrap_or(-1);
            if in_sequence(last, h.base_sequence) {
                SequenceCheck::Accept
            } else {
                SequenceCheck::OutOfOrder {
                    expected: last.wrapping_add(1),
                    got: h.base_sequence,
                }
            }
        } else if h.base_sequence != 0 {
            // A bumped epoch restarts sequences at zero.
            SequenceCheck::OutOfOrder {
                expected: 0,
                got: h.base_sequence,
            }
        } else {
            SequenceCheck::Accept
        }
    }

    /// Records an appended batch (after offsets were assigned).
    pub fn record(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch > entry.epoch
            || entry.batches.is_empty() && entry.epoch != h.producer_epoch
        {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
        if h.is_control() {
            entry.current_txn_first_offset = None;
            return;
        }
        if h.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(h.base_offset);
        }
        if h.base_sequence >= 0 {
            entry.batches.push_back(BatchMeta {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                first_offset: h.base_offset,
                last_offset: h.last_offset(),
                max_timestamp: h.max_timestamp,
            });
            while entry.batches.len() > REMEMBERED_BATCHES {
                entry.batches.pop_front();
            }
        }
    }

    /// Raises a producer's epoch (InitProducerId bumped it), forgetting its old sequences.
    pub fn bump_epoch(&mut self, producer_id: i64, epoch: i16) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }
    pub fn producers(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.producers.iter()
    }
    pub fn len(&self) -> usize {
        self.producers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Drops producers whose newest batch is before `log_start` (their batches were deleted).
    pub fn remove_before(&mut self, log_start: i64) {
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || e.batches.back().is_none_or(|b| b.last_offset >= log_start)
        });
    }
}

/// A producer-state snapshot on disk: the state as of `offset` (every batch below it is reflected).
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub offset: i64,
    pub state: ProducerState,
}

pub fn write_snapshot(path: &Path, snapshot: &Snapshot) -> Result<()> {
    let bytes =
        serde_json::to_vec(snapshot).map_err(|e| StorageError::CorruptCatalog(e.to_string()))?;
    crate::atomic_file::write(path, &bytes)
}

pub fn read_snapshot(path: &Path) -> Result<Option<Snapshot>> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable producer snapshot");
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::make_batch_with;
    use crate::batch::validate;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        validate(&make_batch_with(base, count, 0, pid, epoch, seq)).expect("valid")
    }

    #[test]
    fn retries_are_duplicates_gaps_are_out_of_order_old_epochs_are_stale() {
        let mut s = ProducerState::default();
        let first = header(7, 0, 0, 3, 0);
        assert_eq!(s.check(&first), SequenceCheck::Accept);
        s.record(&first);
        match s.check(&header(7, 0, 0, 3, 99)) {
            SequenceCheck::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (0, 2)),
            other => panic!("expected duplicate, got {other:?}"),
        }
        assert_eq!(
            s.check(&header(7, 0, 5, 1, 3)),
            SequenceCheck::OutOfOrder {
                expected: 3,
                got: 5
            }
        );
        assert_eq!(s.check(&header(7, 0, 3, 1, 3)), SequenceCheck::Accept);
        s.bump_epoch(7, 1);
        assert_eq!(s.check(&header(7, 0, 3, 1, 3)), SequenceCheck::StaleEpoch);
        assert_eq!(s.check(&header(7, 1, 0, 1, 3)), SequenceCheck::Accept);
        assert!(matches!(
            s.check(&header(7, 2, 4, 1, 3)),
            SequenceCheck::OutOfOrder { .. }
        ));
    }

    #[test]
    fn after_a_marker_alone_the_sequence_must_start_at_zero() {
        let mut s = ProducerState::default();
        let marker = validate(&crate::log::marker_batch(9, 0, false, 0, 1)).expect("valid");
        s.record(&marker);
        assert_eq!(
            s.check(&header(9, 0, 1, 1, 5)),
            SequenceCheck::OutOfOrder {
                expected: 0,
                got: 1
            }
        );
        assert_eq!(s.check(&header(9, 0, 0, 1, 5)), SequenceCheck::Accept);
    }
}
