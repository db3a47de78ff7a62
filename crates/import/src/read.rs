//! The reader: one thread that reads the input files in order and hands their lines, in chunks,
//! to the workers. It never holds more than a chunk: memory stays flat however large the files.
//!
//! A `.json` document is one unit (it is parsed whole); if it turns out to hold one JSON value
//! per line, it is read as NDJSON instead. A line that is not UTF-8 or is longer than
//! [`MAX_LINE`] is handed on as broken, to be reported; a file that cannot be read to its end
//! (a truncated `.gz`) is reported at the line where reading stopped, and the next file follows.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::rc::Rc;
use std::sync::mpsc::SyncSender;

use crate::journal::LineSet;
use crate::source::{InputFile, Layout};

/// The longest line read; a longer one is reported and skipped.
pub const MAX_LINE: usize = 64 << 20;
/// The largest `.json` document read whole.
pub const MAX_DOCUMENT: u64 = 1 << 30;
/// Items per chunk handed to a worker, and the text after which a chunk is handed on anyway.
const CHUNK_ITEMS: usize = 256;
const CHUNK_BYTES: usize = 1 << 20;
const READ_BUFFER: usize = 256 * 1024;

/// Which lines of a file to read.
#[derive(Debug, Clone)]
pub enum Select {
    /// Every line after the first `done` (which end at byte `offset`), but those in `skip`
    /// (finished by an earlier run in batches that committed out of order).
    From {
        done: u64,
        offset: u64,
        skip: LineSet,
    },
    /// Only these lines (deferred ones being retried).
    Only(LineSet),
}

#[derive(Debug, Clone)]
pub struct ReadJob {
    pub file: usize,
    pub select: Select,
}

/// Where a unit sits in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub file: usize,
    /// The line the unit starts on (1-based).
    pub line: u64,
    /// The byte offset, in the uncompressed content, just after the unit.
    pub end_offset: u64,
    /// Bytes of the file on disk read when the unit was (compressed bytes for `.gz`).
    pub source_pos: u64,
}

#[derive(Debug)]
pub enum Item {
    /// One line of NDJSON, or a whole document.
    Unit { place: Place, text: String },
    /// A line that cannot be read as text.
    Broken { place: Place, reason: String },
    /// The end of a file read with [`Select::From`]: it has `lines` lines.
    End {
        file: usize,
        lines: u64,
        offset: u64,
    },
}

#[derive(Debug)]
pub struct Chunk {
    pub seq: u64,
    pub items: Vec<Item>,
}

/// Reads `jobs` in order into chunks sent to `out`; stops early when `out` is closed.
pub fn read_all(files: &[InputFile], jobs: Vec<ReadJob>, out: SyncSender<Chunk>) {
    let mut sink = Sink {
        out,
        seq: 0,
        items: Vec::with_capacity(CHUNK_ITEMS),
        bytes: 0,
        closed: false,
    };
    for job in jobs {
        let Some(file) = files.get(job.file) else {
            continue;
        };
        read_file(job.file, file, &job.select, &mut sink);
        if sink.closed {
            return;
        }
    }
    sink.flush();
}

struct Sink {
    out: SyncSender<Chunk>,
    seq: u64,
    items: Vec<Item>,
    bytes: usize,
    closed: bool,
}

impl Sink {
    fn push(&mut self, item: Item) {
        if let Item::Unit { text, .. } = &item {
            self.bytes += text.len();
        }
        self.items.push(item);
        if self.items.len() >= CHUNK_ITEMS || self.bytes >= CHUNK_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.items.is_empty() || self.closed {
            return;
        }
        let items = std::mem::replace(&mut self.items, Vec::with_capacity(CHUNK_ITEMS));
        self.bytes = 0;
        let chunk = Chunk {
            seq: self.seq,
            items,
        };
        self.seq += 1;
        if self.out.send(chunk).is_err() {
            self.closed = true;
        }
    }
}

