//! Output operations. Each runs once per batch: records for topics are handed to the runtime, which sends
//! them inside the batch's transaction; the others (foreach_batch, files, print) act before the commit, so a
//! batch recomputed after a crash acts again with the same batch id (files are replaced, not duplicated).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::BatchInfo;
use crate::codec::Codec;
use crate::dstream::DStream;
use crate::error::{BoxError, CodecError, OutputError};

/// A record for a topic; the producer picks the partition from the key as the Java client does.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    pub topic: String,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

pub trait Output: Send + Sync {
    fn emit(&self, batch: &BatchInfo, records: &mut Vec<OutputRecord>) -> Result<(), OutputError>;
}

struct FnOutput<F>(F);

impl<F> Output for FnOutput<F>
where
    F: Fn(&BatchInfo, &mut Vec<OutputRecord>) -> Result<(), OutputError> + Send + Sync,
{
    fn emit(&self, batch: &BatchInfo, records: &mut Vec<OutputRecord>) -> Result<(), OutputError> {
        (self.0)(batch, records)
    }
}

fn output(
    f: impl Fn(&BatchInfo, &mut Vec<OutputRecord>) -> Result<(), OutputError> + Send + Sync + 'static,
) -> Arc<dyn Output> {
    Arc::new(FnOutput(f))
}

pub fn to_topic<K, V>(
    stream: &DStream<(K, V)>,
    topic: &str,
    key: impl Codec<K>,
    value: impl Codec<V>,
) -> Arc<dyn Output>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let stream = stream.clone();
    let topic = topic.to_string();
    output(move |b, out| {
        for (k, v) in stream.compute(b).iter() {
            out.push(OutputRecord {
                topic: topic.clone(),
                key: key.encode(k)?,
                value: value.encode(v)?,
                headers: Vec::new(),
            });
        }
        Ok(())
    })
}

pub fn foreach_batch<T: Clone + Send + Sync + 'static>(
    stream: &DStream<T>,
    f: impl Fn(&BatchInfo, &[T]) -> Result<(), BoxError> + Send + Sync + 'static,
) -> Arc<dyn Output> {
    let stream = stream.clone();
    output(move |b, _| f(b, &stream.compute(b)).map_err(OutputError::Batch))
}

pub fn text_files<T: Clone + Send + Sync + std::fmt::Display + 'static>(
    stream: &DStream<T>,
    dir: PathBuf,
) -> Arc<dyn Output> {
    files(stream, dir, |v: &T| Ok(v.to_string()))
}

pub fn json_files<T: Clone + Send + Sync + serde::Serialize + 'static>(
    stream: &DStream<T>,
    dir: PathBuf,
) -> Arc<dyn Output> {
    files(stream, dir, |v: &T| {
        serde_json::to_string(v).map_err(CodecError::WriteJson)
    })
}

fn files<T: Clone + Send + Sync + 'static>(
    stream: &DStream<T>,
    dir: PathBuf,
    line: impl Fn(&T) -> Result<String, CodecError> + Send + Sync + 'static,
) -> Arc<dyn Output> {
    let stream = stream.clone();
    output(move |b, _| {
        let values = stream.compute(b);
        let mut text = String::new();
        for v in values.iter() {
            text.push_str(&line(v)?);
            text.push('\n');
        }
        write_batch_dir(&dir, b, &text).map_err(|error| OutputError::Write {
            dir: dir.clone(),
            error,
        })
    })
}

/// `dir/<task>/batch-<id>/part-00000`, written under a temporary name and renamed into place; a batch
/// written again (recomputed after a crash) replaces the earlier attempt.
fn write_batch_dir(dir: &std::path::Path, b: &BatchInfo, text: &str) -> std::io::Result<()> {
    let parent = dir.join(&b.task);
    std::fs::create_dir_all(&parent)?;
    let name = format!("batch-{:010}", b.id);
    let tmp = parent.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir(&tmp)?;
    let mut f = std::fs::File::create(tmp.join("part-00000"))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    let target = parent.join(name);
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::rename(&tmp, &target)?;
    std::fs::File::open(&parent)?.sync_all()
}

pub fn print<T: Clone + Send + Sync + std::fmt::Debug + 'static>(
    stream: &DStream<T>,
) -> Arc<dyn Output> {
    let stream = stream.clone();
    output(move |b, _| {
        let values = stream.compute(b);
        let mut text = format!(
            "-------------------------------------------\nBatch {} of task {} (time {} ms)\n-------------------------------------------\n",
            b.id, b.task, b.time_ms
        );
        for v in values.iter().take(10) {
            text.push_str(&format!("{v:?}\n"));
        }
        if values.len() > 10 {
            text.push_str("...\n");
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        Ok(())
    })
}
