//! Reading the records inside a batch, for the few features that need them (timestamp lookup, key checks on
//! compacted topics, compaction). The produce and fetch paths never come here.

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{BatchHeader, HEADER_LEN};
use crate::error::{Result, StorageError};

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

/// The batch's records section, decompressed.
pub fn records_section(batch: &Bytes, header: &BatchHeader) -> Result<Bytes> {
    let mut body = batch.slice(HEADER_LEN.min(batch.len())..header.total_len().min(batch.len()));
    let out = match header.compression() {
        0 => Ok(body),
        1 => Gzip::decompress(&mut body, |b: &mut Bytes| Ok(b.clone())),
        2 => Snappy::decompress(&mut body, |b: &mut Bytes| Ok(b.clone())),
        3 => Lz4::decompress(&mut body, |b: &mut Bytes| Ok(b.clone())),
        4 => Zstd::decompress(&mut body, |b: &mut Bytes| Ok(b.clone())),
        other => return Err(corrupt(format!("unknown compression codec {other}"))),
    };
    out.map_err(|e| corrupt(format!("cannot decompress records: {e}")))
}

struct Cursor {
    buf: Bytes,
    pos: usize,
}

impl Cursor {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| corrupt("record truncated"))?;
        self.pos += 1;
        Ok(b)
    }
    fn varlong(&mut self) -> Result<i64> {
        let mut z: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(corrupt("varint too long"))
    }
    fn bytes(&mut self, len: i64) -> Result<Option<Bytes>> {
        if len < 0 {
            return Ok(None);
        }
        let end = self
            .pos
            .checked_add(len as usize)
            .filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| corrupt("record field past end"))?;
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(Some(out))
    }
}

/// Parses every record of one batch (decompressing if needed).
pub fn read_records(batch: &Bytes, header: &BatchHeader) -> Result<Vec<RecordView>> {
    let section = records_section(batch, header)?;
    let mut cur = Cursor {
        buf: section,
        pos: 0,
    };
    let mut out = Vec::with_capacity(header.record_count.max(0) as usize);
    for _ in 0..header.record_count {
        let len = cur.varlong()?;
        let start = cur.pos;
        let raw = cur
            .bytes(len)?
            .ok_or_else(|| corrupt("negative record length"))?;
        let mut rec = Cursor {
            buf: raw.clone(),
            pos: 0,
        };
        let _attributes = rec.byte()?;
        let ts_delta = rec.varlong()?;
        let offset_delta = rec.varlong()?;
        let key_len = rec.varlong()?;
        let key = rec.bytes(key_len)?;
        let value_len = rec.varlong()?;
        let value = rec.bytes(value_len)?;
        let count = rec.varlong()?;
        let mut headers = Vec::new();
        for _ in 0..count.max(0) {
            let k = rec.varlong()?;
            let key = rec.bytes(k)?.unwrap_or_default();
            let v = rec.varlong()?;
            headers.push((key, rec.bytes(v)?));
        }
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp + ts_delta
        };
        out.push(RecordView {
            offset: header.base_offset + offset_delta,
            timestamp,
            key,
            value,
            headers,
            raw,
        });
        debug_assert!(cur.pos >= start);
    }
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
