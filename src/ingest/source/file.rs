//! Records from a file or stdin: NDJSON (one record a line) or a stream of
//! concatenated MessagePack values, told apart by the first byte; a path
//! ending in `.gz` is gunzipped first. Both are read as a stream, never
//! whole. A line that is not JSON is still a record (it becomes a dead
//! letter); in a MessagePack stream, bytes that do not frame as a value
//! become one record up to the next byte where a well-formed state message
//! starts, so a malformed record never takes its neighbours with it. A
//! record over the size limit is stored cut off (see [`super::limit`]).

use std::io::{BufRead, BufReader, Read};

use bytes::Bytes;

use super::limit::{self, DEFAULT_MAX_RECORD_BYTES};
use super::msgpack_frame::{frame, resync, Frame};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::ingest::record::SourceRecord;

/// Partition number given to records read from a file.
pub const FILE_PARTITION: i32 = -1;

/// An open input: a path, or `-` for stdin.
pub struct FileSource {
    reader: Box<dyn BufRead + Send>,
    /// A MessagePack stream (else NDJSON).
    msgpack: bool,
    /// MessagePack bytes read and not yet made records, from `start`.
    buf: Vec<u8>,
    start: usize,
    /// No more bytes to read.
    eof: bool,
    index: i64,
    done: bool,
    /// Bytes of input read so far (after gunzip).
    consumed: u64,
    /// Bytes of input in all, when known up front (a plain file).
    size: Option<u64>,
    /// The largest record taken whole.
    max_record: usize,
}

/// One record's bytes as read: whole, or cut off with its content type.
type Read1 = (Bytes, Option<String>);

