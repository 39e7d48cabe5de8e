//! Reading the records inside a batch, for the few features that need them (timestamp lookup, key checks on
//! compacted topics, compaction). The produce and fetch paths never come here.

#![deny(clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read};

use bytes::Bytes;

use crate::batch::{BatchHeader, HEADER_LEN};
use crate::compression::{self, decode_error, Bounded};
use crate::error::{Result, StorageError};

/// The most bytes a batch's records may decompress to when read back (by compaction, timestamp lookups,
/// coordinators and the client). The produce path checks against the broker's own cap, at most this.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// One record's fields, borrowed from the (decompressed) records section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Headers in their order on the wire, duplicates kept.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
    /// The record exactly as encoded (length prefix excluded), for re-encoding unchanged.
    pub raw: Bytes,
}

fn corrupt(msg: impl Into<String>) -> StorageError {
    StorageError::CorruptBatch(msg.into())
}

/// The batch's records section (after the 61-byte header), still compressed.
fn body<'a>(batch: &'a [u8], header: &BatchHeader) -> &'a [u8] {
    batch
        .get(HEADER_LEN..header.total_len().min(batch.len()))
        .unwrap_or_default()
}

/// The batch's records section, decompressed (at most `limit` bytes).
pub fn records_section(batch: &Bytes, header: &BatchHeader, limit: usize) -> Result<Bytes> {
    let raw = body(batch, header);
    if header.compression() == compression::NONE {
        return Ok(batch.slice_ref(raw));
    }
    compression::decompress(header.compression(), raw, limit).map(Bytes::from)
}

/// A byte cursor over one buffer; every read is bounds-checked.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| corrupt("record truncated"))?;
        self.pos += 1;
        Ok(b)
    }
    fn varlong(&mut self) -> Result<i64> {
        varlong(|| self.byte())
    }
    /// The range of the next `len` bytes (None for a negative length, Kafka's null).
    fn range(&mut self, len: i64) -> Result<Option<(usize, usize)>> {
        if len < 0 {
            return Ok(None);
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| corrupt("record field past end"))?;
        let start = self.pos;
        self.pos = end;
        Ok(Some((start, end)))
    }
}

/// Reads one zigzag varlong, a byte at a time from `next`.
fn varlong(mut next: impl FnMut() -> Result<u8>) -> Result<i64> {
    let mut z: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = next()?;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    Err(corrupt("varint too long"))
}

type Range = (usize, usize);

/// One record's layout within its encoded bytes.
struct RecordShape {
    ts_delta: i64,
    offset_delta: i64,
    key: Option<Range>,
    value: Option<Range>,
    headers: Vec<(Range, Option<Range>)>,
}

