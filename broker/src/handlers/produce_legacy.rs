//! Produce v0-2: advertised (older librdkafka enables compression only when v0 is listed) but refused with
//! UNSUPPORTED_VERSION for every partition, as Kafka 4 does. The kafka-protocol crate no longer carries
//! these versions, so the request is walked and the response written by hand.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;

use crate::request::Reply;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A nullable string (i16 length); returns the raw bytes, empty for null.
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.i16()?;
        if len < 0 {
            return Some(&[]);
        }
        self.take(len as usize)
    }
    fn bytes(&mut self) -> Option<()> {
        let len = self.i32()?;
        if len > 0 {
            self.take(len as usize)?;
        }
        Some(())
    }
    /// An array length, refusing counts the remaining bytes could not hold.
    fn count(&mut self, min_item: usize) -> Option<usize> {
        let n = self.i32()?;
        let n = usize::try_from(n).ok()?;
        (n.saturating_mul(min_item) <= self.buf.len() - self.pos).then_some(n)
    }
}

/// A topic name and the partitions named for it.
type TopicPartitions = (Vec<u8>, Vec<i32>);

/// The acks and the topic-partitions of a v0-2 request.
fn parse(frame: &[u8]) -> Option<(i16, Vec<TopicPartitions>)> {
    let mut r = Reader { buf: frame, pos: 8 };
    r.string()?; // client id
    let acks = r.i16()?;
    r.i32()?; // timeout
    let topics = r.count(6)?;
    let mut out = Vec::with_capacity(topics);
    for _ in 0..topics {
        let name = r.string()?.to_vec();
        let parts = r.count(8)?;
        let mut ps = Vec::with_capacity(parts);
        for _ in 0..parts {
            ps.push(r.i32()?);
            r.bytes()?;
        }
        out.push((name, ps));
    }
    Some((acks, out))
}

pub fn unsupported(frame: Bytes, version: i16, correlation_id: i32) -> Reply {
    let Some((acks, topics)) = parse(&frame) else {
        return Reply::Close(format!("cannot decode Produce v{version}"));
    };
    if acks == 0 {
        return Reply::Nothing;
    }
    let code = ResponseError::UnsupportedVersion.code();
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    body.put_i32(topics.len() as i32);
    for (name, partitions) in &topics {
        body.put_i16(name.len() as i16);
        body.put_slice(name);
        body.put_i32(partitions.len() as i32);
        for p in partitions {
            body.put_i32(*p);
            body.put_i16(code);
            body.put_i64(-1);
            if version >= 2 {
                body.put_i64(-1);
            }
        }
    }
    if version >= 1 {
        body.put_i32(0);
    }
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.put_i32(body.len() as i32);
    out.put_slice(&body);
    Reply::Frame(out.freeze())
}