/// Counts the bytes read from the file on disk.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

fn read_file(index: usize, file: &InputFile, select: &Select, sink: &mut Sink) {
    let place = |line: u64, end_offset: u64, source_pos: u64| Place {
        file: index,
        line,
        end_offset,
        source_pos,
    };
    let mut raw = match File::open(&file.path) {
        Ok(f) => f,
        Err(e) => {
            return broken_file(
                index,
                select,
                0,
                0,
                format!("cannot open the file: {e}"),
                sink,
            )
        }
    };
    // A plain file resumes at the recorded offset; a compressed one is read up to it.
    let (mut line, mut offset) = (0u64, 0u64);
    if let Select::From {
        done, offset: at, ..
    } = *select
    {
        if !file.gzip && file.layout == Layout::Ndjson && at > 0 && at <= file.size {
            if raw.seek(SeekFrom::Start(at)).is_ok() {
                line = done;
                offset = at;
            } else if raw.rewind().is_err() {
                return broken_file(index, select, 0, 0, "cannot seek in the file".into(), sink);
            }
        }
    }
    let count = Rc::new(Cell::new(offset));
    let counted = Counting {
        inner: raw,
        count: count.clone(),
    };
    let reader: Box<dyn Read> = if file.gzip {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            READ_BUFFER,
            counted,
        )))
    } else {
        Box::new(counted)
    };
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    if file.layout == Layout::Document {
        match document(&mut reader) {
            Ok(Some((text, len))) => {
                let wanted = match select {
                    Select::From { done, skip, .. } => *done == 0 && !skip.contains(1),
                    Select::Only(lines) => lines.contains(1),
                };
                if wanted {
                    sink.push(Item::Unit {
                        place: place(1, len, count.get()),
                        text,
                    });
                }
                if matches!(select, Select::From { .. }) {
                    sink.push(Item::End {
                        file: index,
                        lines: 1,
                        offset: len,
                    });
                }
                return;
            }
            Ok(None) => {
                // Lines of JSON in a .json file: read as NDJSON, from the start.
                let reopened = File::open(&file.path).map(|f| {
                    let counted = Counting {
                        inner: f,
                        count: count.clone(),
                    };
                    count.set(0);
                    let inner: Box<dyn Read> = if file.gzip {
                        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(counted)))
                    } else {
                        Box::new(counted)
                    };
                    BufReader::with_capacity(READ_BUFFER, inner)
                });
                match reopened {
                    Ok(r) => reader = r,
                    Err(e) => {
                        return broken_file(
                            index,
                            select,
                            0,
                            0,
                            format!("cannot open the file again: {e}"),
                            sink,
                        )
                    }
                }
            }
            Err(reason) => return broken_file(index, select, 0, 0, reason, sink),
        }
    }
    let mut buf = Vec::new();
    loop {
        match next_line(&mut reader, &mut buf) {
            Ok(None) => break,
            Ok(Some(consumed)) => {
                line += 1;
                offset += consumed as u64;
                let at = place(line, offset, count.get());
                let wanted = match select {
                    Select::From { done, skip, .. } => line > *done && !skip.contains(line),
                    Select::Only(lines) => lines.contains(line),
                };
                if !wanted {
                    continue;
                }
                if consumed > MAX_LINE {
                    sink.push(Item::Broken {
                        place: at,
                        reason: format!("the line is longer than {} MiB", MAX_LINE >> 20),
                    });
                    continue;
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match String::from_utf8(std::mem::take(&mut buf)) {
                    Ok(text) => sink.push(Item::Unit { place: at, text }),
                    Err(_) => sink.push(Item::Broken {
                        place: at,
                        reason: "the line is not UTF-8 text".into(),
                    }),
                }
            }
            Err(e) => {
                return broken_file(
                    index,
                    select,
                    line,
                    offset,
                    format!("cannot read past this point: {e}"),
                    sink,
                );
            }
        }
        if sink.closed {
            return;
        }
    }
    if matches!(select, Select::From { .. }) {
        sink.push(Item::End {
            file: index,
            lines: line,
            offset,
        });
    }
}

