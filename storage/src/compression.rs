//! Bounded decompression of a batch's records section.
//!
//! Every codec is read as a stream through [`Bounded`], which fails as soon as more than the caller's limit
//! comes out, so a few kilobytes that inflate to gigabytes cost at most `limit` bytes of work and never that
//! much memory: callers that walk records ([`crate::records::check_records`]) keep only a small buffer.
//! zstd's window is capped too, since a frame may ask the decoder for a window of up to 2 GiB.

#![deny(clippy::indexing_slicing)]

use std::io::{self, Read};

use crate::error::{Result, StorageError};

/// The largest zstd window accepted (2^24 = 16 MiB): producers at any standard level use at most 8 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// snappy-java's stream header (xerial framing), as Java and librdkafka producers write it.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// The Kafka codec numbers (attributes bits 0-2).
pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

fn corrupt(msg: impl Into<String>) -> StorageError {
    StorageError::CorruptBatch(msg.into())
}

/// A reader that refuses to yield more than `limit` bytes: the error carries [`TooLarge`].
pub struct Bounded<R> {
    inner: R,
    remaining: usize,
    limit: usize,
}

/// The error a [`Bounded`] reader returns once its limit is passed.
#[derive(Debug, thiserror::Error)]
#[error("records decompress to more than {0} bytes")]
pub struct TooLarge(pub usize);

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than allowed, so reaching exactly the limit is fine and passing it is seen.
        let want = buf.len().min(self.remaining.saturating_add(1));
        let Some(window) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = self.inner.read(window)?;
        if n > self.remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                TooLarge(self.limit),
            ));
        }
        self.remaining -= n;
        Ok(n)
    }
}

/// A streaming reader of the decompressed records section of a batch compressed with `codec`.
pub fn decoder<'a>(
    codec: i16,
    body: &'a [u8],
    limit: usize,
) -> Result<Bounded<Box<dyn Read + 'a>>> {
    let inner: Box<dyn Read + 'a> = match codec {
        NONE => Box::new(body),
        GZIP => Box::new(flate2::read::GzDecoder::new(body)),
        SNAPPY => Box::new(SnappyReader::new(body, limit)?),
        LZ4 => {
            Box::new(lz4::Decoder::new(body).map_err(|e| corrupt(format!("bad lz4 frame: {e}")))?)
        }
        ZSTD => {
            let mut d = zstd::stream::read::Decoder::with_buffer(body)
                .map_err(|e| corrupt(format!("bad zstd frame: {e}")))?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
            Box::new(d)
        }
        other => return Err(corrupt(format!("unknown compression codec {other}"))),
    };
    Ok(Bounded {
        inner,
        remaining: limit,
        limit,
    })
}

/// Decompresses a whole records section, refusing one that would exceed `limit` bytes.
pub fn decompress(codec: i16, body: &[u8], limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder(codec, body, limit)?
        .read_to_end(&mut out)
        .map_err(decode_error)?;
    Ok(out)
}

/// The storage error for a failed read of decompressed bytes.
pub fn decode_error(e: io::Error) -> StorageError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TooLarge>())
    {
        Some(too_large) => StorageError::DecompressedTooLarge(too_large.0),
        None => corrupt(format!("cannot decompress records: {e}")),
    }
}

/// Snappy as Kafka producers write it: either one raw snappy block, or snappy-java's xerial framing (a
/// 16-byte header, then blocks each prefixed by their compressed length). Each block's declared size is
/// checked against what the limit still allows before anything is allocated for it.
struct SnappyReader<'a> {
    rest: &'a [u8],
    block: Vec<u8>,
    at: usize,
    raw: bool,
    budget: usize,
    limit: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(body: &'a [u8], limit: usize) -> Result<Self> {
        let framed = body.get(..XERIAL_MAGIC.len()) == Some(&XERIAL_MAGIC[..]);
        let rest = if framed {
            body.get(XERIAL_HEADER_LEN..)
                .ok_or_else(|| corrupt("snappy stream header truncated"))?
        } else {
            body
        };
        Ok(SnappyReader {
            rest,
            block: Vec::new(),
            at: 0,
            raw: !framed,
            budget: limit,
            limit,
        })
    }

    /// Decompresses the next block into `self.block`; false at the end of the stream.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if self.raw {
            std::mem::take(&mut self.rest)
        } else {
            let (len, tail) = self
                .rest
                .split_first_chunk::<4>()
                .ok_or_else(|| invalid("snappy block length truncated"))?;
            let len = u32::from_be_bytes(*len) as usize;
            let block = tail
                .get(..len)
                .ok_or_else(|| invalid("snappy block past the end"))?;
            self.rest = tail.get(len..).unwrap_or_default();
            block
        };
        let size = snap::raw::decompress_len(compressed).map_err(|e| invalid(&e.to_string()))?;
        if size > self.budget {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                TooLarge(self.limit),
            ));
        }
        self.block.clear();
        self.block.resize(size, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(|e| invalid(&e.to_string()))?;
        self.budget -= size;
        self.at = 0;
        Ok(true)
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let avail = self.block.get(self.at..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    #[test]
    fn a_bomb_stops_at_the_limit_for_every_codec() {
        let big = vec![0u8; 8 << 20];
        let bodies: Vec<(i16, Vec<u8>)> = vec![
            (GZIP, gzip(&big)),
            (ZSTD, zstd::encode_all(&big[..], 3).expect("zstd")),
            (
                SNAPPY,
                snap::raw::Encoder::new()
                    .compress_vec(&big)
                    .expect("snappy"),
            ),
            (LZ4, {
                let mut e = lz4::EncoderBuilder::new().build(Vec::new()).expect("lz4");
                e.write_all(&big).expect("lz4");
                e.finish().0
            }),
        ];
        for (codec, body) in bodies {
            assert!(body.len() < 1 << 20, "codec {codec} compresses");
            match decompress(codec, &body, 1 << 20) {
                Err(StorageError::DecompressedTooLarge(limit)) => assert_eq!(limit, 1 << 20),
                other => panic!("codec {codec}: expected the limit, got {other:?}"),
            }
            let all = decompress(codec, &body, 8 << 20).expect("within the limit");
            assert_eq!(all.len(), 8 << 20, "codec {codec}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
            for body in [
                &b""[..],
                b"\x82SNAPPY\x00",
                b"\xff\xff\xff\xff\xff",
                b"\x28\xb5\x2f\xfd",
            ] {
                let _ = decompress(codec, body, 1 << 20);
            }
        }
        assert!(decompress(7, b"x", 10).is_err());
    }
}
