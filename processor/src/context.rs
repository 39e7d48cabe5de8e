//! Building a job: the streaming context hands out topic sources and takes output operations. The runtime
//! builds one graph per task (a partition of the job's topics), so every task has its own state; a source
//! reads the records the runtime fetched for the batch's offset ranges of its topic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use rayon::prelude::*;
use runnel_clients::ConsumerRecord;

use crate::batch::BatchInfo;
use crate::codec::{Codec, Utf8};
use crate::dstream::DStream;
use crate::error::{BoxError, CodecError, OutputError};
use crate::output::{self, Output, OutputRecord};
use crate::state::{lock, Graph};

/// The one key `gather` sends every value under.
const GATHER_KEY: &str = "all";

/// A record of a source topic, key and value decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<K>,
    pub value: V,
}

/// A source record that could not be decoded, and why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub record: ConsumerRecord,
    pub reason: String,
}

/// The fetched records of the batch being computed, per (topic, partition).
pub type BatchInput = HashMap<(String, i32), Vec<ConsumerRecord>>;

/// A static dataset: key → value, as UTF-8 text.
pub type Table = HashMap<String, String>;

/// Static datasets loaded from topics when the job starts, by topic.
pub type Tables = HashMap<String, Arc<Table>>;

/// A table that follows its topic while the job runs ([`StreamingContext::follow`]).
#[derive(Default)]
pub struct Followed {
    current: RwLock<Arc<Table>>,
}

impl Followed {
    /// The table as of the start of the batch being computed.
    pub fn latest(&self) -> Arc<Table> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn publish(&self, table: Arc<Table>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = table;
    }
}

/// The followed tables of a job, by topic.
pub type FollowedTables = HashMap<String, Arc<Followed>>;

pub struct StreamingContext {
    job: String,
    interval_ms: u64,
    graph: Arc<Graph>,
    input: Arc<Mutex<Arc<BatchInput>>>,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
    /// The source topics of each stage: stage 0 reads the job's inputs, each repartition starts a stage.
    stages: Vec<Vec<String>>,
    outputs: Vec<Arc<dyn Output>>,
    /// Topics the job writes to (created with the job's width when missing).
    sinks: Vec<String>,
    /// Static datasets the runtime loaded from topics, and the topics the job asked for.
    tables: Arc<Tables>,
    wanted_tables: Vec<String>,
    /// Tables kept up to date with their topics, and the topics the job asked to follow.
    followed: Arc<FollowedTables>,
    wanted_follows: Vec<String>,
}

impl StreamingContext {
    pub fn new(job: &str, interval_ms: u64) -> Self {
        StreamingContext {
            job: job.to_string(),
            interval_ms,
            graph: Arc::new(Graph::default()),
            input: Arc::new(Mutex::new(Arc::new(HashMap::new()))),
            dead: Arc::new(Mutex::new(Vec::new())),
            stages: vec![Vec::new()],
            outputs: Vec::new(),
            sinks: Vec::new(),
            tables: Arc::new(HashMap::new()),
            wanted_tables: Vec::new(),
            followed: Arc::new(HashMap::new()),
            wanted_follows: Vec::new(),
        }
    }

    /// A context whose `table` calls are answered from datasets already loaded.
    pub(crate) fn with_tables(
        job: &str,
        interval_ms: u64,
        tables: Arc<Tables>,
        followed: Arc<FollowedTables>,
    ) -> Self {
        StreamingContext {
            tables,
            followed,
            ..Self::new(job, interval_ms)
        }
    }

    /// A static dataset loaded from a topic when the job starts (the latest value of every key, as UTF-8;
    /// a null value deletes the key), for joins. Loaded once: later records of the topic are not seen.
    pub fn table(&mut self, topic: &str) -> Arc<Table> {
        if !self.wanted_tables.iter().any(|t| t == topic) {
            self.wanted_tables.push(topic.to_string());
        }
        self.tables.get(topic).cloned().unwrap_or_default()
    }

    pub(crate) fn wanted_tables(&self) -> &[String] {
        &self.wanted_tables
    }

