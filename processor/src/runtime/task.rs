//! A task: one stage of the job over one partition number of that stage's topics, with its own job graph
//! (so its own state). Tasks are the unit that moves between instances of a job.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{BatchInfo, OffsetRange};
use crate::context::{BatchInput, DeadLetter, StreamingContext};
use crate::error::TaskError;
use crate::output::OutputRecord;
use crate::runtime::changelog::{self, Checkpoint, Restored};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub stage: usize,
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}-p{}", self.stage, self.partition)
    }
}

pub struct Task {
    pub id: TaskId,
    ctx: StreamingContext,
    /// The stage's topics that have this partition.
    pub topics: Vec<String>,
    pub next_batch: u64,
    /// topic → next offset to read.
    pub offsets: BTreeMap<String, i64>,
}

/// What one batch of a task produced, ready for the transaction.
pub struct TaskBatch {
    pub info: BatchInfo,
    /// The task's partition: its changelog records go to this partition of the changelog topic.
    pub partition: i32,
    pub records: Vec<OutputRecord>,
    pub dead: Vec<DeadLetter>,
    /// State changes and the checkpoint, as changelog (key, value) pairs for the task's partition.
    pub changelog: Vec<(Bytes, Option<Bytes>)>,
    pub input_records: usize,
}

impl Task {
    /// A task whose state and offsets come from the changelog (`restored`), checked against the group's
    /// committed offsets; `start` gives the offset of a partition with neither.
    pub fn restore(
        id: TaskId,
        ctx: StreamingContext,
        topics: Vec<String>,
        restored: Restored,
        committed: &HashMap<String, i64>,
        start: &HashMap<String, i64>,
    ) -> Result<Task, TaskError> {
        let stores = ctx.graph().stores();
        let mut entries = restored.stores;
        for (i, store) in stores.iter().enumerate() {
            store.restore(entries.remove(&i).unwrap_or_default())?;
        }
        let mut offsets = BTreeMap::new();
        let next_batch = match &restored.checkpoint {
            Some(cp) => {
                for t in &topics {
                    let (Some(&mine), Some(&group)) = (cp.offsets.get(t), committed.get(t)) else {
                        continue;
                    };
                    if mine != group {
                        return Err(TaskError::OffsetsChanged {
                            task: id,
                            batch: cp.next_batch.saturating_sub(1),
                            topic: t.clone(),
                            partition: id.partition,
                            checkpointed: mine,
                            committed: group,
                        });
                    }
                }
                offsets = cp.offsets.clone();
                cp.next_batch
            }
            None => 0,
        };
        for t in &topics {
            if !offsets.contains_key(t) {
                let o = committed
                    .get(t)
                    .or_else(|| start.get(t))
                    .copied()
                    .ok_or_else(|| TaskError::NoStartOffset {
                        task: id,
                        topic: t.clone(),
                        partition: id.partition,
                    })?;
                offsets.insert(t.clone(), o);
            }
        }
        Ok(Task {
            id,
            ctx,
            topics,
            next_batch,
            offsets,
        })
    }

    /// The next batch's ranges: from where the last one ended to the end offset, at most `cap` records.
    pub fn plan(&self, ends: &HashMap<(String, i32), i64>, cap: Option<i64>) -> Vec<OffsetRange> {
        self.offsets
            .iter()
            .map(|(t, &from)| {
                let end = ends
                    .get(&(t.clone(), self.id.partition))
                    .copied()
                    .unwrap_or(from)
                    .max(from);
                OffsetRange {
                    topic: t.clone(),
                    partition: self.id.partition,
                    from,
                    until: cap.map_or(end, |c| end.min(from + c)),
                }
            })
            .collect()
    }

    /// Computes a batch and advances the task past it (the caller commits it, or drops the task).
    pub fn run(
        &mut self,
        ranges: Vec<OffsetRange>,
        time_ms: u64,
        input: Arc<BatchInput>,
    ) -> Result<TaskBatch, TaskError> {
        // Records of the job's sources (a later stage reads back what the job wrote itself).
        let input_records = ranges
            .iter()
            .filter(|_| self.id.stage == 0)
            .filter_map(|r| input.get(&(r.topic.clone(), r.partition)))
            .map(Vec::len)
            .sum();
        let info = BatchInfo {
            id: self.next_batch,
            time_ms,
            task: self.id.to_string(),
            ranges,
        };
        let (records, dead) = self.ctx.run_batch(&info, input)?;
        let mut log = Vec::new();
        for (i, store) in self.ctx.graph().stores().iter().enumerate() {
            log.extend(changelog::store_records(
                self.id.stage,
                i,
                store.take_changes()?,
            ));
        }
        for r in &info.ranges {
            self.offsets.insert(r.topic.clone(), r.until);
        }
        self.next_batch += 1;
        let cp = Checkpoint {
            next_batch: self.next_batch,
            offsets: self.offsets.clone(),
        };
        let cp = serde_json::to_vec(&cp).map_err(TaskError::Checkpoint)?;
        log.push((changelog::meta_key(self.id.stage), Some(Bytes::from(cp))));
        Ok(TaskBatch {
            info,
            partition: self.id.partition,
            records,
            dead,
            changelog: log,
            input_records,
        })
    }
}
