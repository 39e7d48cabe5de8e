//! One log segment: a `.log` file of record batches exactly as received, with its offset and time indexes.
//!
//! Files are named by the segment's base offset, zero-padded to 20 digits as in Kafka. Writes go through
//! positional writes on a shared file handle (opened on demand, see [`crate::open_files`]), so readers can
//! copy byte ranges out without holding the partition's lock while they do.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::error::{IoContext, Result, StorageError};
use crate::index::{OffsetIndex, TimeIndex};
use crate::open_files::SegmentFile;

pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Where a segment's files live; one value so the three names can never drift apart.
#[derive(Debug, Clone)]
pub struct SegmentPaths {
    pub log: PathBuf,
    pub index: PathBuf,
    pub time_index: PathBuf,
}

impl SegmentPaths {
    pub fn new(dir: &Path, base_offset: i64) -> Self {
        let stem = file_stem(base_offset);
        SegmentPaths {
            log: dir.join(format!("{stem}.log")),
            index: dir.join(format!("{stem}.index")),
            time_index: dir.join(format!("{stem}.timeindex")),
        }
    }
}

/// How a segment's sizes and index density are set.
#[derive(Debug, Clone, Copy)]
pub struct SegmentSettings {
    pub index_interval_bytes: u64,
    pub index_max_bytes: usize,
}

/// A byte range of one segment that a fetch will copy out, taken under the partition lock and read after.
#[derive(Clone)]
pub struct ReadSlice {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub position: u64,
    /// The segment's size when the slice was taken: nothing past it is read.
    pub end: u64,
}

impl ReadSlice {
    /// Reads whole batches starting at `position`, at most `max_bytes` of them, except that the first batch is
    /// returned whole even when it is larger (so a consumer always makes progress, as KIP-74 specifies).
    pub fn read(&self, max_bytes: usize) -> Result<Bytes> {
        let avail = self.end.saturating_sub(self.position) as usize;
        let want = max_bytes.min(avail);
        let mut buf = vec![0u8; want];
        self.file
            .read_exact_at(&mut buf, self.position)
            .at(&self.path)?;
        let mut cut = 0usize;
        while cut + LOG_OVERHEAD <= buf.len() {
            let len = batch_len_at(&buf[cut..]);
            if len < HEADER_LEN || cut + len > buf.len() {
                break;
            }
            cut += len;
        }
        if cut == 0 && avail >= LOG_OVERHEAD {
            let mut head = [0u8; LOG_OVERHEAD];
            self.file
                .read_exact_at(&mut head, self.position)
                .at(&self.path)?;
            let len = batch_len_at(&head).min(avail);
            let mut whole = vec![0u8; len];
            self.file
                .read_exact_at(&mut whole, self.position)
                .at(&self.path)?;
            return Ok(Bytes::from(whole));
        }
        buf.truncate(cut);
        Ok(Bytes::from(buf))
    }
}

fn batch_len_at(buf: &[u8]) -> usize {
    let len = buf
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i32::from_be_bytes);
    LOG_OVERHEAD + len.max(0) as usize
}

pub struct Segment {
    base_offset: i64,
    paths: SegmentPaths,
    file: SegmentFile,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    next_offset: i64,
    max_timestamp: i64,
    /// Offset of the batch holding `max_timestamp`, for ListOffsets MAX_TIMESTAMP.
    offset_of_max_timestamp: i64,
    bytes_since_index: u64,
    indexed_max_timestamp: i64,
    settings: SegmentSettings,
    /// Wall-clock milliseconds when the first batch was appended (for segment.ms).
    first_append_ms: Option<i64>,
    /// Written since the last fsync.
    dirty: bool,
}

/// What recovery found in one segment.
pub struct Recovered {
    pub segment: Segment,
    /// Bytes cut off the end because they did not form a valid batch.
    pub truncated_bytes: u64,
    /// Every batch header kept, for rebuilding producer state.
    pub headers: Vec<BatchHeader>,
}

