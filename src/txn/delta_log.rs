//! The Delta Lake log of a dataset (`_delta_log/`): after each commit point, the committer
//! writes the version's log entry, so every engine that reads Delta sees the same versions as
//! pqdm (the entries themselves are [`crate::delta`]'s).
//!
//! **What a Delta reader sees.** An entry is created whole or not at all, and never
//! overwritten ([`LogStore::create_new`]: a hard link of a synced file locally, a conditional
//! put on object storage). Entry N is created only once entry N-1 (or a checkpoint at N-1)
//! exists, so the log never has a gap. It is written after pqdm's own commit point, so a Delta
//! reader sees version N a moment after pqdm's readers do; a writer that dies in between leaves
//! the log one version behind, and the next commit (or [`Store::publish_delta`]) writes the
//! missing entries first, from the versions the history keeps. A dataset with no log yet (made
//! by an earlier pqdm), or whose history no longer holds what the missing entries need, gets a
//! checkpoint of its current version instead: Delta readers see it from that version on.
//!
//! The files an entry adds are named by their kept copies (`_pqdm/files/<path>.kept`), which
//! stay where they are after later commits take them out of the tree, so a Delta reader of an
//! older version reads it whole for as long as `vacuum`'s retention keeps its files.

use std::collections::BTreeMap;

use super::{LogStore, Store, kept_rel};
use crate::delta;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::partition_values::PartitionValues;

/// What [`Store::publish_delta`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Published {
    /// Log entries created.
    pub entries: u64,
    /// The version of the checkpoint written, if one was.
    pub checkpoint: Option<u64>,
}

impl Store {
    /// Where Delta readers read file `rel` of version `m`: its kept copy where the dataset
    /// keeps them, else the tree's.
    pub(crate) fn delta_path(&self, m: &Manifest, rel: &str) -> String {
        if self.keeps_for(m) {
            kept_rel(rel)
        } else {
            rel.to_string()
        }
    }

    /// Whether the log holds version `version` (an entry, or a checkpoint of it).
    fn logged(&self, version: u64) -> Result<bool> {
        Ok(self.data_exists(&delta::entry_rel(version))?
            || self.data_exists(&delta::checkpoint_rel(version))?)
    }

    /// The newest version the log holds below `below` (`None`: no log).
    fn newest_logged_below(&self, below: u64) -> Result<Option<u64>> {
        if below > 0 && self.logged(below - 1)? {
            return Ok(Some(below - 1));
        }
        let listed = self.list_aged(&format!("{}/", delta::LOG_DIR))?;
        Ok(listed
            .iter()
            .filter_map(|(name, _, _)| {
                delta::entry_version(name).or_else(|| delta::checkpoint_version(name))
            })
            .filter(|v| *v < below)
            .max())
    }

