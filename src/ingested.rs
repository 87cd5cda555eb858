//! The sources index: which source files `ingest` has committed, so that running it again over
//! a download folder reads only the files that are new or changed.
//!
//! A source is recorded by its absolute path (symlinks resolved), size, modification time,
//! blake3 content hash and the hash of what else decides its rows (the identity values its
//! path and the options give, the timestamp unit, `--lenient`). Like `make` and `rsync`, a
//! source whose path, size and modification time match its record is taken to be unchanged
//! without being read; any other source is hashed, and skipped when its content and
//! parameters match a record (the same file touched, copied or renamed). A source whose size
//! and parameters no record has is read whatever its hash, which is taken beside the write.
//!
//! The records do not live in the manifest, which every version copies whole: each commit that
//! ingests sources writes a segment `_pqdm/sources/<blake3 of its bytes>.json` listing them
//! (before its commit point), and the version lists the names of the segments that make up the
//! index ([`Manifest::sources`]). A write that fails or dies before its commit point leaves a
//! segment no version lists, which counts for nothing (`vacuum` deletes it). Once a version
//! would list more than [`MAX_SEGMENTS`], the commit writes one segment holding the whole
//! index instead, so reading the index costs a few files however many commits made it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::txn::Store;

/// The most segments a version lists before a commit folds them into one.
pub const MAX_SEGMENTS: usize = 16;

/// One ingested source file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The absolute path (symlinks resolved).
    pub path: String,
    /// Size in bytes when it was read.
    pub size: u64,
    /// Modification time when it was read, nanoseconds since the Unix epoch.
    pub modified_ns: i64,
    /// blake3 of its content, hex.
    pub blake3: String,
    /// blake3 (hex) of what else decides the rows it makes (see [`params`]).
    pub params: String,
    /// The version that recorded it.
    pub version: u64,
}

impl SourceRecord {
    /// Whether `other` records the same file in the same state (whichever version recorded it).
    fn same(&self, other: &SourceRecord) -> bool {
        SourceRecord {
            version: other.version,
            ..self.clone()
        } == *other
    }
}

/// The on-disk form of one segment.
#[derive(Serialize, Deserialize)]
struct Segment {
    sources: Vec<SourceRecord>,
}

/// The sources a version's index records, by path (a later record of a path wins).
#[derive(Clone, Debug, Default)]
pub struct SourceIndex {
    by_path: BTreeMap<String, SourceRecord>,
}

impl SourceIndex {
    /// The index of `manifest`'s version (read from its segments). A segment that is missing
    /// or unreadable (deleted or damaged by hand) is left out with a warning: the sources it
    /// recorded are read again (an upsert stores them once), and the next commit that folds
    /// the segments drops it.
    pub fn load(store: &Store, manifest: &Manifest) -> Result<SourceIndex> {
        let mut index = SourceIndex::default();
        for name in &manifest.sources {
            let segment = store
                .read_segment(name)?
                .ok_or_else(|| "missing".to_string())
                .and_then(|b| serde_json::from_slice::<Segment>(&b).map_err(|e| e.to_string()));
            match segment {
                Ok(segment) => index.extend(segment.sources),
                Err(why) => log::warn!(
                    "{}: segment {name} of the sources index is {why}; the sources it recorded are read again",
                    store.base().display()
                ),
            }
        }
        Ok(index)
    }

    fn extend(&mut self, records: impl IntoIterator<Item = SourceRecord>) {
        for r in records {
            self.by_path.insert(r.path.clone(), r);
        }
    }

    /// The (content hash, parameters) of every source as last recorded: a file holding one of
    /// them holds rows the dataset has from that source. An earlier content of a path that
    /// changed since is not among them (a file changed back is read again).
    fn contents(&self) -> HashSet<(&str, &str)> {
        self.by_path
            .values()
            .map(|r| (r.blake3.as_str(), r.params.as_str()))
            .collect()
    }

    /// Sources recorded.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// The record of the source at absolute path `path`.
    pub fn get(&self, path: &str) -> Option<&SourceRecord> {
        self.by_path.get(path)
    }
}

/// A file's size and modification time (ns since the epoch).
fn stat(path: &Path) -> Result<(u64, i64)> {
    let meta = std::fs::metadata(path).map_err(Error::io(path))?;
    let modified = meta.modified().map_err(Error::io(path))?;
    let ns = match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    };
    Ok((meta.len(), ns))
}

