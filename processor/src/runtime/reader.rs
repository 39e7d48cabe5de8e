//! Reads exactly the records of offset ranges (read_committed), one receiver per partition: a fetch may
//! return records past a range's end, which are kept for the next batch rather than fetched again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use runnel_clients::consumer::IsolationLevel;
use runnel_clients::{
    Cluster, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition,
};

use crate::batch::OffsetRange;
use crate::context::BatchInput;

pub struct RangeReader {
    consumer: Consumer,
    /// Records fetched past the end of the last range read, per partition.
    ahead: HashMap<TopicPartition, VecDeque<ConsumerRecord>>,
    /// Where the last range read ended, per partition.
    read_until: HashMap<TopicPartition, i64>,
}

impl RangeReader {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        let config = ConsumerConfig {
            isolation: IsolationLevel::ReadCommitted,
            auto_offset_reset: OffsetReset::None,
            max_poll_records: 100_000,
            fetch_max_wait: Duration::from_millis(100),
            ..ConsumerConfig::default()
        };
        RangeReader {
            consumer: Consumer::new(cluster, config),
            ahead: HashMap::new(),
            read_until: HashMap::new(),
        }
    }

    /// The records of every range, by partition. Fails if a range cannot be read within `timeout`.
    pub async fn read(
        &mut self,
        ranges: &[OffsetRange],
        timeout: Duration,
    ) -> runnel_clients::Result<BatchInput> {
        let mut out: BatchInput = HashMap::new();
        let mut pending: HashMap<TopicPartition, i64> = HashMap::new();
        for r in ranges {
            let tp = (r.topic.clone(), r.partition);
            if self.read_until.get(&tp) != Some(&r.from) {
                // Not where the last batch left off (a new or restored task): start over at `from`.
                self.ahead.remove(&tp);
                self.consumer.seek(tp.clone(), r.from);
            }
            self.read_until.insert(tp.clone(), r.until);
            let mut taken = Vec::new();
            if let Some(q) = self.ahead.get_mut(&tp) {
                while q.front().is_some_and(|c| c.offset < r.until) {
                    taken.extend(q.pop_front());
                }
            }
            let done = self.ahead.get(&tp).is_some_and(|q| !q.is_empty())
                || r.from >= r.until
                || self.consumer.position(&tp).is_some_and(|p| p >= r.until);
            out.insert(tp.clone(), taken);
            if !done {
                pending.insert(tp, r.until);
            }
        }
        let mut assignment: Vec<TopicPartition> = out.keys().cloned().collect();
        assignment.sort();
        if self.consumer.assignment() != assignment.as_slice() {
            let dropped: Vec<TopicPartition> = self
                .consumer
                .assignment()
                .iter()
                .filter(|tp| !out.contains_key(*tp))
                .cloned()
                .collect();
            for tp in &dropped {
                self.forget(tp);
            }
            // Positions of the partitions that stay (or were just sought) survive the reassignment.
            self.consumer.assign(assignment.clone());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while !pending.is_empty() {
            let idle: Vec<TopicPartition> = assignment
                .iter()
                .filter(|tp| !pending.contains_key(*tp))
                .cloned()
                .collect();
            self.consumer.pause(&idle);
            let busy: Vec<TopicPartition> = pending.keys().cloned().collect();
            self.consumer.resume(&busy);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(runnel_clients::ClientError::Timeout {
                    what: format!("reading offset ranges of {busy:?}"),
                    ms: timeout.as_millis() as u64,
                });
            }
            for c in self
                .consumer
                .poll(left.min(Duration::from_millis(200)))
                .await?
            {
                let tp = (c.topic.clone(), c.partition);
                let until = self.read_until.get(&tp).copied().unwrap_or(i64::MAX);
                if c.offset < until {
                    out.entry(tp).or_default().push(c);
                } else {
                    self.ahead.entry(tp).or_default().push_back(c);
                }
            }
            pending.retain(|tp, until| {
                !(self.ahead.get(tp).is_some_and(|q| !q.is_empty())
                    || self.consumer.position(tp).is_some_and(|p| p >= *until))
            });
        }
        let all: Vec<TopicPartition> = assignment.clone();
        self.consumer.pause(&all);
        Ok(out)
    }

    /// Forgets a partition (its task moved away or is being restored).
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.ahead.remove(tp);
        self.read_until.remove(tp);
    }
}