/// Reports that the file stops being readable after line `line`, and ends it there. When only
/// some lines were wanted, each of them past that point is reported, so none stays waiting.
fn broken_file(
    index: usize,
    select: &Select,
    line: u64,
    offset: u64,
    reason: String,
    sink: &mut Sink,
) {
    let place = |line: u64| Place {
        file: index,
        line,
        end_offset: offset,
        source_pos: 0,
    };
    match select {
        Select::From { .. } => {
            sink.push(Item::Broken {
                place: place(line + 1),
                reason,
            });
            sink.push(Item::End {
                file: index,
                lines: line + 1,
                offset,
            });
        }
        Select::Only(lines) => {
            for &(start, end) in lines.ranges() {
                for wanted in start.max(line + 1)..=end {
                    sink.push(Item::Broken {
                        place: place(wanted),
                        reason: reason.clone(),
                    });
                }
            }
        }
    }
}

/// Reads a `.json` file whole: `Some((text, length))` when it is one JSON value, None when it
/// holds one JSON value per line (to be read as NDJSON); an error when it cannot be read. Text
/// that is not JSON at all is returned as one unit, for the parser to report where it fails.
fn document(reader: &mut impl Read) -> Result<Option<(String, u64)>, String> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_DOCUMENT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(format!(
            "the document is larger than {} MiB; write it as NDJSON (one resource per line) instead",
            MAX_DOCUMENT >> 20
        ));
    }
    let len = bytes.len() as u64;
    let text = String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_string())?;
    if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
        return Ok(Some((text, len)));
    }
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first_line.len() < text.trim().len()
        && serde_json::from_str::<serde::de::IgnoredAny>(first_line).is_ok()
    {
        return Ok(None);
    }
    Ok(Some((text, len)))
}

