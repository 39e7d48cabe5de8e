//! The unit of work: one batch, identified by a sequence number and defined by offset ranges.

/// Records `[from, until)` of one source partition.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct OffsetRange {
    pub topic: String,
    pub partition: i32,
    pub from: i64,
    pub until: i64,
}

impl OffsetRange {
    pub fn len(&self) -> i64 {
        (self.until - self.from).max(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What every operator knows about the batch being computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Batches are numbered from 0 without gaps; stateful operators rely on it.
    pub id: u64,
    /// The batch's scheduled time in ms (id × interval from the job's start).
    pub time_ms: u64,
    /// The task computing it: its stage and partition, as `s<stage>-p<partition>`.
    pub task: String,
    pub ranges: Vec<OffsetRange>,
}