/// Parses one record (its length prefix already read). As in Kafka, the fields must use exactly the
/// record's bytes: anything left over is corrupt.
fn parse_record(buf: &[u8], keep_headers: bool) -> Result<RecordShape> {
    let mut rec = Cursor { buf, pos: 0 };
    let _attributes = rec.byte()?;
    let ts_delta = rec.varlong()?;
    let offset_delta = rec.varlong()?;
    let key_len = rec.varlong()?;
    let key = rec.range(key_len)?;
    let value_len = rec.varlong()?;
    let value = rec.range(value_len)?;
    let count = rec.varlong()?;
    if count < 0 {
        return Err(corrupt(format!("negative header count {count}")));
    }
    let mut headers = Vec::new();
    for _ in 0..count {
        let k = rec.varlong()?;
        let key = rec.range(k)?.ok_or_else(|| corrupt("null header key"))?;
        let v = rec.varlong()?;
        let value = rec.range(v)?;
        if keep_headers {
            headers.push((key, value));
        }
    }
    if rec.pos != buf.len() {
        return Err(corrupt(format!(
            "record of {} bytes holds {} bytes of fields",
            buf.len(),
            rec.pos
        )));
    }
    Ok(RecordShape {
        ts_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// The records of a section, one encoded record at a time: straight from the batch when it is not
/// compressed, else streamed through a bounded decoder with one record buffered.
enum RecordSource<'a> {
    Slice(Cursor<'a>),
    Stream {
        reader: BufReader<Bounded<Box<dyn Read + 'a>>>,
        record: Vec<u8>,
    },
}

impl<'a> RecordSource<'a> {
    fn new(batch: &'a [u8], header: &BatchHeader, limit: usize) -> Result<Self> {
        let raw = body(batch, header);
        if header.compression() == compression::NONE {
            if raw.len() > limit {
                return Err(StorageError::DecompressedTooLarge(limit));
            }
            return Ok(RecordSource::Slice(Cursor { buf: raw, pos: 0 }));
        }
        let reader = compression::decoder(header.compression(), raw, limit)?;
        Ok(RecordSource::Stream {
            reader: BufReader::with_capacity(16 * 1024, reader),
            record: Vec::new(),
        })
    }

    /// The next record's bytes.
    fn next(&mut self) -> Result<&[u8]> {
        match self {
            RecordSource::Slice(cur) => {
                let len = cur.varlong()?;
                let (start, end) = cur
                    .range(len)?
                    .ok_or_else(|| corrupt("negative record length"))?;
                cur.buf
                    .get(start..end)
                    .ok_or_else(|| corrupt("record past end"))
            }
            RecordSource::Stream { reader, record } => {
                let len = varlong(|| {
                    let mut b = [0u8; 1];
                    match reader.read(&mut b).map_err(decode_error)? {
                        0 => Err(corrupt("record truncated")),
                        _ => Ok(b[0]),
                    }
                })?;
                let len = u64::try_from(len).map_err(|_| corrupt("negative record length"))?;
                record.clear();
                // Grows with the bytes actually there: a forged length allocates nothing up front.
                let got = reader
                    .by_ref()
                    .take(len)
                    .read_to_end(record)
                    .map_err(decode_error)?;
                if got as u64 != len {
                    return Err(corrupt("record truncated"));
                }
                Ok(record)
            }
        }
    }

    /// Refuses bytes after the last record, as Kafka does ("records still remaining").
    fn finish(self) -> Result<()> {
        let trailing = match self {
            RecordSource::Slice(cur) => cur.pos < cur.buf.len(),
            RecordSource::Stream { mut reader, .. } => {
                !reader.fill_buf().map_err(decode_error)?.is_empty()
            }
        };
        if trailing {
            return Err(StorageError::InvalidRecord(
                "bytes remain after the batch's last record".into(),
            ));
        }
        Ok(())
    }
}

/// What [`check_records`] learned about a batch's records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordCheck {
    /// Indexes (within the batch) of records without a key.
    pub keyless: Vec<i32>,
}

/// Validates every record of a batch on the produce path without keeping them: the declared count, each
/// record's framing, no trailing bytes, and decompression within `limit`. Memory stays at one record.
pub fn check_records(batch: &[u8], header: &BatchHeader, limit: usize) -> Result<RecordCheck> {
    let mut source = RecordSource::new(batch, header, limit)?;
    let mut check = RecordCheck::default();
    for i in 0..header.record_count {
        let shape = parse_record(source.next()?, false)?;
        if shape.key.is_none() {
            check.keyless.push(i);
        }
    }
    source.finish()?;
    Ok(check)
}

/// Parses every record of one batch (decompressing if needed, at most [`MAX_DECOMPRESSED_BYTES`]).
pub fn read_records(batch: &Bytes, header: &BatchHeader) -> Result<Vec<RecordView>> {
    let section = records_section(batch, header, MAX_DECOMPRESSED_BYTES)?;
    let mut source = RecordSource::Slice(Cursor {
        buf: &section,
        pos: 0,
    });
    let mut out = Vec::new();
    for _ in 0..header.record_count {
        let raw = section.slice_ref(source.next()?);
        let shape = parse_record(&raw, true)?;
        let part = |r: Option<Range>| r.map(|(a, b)| raw.slice(a..b));
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(shape.ts_delta)
        };
        out.push(RecordView {
            offset: header.base_offset.wrapping_add(shape.offset_delta),
            timestamp,
            key: part(shape.key),
            value: part(shape.value),
            headers: shape
                .headers
                .into_iter()
                .map(|(k, v)| (raw.slice(k.0..k.1), part(v)))
                .collect(),
            raw,
        });
    }
    source.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::make_batch;
    use crate::batch::validate;

    #[test]
    fn every_codec_round_trips_records_and_duplicate_headers() {
        use crate::builder::{BatchBuilder, Record};
        let headers: &[(&str, Option<&[u8]>)] =
            &[("h", Some(b"1")), ("h", Some(b"2")), ("n", None)];
        for codec in 0..=4 {
            let recs: Vec<Record> = (0..50)
                .map(|i| Record {
                    timestamp: 100 + i,
                    key: if i % 2 == 0 { Some(b"key") } else { None },
                    value: Some(b"a value that compresses well, a value that compresses well"),
                    headers,
                })
                .collect();
            let b = Bytes::from(
                BatchBuilder {
                    compression: codec,
                    ..Default::default()
                }
                .build(&recs),
            );
            let h = validate(&b).expect("valid");
            assert_eq!(h.compression(), codec);
            let out = read_records(&b, &h).expect("records");
            assert_eq!(out.len(), 50, "codec {codec}");
            assert_eq!(out[49].timestamp, 149);
            assert_eq!(out[0].key.as_deref(), Some(&b"key"[..]));
            assert_eq!(out[1].key, None);
            assert_eq!(out[3].headers.len(), 3, "duplicate header keys kept");
            assert_eq!(out[3].headers[1].1.as_deref(), Some(&b"2"[..]));
            assert_eq!(out[3].headers[2].1, None);
        }
    }

    #[test]
    fn reads_offsets_timestamps_and_values() {
        let b = Bytes::from(make_batch(10, 3, 500));
        let h = validate(&b).expect("valid");
        let recs = read_records(&b, &h).expect("records");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2].offset, 12);
        assert_eq!(recs[2].timestamp, 502);
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].value.as_deref(), Some(&b"value-1"[..]));
    }
}