impl FileSource {
    /// Opens `path` (`-` = stdin) and detects its format.
    pub fn open(path: &str) -> Result<Self> {
        let mut size = None;
        let raw: Box<dyn Read + Send> = if path == "-" {
            Box::new(std::io::stdin())
        } else {
            let file = std::fs::File::open(path)
                .map_err(|e| Error::invalid("input", format!("{path}: {e}")))?;
            if path.ends_with(".gz") {
                Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
            } else {
                size = file.metadata().ok().map(|m| m.len());
                Box::new(file)
            }
        };
        let mut reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 20, raw));
        let first = reader
            .fill_buf()?
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace());
        let msgpack = matches!(first, Some(0x80..=0x8f | 0xc4..=0xc6 | 0xde | 0xdf));
        Ok(FileSource {
            reader,
            msgpack,
            buf: Vec::new(),
            start: 0,
            eof: false,
            index: 0,
            done: false,
            consumed: 0,
            size,
            max_record: DEFAULT_MAX_RECORD_BYTES,
        })
    }

    /// Takes records up to `bytes` long whole (default
    /// [`DEFAULT_MAX_RECORD_BYTES`]); longer ones are cut off and become
    /// dead letters.
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record = bytes.max(1);
        self
    }

    /// An estimate of the records in the whole input from the bytes read so
    /// far (for a replay's ETA); `None` when the size is unknown (stdin,
    /// gzip) or nothing was read yet.
    pub fn estimated_records(&self) -> Option<u64> {
        let size = self.size?;
        if self.consumed == 0 || self.index <= 0 {
            return None;
        }
        let per_record = self.consumed as f64 / self.index as f64;
        Some((size as f64 / per_record).round() as u64)
    }

    fn record(&mut self, (value, content_type): Read1, arrival_ms: u64) -> SourceRecord {
        let r = SourceRecord {
            partition: FILE_PARTITION,
            offset: self.index,
            arrival_ms,
            content_type,
            value,
        };
        self.index += 1;
        r
    }

    /// Reads up to `max` records into `out`; returns false at the end.
    pub fn next_batch(&mut self, max: usize, out: &mut Vec<SourceRecord>) -> Result<bool> {
        let arrival = now_ms();
        while out.len() < max && !self.done {
            let next = if self.msgpack {
                self.next_msgpack()?
            } else {
                self.next_line()?
            };
            match next {
                Some(read) => {
                    let r = self.record(read, arrival);
                    out.push(r);
                }
                None => self.done = true,
            }
        }
        Ok(!self.done || !out.is_empty())
    }

    /// The next non-blank line without its line end, cut off past the
    /// limit (the rest of it is read and dropped); `None` at the end.
    fn next_line(&mut self) -> Result<Option<Read1>> {
        loop {
            let cap = self.max_record + 2;
            let mut line: Vec<u8> = Vec::new();
            let mut total: u64 = 0;
            let mut ended = false;
            loop {
                let avail = self.reader.fill_buf()?;
                if avail.is_empty() {
                    break;
                }
                let (take, found) = match memchr::memchr(b'\n', avail) {
                    Some(i) => (i + 1, true),
                    None => (avail.len(), false),
                };
                let room = cap.saturating_sub(line.len()).min(take);
                line.extend_from_slice(&avail[..room]);
                self.reader.consume(take);
                total += take as u64;
                if found {
                    ended = true;
                    break;
                }
            }
            if total == 0 {
                return Ok(None);
            }
            self.consumed += total;
            let len = if (line.len() as u64) < total {
                // Cut off: its length without the line end.
                total - u64::from(ended)
            } else {
                while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    line.pop();
                }
                line.len() as u64
            };
            if len > self.max_record as u64 {
                return Ok(Some(into_oversize(limit::oversize(
                    &line,
                    len,
                    self.max_record,
                ))));
            }
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            return Ok(Some((line.into(), None)));
        }
    }

    /// Reads more MessagePack bytes into the buffer (dropping those made
    /// records already); sets `eof` when there are none.
    fn fill(&mut self) -> Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let avail = self.reader.fill_buf()?;
        if avail.is_empty() {
            self.eof = true;
        } else {
            let n = avail.len();
            self.buf.extend_from_slice(avail);
            self.reader.consume(n);
        }
        Ok(())
    }

    /// Moves `n` bytes of the buffer into the record being read.
    fn take(&mut self, n: usize, into: &mut Vec<u8>, total: &mut u64) {
        let bytes = &self.buf[self.start..self.start + n];
        let room = (self.max_record + 1).saturating_sub(into.len()).min(n);
        into.extend_from_slice(&bytes[..room]);
        self.start += n;
        self.consumed += n as u64;
        *total += n as u64;
    }

    /// The next MessagePack record; `None` at the end.
    fn next_msgpack(&mut self) -> Result<Option<Read1>> {
        loop {
            let avail = &self.buf[self.start..];
            if avail.is_empty() {
                if self.eof {
                    return Ok(None);
                }
                self.fill()?;
                continue;
            }
            match frame(avail) {
                Frame::Value(n) if n <= self.max_record => {
                    let value = Bytes::copy_from_slice(&avail[..n]);
                    self.start += n;
                    self.consumed += n as u64;
                    return Ok(Some((value, None)));
                }
                Frame::Incomplete if !self.eof && avail.len() <= self.max_record => self.fill()?,
                _ => return self.bad_run().map(Some),
            }
        }
    }

    /// Bytes from here that make no record of their own (they do not frame,
    /// or frame longer than the limit) up to the next byte where a
    /// well-formed state message starts, or the end: one record.
    fn bad_run(&mut self) -> Result<Read1> {
        let (mut kept, mut total) = (Vec::new(), 0u64);
        // The run's first byte is never the next message's start.
        let mut from = 1;
        loop {
            let avail = &self.buf[self.start..];
            let limit = if self.eof { 0 } else { self.max_record };
            match resync(avail, from, limit) {
                Ok(next) => {
                    self.take(next, &mut kept, &mut total);
                    break;
                }
                Err(_) if self.eof => {
                    let n = avail.len();
                    self.take(n, &mut kept, &mut total);
                    break;
                }
                Err(at) => {
                    self.take(at, &mut kept, &mut total);
                    from = 0;
                    self.fill()?;
                }
            }
        }
        if total > self.max_record as u64 {
            return Ok(into_oversize(limit::oversize(
                &kept,
                total,
                self.max_record,
            )));
        }
        Ok((kept.into(), None))
    }
}

fn into_oversize((value, content_type): (Bytes, String)) -> Read1 {
    (value, Some(content_type))
}

#[cfg(test)]
mod tests {
    use super::FileSource;

    #[test]
    fn a_plain_file_estimates_its_record_count_from_the_bytes_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        let line = "{\"message_type\": \"x\"}\n";
        std::fs::write(&path, line.repeat(1000)).unwrap();
        let mut src = FileSource::open(path.to_str().unwrap()).unwrap();
        assert_eq!(src.estimated_records(), None);
        let mut out = Vec::new();
        src.next_batch(100, &mut out).unwrap();
        assert_eq!(src.estimated_records(), Some(1000));
        let gz = dir.path().join("in.ndjson.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut enc, line.repeat(10).as_bytes()).unwrap();
        enc.finish().unwrap();
        let mut src = FileSource::open(gz.to_str().unwrap()).unwrap();
        src.next_batch(5, &mut out).unwrap();
        assert_eq!(src.estimated_records(), None, "a gzip's size says nothing");
    }
}
