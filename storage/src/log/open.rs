//! Opening a partition's log: finding its segments, checking them against what a clean stop recorded or
//! verifying them batch by batch after an unclean one, continuing after offsets already handed out, and
//! rebuilding producer and transaction state from the last snapshot plus the batches written after it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{
    control_type, settings, ControlType, PartitionLog, PartitionMeta, TxnState, META_FILE,
    PRODUCER_SNAPSHOT_FILE,
};
use crate::batch::BatchHeader;
use crate::config::LogConfig;
use crate::error::{IoContext, Result};
use crate::producer_state::{self, ProducerState};
use crate::segment::Segment;

fn segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(base) = stem.parse::<i64>() {
                bases.push(base);
            }
        } else if name.ends_with(".tmp") || name.ends_with(".cleaned") {
            let _ = fs::remove_file(entry.path());
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

impl PartitionLog {
    /// Opens or creates the log in `dir`. After a clean stop (`clean`) each segment is checked against what
    /// it recorded (see [`Segment::open_checked`]); after an unclean one every segment from the recovery
    /// point on is verified batch by batch. A segment that fails either is recovered: its invalid tail cut
    /// off and its indexes rebuilt, with a warning naming the file. Offsets handed out before are never
    /// handed out again, even when the data holding them is gone.
    pub fn open(dir: &Path, config: LogConfig, clean: bool, now_ms: i64) -> Result<Self> {
        fs::create_dir_all(dir).at(dir)?;
        let (meta, clean) = match fs::read(dir.join(META_FILE)) {
            Ok(bytes) => match serde_json::from_slice::<PartitionMeta>(&bytes) {
                Ok(meta) => (meta, clean),
                Err(e) => {
                    tracing::warn!(file = %dir.join(META_FILE).display(), error = %e, "unreadable partition metadata; verifying every segment");
                    (PartitionMeta::default(), false)
                }
            },
            Err(_) => (PartitionMeta::default(), clean),
        };
        let bases = segment_bases(dir)?;
        let settings = settings(&config);
        let mut segments = BTreeMap::new();
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let below_recovery_point = bases
                .get(i + 1)
                .is_some_and(|&next| next <= meta.recovery_point);
            let checked = if clean || below_recovery_point {
                match Segment::open_checked(dir, base, settings)? {
                    Ok(seg) => Some(seg),
                    Err(why) => {
                        tracing::warn!(dir = %dir.display(), base, problem = %why, "segment does not match what was recorded; recovering it");
                        None
                    }
                }
            } else {
                None
            };
            let seg = match checked {
                Some(seg) => seg,
                None => {
                    let rec = Segment::recover(dir, base, settings)?;
                    if rec.truncated_bytes > 0 {
                        tracing::warn!(segment = %rec.segment.paths().log.display(), bytes = rec.truncated_bytes, "truncated invalid tail");
                    }
                    let mut seg = rec.segment;
                    if !is_last {
                        if let Err(e) = seg.seal() {
                            tracing::warn!(dir = %dir.display(), base, error = %e, "cannot write rebuilt indexes; keeping them in memory");
                        }
                    }
                    seg
                }
            };
            segments.insert(base, seg);
        }
        let log_start_offset = meta.log_start_offset;
        let mut active = match segments.pop_last() {
            Some((_, seg)) => seg,
            None => Segment::create(dir, log_start_offset.max(meta.recovery_point), settings)?,
        };
        if active.next_offset() < meta.recovery_point {
            // Offsets up to the recovery point were handed out (and fsynced): whatever lost them, the log
            // continues after them, so a consumer never sees one offset name two records.
            tracing::warn!(dir = %dir.display(), end = active.next_offset(), recorded = meta.recovery_point, "log ends before offsets it handed out; continuing after them (records in between are lost)");
            let next = Segment::create(dir, meta.recovery_point, settings)?;
            let old = std::mem::replace(&mut active, next);
            if old.is_empty() {
                old.delete()?;
            } else {
                let mut old = old;
                old.seal()?;
                segments.insert(old.base_offset(), old);
            }
        }
        active.set_first_append_ms(now_ms);
        let next_offset = active.next_offset();
        let first_base = segments
            .keys()
            .next()
            .copied()
            .unwrap_or(active.base_offset());
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            closed: segments,
            active,
            log_start_offset: log_start_offset.max(first_base).min(next_offset),
            next_offset,
            producers: ProducerState::default(),
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            recovery_point: meta.recovery_point.min(next_offset),
            poisoned: false,
            shut: false,
            checkpointed: None,
            compacted_up_to: 0,
            txns: TxnState::open(dir, 0)?,
        };
        let snapshot_at = log.rebuild_producer_state()?;
        let state = (log.next_offset, log.log_start_offset, log.recovery_point);
        if snapshot_at == Some(log.next_offset)
            && (meta.log_start_offset, meta.recovery_point) == (state.1, state.2)
        {
            log.checkpointed = Some(state);
        }
        Ok(log)
    }

    /// Rebuilds producer and transaction state from the snapshot and the log after it; returns the
    /// snapshot's offset when one was used.
    fn rebuild_producer_state(&mut self) -> Result<Option<i64>> {
        let snapshot = producer_state::read_snapshot(&self.dir.join(PRODUCER_SNAPSHOT_FILE))?;
        let (from, used) = match snapshot {
            Some(s) if s.offset <= self.next_offset && s.offset >= self.log_start_offset => {
                self.producers = s.state;
                (s.offset, Some(s.offset))
            }
            _ => (self.log_start_offset, None),
        };
        self.txns = TxnState::open(&self.dir, from)?;
        for (pid, e) in self.producers.producers() {
            if let Some(first) = e.current_txn_first_offset {
                self.txns.ongoing.insert(first, *pid);
            }
        }
        // Headers suffice, except for control batches, whose marker type is in their one record.
        let mut replay: Vec<(BatchHeader, ControlType)> = Vec::new();
        for seg in self.segments() {
            if seg.next_offset() <= from {
                continue;
            }
            let mut found = Vec::new();
            seg.scan_headers(0, |pos, h| {
                if h.base_offset >= from {
                    found.push((pos, *h));
                }
                true
            })?;
            for (pos, h) in found {
                let ctl = if h.is_control() {
                    control_type(&seg.batch_at(pos, &h)?, &h)
                } else {
                    ControlType::Other
                };
                replay.push((h, ctl));
            }
        }
        for (h, ctl) in &replay {
            self.observe_batch(h, *ctl)?;
        }
        self.txns.rewrite(self.log_start_offset)?;
        Ok(used)
    }
}