    /// Brings the Delta log up to version `m` (the version just committed, or the current
    /// one): writes the entries it lacks, oldest first, from the history's versions (`prev`,
    /// version `m - 1`, saves reading it); where the history no longer holds them (or there is
    /// no log yet), a checkpoint of `m` instead. Writes a checkpoint of `m` too when its number
    /// is a multiple of the dataset's interval.
    pub(crate) fn publish_delta(&self, prev: Option<&Manifest>, m: &Manifest) -> Result<Published> {
        crate::failpoint::hit("delta.publish")?;
        let mut done = Published::default();
        if !self.keeps_for(m) {
            // A dataset of an earlier pqdm, whose files have no kept copies yet: the log would
            // name tree paths its next commit moves away from. That commit starts the log.
            return Ok(done);
        }
        let table_id = m.table_id.clone().unwrap_or_else(delta::new_table_id);
        // The committer's usual case, in one existence check: entry N-1 is there, N is made
        // from it (on object storage every check is a request).
        if let Some(p) = prev.filter(|p| p.version + 1 == m.version)
            && self.data_exists(&delta::entry_rel(p.version))?
        {
            self.create_entry(Some(p), m, &table_id, &mut done)?;
            self.checkpoint_if_wanted(m, &table_id, &mut done)?;
            return Ok(done);
        }
        if self.logged(m.version)? {
            self.warn_if_not_ours(m);
            return Ok(done);
        }
        let from = match self.newest_logged_below(m.version)? {
            Some(v) => v + 1,
            None if m.version == 0 => 0,
            None => {
                done.checkpoint = Some(self.write_checkpoint(m, &table_id)?);
                return Ok(done);
            }
        };
        // The versions the missing entries are made from, oldest first, with the first one's
        // predecessor (none for version 0).
        let mut chain: Vec<Manifest> = Vec::new();
        for v in from.saturating_sub(1)..m.version {
            let loaded = match prev {
                Some(p) if p.version == v => Ok(p.clone()),
                _ => self.load_version(v),
            };
            match loaded {
                Ok(x) => chain.push(x),
                Err(e) => {
                    log::info!(
                        "the Delta log of {} lacks versions {from} to {} and the history cannot rebuild them ({e}): writing a checkpoint of version {}",
                        self.base().display(),
                        m.version,
                        m.version
                    );
                    let v = self.write_checkpoint(m, &table_id)?;
                    done.checkpoint = Some(v);
                    return Ok(done);
                }
            }
        }
        chain.push(m.clone());
        for (i, next) in chain.iter().enumerate() {
            if next.version >= from {
                self.create_entry(
                    i.checked_sub(1).map(|j| &chain[j]),
                    next,
                    &table_id,
                    &mut done,
                )?;
            }
        }
        self.checkpoint_if_wanted(m, &table_id, &mut done)?;
        Ok(done)
    }

    /// Creates the entry of version `next` from the version before it (`None` for version 0);
    /// where it exists already, warns if another writer made it.
    fn create_entry(
        &self,
        before: Option<&Manifest>,
        next: &Manifest,
        table_id: &str,
        done: &mut Published,
    ) -> Result<()> {
        let path = |rel: &str| self.delta_path(next, rel);
        let bytes = delta::entry_bytes(&delta::entry(before, next, table_id, &path));
        if self.create_new(&delta::entry_rel(next.version), bytes)? {
            done.entries += 1;
            if next.records_since == Some(next.version)
                && next.version > 0
                && !next
                    .version
                    .is_multiple_of(delta::checkpoint_interval(next))
            {
                // The entries before it (an earlier pqdm's) carry no record: from this
                // checkpoint on, the log alone rebuilds every version.
                done.checkpoint = Some(self.write_checkpoint(next, table_id)?);
            }
        } else {
            self.warn_if_not_ours(next);
        }
        Ok(())
    }

    /// Whether the log holds version `p` (an entry or a checkpoint of it), so that the next
    /// version's entry can be its commit point: where it does not (a writer died before
    /// writing it, an earlier pqdm never did), the missing entries (or a checkpoint) are
    /// written first. `false` when `p`'s files have no kept copies to name yet, or the log
    /// cannot be written (the commit then makes a version file, as earlier pqdm did).
    pub(crate) fn log_holds(&self, p: &Manifest) -> bool {
        if !self.keeps_for(p) {
            return false;
        }
        if self.logged(p.version).unwrap_or(false) {
            return true;
        }
        if let Err(e) = self.publish_delta(None, p) {
            log::warn!(
                "{}: the Delta log lacks version {} and cannot be brought up to it ({e}); this commit makes a version file",
                self.base().display(),
                p.version
            );
        }
        self.logged(p.version).unwrap_or(false)
    }

    /// After the commit point of `next`, whose entry was its commit point: the checkpoint its
    /// version number asks for (a failure is a warning: the next checkpoint covers it).
    pub(crate) fn checkpoint_after_commit(&self, next: &Manifest) {
        let table_id = next.table_id.clone().unwrap_or_else(delta::new_table_id);
        let mut done = Published::default();
        if let Err(e) = self.checkpoint_if_wanted(next, &table_id, &mut done) {
            log::warn!(
                "version {} of {} is committed, but its checkpoint is not written ({e})",
                next.version,
                self.base().display()
            );
        }
    }