    /// A table that follows a topic while the job runs (the latest value of every key, as UTF-8; a null
    /// value deletes the key), like a Kafka Streams GlobalKTable: every task sees the records committed to
    /// the topic before its batch began. Unlike the job's sources, what a batch sees of it is not part of
    /// the batch's checkpoint, so a batch computed again after a crash may see a newer table (a retrained
    /// model applied a batch earlier, say).
    pub fn follow(&mut self, topic: &str) -> Arc<Followed> {
        if !self.wanted_follows.iter().any(|t| t == topic) {
            self.wanted_follows.push(topic.to_string());
        }
        self.followed.get(topic).cloned().unwrap_or_default()
    }

    pub(crate) fn wanted_follows(&self) -> &[String] {
        &self.wanted_follows
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// The records of a topic, one receiver per partition, key and value decoded with the given codecs.
    /// Records that fail to decode become dead letters (sent to the dead-letter topic or failing the job).
    pub fn topic<K, V>(
        &mut self,
        topic: &str,
        key: impl Codec<K>,
        value: impl Codec<V>,
    ) -> DStream<Record<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.source_in_stage(0, topic, key, value)
    }

    fn source_in_stage<K, V>(
        &mut self,
        stage: usize,
        topic: &str,
        key: impl Codec<K>,
        value: impl Codec<V>,
    ) -> DStream<Record<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        while self.stages.len() <= stage {
            self.stages.push(Vec::new());
        }
        if !self.stages[stage].iter().any(|t| t == topic) {
            self.stages[stage].push(topic.to_string());
        }
        let input = Arc::clone(&self.input);
        let dead = Arc::clone(&self.dead);
        let name: Arc<str> = Arc::from(topic);
        DStream::in_graph(Arc::clone(&self.graph), self.interval_ms, move |b| {
            let input = Arc::clone(&lock(&input));
            let mut out = Vec::new();
            for r in b.ranges.iter().filter(|r| r.topic == *name) {
                let Some(records) = input.get(&(r.topic.clone(), r.partition)) else {
                    continue;
                };
                let decoded: Vec<Result<Record<K, V>, Box<DeadLetter>>> = records
                    .par_iter()
                    .map(|c| decode_record(&name, c, &key, &value))
                    .collect();
                for d in decoded {
                    match d {
                        Ok(rec) => out.push(rec),
                        Err(letter) => lock(&dead).push(*letter),
                    }
                }
            }
            out
        })
    }

    /// Repartition by key (Spark's shuffle, Kafka Streams' repartition topic): the pairs go to the job's
    /// topic `<job>-<name>-repartition`, partitioned by key, and come back as a stream of a later stage, so
    /// all values of a key meet in one task whichever input partition they came from. They arrive one batch
    /// later, once the batch that wrote them has committed.
    pub fn repartition<K, V>(
        &mut self,
        stream: &DStream<(K, V)>,
        name: &str,
        key: impl Codec<K> + Clone,
        value: impl Codec<V> + Clone,
    ) -> DStream<(K, V)>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let topic = format!("{}-{name}-repartition", self.job);
        self.outputs
            .push(output::to_topic(stream, &topic, key.clone(), value.clone()));
        let stage = self.stages.len();
        self.source_in_stage(stage, &topic, key, value)
            .flat_map(|r| r.key.clone().map(|k| (k, r.value.clone())))
    }

    /// Every value of the stream, from every partition, in one task of a later stage (a repartition to a
    /// single key): for what needs all of a job's input in one place, such as one model trained on all of
    /// it. That task's batch holds what every task of this stage emitted in the previous round.
    pub fn gather<T>(
        &mut self,
        stream: &DStream<T>,
        name: &str,
        value: impl Codec<T> + Clone,
    ) -> DStream<T>
    where
        T: Clone + Send + Sync + 'static,
    {
        let keyed = stream.map(|v| (GATHER_KEY.to_string(), v.clone()));
        self.repartition(&keyed, name, Utf8, value)
            .map(|(_, v)| v.clone())
    }

    /// Sends each batch's pairs to a topic (key, value), inside the batch's transaction.
    pub fn to_topic<K, V>(
        &mut self,
        stream: &DStream<(K, V)>,
        topic: &str,
        key: impl Codec<K>,
        value: impl Codec<V>,
    ) where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if !self.sinks.iter().any(|t| t == topic) {
            self.sinks.push(topic.to_string());
        }
        self.outputs
            .push(output::to_topic(stream, topic, key, value));
    }

    /// Hands every batch to `f` with its id and offset ranges (for idempotent external writes: a batch
    /// recomputed after a crash comes again with the same id and the same start offsets).
    pub fn foreach_batch<T: Clone + Send + Sync + 'static>(
        &mut self,
        stream: &DStream<T>,
        f: impl Fn(&BatchInfo, &[T]) -> Result<(), BoxError> + Send + Sync + 'static,
    ) {
        self.outputs.push(output::foreach_batch(stream, f));
    }

    /// Writes every batch as a directory of text lines under `dir` (written to a temporary name, then
    /// renamed, so a directory is complete or absent).
    pub fn to_text_files<T: Clone + Send + Sync + std::fmt::Display + 'static>(
        &mut self,
        stream: &DStream<T>,
        dir: impl Into<std::path::PathBuf>,
    ) {
        self.outputs.push(output::text_files(stream, dir.into()));
    }

    /// The same as JSON lines.
    pub fn to_json_files<T: Clone + Send + Sync + serde::Serialize + 'static>(
        &mut self,
        stream: &DStream<T>,
        dir: impl Into<std::path::PathBuf>,
    ) {
        self.outputs.push(output::json_files(stream, dir.into()));
    }

    /// Prints the first ten values of every batch (Spark's pprint).
    pub fn print<T: Clone + Send + Sync + std::fmt::Debug + 'static>(
        &mut self,
        stream: &DStream<T>,
    ) {
        self.outputs.push(output::print(stream));
    }

    pub(crate) fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }

    pub(crate) fn sink_topics(&self) -> &[String] {
        &self.sinks
    }

    pub(crate) fn stages(&self) -> &[Vec<String>] {
        &self.stages
    }

    /// Computes one batch over `input`: the records for the outputs that go to topics, having run the other
    /// outputs, and the records that failed to decode.
    pub(crate) fn run_batch(
        &self,
        batch: &BatchInfo,
        input: Arc<BatchInput>,
    ) -> Result<(Vec<OutputRecord>, Vec<DeadLetter>), OutputError> {
        *lock(&self.input) = input;
        let mut records = Vec::new();
        for o in &self.outputs {
            o.emit(batch, &mut records)?;
        }
        *lock(&self.input) = Arc::new(HashMap::new());
        let dead = std::mem::take(&mut *lock(&self.dead));
        Ok((records, dead))
    }
}