impl Segment {
    pub fn create(dir: &Path, base_offset: i64, settings: SegmentSettings) -> Result<Self> {
        let paths = SegmentPaths::new(dir, base_offset);
        let file = SegmentFile::create(&paths.log)?;
        let offset_index =
            OffsetIndex::open(&paths.index, base_offset, settings.index_max_bytes, false)?;
        let time_index = TimeIndex::open(
            &paths.time_index,
            base_offset,
            settings.index_max_bytes,
            false,
        )?;
        Ok(Segment {
            base_offset,
            paths,
            file,
            size: 0,
            offset_index,
            time_index,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            bytes_since_index: 0,
            indexed_max_timestamp: -1,
            settings,
            first_append_ms: None,
            dirty: false,
        })
    }

    fn open_files(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        trusted: bool,
    ) -> Result<Self> {
        let paths = SegmentPaths::new(dir, base_offset);
        let size = fs::metadata(&paths.log).at(&paths.log)?.len();
        let file = SegmentFile::existing(&paths.log);
        let offset_index =
            OffsetIndex::open(&paths.index, base_offset, settings.index_max_bytes, trusted)?;
        let time_index = TimeIndex::open(
            &paths.time_index,
            base_offset,
            settings.index_max_bytes,
            trusted,
        )?;
        Ok(Segment {
            base_offset,
            paths,
            file,
            size,
            offset_index,
            time_index,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            bytes_since_index: 0,
            indexed_max_timestamp: -1,
            settings,
            first_append_ms: None,
            dirty: false,
        })
    }

    /// Opens a segment that was closed cleanly, checking what that trusts: the indexes are ordered and
    /// inside the file, the last index entry sits on a batch boundary, and the batches after it are valid
    /// (CRC-32C, offsets increasing) and end exactly at the file's end. `Ok(Err(reason))` says what did not
    /// hold: the caller recovers the segment instead.
    pub fn open_checked(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
    ) -> Result<std::result::Result<Self, String>> {
        let mut seg = Self::open_files(dir, base_offset, settings, true)?;
        if let Err(why) = seg.offset_index.check(seg.size) {
            return Ok(Err(format!("{}: {why}", seg.paths.index.display())));
        }
        let (from_offset, from_pos) = match seg.offset_index.last_entry() {
            Some(entry) => entry,
            None if seg.size == 0 => (base_offset, 0),
            None => {
                return Ok(Err(format!(
                    "{}: empty for a non-empty log",
                    seg.paths.index.display()
                )))
            }
        };
        let mut pos = u64::from(from_pos);
        let mut expect_at_least = from_offset;
        let mut first = true;
        while pos < seg.size {
            let Some(h) = seg.header_at(pos)? else {
                return Ok(Err(format!(
                    "{}: a partial batch header at byte {pos}",
                    seg.paths.log.display()
                )));
            };
            let whole = pos + h.total_len() as u64 <= seg.size && h.total_len() >= HEADER_LEN;
            let valid = whole && batch::validate(&seg.batch_at(pos, &h)?).is_ok();
            let in_order = if first {
                h.base_offset == from_offset
            } else {
                h.base_offset >= expect_at_least
            };
            if !valid || !in_order {
                return Ok(Err(format!(
                    "{}: no valid batch at byte {pos} where the index says offset {from_offset}",
                    seg.paths.log.display()
                )));
            }
            first = false;
            expect_at_least = h.next_offset();
            seg.next_offset = h.next_offset();
            seg.note_timestamp(&h);
            pos += h.total_len() as u64;
        }
        if let Err(why) = seg.time_index.check(seg.next_offset.max(base_offset + 1)) {
            return Ok(Err(format!("{}: {why}", seg.paths.time_index.display())));
        }
        if let Some(ts) = seg.time_index.last_timestamp() {
            if ts > seg.max_timestamp {
                seg.max_timestamp = ts;
            }
        }
        seg.indexed_max_timestamp = seg.time_index.last_timestamp().unwrap_or(-1);
        Ok(Ok(seg))
    }