    /// Writes a checkpoint of `m` when it wants one ([`delta::wants_checkpoint`]).
    fn checkpoint_if_wanted(
        &self,
        m: &Manifest,
        table_id: &str,
        done: &mut Published,
    ) -> Result<()> {
        if delta::wants_checkpoint(m) {
            done.checkpoint = Some(self.write_checkpoint(m, table_id)?);
        }
        Ok(())
    }

    /// Refuses a base that holds a Delta log (or anything named `_delta_log`) but no pqdm
    /// dataset: another engine's table, which pqdm reads through its log but never writes into,
    /// adopts or removes (its versions would part from pqdm's). Not refused: the log folder of
    /// a pqdm dataset whose first commit died before its entry (beside pqdm's `_pqdm/`, it holds
    /// nothing but pqdm's temporary files).
    pub(crate) fn refuse_foreign_delta(&self) -> Result<()> {
        let local_entry = self.location().as_local().is_some_and(|base| {
            let log = base.join(delta::LOG_DIR);
            match std::fs::symlink_metadata(&log) {
                Err(_) => false,
                Ok(meta) if !meta.is_dir() => true,
                Ok(_) => !base.join(crate::layout::META_DIR).is_dir(),
            }
        });
        // Listed only when the local check did not decide: a file named `_delta_log` fails to
        // list, and is refused by name instead.
        if local_entry || !log_names(&**self)?.is_empty() {
            return Err(Error::Dataset {
                path: self.base().to_path_buf(),
                message: "is a Delta table another engine wrote (it has a _delta_log/ and no pqdm dataset): pqdm reads it (`pqdm scan`, `info`) but does not write into it, adopt it or create a dataset over it".into(),
            });
        }
        Ok(())
    }

