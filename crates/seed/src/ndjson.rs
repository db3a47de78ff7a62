//! Writing a region as FHIR Bulk Data NDJSON: one `<Type>.ndjson` file per resource type, one
//! compact resource per line.
//!
//! Patients are generated in chunks on every core; each worker serialises its chunk into one
//! buffer per type and hands it over a small bounded channel, and the writer takes the chunks in
//! patient order, so the files are the same whatever the number of threads and memory stays
//! bounded (a few chunks in flight).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Generator, Kind, Options, SeedError};

/// Patients per chunk of work.
const CHUNK: u64 = 64;
/// The shared part is written whenever this much of it is ready.
const SHARED_PIECE_BYTES: usize = 8 << 20;
/// Chunks a worker may have finished and not yet handed over.
const IN_FLIGHT: usize = 2;

/// What [`write_ndjson`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Resources written, by type.
    pub counts: BTreeMap<String, u64>,
    pub total: u64,
    /// Bytes written over all files.
    pub bytes: u64,
    pub files: Vec<PathBuf>,
    pub elapsed: Duration,
}

/// Resources serialised per type, in order.
struct Batch {
    lines: Vec<Vec<u8>>,
    counts: Vec<u64>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            lines: vec![Vec::new(); Kind::ALL.len()],
            counts: vec![0; Kind::ALL.len()],
        }
    }

    fn bytes(&self) -> usize {
        self.lines.iter().map(Vec::len).sum()
    }

    fn push(&mut self, resource: &Value) -> Result<(), SeedError> {
        let kind = resource["resourceType"]
            .as_str()
            .and_then(Kind::from_name)
            .unwrap_or(Kind::Binary);
        let buf = &mut self.lines[kind.index()];
        serde_json::to_writer(&mut *buf, resource)?;
        buf.push(b'\n');
        self.counts[kind.index()] += 1;
        Ok(())
    }
}

/// Counts by type, bytes, files.
type Written = (BTreeMap<String, u64>, u64, Vec<PathBuf>);

struct Files {
    dir: PathBuf,
    writers: Vec<Option<BufWriter<File>>>,
    counts: Vec<u64>,
    bytes: u64,
}

impl Files {
    fn path(&self, kind: Kind) -> PathBuf {
        self.dir.join(format!("{}.ndjson", kind.name()))
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SeedError> {
        for kind in Kind::ALL {
            let lines = &batch.lines[kind.index()];
            if lines.is_empty() {
                continue;
            }
            let path = self.path(kind);
            let slot = &mut self.writers[kind.index()];
            if slot.is_none() {
                let file = File::create(&path).map_err(|source| SeedError::Io {
                    path: path.clone(),
                    source,
                })?;
                *slot = Some(BufWriter::with_capacity(1 << 20, file));
            }
            if let Some(w) = slot.as_mut() {
                w.write_all(lines)
                    .map_err(|source| SeedError::Io { path, source })?;
            }
            self.counts[kind.index()] += batch.counts[kind.index()];
            self.bytes += lines.len() as u64;
        }
        Ok(())
    }

    /// Flushes every file; returns the counts by type, the bytes and the files written.
    fn finish(mut self) -> Result<Written, SeedError> {
        let mut files = Vec::new();
        for kind in Kind::ALL {
            let path = self.path(kind);
            if let Some(mut w) = self.writers[kind.index()].take() {
                w.flush().map_err(|source| SeedError::Io {
                    path: path.clone(),
                    source,
                })?;
                files.push(path);
            }
        }
        let counts = Kind::ALL
            .iter()
            .filter(|k| self.counts[k.index()] > 0)
            .map(|k| (k.name().to_string(), self.counts[k.index()]))
            .collect();
        Ok((counts, self.bytes, files))
    }
}

fn chunk(generator: &Generator, c: u64) -> Result<Batch, SeedError> {
    let mut batch = Batch::new();
    let from = c * CHUNK;
    let to = (from + CHUNK).min(generator.patients());
    for i in from..to {
        for r in generator.patient(i) {
            batch.push(&r)?;
        }
    }
    Ok(batch)
}

/// Generates the region and writes it to `out_dir` (created if missing) as `<Type>.ndjson`
/// files, replacing files of those names. Uses every core.
pub fn write_ndjson(opts: &Options, out_dir: &Path) -> Result<Summary, SeedError> {
    let started = Instant::now();
    std::fs::create_dir_all(out_dir).map_err(|source| SeedError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let generator = Generator::new(opts)?;
    let mut files = Files {
        dir: out_dir.to_path_buf(),
        writers: (0..Kind::ALL.len()).map(|_| None).collect(),
        counts: vec![0; Kind::ALL.len()],
        bytes: 0,
    };
    // The shared part goes out in pieces: a large region has many free slots.
    let mut shared = Batch::new();
    generator.shared(&mut |r| {
        shared.push(&r)?;
        if shared.bytes() > SHARED_PIECE_BYTES {
            files.write(&shared)?;
            shared = Batch::new();
        }
        Ok::<(), SeedError>(())
    })?;
    files.write(&shared)?;
    drop(shared);

    let chunks = generator.patients().div_ceil(CHUNK);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 16) as u64;
    let written: Result<(), SeedError> = std::thread::scope(|scope| {
        let mut receivers = Vec::new();
        for w in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<Result<Batch, SeedError>>(IN_FLIGHT);
            receivers.push(rx);
            let generator = &generator;
            scope.spawn(move || {
                let mut c = w;
                while c < chunks {
                    // A closed channel means the writer stopped: stop too.
                    if tx.send(chunk(generator, c)).is_err() {
                        return;
                    }
                    c += threads;
                }
            });
        }
        for c in 0..chunks {
            let rx = &receivers[(c % threads) as usize];
            match rx.recv() {
                Ok(batch) => files.write(&batch?)?,
                Err(_) => break,
            }
        }
        Ok(())
    });
    written?;
    let (counts, bytes, files) = files.finish()?;
    Ok(Summary {
        total: counts.values().sum(),
        counts,
        bytes,
        files,
        elapsed: started.elapsed(),
    })
}