/// Reads the next line into `buf` (without its `\n` or `\r\n`), keeping at most [`MAX_LINE`]
/// bytes of it; answers the bytes consumed, or None at the end.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut consumed = 0usize;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let (take, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let keep = take.min(MAX_LINE.saturating_sub(buf.len()));
        buf.extend_from_slice(&available[..keep]);
        reader.consume(take);
        consumed += take;
        if done {
            break;
        }
    }
    if consumed == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(Some(consumed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn input(path: &std::path::Path) -> InputFile {
        crate::source::discover(path)
            .expect("discover")
            .files
            .remove(0)
    }

    fn read(file: &InputFile, select: Select) -> Vec<Item> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1000);
        read_all(
            std::slice::from_ref(file),
            vec![ReadJob { file: 0, select }],
            tx,
        );
        rx.into_iter().flat_map(|c| c.items).collect()
    }

    fn units(items: &[Item]) -> Vec<(u64, String)> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Unit { place, text } => Some((place.line, text.clone())),
                _ => None,
            })
            .collect()
    }

    const NDJSON: &str = "{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}";

    #[test]
    fn ndjson_lines_are_numbered_and_blank_ones_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.ndjson");
        std::fs::write(&path, NDJSON).expect("write");
        let items = read(
            &input(&path),
            Select::From {
                done: 0,
                offset: 0,
                skip: LineSet::default(),
            },
        );
        assert_eq!(
            units(&items),
            [
                (1, "{\"a\":1}".to_string()),
                (4, "{\"b\":2}".to_string()),
                (5, "{\"c\":3}".to_string())
            ]
        );
        let Some(Item::End { lines, offset, .. }) = items.last() else {
            panic!("no end: {items:?}");
        };
        assert_eq!((*lines, *offset), (5, NDJSON.len() as u64));
    }

    #[test]
    fn reading_resumes_after_the_recorded_lines_plain_or_compressed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plain = dir.path().join("x.ndjson");
        std::fs::write(&plain, NDJSON).expect("write");
        let gz = dir.path().join("x.ndjson.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(NDJSON.as_bytes()).expect("gzip");
        std::fs::write(&gz, enc.finish().expect("gzip")).expect("write");
        // Line 4 ends where the first read said it does.
        let first = read(
            &input(&plain),
            Select::From {
                done: 0,
                offset: 0,
                skip: LineSet::default(),
            },
        );
        let Some(Item::Unit { place, .. }) = first.get(1) else {
            panic!("no second unit: {first:?}");
        };
        assert_eq!((place.line, place.end_offset), (4, 21));
        for path in [&plain, &gz] {
            let items = read(
                &input(path),
                Select::From {
                    done: 4,
                    offset: 21,
                    skip: LineSet::default(),
                },
            );
            assert_eq!(units(&items), [(5, "{\"c\":3}".to_string())], "{path:?}");
        }
        // Lines finished out of order by an earlier run are skipped; the file still ends.
        let mut skip = LineSet::default();
        skip.insert(4);
        let items = read(
            &input(&plain),
            Select::From {
                done: 1,
                offset: 0,
                skip,
            },
        );
        assert_eq!(units(&items).iter().map(|u| u.0).collect::<Vec<_>>(), [5]);
        assert!(matches!(items.last(), Some(Item::End { lines: 5, .. })));
        let items = read(
            &input(&gz),
            Select::Only({
                let mut s = LineSet::default();
                s.insert(1);
                s.insert(5);
                s
            }),
        );
        assert_eq!(units(&items).len(), 2);
        assert!(!items.iter().any(|i| matches!(i, Item::End { .. })));
    }

    #[test]
    fn a_document_is_one_unit_unless_it_is_lines_of_json() {
        let dir = tempfile::tempdir().expect("temp dir");
        let doc = dir.path().join("b.json");
        std::fs::write(&doc, "{\n  \"resourceType\": \"Bundle\"\n}\n").expect("write");
        let items = read(
            &input(&doc),
            Select::From {
                done: 0,
                offset: 0,
                skip: LineSet::default(),
            },
        );
        assert_eq!(units(&items).len(), 1);
        assert_eq!(units(&items)[0].0, 1);
        let lines = dir.path().join("l.json");
        std::fs::write(&lines, "{\"a\":1}\n{\"b\":2}\n").expect("write");
        assert_eq!(
            units(&read(
                &input(&lines),
                Select::From {
                    done: 0,
                    offset: 0,
                    skip: LineSet::default()
                }
            ))
            .len(),
            2
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"a\":\n").expect("write");
        assert_eq!(
            units(&read(
                &input(&bad),
                Select::From {
                    done: 0,
                    offset: 0,
                    skip: LineSet::default()
                }
            ))
            .len(),
            1
        );
    }

    #[test]
    fn broken_text_and_truncated_gzip_are_reported_not_fatal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.ndjson");
        std::fs::write(&path, b"{\"a\":1}\n\xff\xfe\n{\"b\":2}\n").expect("write");
        let items = read(
            &input(&path),
            Select::From {
                done: 0,
                offset: 0,
                skip: LineSet::default(),
            },
        );
        assert!(matches!(&items[1], Item::Broken { place, .. } if place.line == 2));
        assert_eq!(units(&items).len(), 2);

        let gz = dir.path().join("t.ndjson.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..2000 {
            writeln!(enc, "{{\"n\":{i}}}").expect("gzip");
        }
        let mut bytes = enc.finish().expect("gzip");
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&gz, bytes).expect("write");
        let items = read(
            &input(&gz),
            Select::From {
                done: 0,
                offset: 0,
                skip: LineSet::default(),
            },
        );
        let broken: Vec<&Item> = items
            .iter()
            .filter(|i| matches!(i, Item::Broken { .. }))
            .collect();
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(matches!(items.last(), Some(Item::End { .. })));
    }
}