    /// Warns when the log's entry for version `m` exists and another Delta writer made it: its
    /// change is not pqdm's version `m`, and the two have parted (pqdm does not read commits
    /// other engines make to its datasets yet).
    fn warn_if_not_ours(&self, m: &Manifest) {
        let Ok(Some(bytes)) = self.read(&delta::entry_rel(m.version)) else {
            return;
        };
        let ours = String::from_utf8_lossy(&bytes).lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|a| {
                let p = &a["commitInfo"]["pqdm"];
                p["version"] == m.version && p["opId"] == m.operation.op_id.as_str()
            })
        });
        if !ours {
            log::warn!(
                "{}: version {} of the Delta log was made by another writer, not by this version's pqdm commit; Delta readers and pqdm now disagree (pqdm does not take commits of other engines yet)",
                self.base().display(),
                m.version
            );
        }
    }

    /// After the commit point of `next`: [`Store::publish_delta`], where a failure is a
    /// warning (the version is committed, and the next commit writes what is missing).
    pub(crate) fn publish_delta_after_commit(&self, prev: Option<&Manifest>, next: &Manifest) {
        let started = std::time::Instant::now();
        match self.publish_delta(prev, next) {
            Ok(done) => log::debug!(
                "version {}: {} Delta log entries, checkpoint {:?}, in {} ms",
                next.version,
                done.entries,
                done.checkpoint,
                started.elapsed().as_millis()
            ),
            Err(e) => log::warn!(
                "version {} of {} is committed, but its Delta log entry is not written yet ({e}); the next commit writes it",
                next.version,
                self.base().display()
            ),
        }
    }

    /// The state of the Delta table at the base at `version` (`None`: the newest), read
    /// through its log; `None` when the base has no `_delta_log/`.
    pub(crate) fn delta_snapshot(
        &self,
        version: Option<u64>,
    ) -> Result<Option<delta::replay::Snapshot>> {
        delta_snapshot(&**self, version)
    }

    /// Version `version` rebuilt from the Delta log alone (see [`delta::record`]).
    pub(crate) fn version_from_log(&self, version: u64) -> Result<Manifest> {
        version_from_log(&**self, version)
    }

    /// How the Delta log disagrees with version `m` (the current version), if it does: it lacks
    /// the version, cannot be read, or lists other files than `m` does.
    pub(crate) fn delta_disagreement(&self, m: &Manifest) -> Option<String> {
        if !self.keeps_for(m) {
            // An earlier pqdm's dataset: its next commit starts the log.
            return None;
        }
        if let Some(why) = self.last_checkpoint_problem() {
            return Some(why);
        }
        let snapshot = match self.delta_snapshot(Some(m.version)) {
            Ok(Some(s)) => s,
            Ok(None) => return Some("there is no _delta_log/".into()),
            Err(e) => return Some(e.to_string()),
        };
        type Logged<'a> = (&'a PartitionValues, u64);
        let logged: BTreeMap<&str, Logged> = snapshot
            .files
            .iter()
            .map(|f| (f.path.as_str(), (&f.partition, f.size)))
            .collect();
        let wanted: BTreeMap<String, Logged> = m
            .files
            .iter()
            .map(|f| (self.delta_path(m, &f.path), (&f.partition, f.bytes)))
            .collect();
        let missing = wanted
            .keys()
            .filter(|p| !logged.contains_key(p.as_str()))
            .count();
        let extra = logged.keys().filter(|p| !wanted.contains_key(**p)).count();
        let differ = wanted
            .iter()
            .filter(|(p, want)| logged.get(p.as_str()).is_some_and(|got| got != *want))
            .count();
        if missing + extra + differ > 0 {
            return Some(format!(
                "version {} of the log lacks {missing} of the version's files, lists {extra} others and gives {differ} other partition values or sizes (edited, or written by another engine?)",
                m.version
            ));
        }
        // The folder is what glob readers read a file's partition values from; the log is
        // what Delta readers do.
        let unlike = snapshot
            .files
            .iter()
            .filter(|f| {
                let rel = delta::record::dataset_path(&f.path);
                PartitionValues::new(crate::partition::parse_path(rel)) != f.partition
            })
            .count();
        if unlike > 0 {
            return Some(format!(
                "version {} of the log gives {unlike} other partition values than their files' folders (edited by hand?)",
                m.version
            ));
        }
        // Entries of an earlier pqdm carry no record of their own (nor, until the next
        // checkpoint, do the files they added); the check above is all.
        if !delta::record::complete(&snapshot) {
            return None;
        }
        match delta::record::manifest(snapshot) {
            Ok(rebuilt) => record_difference(&rebuilt, m).map(|what| {
                format!(
                    "version {} of the log carries a pqdm record whose {what} differs from the version's manifest (edited by hand?)",
                    m.version
                )
            }),
            Err(e) => Some(e),
        }
    }

    /// What is wrong with `_delta_log/_last_checkpoint`, if anything: it names a checkpoint
    /// that is missing (engines then refuse the table) or does not parse.
    fn last_checkpoint_problem(&self) -> Option<String> {
        match self.last_checkpoint_named()? {
            None => Some("_delta_log/_last_checkpoint does not parse".into()),
            Some(v) if !self.data_exists(&delta::checkpoint_rel(v)).unwrap_or(false) => Some(
                format!("_delta_log/_last_checkpoint names checkpoint {v}, which is missing"),
            ),
            Some(_) => None,
        }
    }

    /// The version `_delta_log/_last_checkpoint` names: `None` when there is none (or it cannot
    /// be read), `Some(None)` when it does not parse.
    fn last_checkpoint_named(&self) -> Option<Option<u64>> {
        let bytes = self.read(&delta::last_checkpoint_rel()).ok()??;
        Some(
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["version"].as_u64()),
        )
    }

    /// Writes a checkpoint of the current version `m` (and points `_last_checkpoint` at it),
    /// whatever the log before it holds: what `verify --repair` does when the log disagrees
    /// with `m` (a gap, a damaged entry); Delta readers then read `m` from it.
    pub(crate) fn checkpoint_now(&self, m: &Manifest) -> Result<()> {
        let table_id = m.table_id.clone().unwrap_or_else(delta::new_table_id);
        self.write_checkpoint(m, &table_id).map(|_| ())
    }

    /// Deletes the log's entries and checkpoints of versions before the newest checkpoint at or
    /// before `oldest` (the oldest version pqdm keeps; `current` is the current one), as the
    /// protocol's metadata cleanup allows: Delta readers then read every version pqdm keeps
    /// from that checkpoint on. No checkpoint is written for it: each is a `.parquet` file that
    /// a bare `**/*.parquet` glob of the dataset also matches, so they stay at the interval's
    /// pace. Returns how many files it deleted.
    pub(crate) fn trim_delta_log(&self, oldest: u64, current: &Manifest) -> Result<u64> {
        if !self.keeps_for(current) {
            return Ok(0);
        }
        let listed: Vec<(String, u64)> = self
            .list_aged(&format!("{}/", delta::LOG_DIR))?
            .into_iter()
            .filter_map(|(name, _, _)| {
                let v = delta::entry_version(&name).or_else(|| delta::checkpoint_version(&name))?;
                Some((name, v))
            })
            .collect();
        // The newest checkpoint at or before `oldest` that reads: one damaged is no start.
        let mut candidates: Vec<u64> = listed
            .iter()
            .filter(|(name, v)| *v <= oldest && delta::checkpoint_version(name).is_some())
            .map(|(_, v)| *v)
            .collect();
        candidates.sort_unstable();
        let readable = |v: u64| {
            let read = self.read(&delta::checkpoint_rel(v));
            match read.map(|b| b.map(|b| delta::checkpoint::read_checkpoint(&b))) {
                Ok(Some(Ok(_))) => true,
                other => {
                    log::warn!(
                        "{}: checkpoint {v} of the Delta log does not read ({}); the log is not trimmed behind it",
                        self.base().display(),
                        match other {
                            Ok(Some(Err(e))) => e,
                            Ok(_) => "missing".into(),
                            Err(e) => e.to_string(),
                        }
                    );
                    false
                }
            }
        };
        let Some(start) = candidates.into_iter().rev().find(|v| readable(*v)) else {
            return Ok(0);
        };
        let older: Vec<String> = listed
            .into_iter()
            .filter(|(_, v)| *v < start)
            .map(|(name, _)| format!("{}/{name}", delta::LOG_DIR))
            .collect();
        if older.is_empty() {
            return Ok(0);
        }
        crate::failpoint::hit("vacuum.trim_log")?;
        self.delete(older.clone())?;
        Ok(older.len() as u64)
    }

    /// Writes the checkpoint of version `m` and points `_last_checkpoint` at it (unless it
    /// names a newer checkpoint that exists).
    fn write_checkpoint(&self, m: &Manifest, table_id: &str) -> Result<u64> {
        crate::failpoint::hit("delta.checkpoint")?;
        let started = std::time::Instant::now();
        // A write's snapshot holds only the partitions it touched: the checkpoint is of every
        // file, read back from the log the commit has just extended.
        let whole;
        let m = match m.is_partial() {
            true => {
                whole = self.load_version(m.version)?;
                &whole
            }
            false => m,
        };
        let path = |rel: &str| self.delta_path(m, rel);
        let cp = delta::checkpoint(m, table_id, &path);
        let rows = cp.num_actions();
        let bytes = delta::checkpoint::write_checkpoint(&cp).map_err(|message| Error::Storage {
            location: self
                .base()
                .join(delta::checkpoint_rel(m.version))
                .display()
                .to_string(),
            message,
        })?;
        // A checkpoint is the whole state of a version: created once, like an entry. One
        // that exists but is not this version's (damaged) is replaced.
        let rel = delta::checkpoint_rel(m.version);
        if !self.create_new(&rel, bytes.clone())? && self.read(&rel)?.as_deref() != Some(&bytes[..])
        {
            self.write(&rel, bytes)?;
        }
        if self
            .last_checkpoint_version()
            .is_none_or(|newest| newest < m.version)
        {
            self.write(
                &delta::last_checkpoint_rel(),
                delta::checkpoint::last_checkpoint_json(m.version as i64, rows).into_bytes(),
            )?;
        }
        log::debug!(
            "version {}: checkpoint of {rows} actions written in {} ms",
            m.version,
            started.elapsed().as_millis()
        );
        Ok(m.version)
    }

    /// The version `_last_checkpoint` names, where it parses and that checkpoint exists.
    fn last_checkpoint_version(&self) -> Option<u64> {
        let version = self.last_checkpoint_named()??;
        self.data_exists(&delta::checkpoint_rel(version))
            .unwrap_or(false)
            .then_some(version)
    }
}