    /// Opens a segment after an unclean stop: validates every batch (length, magic, CRC-32C), truncates the
    /// file at the first invalid one and rebuilds both indexes.
    pub fn recover(dir: &Path, base_offset: i64, settings: SegmentSettings) -> Result<Recovered> {
        let mut seg = Self::open_files(dir, base_offset, settings, false)?;
        seg.offset_index.reset();
        seg.time_index.reset();
        let file_len = seg.size;
        let file = seg.file.get()?;
        let mut reader = BufReader::with_capacity(1 << 20, file.as_ref());
        let mut pos: u64 = 0;
        let mut headers = Vec::new();
        let mut buf = Vec::new();
        loop {
            let mut head = [0u8; LOG_OVERHEAD];
            if read_fully(&mut reader, &mut head).at(&seg.paths.log)? < LOG_OVERHEAD {
                break;
            }
            let len = batch_len_at(&head);
            if len < HEADER_LEN || pos + len as u64 > file_len {
                break;
            }
            buf.clear();
            buf.extend_from_slice(&head);
            buf.resize(len, 0);
            if read_fully(&mut reader, &mut buf[LOG_OVERHEAD..]).at(&seg.paths.log)?
                < len - LOG_OVERHEAD
            {
                break;
            }
            let header = match batch::validate(&buf) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(segment = %seg.paths.log.display(), position = pos, error = %e, "invalid batch during recovery");
                    break;
                }
            };
            if header.base_offset < seg.next_offset {
                tracing::warn!(segment = %seg.paths.log.display(), position = pos, "batch offsets go backwards; truncating");
                break;
            }
            seg.index_batch(&header, pos as u32);
            seg.next_offset = header.next_offset();
            headers.push(header);
            pos += len as u64;
        }
        drop(reader);
        let truncated_bytes = file_len - pos;
        if truncated_bytes > 0 {
            file.set_len(pos).at(&seg.paths.log)?;
            file.sync_all().at(&seg.paths.log)?;
            seg.size = pos;
        }
        Ok(Recovered {
            segment: seg,
            truncated_bytes,
            headers,
        })
    }

    fn note_timestamp(&mut self, h: &BatchHeader) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.base_offset;
        }
    }

    /// Adds index entries for a batch at `position` when enough bytes passed since the last entry.
    fn index_batch(&mut self, h: &BatchHeader, position: u32) {
        self.note_timestamp(h);
        if self.bytes_since_index >= self.settings.index_interval_bytes
            || self.size == 0
            || position == 0
        {
            self.offset_index.append(h.base_offset, position);
            if self.max_timestamp > self.indexed_max_timestamp {
                self.time_index.append(self.max_timestamp, h.base_offset);
                self.indexed_max_timestamp = self.max_timestamp;
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.total_len() as u64;
    }

    /// Appends validated batches, contiguous in `bytes`, whose base offsets have been assigned: one
    /// positional write, then their index entries. A failed write (a full disk) is cut off again, so the file
    /// always ends where the segment's size says and nothing of the batches remains; if even that fails, the
    /// segment cannot be trusted and the error is [`StorageError::Poisoned`]. `now_ms` dates the segment's
    /// first append for time-based rolling.
    pub fn append(&mut self, bytes: &[u8], headers: &[BatchHeader], now_ms: i64) -> Result<()> {
        let file = self.file.get()?;
        self.dirty = true;
        if let Err(e) = file.write_all_at(bytes, self.size) {
            if let Err(cut) = file.set_len(self.size) {
                tracing::error!(segment = %self.paths.log.display(), error = %cut, "cannot cut a failed write off");
                return Err(StorageError::Poisoned);
            }
            return Err(e).at(&self.paths.log);
        }
        let mut position = self.size;
        for h in headers {
            self.index_batch(h, position as u32);
            position += h.total_len() as u64;
            self.next_offset = h.next_offset();
        }
        self.size = position;
        self.first_append_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Reads the header of the batch at `pos`, or None at the end of the segment.
    pub fn header_at(&self, pos: u64) -> Result<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut head = [0u8; HEADER_LEN];
        self.file
            .get()?
            .read_exact_at(&mut head, pos)
            .at(&self.paths.log)?;
        BatchHeader::parse(&head).map(Some)
    }

    /// Reads the whole batch at `pos`.
    pub fn batch_at(&self, pos: u64, header: &BatchHeader) -> Result<Bytes> {
        let len = header.total_len();
        if pos + len as u64 > self.size {
            return Err(StorageError::CorruptFile {
                path: self.paths.log.display().to_string(),
                reason: format!("batch at byte {pos} of {len} bytes passes the end"),
            });
        }
        let mut buf = BytesMut::zeroed(len);
        self.file
            .get()?
            .read_exact_at(&mut buf, pos)
            .at(&self.paths.log)?;
        Ok(buf.freeze())
    }

    /// Position and header of the batch that contains `offset`, if the segment holds it.
    pub fn locate(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let (_, start) = self.offset_index.lookup(offset);
        let mut pos = u64::from(start);
        while let Some(h) = self.header_at(pos)? {
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Calls `f` with each batch header from byte `pos` on, stopping when it returns false.
    pub fn scan_headers(
        &self,
        mut pos: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<()> {
        while let Some(h) = self.header_at(pos)? {
            if !f(pos, &h) {
                break;
            }
            pos += h.total_len() as u64;
        }
        Ok(())
    }

    /// The first batch whose max timestamp is at least `timestamp`, with its position.
    pub fn first_batch_at_or_after_time(
        &self,
        timestamp: i64,
    ) -> Result<Option<(u64, BatchHeader)>> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let start = match self.time_index.last_offset_before(timestamp) {
            Some(off) => u64::from(self.offset_index.lookup(off).1),
            None => 0,
        };
        let mut found = None;
        self.scan_headers(start, |pos, h| {
            if h.max_timestamp >= timestamp {
                found = Some((pos, *h));
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    pub fn read_slice(&self, position: u64) -> Result<ReadSlice> {
        Ok(ReadSlice {
            file: self.file.get()?,
            path: self.paths.log.clone(),
            position,
            end: self.size,
        })
    }

    /// Makes the segment's writes durable. Indexes need no fsync: a segment is only trusted at a clean
    /// open, after [`Segment::seal`] wrote them.
    pub fn flush(&mut self) -> Result<()> {
        if self.dirty {
            self.file.get()?.sync_data().at(&self.paths.log)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Seals the segment (after a flush): records its final max timestamp in the time index and writes both
    /// indexes, so a later clean start can trust them. Failing (a full disk) changes nothing.
    pub fn seal(&mut self) -> Result<()> {
        if self.max_timestamp > self.indexed_max_timestamp && !self.time_index.is_full() {
            let at = if self.offset_of_max_timestamp >= 0 {
                self.offset_of_max_timestamp
            } else {
                self.base_offset
            };
            // The time index needs a non-decreasing offset: use the last indexed offset if it is later.
            let at = self.offset_index.last_offset().map_or(at, |o| o.max(at));
            self.time_index.append(self.max_timestamp, at);
            self.indexed_max_timestamp = self.max_timestamp;
        }
        self.offset_index.seal()?;
        self.time_index.seal()
    }

    /// Removes the segment's files. Readers holding a [`ReadSlice`] keep reading the unlinked file.
    pub fn delete(self) -> Result<()> {
        Self::delete_files(&self.paths)
    }

    /// Removes a segment's files, whichever of them exist.
    pub fn delete_files(paths: &SegmentPaths) -> Result<()> {
        for p in [&paths.log, &paths.index, &paths.time_index] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StorageError::Io {
                        path: p.display().to_string(),
                        source: e,
                    })
                }
            }
        }
        Ok(())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    pub fn first_append_ms(&self) -> Option<i64> {
        self.first_append_ms
    }
    pub fn set_first_append_ms(&mut self, ms: i64) {
        self.first_append_ms = Some(ms);
    }
    pub fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }
    pub fn paths(&self) -> &SegmentPaths {
        &self.paths
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_fully(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
