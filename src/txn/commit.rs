//! The commit of one change: the next manifest built from a snapshot and the change, handed
//! to the [`LogStore`](super::LogStore), and the one place where a commit that lost its version
//! to another writer is tried again.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::{CommitLock, CommitPoint, Store};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest, Operation};

/// One change to commit: files in, files out, and what made it.
pub struct Change<'a> {
    /// Staged files (absolute staged path, final relative path) to move into the tree.
    pub staged: &'a [(PathBuf, String)],
    /// Their manifest entries (any order).
    pub added: Vec<FileEntry>,
    /// Relative paths of the current files the change replaces.
    pub replaced: &'a [String],
    /// What made the version (`added_in` and the summary are filled in here).
    pub operation: Operation,
}

/// How many times a commit is tried when other writers keep taking the version it meant to make
/// (object storage only: there is no lock there, a conditional put decides; on a local disk the
/// commit lock rules that out). With [`backoff`] between attempts, 64 writers committing to one
/// dataset at once all get through (tested; the last of them took 23 attempts on the test
/// server, hence twice that).
pub(crate) const MAX_COMMIT_ATTEMPTS: u32 = 48;

/// The pause before attempt `attempt` (2, 3, ...) after a lost race: a random time up to a
/// ceiling that doubles from 20 ms to 2 s ("full jitter"), so writers that lost together do not
/// collide again together.
fn backoff(attempt: u32) -> std::time::Duration {
    use std::hash::BuildHasher;
    let ceiling_ms = (20u64 << attempt.saturating_sub(2).min(7)).min(2_000);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    std::time::Duration::from_millis(random % (ceiling_ms + 1))
}

impl Dataset {
    /// `e`, an error met reading the files of `read_on` before committing on top of it; a
    /// conflict to try again on when another writer has committed since (on object storage,
    /// where no lock holds the version still, its commit may have taken those files away).
    pub(crate) fn conflict_if_moved(&self, read_on: &Manifest, e: Error) -> Error {
        match self.current_header() {
            Ok(now) if now.version > read_on.version => Error::conflict(
                self.base().display(),
                crate::error::Conflict::ReadChanged {
                    read: read_on.version,
                    now: now.version,
                    error: e.to_string(),
                },
            ),
            _ => e,
        }
    }

    /// Takes the commit lock, loads the current manifest and runs `attempt` on them. When it
    /// fails with [`Error::Conflict`] and another writer has committed since (its version was
    /// taken, or files it meant to replace were replaced), runs it again on top of the new
    /// version, up to [`MAX_COMMIT_ATTEMPTS`] times with a [`backoff`] between attempts; a
    /// conflict nobody else caused is returned. `op_id` names the operation (its commits'
    /// `op_id`) in logs and staged objects. Returns the result and the attempts it took.
    pub(crate) fn with_commit_retries<T>(
        &self,
        op_id: &str,
        attempt: impl FnMut(&CommitLock, &Manifest) -> Result<T>,
    ) -> Result<(T, u32)> {
        self.with_commit_retries_where(op_id, None, attempt)
    }

    /// [`Dataset::with_commit_retries`] on a snapshot of only the files `keep` wants, where
    /// that is cheaper ([`Dataset::current_where`]; `None`: every file).
    pub(crate) fn with_commit_retries_where<T>(
        &self,
        op_id: &str,
        keep: Option<&crate::delta::Keep<'_>>,
        mut attempt: impl FnMut(&CommitLock, &Manifest) -> Result<T>,
    ) -> Result<(T, u32)> {
        let mut tries = 1;
        loop {
            let lock = self.store().lock()?;
            let current = match keep {
                Some(keep) => self.current_where(keep)?,
                None => self.current()?,
            };
            match attempt(&lock, &current) {
                Err(e @ Error::Conflict { .. })
                    if tries < MAX_COMMIT_ATTEMPTS
                        && self.current_header()?.version > current.version =>
                {
                    tries += 1;
                    drop(lock);
                    let pause = backoff(tries);
                    log::warn!(
                        "[{op_id}] {e}; trying again in {} ms (attempt {tries})",
                        pause.as_millis()
                    );
                    std::thread::sleep(pause);
                }
                done => {
                    // What earlier attempts (or this one, if it failed) uploaded is no one's.
                    if let Err(e) = self.store().discard_uploads(op_id) {
                        log::warn!("[{op_id}] left staged objects behind: {e}");
                    }
                    return match done {
                        Err(Error::Conflict {
                            location, conflict, ..
                        }) => Err(Error::Conflict {
                            location,
                            conflict,
                            attempts: tries,
                        }),
                        done => done.map(|t| (t, tries)),
                    };
                }
            }
        }
    }
}