/// blake3 of a file's content, hex: read in 4 MiB blocks (never whole into memory), each hashed
/// on every core. `std::io::copy`'s 8 KiB writes kept blake3 on one core and short of its
/// SIMD width: 4 s for a 2.5 GB source before its first row was read.
fn hash_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
    let mut hasher = blake3::Hasher::new();
    let mut block = vec![0u8; 4 << 20];
    loop {
        let mut filled = 0;
        while filled < block.len() {
            match file.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path)(e)),
            }
        }
        if filled == 0 {
            break;
        }
        hasher.update_rayon(&block[..filled]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The hash of what besides its content decides the rows a source makes: the values of
/// identity columns (`exchange`, `symbol`, `timeframe`) from its path and the options, the
/// timestamp unit and lenient mode. Not the write mode: a source ingested as an append is
/// stored as one ingested as an upsert.
pub fn params(
    constants: &BTreeMap<String, String>,
    unit: Option<crate::timestamp::Unit>,
    lenient: bool,
) -> String {
    let text = serde_json::json!({
        "constants": constants,
        "timestamp_unit": unit.map(|u| format!("{u:?}")),
        "lenient": lenient,
    })
    .to_string();
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// A record an ingest means to commit.
#[derive(Clone, Debug)]
struct Pending {
    /// The path as given (the one the ingest reads).
    given: PathBuf,
    record: SourceRecord,
    /// Whether the ingest reads it (else it was skipped and only its record is new: a file
    /// touched, copied or renamed with the same content).
    read: bool,
}

/// The records one ingest adds to the sources index when it commits.
#[derive(Debug, Default)]
pub struct SourceBatch {
    pending: Vec<Pending>,
    /// Content hashes being taken beside the write, for the records in `pending` that have
    /// none yet ([`SourceBatch::finish_hashes`] waits for them).
    hashing: Option<Hashing>,
}

/// A thread hashing sources in order: (the source as given, its hash).
type Hashing = std::thread::JoinHandle<Vec<(PathBuf, Result<String>)>>;

/// What [`plan`] decided for the files of one ingest.
#[derive(Debug, Default)]
pub struct SourcePlan {
    /// The sources to read (in the given order).
    pub read: Vec<PathBuf>,
    /// The sources skipped: ingested before and unchanged.
    pub skipped: Vec<PathBuf>,
    /// The records their commit adds.
    pub batch: SourceBatch,
}

/// Decides which of `files` an ingest reads: those the index has no record of, in this state
/// and with these parameters (`params_of`), or all of them with `force`. Sources on object
/// storage are always read and never recorded.
pub fn plan(
    index: &SourceIndex,
    files: &[PathBuf],
    params_of: impl Fn(&Path) -> String,
    force: bool,
) -> Result<SourcePlan> {
    let mut out = SourcePlan::default();
    let contents = index.contents();
    // A source whose size and parameters no record has cannot hold a recorded content: it is
    // read whatever its hash, which is then taken beside the write instead of before it (a
    // first ingest of a 2.5 GB file waited 1 s for its hash).
    let sizes: HashSet<(u64, &str)> = index
        .by_path
        .values()
        .map(|r| (r.size, r.params.as_str()))
        .collect();
    let mut later: Vec<PathBuf> = vec![];
    for given in files {
        if crate::location::Location::parse(given)?
            .as_local()
            .is_none()
        {
            out.read.push(given.clone());
            continue;
        }
        let path = std::fs::canonicalize(given).map_err(Error::io(given))?;
        let path = path.to_string_lossy().into_owned();
        let (size, modified_ns) = stat(given)?;
        let params = params_of(given);
        let known = index.get(&path);
        let unchanged_stat = known.is_some_and(|r| {
            (r.size, r.modified_ns, r.params.as_str()) == (size, modified_ns, params.as_str())
        });
        if unchanged_stat && !force {
            out.skipped.push(given.clone());
            continue;
        }
        let hash_later = !sizes.contains(&(size, params.as_str()));
        let record = SourceRecord {
            path,
            size,
            modified_ns,
            blake3: match hash_later {
                true => String::new(),
                false => hash_file(given)?,
            },
            params,
            version: 0,
        };
        let seen =
            !hash_later && contents.contains(&(record.blake3.as_str(), record.params.as_str()));
        let read = force || !seen;
        if read {
            out.read.push(given.clone());
        } else {
            out.skipped.push(given.clone());
        }
        // A record hashed later differs from the known one: its size or parameters do.
        if hash_later || !known.is_some_and(|k| k.same(&record)) {
            if hash_later {
                later.push(given.clone());
            }
            out.batch.pending.push(Pending {
                given: given.clone(),
                record,
                read,
            });
        }
    }
    if !later.is_empty() {
        let hashing = std::thread::spawn(move || {
            later
                .into_iter()
                .map(|given| {
                    let hash = hash_file(&given);
                    (given, hash)
                })
                .collect()
        });
        out.batch.hashing = Some(hashing);
    }
    Ok(out)
}

impl SourceBatch {
    /// Whether the batch holds records of sources the ingest read, which its commit must
    /// record even when their rows change nothing (else they would be read again each time).
    pub fn needs_commit(&self) -> bool {
        self.pending.iter().any(|p| p.read)
    }

    /// Waits for the content hashes taken beside the write ([`plan`]) and puts them in their
    /// records. A source that could not be hashed (deleted or moved since it was read, as a
    /// download folder's cleanup may) is left unrecorded with a warning, as one that changed
    /// while it was ingested is ([`SourceBatch::confirm`]): its rows are written, and the next
    /// ingest reads it again. Returns the sources left unrecorded.
    pub fn finish_hashes(&mut self) -> Result<Vec<PathBuf>> {
        let mut dropped = vec![];
        let Some(hashing) = self.hashing.take() else {
            return Ok(dropped);
        };
        let hashes = hashing.join().map_err(|_| Error::Dataset {
            path: PathBuf::new(),
            message: "the thread hashing the sources stopped".into(),
        })?;
        for (given, hash) in hashes {
            // The same file given twice is hashed twice; each fills one record.
            let unhashed = |p: &Pending| p.given == given && p.record.blake3.is_empty();
            match hash {
                Ok(hash) => {
                    if let Some(p) = self.pending.iter_mut().find(|p| unhashed(p)) {
                        p.record.blake3 = hash;
                    }
                }
                Err(e) => {
                    log::warn!(
                        "{}: not recorded, its content hash could not be taken after it was read ({e}); the next ingest reads it again",
                        given.display()
                    );
                    if let Some(at) = self.pending.iter().position(unhashed) {
                        self.pending.remove(at);
                    }
                    dropped.push(given);
                }
            }
        }
        Ok(dropped)
    }

    /// Records the batch holds.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Drops the records of sources whose size or modification time changed since they were
    /// planned (edited while the ingest read them: what it read is not what was hashed), so
    /// that the next ingest reads them again. Returns the sources dropped.
    pub fn confirm(&mut self) -> Vec<PathBuf> {
        let mut dropped = vec![];
        self.pending.retain(|p| {
            let same = stat(&p.given)
                .is_ok_and(|(size, ns)| (size, ns) == (p.record.size, p.record.modified_ns));
            if !same {
                log::warn!(
                    "{} changed while it was ingested: not recorded, the next ingest reads it again",
                    p.given.display()
                );
                dropped.push(p.given.clone());
            }
            same
        });
        dropped
    }

    /// Writes the segment(s) that add this batch to `current`'s index for the commit of
    /// `version`, and returns the segment list that version lists (`None`: nothing to record).
    pub fn write_segments(
        &self,
        store: &Store,
        current: &Manifest,
        version: u64,
    ) -> Result<Option<Vec<String>>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        if let Some(p) = self.pending.iter().find(|p| p.record.blake3.is_empty()) {
            return Err(Error::Input {
                path: p.given.clone(),
                message: "its content hash was not taken before the commit".into(),
            });
        }
        let mine = self.pending.iter().map(|p| SourceRecord {
            version,
            ..p.record.clone()
        });
        let (records, mut names): (Vec<SourceRecord>, Vec<String>) =
            if current.sources.len() < MAX_SEGMENTS {
                (mine.collect(), current.sources.clone())
            } else {
                let mut all = SourceIndex::load(store, current)?;
                all.extend(mine);
                (all.by_path.into_values().collect(), vec![])
            };
        let bytes = serde_json::to_vec(&Segment { sources: records }).expect("segment serialises");
        let name = format!("{}.json", blake3::hash(&bytes).to_hex());
        store.write_segment(&name, bytes)?;
        names.retain(|n| *n != name);
        names.push(name);
        Ok(Some(names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hashes_to_blake3_of_its_bytes_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, (4 << 20) - 1, 4 << 20, (9 << 20) + 3] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("{len}.bin"));
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(
                hash_file(&path).unwrap(),
                blake3::hash(&bytes).to_hex().to_string(),
                "{len} bytes"
            );
        }
    }

    fn record(path: &str, blake3: &str, version: u64) -> SourceRecord {
        SourceRecord {
            path: path.into(),
            size: 10,
            modified_ns: 5,
            blake3: blake3.into(),
            params: "p".into(),
            version,
        }
    }

    #[test]
    fn a_later_record_of_a_path_wins_and_only_last_contents_are_known() {
        let mut index = SourceIndex::default();
        index.extend([record("/a", "h1", 1), record("/b", "h2", 1)]);
        index.extend([record("/a", "h3", 2)]);
        assert_eq!(index.len(), 2);
        assert_eq!(index.get("/a").map(|r| r.blake3.as_str()), Some("h3"));
        // The dataset holds /a's rows as of h3: a file holding h1 again must be read.
        let contents = index.contents();
        assert!(!contents.contains(&("h1", "p")));
        assert!(contents.contains(&("h2", "p")) && contents.contains(&("h3", "p")));
        assert!(record("/a", "h3", 7).same(&record("/a", "h3", 2)));
        assert!(!record("/a", "h3", 7).same(&record("/a", "h1", 2)));
    }

    #[test]
    fn sources_no_record_can_match_are_hashed_beside_the_write_and_one_gone_is_left_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept.csv");
        std::fs::write(&kept, b"open_time,close\n1,2\n").unwrap();
        // Readable at planning (it can be stat'ed) but not hashable: a folder stands for a
        // source deleted or moved once it was read (found by a red team: the whole ingest failed).
        let gone = dir.path().join("gone.csv");
        std::fs::create_dir(&gone).unwrap();
        let files = [kept.clone(), gone.clone()];
        let mut first = plan(&SourceIndex::default(), &files, |_| "p".into(), false).unwrap();
        assert_eq!(first.read, files);
        assert!(
            first.batch.hashing.is_some(),
            "an empty index matches nothing"
        );
        assert!(
            first
                .batch
                .pending
                .iter()
                .all(|p| p.record.blake3.is_empty())
        );
        assert_eq!(first.batch.finish_hashes().unwrap(), vec![gone]);
        assert_eq!(first.batch.len(), 1);
        // Waiting twice is waiting once.
        assert!(first.batch.finish_hashes().unwrap().is_empty());
        let p = &first.batch.pending[0];
        assert_eq!(p.given, kept);
        assert_eq!(p.record.blake3, hash_file(&kept).unwrap());
        // A source of a recorded size is hashed before the write, as a copy may be skipped.
        let mut index = SourceIndex::default();
        index.extend([SourceRecord {
            path: "/elsewhere.csv".into(),
            version: 1,
            ..p.record.clone()
        }]);
        let copy = dir.path().join("copy.csv");
        std::fs::copy(&kept, &copy).unwrap();
        let again = plan(&index, std::slice::from_ref(&copy), |_| "p".into(), false).unwrap();
        assert!(again.batch.hashing.is_none());
        assert_eq!(again.skipped, vec![copy]);
    }

    #[test]
    fn params_tell_identity_unit_and_lenient_apart() {
        let c = |v: &str| BTreeMap::from([("symbol".to_string(), v.to_string())]);
        let base = params(&c("BTCUSDT"), None, false);
        assert_eq!(base, params(&c("BTCUSDT"), None, false));
        assert_ne!(base, params(&c("ETHUSDT"), None, false));
        assert_ne!(
            base,
            params(&c("BTCUSDT"), Some(crate::timestamp::Unit::Millis), false)
        );
        assert_ne!(base, params(&c("BTCUSDT"), None, true));
    }
}
