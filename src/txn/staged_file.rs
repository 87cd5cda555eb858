//! Files a write stages through Polars' sink, hashed as their bytes go out: the commit then
//! knows each one's size and checksum without reading it back.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polars::io::utils::file::{Writable, WritableTrait};

/// A staged file's size and blake3 checksum, taken from the bytes its writer wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Bytes written.
    pub bytes: u64,
    /// The blake3 hash of those bytes.
    pub checksum: blake3::Hash,
}

/// What the writers made by [`WrittenLog::create`] wrote, per path, once each was closed.
/// Shared by the sink's threads; cloned into Polars' file-provider callback.
#[derive(Clone, Default)]
pub struct WrittenLog(Arc<Mutex<HashMap<PathBuf, Written>>>);

impl WrittenLog {
    /// Creates the file `rel` under `dir` (its folder too; the file must not exist) and returns
    /// it as a writer for Polars' sink that records its size and checksum here when the sink
    /// closes it. A `rel` that is not a plain relative path (`..`, `/`-rooted) is refused, as
    /// Polars refuses it for a path it creates itself.
    pub fn create(&self, dir: &Path, rel: &str) -> io::Result<Writable> {
        let plain = Path::new(rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || rel.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel:?} leaves the staging folder"),
            ));
        }
        let path = dir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create_new(&path)?;
        Ok(Writable::Dyn(Box::new(HashedFile {
            file,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            path,
            log: self.clone(),
        })))
    }

    /// How many files were recorded.
    pub fn recorded(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// What was written to `file` (open at `path`), if one of this log's writers closed it and
    /// it still has the size written.
    pub fn get(&self, path: &Path, file: &File) -> Option<Written> {
        let written = *self.0.lock().unwrap_or_else(|e| e.into_inner()).get(path)?;
        let len = file.metadata().ok()?.len();
        (len == written.bytes).then_some(written)
    }
}

/// A staged file hashed as it is written.
struct HashedFile {
    file: File,
    hasher: blake3::Hasher,
    bytes: u64,
    path: PathBuf,
    log: WrittenLog,
}

impl Write for HashedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl WritableTrait for HashedFile {
    /// Called by the sink after the file's last byte: records it in the log. (Starting its
    /// writeback here, `sync_file_range`, made the 36,500-partition ingest 2 s slower: the
    /// disk's writes then compete with the sink.)
    fn close(&mut self) -> io::Result<()> {
        let written = Written {
            bytes: self.bytes,
            checksum: self.hasher.finalize(),
        };
        self.log
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.path.clone(), written);
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_through(log: &WrittenLog, path: &Path, parts: &[&[u8]]) {
        let (dir, name) = (path.parent().unwrap(), path.file_name().unwrap());
        let Writable::Dyn(mut w) = log.create(dir, name.to_str().unwrap()).unwrap() else {
            unreachable!("a staged file is a Dyn writable")
        };
        for part in parts {
            w.write_all(part).unwrap();
        }
        w.close().unwrap();
    }

    #[test]
    fn a_closed_file_is_known_by_its_size_and_checksum_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let log = WrittenLog::default();
        let path = dir.path().join("a=1/b=%2F/x.parquet.staged");
        let Writable::Dyn(mut nested) = log.create(dir.path(), "n=1/y.staged").unwrap() else {
            unreachable!()
        };
        nested.write_all(b"in a folder").unwrap();
        nested.close().unwrap();
        let y = dir.path().join("n=1/y.staged");
        assert_eq!(
            log.get(&y, &File::open(&y).unwrap()).map(|w| w.checksum),
            Some(blake3::hash(b"in a folder"))
        );
        let big = vec![7u8; 300_000];
        write_through(&log, &path, &[b"PAR1", &big, b"", b"end"]);
        let bytes = std::fs::read(&path).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(
            log.get(&path, &file),
            Some(Written {
                bytes: bytes.len() as u64,
                checksum: blake3::hash(&bytes),
            })
        );
        // Changed after its writer closed it: not known any more.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"late")
            .unwrap();
        assert_eq!(log.get(&path, &file), None);
        // Another path, or a file never closed, is not known.
        let other = dir.path().join("y.parquet.staged");
        let Writable::Dyn(mut open) = log.create(dir.path(), "y.parquet.staged").unwrap() else {
            unreachable!()
        };
        open.write_all(b"half").unwrap();
        assert_eq!(log.get(&other, &File::open(&other).unwrap()), None);
        // A name is never written twice, and never outside the folder.
        assert!(
            log.create(dir.path(), "a=1/b=%2F/x.parquet.staged")
                .is_err()
        );
        for bad in ["../x", "a/../../x", "/tmp/x", ""] {
            let e = log.create(dir.path(), bad).err();
            assert_eq!(
                e.map(|e| e.kind()),
                Some(io::ErrorKind::InvalidInput),
                "{bad}"
            );
        }
        assert!(!dir.path().parent().unwrap().join("x").exists());
    }

    #[test]
    fn an_empty_file_is_known_too() {
        let dir = tempfile::tempdir().unwrap();
        let log = WrittenLog::default();
        let path = dir.path().join("empty");
        write_through(&log, &path, &[]);
        let file = File::open(&path).unwrap();
        assert_eq!(
            log.get(&path, &file),
            Some(Written {
                bytes: 0,
                checksum: blake3::hash(b""),
            })
        );
    }
}