impl Dataset {
    /// Commits `change` on top of `current` (loaded under `lock`) as version `current + 1`,
    /// after `edit` has adjusted anything else of the new manifest (schema, metadata, ...).
    pub(crate) fn commit_change(
        &self,
        lock: &CommitLock,
        current: &Manifest,
        change: Change,
        edit: impl FnOnce(&mut Manifest),
    ) -> Result<Arc<Manifest>> {
        let out: BTreeSet<&str> = change.replaced.iter().map(String::as_str).collect();
        // A snapshot of the touched partitions: the summary is updated from the change, where
        // the change alone tells it; where it does not (the files removed held an extreme the
        // files added do not reach: an overwrite that shortened a series), every file is read.
        let updated = match current.is_partial() {
            false => None,
            true => {
                let removed: Vec<&FileEntry> = current
                    .files
                    .iter()
                    .filter(|f| out.contains(f.path.as_str()))
                    .collect();
                let added: Vec<&FileEntry> = change.added.iter().collect();
                let mut summary = current.without_files();
                if !crate::summary_update::update(current, &mut summary, &removed, &added) {
                    let whole = self.store().load_version(current.version)?;
                    return self.commit_change(lock, &whole, change, edit);
                }
                Some(summary)
            }
        };
        let mut next = current.clone();
        next.version = current.version + 1;
        next.updated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        next.base_dir = self.base().display().to_string();
        next.files.retain(|f| !out.contains(f.path.as_str()));
        next.files.extend(change.added.into_iter().map(|mut e| {
            e.added_in = next.version;
            e
        }));
        next.files.sort_by(|a, b| a.path.cmp(&b.path));
        next.operation = change.operation;
        if next.table_id.is_none() {
            next.table_id = Some(crate::delta::new_table_id());
        }
        edit(&mut next);
        match updated {
            Some(summary) => next.set_summary(summary),
            // Recomputed from every file, not updated from the change: a summary edited by
            // hand is then right again at the next commit.
            None => next.refresh_summary(),
        }
        self.store().commit_version(
            lock,
            Some(current),
            &mut next,
            change.staged,
            change.replaced,
        )?;
        // Shared, not copied: at 100,000 files a copy of the manifest costs 100 ms.
        let next = Arc::new(next);
        self.set_manifest(Arc::clone(&next));
        Ok(next)
    }
}

impl Store {
    /// Commits version `next` on top of `prev` (`None`: the dataset's first version): its
    /// commit point is its Delta log entry whenever the log holds `prev` (written first where
    /// a dead writer or an earlier pqdm left it behind) or `next` is version 0; else (a dataset
    /// of an earlier pqdm whose files have no kept copies yet, `adopt`) a version file, after
    /// which a checkpoint starts the log. After the commit point, the checkpoint the interval
    /// asks for; its failure is a warning (the version is committed).
    pub(crate) fn commit_version(
        &self,
        lock: &CommitLock,
        prev: Option<&Manifest>,
        next: &mut Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
    ) -> Result<()> {
        let in_log = match prev {
            None => next.version == 0,
            Some(p) => self.log_holds(p),
        };
        if !in_log {
            if next.records_since.is_none() {
                // Its log starts with a checkpoint of it, the first to carry pqdm's record.
                next.records_since = Some(next.version);
            }
            self.commit(lock, next, staged, replaced, &CommitPoint::VersionFile)?;
            self.publish_delta_after_commit(prev, next);
            return Ok(());
        }
        if let Some(p) = prev
            && p.records_since.is_none()
        {
            // The log's entries before it (an earlier pqdm's) carry no record: from a
            // checkpoint of `prev` on, the log alone rebuilds every version.
            self.checkpoint_now(p)?;
            next.records_since = Some(p.version);
        }
        let table_id = next
            .table_id
            .clone()
            .unwrap_or_else(crate::delta::new_table_id);
        let path = |rel: &str| self.delta_path(next, rel);
        let mut actions = crate::delta::entry(prev, next, &table_id, &path);
        let manifest = self.manifest_copy(next);
        crate::delta::record::record_manifest_hash(&mut actions, &manifest);
        let entry = crate::delta::entry_bytes(&actions);
        self.commit(
            lock,
            next,
            staged,
            replaced,
            &CommitPoint::Entry { entry, manifest },
        )?;
        self.checkpoint_after_commit(next);
        Ok(())
    }
}
