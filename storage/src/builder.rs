//! Encodes uncompressed v2 record batches. The broker writes its own batches with it (transaction markers,
//! internal topics) and tests use it to make input; client batches are never re-encoded.

use crate::batch::{HEADER_LEN, LOG_OVERHEAD};

/// One record to encode.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
}

/// Batch-level fields; records get consecutive offsets from `base_offset`.
#[derive(Debug, Clone, Copy)]
pub struct BatchBuilder {
    pub base_offset: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    /// Codec of the records section: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub compression: i16,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder {
            base_offset: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            compression: 0,
        }
    }
}

/// Compresses a records section with Kafka's framing for each codec.
pub fn compress(codec: i16, raw: &[u8]) -> Result<Vec<u8>, String> {
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    let mut out: Vec<u8> = Vec::with_capacity(raw.len() / 2 + 64);
    let fill = |b: &mut bytes::BytesMut| {
        b.extend_from_slice(raw);
        Ok(())
    };
    let r = match codec {
        0 => {
            out.extend_from_slice(raw);
            Ok(())
        }
        1 => Gzip::compress(&mut out, fill),
        2 => Snappy::compress(&mut out, fill),
        3 => Lz4::compress(&mut out, fill),
        4 => Zstd::compress(&mut out, fill),
        other => return Err(format!("unknown compression codec {other}")),
    };
    r.map_err(|e| e.to_string())?;
    Ok(out)
}

pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varlong(out, -1),
    }
}

impl BatchBuilder {
    /// Encodes the batch with a valid CRC-32C. An empty record list gives a batch of zero records. An unknown
    /// codec or a compressor failure leaves the records uncompressed.
    pub fn build(&self, records: &[Record<'_>]) -> Vec<u8> {
        let base_ts = records.first().map_or(0, |r| r.timestamp);
        let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(base_ts);
        let mut body = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut rec = Vec::new();
            rec.push(0u8);
            put_varlong(&mut rec, r.timestamp - base_ts);
            put_varlong(&mut rec, i as i64);
            put_bytes(&mut rec, r.key);
            put_bytes(&mut rec, r.value);
            put_varlong(&mut rec, r.headers.len() as i64);
            for (k, v) in r.headers {
                put_bytes(&mut rec, Some(k.as_bytes()));
                put_bytes(&mut rec, *v);
            }
            put_varlong(&mut body, rec.len() as i64);
            body.extend_from_slice(&rec);
        }
        let count = records.len() as i32;
        let mut attributes: i16 = 0;
        let body = match (self.compression, compress(self.compression, &body)) {
            (0, _) | (_, Err(_)) => body,
            (codec, Ok(compressed)) => {
                attributes |= codec & 0x07;
                compressed
            }
        };
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        let mut b = Vec::with_capacity(HEADER_LEN + body.len());
        b.extend_from_slice(&self.base_offset.to_be_bytes());
        b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&attributes.to_be_bytes());
        b.extend_from_slice(&(count - 1).max(0).to_be_bytes());
        b.extend_from_slice(&base_ts.to_be_bytes());
        b.extend_from_slice(&max_ts.to_be_bytes());
        b.extend_from_slice(&self.producer_id.to_be_bytes());
        b.extend_from_slice(&self.producer_epoch.to_be_bytes());
        b.extend_from_slice(&self.base_sequence.to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&body);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}