/// The state of the Delta table in `log`'s base at `version` (`None`: the newest), read
/// through its log; `None` when the base has no `_delta_log/`.
pub(crate) fn delta_snapshot(
    log: &dyn LogStore,
    version: Option<u64>,
) -> Result<Option<delta::replay::Snapshot>> {
    delta_snapshot_where(log, version, None)
}

/// [`delta_snapshot`] with only the files whose paths, as logged, `keep` wants.
pub(crate) fn delta_snapshot_where(
    log: &dyn LogStore,
    version: Option<u64>,
    keep: Option<&delta::Keep<'_>>,
) -> Result<Option<delta::replay::Snapshot>> {
    let names: Vec<String> = log_names(log)?;
    if names.is_empty() {
        return Ok(None);
    }
    let read = |rel: &str| log.read(rel);
    delta::replay::snapshot_where(log.base(), &names, &read, version, keep).map(Some)
}

/// The names of the files directly under `_delta_log/`, but pqdm's temporary files.
pub(crate) fn log_names(log: &dyn LogStore) -> Result<Vec<String>> {
    Ok(log
        .list_aged(&format!("{}/", delta::LOG_DIR))?
        .into_iter()
        .map(|(name, _, _)| name)
        .filter(|name| !name.contains('/') && !crate::localfs::is_temporary(name))
        .collect())
}

