//! Kafka v2 record-batch headers: parsing, validation and in-place offset assignment.
//!
//! The log stores batches exactly as the wire carries them. Only the 61-byte header is read on the produce
//! and recovery paths; record contents are decoded only where a feature needs them (compaction, key checks).
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12, magic i8 @16,
//! crc u32 @17, attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
//! producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53, recordCount i32 @57, records @61.
//! The CRC-32C covers attributes to the end, so rewriting baseOffset and the leader epoch keeps it valid.

#![deny(clippy::indexing_slicing)]

use crate::error::{Result, StorageError};

pub const HEADER_LEN: usize = 61;
/// Bytes before batchLength's coverage begins: baseOffset and batchLength themselves.
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The header fields of one record batch, read without touching its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

/// The `N` bytes at `at` (zeros past the end: callers check the length first, this only keeps a wrong
/// length from becoming a panic).
fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(field(b, at))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(field(b, at))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(field(b, at))
}

/// Overwrites the bytes at `at` (nothing when the buffer is too short, which callers rule out first).
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn crc_of(buf: &[u8]) -> u32 {
    crc32c::crc32c(buf.get(CRC_START..).unwrap_or_default())
}

impl BatchHeader {
    /// Reads a header from the first 61 bytes of `buf`. Checks nothing but the length.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        if buf.len() < HEADER_LEN {
            return Err(StorageError::CorruptBatch(format!(
                "{} bytes is shorter than a batch header",
                buf.len()
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: i8::from_be_bytes(field(buf, 16)),
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        })
    }

    /// The whole batch's size on disk and on the wire.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// The sequence of the batch's last record, wrapping as Kafka does at i32::MAX.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

/// Checks one complete batch: framing, magic, CRC-32C and that the record count fits the offset delta.
/// `buf` must hold exactly the batch (`header.total_len()` bytes).
pub fn validate(buf: &[u8]) -> Result<BatchHeader> {
    let header = BatchHeader::parse(buf)?;
    if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(StorageError::CorruptBatch(format!(
            "batch length {} is shorter than a header",
            header.batch_length
        )));
    }
    if buf.len() != header.total_len() {
        return Err(StorageError::CorruptBatch(format!(
            "batch length {} does not match {} bytes given",
            header.total_len(),
            buf.len()
        )));
    }
    if header.magic != 2 {
        return Err(StorageError::InvalidRecord(format!(
            "unsupported magic {}",
            header.magic
        )));
    }
    let computed = crc_of(buf);
    if computed != header.crc {
        return Err(StorageError::CorruptBatch(format!(
            "crc mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    if header.record_count < 0 || header.last_offset_delta < 0 {
        return Err(StorageError::CorruptBatch(format!(
            "negative record count {} or offset delta {}",
            header.record_count, header.last_offset_delta
        )));
    }
    // Compaction thins batches out on disk but keeps lastOffsetDelta, so fewer records than offsets is valid.
    if i64::from(header.record_count) > i64::from(header.last_offset_delta) + 1 {
        return Err(StorageError::CorruptBatch(format!(
            "record count {} exceeds offset delta {}",
            header.record_count, header.last_offset_delta
        )));
    }
    Ok(header)
}

/// Writes a new base offset into a batch; the CRC does not cover it, so nothing else changes.
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    put(buf, 0, &base_offset.to_be_bytes());
}

/// Writes the partition leader epoch; outside the CRC like the base offset.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    put(buf, 12, &epoch.to_be_bytes());
}

/// Rewrites maxTimestamp and sets the LogAppendTime bit, then recomputes the CRC: the one case where the
/// broker must change bytes the CRC covers (topics with `message.timestamp.type=LogAppendTime`).
pub fn set_log_append_time(buf: &mut [u8], now_ms: i64) {
    let attributes = be_i16(buf, 21) | TIMESTAMP_TYPE_BIT;
    put(buf, 21, &attributes.to_be_bytes());
    put(buf, 35, &now_ms.to_be_bytes());
    let crc = crc_of(buf);
    put(buf, 17, &crc.to_be_bytes());
}

/// Splits a buffer of concatenated batches into (position, header) pairs, validating each one.
/// Used on the produce path, where anything malformed rejects the whole request.
pub fn split_validated(buf: &[u8]) -> Result<Vec<(usize, BatchHeader)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = buf.get(pos..).unwrap_or_default();
        let header = BatchHeader::parse(rest).map_err(|_| {
            StorageError::InvalidRecord(format!(
                "{} bytes at {pos} do not hold a batch header",
                rest.len()
            ))
        })?;
        let len = header.total_len();
        // As in Kafka: a length too short for a header is a corrupt batch, one past the end an invalid record set.
        if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(StorageError::CorruptBatch(format!(
                "batch at byte {pos} claims {} bytes, less than a header",
                header.batch_length
            )));
        }
        if len > rest.len() {
            return Err(StorageError::InvalidRecord(format!(
                "batch at byte {pos} claims {len} bytes, {} remain",
                rest.len()
            )));
        }
        let header = validate(rest.get(..len).unwrap_or_default())?;
        if header.record_count == 0 {
            return Err(StorageError::InvalidRecord(format!(
                "batch at byte {pos} holds no records"
            )));
        }
        // Producers send dense batches: one offset per record.
        if header.last_offset_delta != header.record_count - 1 {
            return Err(StorageError::CorruptBatch(format!(
                "record count {} does not match offset delta {}",
                header.record_count, header.last_offset_delta
            )));
        }
        out.push((pos, header));
        pos += len;
    }
    if out.is_empty() {
        return Err(StorageError::InvalidRecord("no record batch".into()));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::builder::{BatchBuilder, Record};

    pub(crate) fn make_batch(base_offset: i64, count: i32, timestamp: i64) -> Vec<u8> {
        make_batch_with(base_offset, count, timestamp, -1, -1, -1)
    }

    pub(crate) fn make_batch_with(
        base_offset: i64,
        count: i32,
        timestamp: i64,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
    ) -> Vec<u8> {
        let values: Vec<String> = (0..count).map(|i| format!("value-{i}")).collect();
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                timestamp: timestamp + i as i64,
                key: None,
                value: Some(v.as_bytes()),
                headers: &[],
            })
            .collect();
        BatchBuilder {
            base_offset,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            ..BatchBuilder::default()
        }
        .build(&records)
    }

    #[test]
    fn a_built_batch_validates_and_keeps_its_crc_after_offset_rewrite() {
        let mut b = make_batch(0, 3, 1000);
        let h = validate(&b).expect("valid");
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        set_base_offset(&mut b, 42);
        let h = validate(&b).expect("still valid");
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 44);
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let mut b = make_batch(0, 3, 1000);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(validate(&b), Err(StorageError::CorruptBatch(_))));
    }

    #[test]
    fn split_rejects_truncated_input() {
        let mut two = make_batch(0, 2, 1);
        two.extend(make_batch(2, 2, 1));
        assert_eq!(split_validated(&two).expect("two").len(), 2);
        for cut in 1..two.len() {
            if cut == two.len() / 2 {
                continue;
            }
            assert!(split_validated(&two[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn log_append_time_rewrite_keeps_batch_valid() {
        let mut b = make_batch(0, 2, 5);
        set_log_append_time(&mut b, 99);
        let h = validate(&b).expect("valid");
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99);
    }
}
