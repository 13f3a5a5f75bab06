//! Records from a file or stdin: NDJSON (one record a line) or a stream of
//! concatenated MessagePack values, told apart by the first byte; a path
//! ending in `.gz` is gunzipped first. A line
//! that is not JSON is still a record (it becomes a dead letter); a
//! MessagePack stream that stops framing ends with one last record holding
//! the rest of the bytes.

use std::io::{BufRead, BufReader, Read};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::ingest::record::SourceRecord;

/// Partition number given to records read from a file.
pub const FILE_PARTITION: i32 = -1;

/// An open input: a path, or `-` for stdin.
pub struct FileSource {
    reader: Box<dyn BufRead + Send>,
    msgpack: Option<Vec<u8>>,
    pos: usize,
    index: i64,
    done: bool,
    /// Bytes of input read so far (after gunzip).
    consumed: u64,
    /// Bytes of input in all, when known up front (a plain file).
    size: Option<u64>,
}

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
        let msgpack = match first {
            Some(0x80..=0x8f | 0xc4..=0xc6 | 0xde | 0xdf) => {
                let mut all = Vec::new();
                reader.read_to_end(&mut all)?;
                Some(all)
            }
            _ => None,
        };
        Ok(FileSource {
            reader,
            msgpack,
            pos: 0,
            index: 0,
            done: false,
            consumed: 0,
            size,
        })
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

    fn record(&mut self, value: Vec<u8>, arrival_ms: u64) -> SourceRecord {
        let r = SourceRecord {
            partition: FILE_PARTITION,
            offset: self.index,
            arrival_ms,
            content_type: None,
            value: value.into(),
        };
        self.index += 1;
        r
    }

    /// Reads up to `max` records into `out`; returns false at the end.
    pub fn next_batch(&mut self, max: usize, out: &mut Vec<SourceRecord>) -> Result<bool> {
        let arrival = now_ms();
        while out.len() < max && !self.done {
            match self.msgpack.take() {
                Some(all) => {
                    if self.pos >= all.len() {
                        self.done = true;
                    } else {
                        let rest = &all[self.pos..];
                        let mut cursor = std::io::Cursor::new(rest);
                        let mut de = rmp_serde::Deserializer::new(&mut cursor);
                        let framed = serde::Deserialize::deserialize(&mut de)
                            .map(|_: serde::de::IgnoredAny| ());
                        let len = match framed {
                            Ok(()) if cursor.position() > 0 => cursor.position() as usize,
                            _ => rest.len(),
                        };
                        let value = rest[..len].to_vec();
                        self.pos += len;
                        self.consumed += len as u64;
                        let r = self.record(value, arrival);
                        out.push(r);
                    }
                    self.msgpack = Some(all);
                }
                None => {
                    let mut line = Vec::new();
                    let n = self.reader.read_until(b'\n', &mut line)?;
                    if n == 0 {
                        self.done = true;
                        break;
                    }
                    self.consumed += n as u64;
                    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        line.pop();
                    }
                    if line.iter().all(|b| b.is_ascii_whitespace()) {
                        continue;
                    }
                    let r = self.record(line, arrival);
                    out.push(r);
                }
            }
        }
        Ok(!self.done || !out.is_empty())
    }
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