fn decode_record<K, V>(
    topic: &Arc<str>,
    c: &ConsumerRecord,
    key: &impl Codec<K>,
    value: &impl Codec<V>,
) -> Result<Record<K, V>, Box<DeadLetter>> {
    let fail = |what: &str, e: CodecError| {
        Box::new(DeadLetter {
            record: c.clone(),
            reason: format!("{what}: {e}"),
        })
    };
    let k = match &c.key {
        Some(b) => Some(key.decode(Some(b)).map_err(|e| fail("key", e))?),
        None => None,
    };
    let v = value
        .decode(c.value.as_deref())
        .map_err(|e| fail("value", e))?;
    Ok(Record {
        topic: Arc::clone(topic),
        partition: c.partition,
        offset: c.offset,
        timestamp: c.timestamp,
        key: k,
        value: v,
    })
}

/// Bytes of a dead letter's original key and value, for the dead-letter topic.
pub(crate) fn dead_letter_record(topic: &str, d: &DeadLetter) -> OutputRecord {
    let source = format!(
        "{}/{}@{}",
        d.record.topic, d.record.partition, d.record.offset
    );
    OutputRecord {
        topic: topic.to_string(),
        key: d.record.key.clone(),
        value: d.record.value.clone(),
        headers: vec![
            (
                "runnel.error".to_string(),
                Some(Bytes::from(d.reason.clone())),
            ),
            ("runnel.source".to_string(), Some(Bytes::from(source))),
        ],
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::batch::OffsetRange;
    use crate::codec::{Json, Utf8};

    fn record(topic: &str, partition: i32, offset: i64, value: &[u8]) -> ConsumerRecord {
        ConsumerRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp: 0,
            log_append_time: false,
            key: Some(Bytes::from(format!("k{offset}"))),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Vec::new(),
        }
    }

    fn batch(id: u64, from: i64, until: i64) -> BatchInfo {
        BatchInfo {
            id,
            time_ms: 0,
            task: "s0-p0".into(),
            ranges: vec![OffsetRange {
                topic: "in".into(),
                partition: 0,
                from,
                until,
            }],
        }
    }

    fn input(values: &[&[u8]], from: i64) -> Arc<BatchInput> {
        let recs = values
            .iter()
            .enumerate()
            .map(|(i, v)| record("in", 0, from + i as i64, v))
            .collect();
        Arc::new([(("in".to_string(), 0), recs)].into_iter().collect())
    }

    #[test]
    fn outputs_see_each_batch_and_bad_records_become_dead_letters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = StreamingContext::new("t", 100);
        let numbers = ctx.topic::<String, u32>("in", Utf8, Json);
        let doubled = numbers.map(|r| (r.key.clone().unwrap_or_default(), r.value * 2));
        ctx.to_topic(&doubled, "out", Utf8, Json);
        type Seen = Vec<(u64, Vec<OffsetRange>, usize)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let log = Arc::clone(&seen);
        ctx.foreach_batch(&doubled, move |b, xs| {
            lock(&log).push((b.id, b.ranges.clone(), xs.len()));
            Ok(())
        });
        ctx.to_text_files(&numbers.map(|r| r.value), dir.path().join("text"));
        ctx.to_json_files(&doubled, dir.path().join("json"));

        let (out, dead) = ctx
            .run_batch(&batch(0, 0, 3), input(&[b"1", b"oops", b"3"], 0))
            .expect("batch 0");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].record.offset, 1);
        assert!(
            dead[0].reason.starts_with("value: invalid JSON"),
            "{}",
            dead[0].reason
        );
        let values: Vec<Option<Bytes>> = out.iter().map(|r| r.value.clone()).collect();
        assert_eq!(values, vec![Some(Bytes::from("2")), Some(Bytes::from("6"))]);
        assert!(out.iter().all(|r| r.topic == "out"));
        let letter = dead_letter_record("dlq", &dead[0]);
        assert_eq!(letter.value, Some(Bytes::from("oops")));
        assert_eq!(letter.headers[1].1, Some(Bytes::from("in/0@1")));

        let (out, dead) = ctx
            .run_batch(&batch(1, 3, 4), input(&[b"10"], 3))
            .expect("batch 1");
        assert!(dead.is_empty());
        assert_eq!(out.len(), 1);
        assert_eq!(lock(&seen).len(), 2);
        assert_eq!(lock(&seen)[1].0, 1);
        assert_eq!(lock(&seen)[1].1[0].from, 3);

        let text =
            std::fs::read_to_string(dir.path().join("text/s0-p0/batch-0000000000/part-00000"))
                .expect("batch 0 text");
        assert_eq!(text, "1\n3\n");
        // A batch written again (recomputed after a crash) replaces its directory, leaving nothing of the
        // earlier attempt.
        let earlier = dir.path().join("json/s0-p0/batch-0000000002");
        std::fs::create_dir_all(&earlier).expect("earlier attempt");
        std::fs::write(earlier.join("part-00001"), "stale").expect("stale part");
        ctx.run_batch(&batch(2, 4, 5), input(&[b"20"], 4))
            .expect("batch 2");
        let parts: Vec<String> = std::fs::read_dir(&earlier)
            .expect("batch 2 dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(parts, vec!["part-00000".to_string()]);
        let json = std::fs::read_to_string(earlier.join("part-00000")).expect("batch 2 json");
        assert_eq!(json, "[\"k4\",40]\n");
        let entries = std::fs::read_dir(dir.path().join("json/s0-p0"))
            .expect("dir")
            .count();
        assert_eq!(entries, 3, "no temporary directories left behind");
    }
}