/// Version `version` of the dataset in `log`'s base, rebuilt from its Delta log alone (see
/// [`delta::record`]).
pub(crate) fn version_from_log(log: &dyn LogStore, version: u64) -> Result<Manifest> {
    version_from_log_where(log, version, None)
}

/// [`version_from_log`] with only the files whose paths, as logged, `keep` wants (all when
/// `None`): the header whole, the file list partial.
pub(crate) fn version_from_log_where(
    log: &dyn LogStore,
    version: u64,
    keep: Option<&delta::Keep<'_>>,
) -> Result<Manifest> {
    let broken = |message: String| Error::Dataset {
        path: log.base().join(delta::LOG_DIR),
        message,
    };
    let snapshot = delta_snapshot_where(log, Some(version), keep)?
        .ok_or_else(|| broken("does not exist".into()))?;
    delta::record::manifest(snapshot).map_err(broken)
}

/// What differs between version `rebuilt` (from the log) and `m`: `header`, or the first file
/// that differs; `None` when they are equal.
fn record_difference(rebuilt: &Manifest, m: &Manifest) -> Option<String> {
    if rebuilt == m {
        return None;
    }
    if delta::record::header(rebuilt) != delta::record::header(m) {
        return Some("header (kind, schema, settings, operation or summary)".into());
    }
    let differs = rebuilt
        .files
        .iter()
        .zip(&m.files)
        .find(|(a, b)| a != b)
        .map(|(_, b)| b.path.clone())
        .unwrap_or_else(|| "file list".into());
    Some(format!("entry for {differs}"))
}
