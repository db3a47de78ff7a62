//! Which files an import reads, in which order, and how each is recognised again by a later run.
//!
//! A path is a file or a folder; a folder is walked recursively and its files are taken in byte
//! order of their paths, so that two runs over the same folder read the same lines in the same
//! order (the journal and the versions written depend on that order). Files are picked by name:
//! `.ndjson` and `.jsonl` hold one resource per line, `.json` holds one JSON document (a Bundle
//! or one resource), each optionally compressed as `.gz`. Hidden files and other names in a
//! folder are left alone; a file named directly is read whatever its name (as NDJSON unless it
//! ends in `.json`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{ImportError, Result};

/// How much of a file's head goes into its fingerprint.
const HEAD_BYTES: u64 = 64 * 1024;

/// The layout of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One JSON value per line.
    Ndjson,
    /// One JSON document, possibly over many lines (a Bundle from a FHIR server or Synthea).
    Document,
}

/// One file to import.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub layout: Layout,
    pub gzip: bool,
    /// Bytes on disk (compressed bytes for `.gz`): the unit of the progress estimate.
    pub size: u64,
    /// Size, modification time and a hash of the first 64 KiB: a file whose fingerprint changed
    /// is imported afresh rather than resumed.
    pub fingerprint: String,
    /// Where the journal keeps this file's progress: one key per absolute path.
    pub journal_key: String,
}

impl InputFile {
    /// The path as shown in reports.
    pub fn shown(&self) -> std::path::Display<'_> {
        self.path.display()
    }
}

/// The files under `root`, in import order, and how many files in folders were not importable.
#[derive(Debug)]
pub struct Inputs {
    pub files: Vec<InputFile>,
    pub ignored: usize,
}

/// Finds the files to import under `root` (a file or a folder).
pub fn discover(root: &Path) -> Result<Inputs> {
    let meta = std::fs::metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ImportError::NotFound(root.to_path_buf()),
        _ => ImportError::Unreadable {
            path: root.to_path_buf(),
            source: e,
        },
    })?;
    if !meta.is_dir() {
        let (layout, gzip) = layout_of(root).unwrap_or((Layout::Ndjson, has_suffix(root, ".gz")));
        return Ok(Inputs {
            files: vec![input_file(root.to_path_buf(), layout, gzip)?],
            ignored: 0,
        });
    }
    let mut found = Vec::new();
    let mut ignored = 0;
    walk(root, &mut found, &mut ignored)?;
    found.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    if found.is_empty() {
        return Err(ImportError::NothingToImport(root.to_path_buf()));
    }
    let files = found
        .into_iter()
        .map(|(path, layout, gzip)| input_file(path, layout, gzip))
        .collect::<Result<Vec<_>>>()?;
    Ok(Inputs { files, ignored })
}

fn has_suffix(path: &Path, suffix: &str) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(suffix))
        .unwrap_or(false)
}

/// The layout a file name announces, if it is one this import reads.
pub fn layout_of(path: &Path) -> Option<(Layout, bool)> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let (stem, gzip) = match name.strip_suffix(".gz") {
        Some(stem) => (stem.to_string(), true),
        None => (name, false),
    };
    if stem.ends_with(".ndjson") || stem.ends_with(".jsonl") {
        Some((Layout::Ndjson, gzip))
    } else if stem.ends_with(".json") {
        Some((Layout::Document, gzip))
    } else {
        None
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Layout, bool)>, ignored: &mut usize) -> Result<()> {
    let unreadable = |source| ImportError::Unreadable {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Symbolic links to folders are not followed, so a link cycle cannot loop the walk.
        let kind = entry.file_type().map_err(unreadable)?;
        if kind.is_dir() {
            walk(&path, out, ignored)?;
            continue;
        }
        let is_file = kind.is_file() || (kind.is_symlink() && path.is_file());
        match layout_of(&path) {
            Some((layout, gzip)) if is_file => out.push((path, layout, gzip)),
            _ => *ignored += 1,
        }
    }
    Ok(())
}

fn input_file(path: PathBuf, layout: Layout, gzip: bool) -> Result<InputFile> {
    let unreadable = |source| ImportError::Unreadable {
        path: path.clone(),
        source,
    };
    let mut file = File::open(&path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut head = Vec::with_capacity(HEAD_BYTES as usize);
    (&mut file)
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .map_err(unreadable)?;
    let fingerprint = format!(
        "{}:{}:{}",
        meta.len(),
        modified,
        &hex(&Sha256::digest(&head))[..16]
    );
    let absolute = std::fs::canonicalize(&path).map_err(unreadable)?;
    let journal_key = journal_key(&absolute);
    Ok(InputFile {
        size: meta.len(),
        path,
        layout,
        gzip,
        fingerprint,
        journal_key,
    })
}

/// The journal key of the file at `absolute`.
pub fn journal_key(absolute: &Path) -> String {
    let digest = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
    format!("{}{}", crate::journal::PREFIX, &hex(&digest)[..32])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn layouts_are_recognised_by_name() {
        assert_eq!(
            layout_of(Path::new("a/Patient.ndjson")),
            Some((Layout::Ndjson, false))
        );
        assert_eq!(
            layout_of(Path::new("Obs.NDJSON.gz")),
            Some((Layout::Ndjson, true))
        );
        assert_eq!(
            layout_of(Path::new("x.jsonl")),
            Some((Layout::Ndjson, false))
        );
        assert_eq!(
            layout_of(Path::new("bundle.json.gz")),
            Some((Layout::Document, true))
        );
        assert_eq!(layout_of(Path::new("notes.txt")), None);
        assert_eq!(layout_of(Path::new("archive.gz")), None);
    }

    #[test]
    fn a_folder_is_walked_recursively_in_path_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        touch(&root.join("b/Observation.ndjson"), "{}\n");
        touch(&root.join("a.json"), "{}");
        touch(&root.join("b/a/Patient.ndjson.gz"), "");
        touch(&root.join("README.txt"), "hello");
        touch(&root.join(".hidden.ndjson"), "{}\n");
        touch(&root.join("c/.cache/x.ndjson"), "{}\n");
        let inputs = discover(root).expect("discover");
        let names: Vec<String> = inputs
            .files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            ["a.json", "b/Observation.ndjson", "b/a/Patient.ndjson.gz"]
        );
        assert_eq!(inputs.ignored, 1);
        assert!(inputs.files[2].gzip);
        assert_eq!(inputs.files[0].layout, Layout::Document);
    }

    #[test]
    fn missing_paths_and_empty_folders_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            discover(&dir.path().join("nope")),
            Err(ImportError::NotFound(_))
        ));
        touch(&dir.path().join("x.txt"), "");
        assert!(matches!(
            discover(dir.path()),
            Err(ImportError::NothingToImport(_))
        ));
    }

    #[test]
    fn a_file_named_directly_is_read_whatever_its_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("export.txt");
        touch(&path, "{}\n");
        let inputs = discover(&path).expect("discover");
        assert_eq!(inputs.files.len(), 1);
        assert_eq!(inputs.files[0].layout, Layout::Ndjson);
    }

    #[test]
    fn the_fingerprint_changes_with_the_content_and_the_key_stays() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("p.ndjson");
        touch(&path, "{\"a\":1}\n");
        let before = discover(&path).expect("discover").files.remove(0);
        touch(&path, "{\"a\":2}\n");
        let after = discover(&path).expect("discover").files.remove(0);
        assert_ne!(before.fingerprint, after.fingerprint);
        assert_eq!(before.journal_key, after.journal_key);
        assert!(before.journal_key.starts_with(crate::journal::PREFIX));
    }
}
