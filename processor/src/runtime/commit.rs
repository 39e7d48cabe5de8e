//! The per-round transaction: [`Runtime::commit`] sends every task's output records, dead letters and
//! changelog records (state changes and checkpoints) and the round's status record, adds the source
//! offsets to the transaction for the job's group (TxnOffsetCommit), commits, and then notes how far this
//! instance wrote into each repartition partition so the next round waits for those records. After a
//! failed round, [`Runtime::reset_after_failure`] aborts the open transaction (replacing a producer that
//! cannot abort) and has every task rebuilt from its checkpoint.

use bytes::Bytes;
use runnel_clients::consumer::GroupMetadata;
use runnel_clients::{ClientError, ProducerRecord};

use super::provision::transactional_producer;
use super::{BadRecords, BatchStatus, JobConfig, JobError, RoundError, Runtime};
use crate::context::dead_letter_record;
use crate::runtime::task::TaskBatch;

impl Runtime {
    pub(super) async fn commit(
        &mut self,
        batches: &[TaskBatch],
        status: &BatchStatus,
    ) -> Result<(), RoundError> {
        let p = &self.producer;
        p.begin_transaction().map_err(RoundError::retry)?;
        self.in_transaction = true;
        let changelog = self.config.changelog_topic();
        let mut repartitioned = Vec::new();
        for b in batches {
            for r in &b.records {
                let delivery = p
                    .send(ProducerRecord {
                        topic: r.topic.clone(),
                        key: r.key.clone(),
                        value: r.value.clone(),
                        headers: r.headers.clone(),
                        ..ProducerRecord::default()
                    })
                    .await
                    .map_err(RoundError::retry)?;
                if self.stages[1..].iter().flatten().any(|t| *t == r.topic) {
                    repartitioned.push(delivery);
                }
            }
            if let BadRecords::DeadLetter(topic) = &self.config.bad_records {
                for d in &b.dead {
                    let r = dead_letter_record(topic, d);
                    p.send(ProducerRecord {
                        topic: r.topic,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                        ..ProducerRecord::default()
                    })
                    .await
                    .map_err(RoundError::retry)?;
                }
            }
            for (k, v) in &b.changelog {
                p.send(ProducerRecord {
                    topic: changelog.clone(),
                    partition: Some(b.partition),
                    key: Some(k.clone()),
                    value: v.clone(),
                    ..ProducerRecord::default()
                })
                .await
                .map_err(RoundError::retry)?;
            }
        }
        let status_json =
            serde_json::to_vec(status).map_err(|e| RoundError::Fatal(JobError::Status(e)))?;
        p.send(ProducerRecord {
            topic: self.config.status_topic(),
            partition: Some(0),
            key: Some(Bytes::from(self.config.instance.clone())),
            value: Some(Bytes::from(status_json)),
            ..ProducerRecord::default()
        })
        .await
        .map_err(RoundError::retry)?;
        let offsets: Vec<(String, i32, i64)> = batches
            .iter()
            .flat_map(|b| {
                b.info
                    .ranges
                    .iter()
                    .map(|r| (r.topic.clone(), r.partition, r.until))
            })
            .collect();
        let group = GroupMetadata {
            group_id: self.config.name.clone(),
            generation: self.member.generation,
            member_id: self.member.member_id.clone(),
            instance_id: Some(self.config.instance.clone()),
        };
        p.send_offsets_to_transaction(&offsets, &group)
            .await
            .map_err(RoundError::retry)?;
        p.commit_transaction().await.map_err(RoundError::retry)?;
        self.in_transaction = false;
        for d in repartitioned {
            // Committed, so every delivery has its answer already.
            if let Ok(m) = d.await {
                let w = self.written.entry((m.topic, m.partition)).or_insert(0);
                *w = (*w).max(m.offset + 1);
            }
        }
        Ok(())
    }

    /// After a failed batch: abort its transaction and rebuild every task from its checkpoint.
    pub(super) async fn reset_after_failure(&mut self) -> Result<(), JobError> {
        let aborted = if self.in_transaction {
            self.producer.abort_transaction().await
        } else {
            Ok(())
        };
        self.in_transaction = false;
        if let Err(e) = aborted {
            if matches!(e, ClientError::Fenced) {
                return Err(fenced(&self.config));
            }
            // A producer that cannot abort is replaced; initializing the new one aborts what is open.
            tracing::warn!(job = %self.config.name, error = %e, "abort failed; starting a new producer");
            self.producer = transactional_producer(&self.cluster, &self.config).await?;
        }
        self.drop_tasks();
        self.member.request_rejoin();
        Ok(())
    }
}

pub(super) fn fenced(config: &JobConfig) -> JobError {
    JobError::Fenced {
        instance: config.instance.clone(),
        job: config.name.clone(),
        transactional_id: config.transactional_id(),
    }
}
