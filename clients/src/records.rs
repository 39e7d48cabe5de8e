//! Records as consumers see them, decoded from fetched record batches. read_committed filtering follows the
//! Java client: records of aborted transactions are dropped using the fetch response's aborted list, and
//! control batches never reach the application.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use runnel_storage::batch::{self, BatchHeader, LOG_OVERHEAD};
use runnel_storage::log::{control_type, ControlType};
use runnel_storage::records::read_records;

use crate::error::{ClientError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    /// True when the timestamp is the broker's append time, false for the producer's create time.
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The records of a fetched partition at or after `from`, and the offset to fetch next.
pub fn decode(
    topic: &str,
    partition: i32,
    data: &Bytes,
    from: i64,
    aborted: &[(i64, i64)],
    read_committed: bool,
) -> Result<(Vec<ConsumerRecord>, i64)> {
    let mut out = Vec::new();
    let mut next = from;
    let mut pos = 0usize;
    // First offset → producer id of aborted transactions not yet reached.
    let mut upcoming: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (pid, first) in aborted {
        upcoming.entry(*first).or_default().push(*pid);
    }
    let mut aborting: HashSet<i64> = HashSet::new();
    while pos + LOG_OVERHEAD <= data.len() {
        let Ok(h) = BatchHeader::parse(&data[pos..]) else {
            break;
        };
        let len = h.total_len();
        if pos + len > data.len() {
            break; // a partial batch at the end of the response
        }
        let bytes = data.slice(pos..pos + len);
        pos += len;
        batch::validate(&bytes)
            .map_err(|e| ClientError::Protocol(format!("{topic}-{partition}: {e}")))?;
        if h.next_offset() <= from {
            continue;
        }
        next = next.max(h.next_offset());
        if read_committed {
            let reached: Vec<i64> = upcoming
                .range(..=h.last_offset())
                .map(|(k, _)| *k)
                .collect();
            for k in reached {
                if let Some(pids) = upcoming.remove(&k) {
                    aborting.extend(pids);
                }
            }
        }
        if h.is_control() {
            if read_committed && control_type(&bytes, &h) == ControlType::Abort {
                aborting.remove(&h.producer_id);
            }
            continue;
        }
        if read_committed && h.is_transactional() && aborting.contains(&h.producer_id) {
            continue;
        }
        for r in read_records(&bytes, &h)
            .map_err(|e| ClientError::Protocol(format!("{topic}-{partition}: {e}")))?
        {
            if r.offset < from {
                continue;
            }
            out.push(ConsumerRecord {
                topic: topic.to_string(),
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                log_append_time: h.is_log_append_time(),
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                    .collect(),
            });
        }
    }
    Ok((out, next))
}
