//! Assignment: the instance's membership in the job's group and the tasks it owns. When the group asks it
//! to rejoin, [`Runtime::ensure_tasks`] joins again, works out which tasks (a stage and a partition number)
//! the assigned partitions make this instance's, and rebuilds every one of them from its checkpoint: the
//! group's committed offsets first, then the task's state and offsets folded from the changelog, and the
//! start offsets for partitions that have neither. Dropping tasks makes the reader forget their partitions.

use std::collections::HashMap;
use std::sync::Arc;

use runnel_clients::consumer::{list_offsets, IsolationLevel};
use runnel_clients::TopicPartition;

use super::provision::read_partition;
use super::{changelog, JobError, Runtime, StartFrom};
use crate::context::StreamingContext;
use crate::runtime::task::{Task, TaskId};

impl Runtime {
    /// Rejoins the group when it asks, and makes the tasks match the assignment.
    pub(super) async fn ensure_tasks(&mut self) -> Result<(), JobError> {
        if !self.member.needs_rejoin() {
            return Ok(());
        }
        let topics: Vec<String> = self.stages.iter().flatten().cloned().collect();
        let assignment = match self.member.join(&self.cluster, &topics, &[]).await {
            Ok(a) => a,
            // FENCED_INSTANCE_ID: another member joined with this group.instance.id.
            Err(e) if e.code() == Some(82) => {
                return Err(JobError::DuplicateInstance {
                    job: self.config.name.clone(),
                    instance: self.config.instance.clone(),
                });
            }
            Err(e) => {
                tracing::warn!(job = %self.config.name, error = %e, "joining the job's group failed; retrying");
                self.member.request_rejoin();
                return Ok(());
            }
        };
        self.assignment = assignment;
        // Every task is rebuilt from its checkpoint after a rebalance: a partition kept across it may have
        // been processed elsewhere in between, and the checkpoint is the committed truth.
        self.drop_tasks();
        let mut owned: Vec<TaskId> = Vec::new();
        for (stage, topics) in self.stages.iter().enumerate() {
            let width = topics
                .iter()
                .filter_map(|t| self.partitions.get(t))
                .copied()
                .max()
                .unwrap_or(0);
            for p in 0..width {
                let mine = topics
                    .iter()
                    .filter(|t| self.partitions.get(*t).is_some_and(|n| p < *n))
                    .all(|t| self.assignment.contains(&(t.clone(), p)));
                if mine {
                    owned.push(TaskId {
                        stage,
                        partition: p,
                    });
                }
            }
        }
        for id in owned {
            let task = self.restore_task(id).await?;
            self.tasks.insert(id, task);
            self.metrics.task_restored();
        }
        tracing::info!(job = %self.config.name, instance = %self.config.instance, tasks = ?self.tasks.keys().map(ToString::to_string).collect::<Vec<_>>(), "tasks assigned");
        Ok(())
    }

    pub(super) fn drop_tasks(&mut self) {
        for t in self.tasks.values() {
            for topic in &t.topics {
                self.reader.forget(&(topic.clone(), t.id.partition));
            }
        }
        self.tasks.clear();
    }

    async fn restore_task(&mut self, id: TaskId) -> Result<Task, JobError> {
        let topics: Vec<String> = self.stages[id.stage]
            .iter()
            .filter(|t| self.partitions.get(*t).is_some_and(|n| id.partition < *n))
            .cloned()
            .collect();
        let tps: Vec<TopicPartition> = topics.iter().map(|t| (t.clone(), id.partition)).collect();
        // Committed offsets first: the fetch waits out a transaction still committing offsets
        // (require_stable), so the changelog read next already holds that transaction's state too.
        let committed: HashMap<String, i64> = self
            .offsets
            .committed(&tps)
            .await?
            .into_iter()
            .filter(|(_, o)| *o >= 0)
            .map(|((t, _), o)| (t, o))
            .collect();
        let (records, _) =
            read_partition(&self.cluster, &self.config.changelog_topic(), id.partition).await?;
        let restored = changelog::fold(id.stage, records)?;
        let ts = match self.config.start_from {
            StartFrom::Earliest => -2,
            StartFrom::Latest => -1,
        };
        let start: HashMap<String, i64> =
            list_offsets(&self.cluster, &tps, ts, IsolationLevel::ReadCommitted)
                .await?
                .into_iter()
                .map(|((t, _), (o, _))| (t, o))
                .collect();
        let mut ctx = StreamingContext::with_tables(
            &self.config.name,
            self.config.interval.as_millis() as u64,
            Arc::clone(&self.tables),
            Arc::clone(&self.followed),
        );
        (self.job)(&mut ctx)?;
        Ok(Task::restore(
            id, ctx, topics, restored, &committed, &start,
        )?)
    }
}
