//! [`Staging`]: the private local folder one write stages its files in before a commit.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::WrittenLog;
use crate::error::{Error, Result};
use crate::localfs::{mkdirs, rel_string, walk};
use crate::manifest::STAGED_SUFFIX;

/// A private staging folder for one write, removed when dropped.
pub struct Staging {
    dir: PathBuf,
    _guard: File,
    written: WrittenLog,
}

/// Stands for `/` in the name of a file staged flat ([`Staging::name_for`]): never part of a
/// segment pqdm escapes or a part name (`%` only ever starts a `%XX` escape there); a folder
/// of another tool's that holds it (`symbol=A%%B`, adopted) is staged in folders.
const FLAT_SEPARATOR: &str = "%%";

/// The longest name a file is staged flat under (file names end at 255 bytes).
const FLAT_NAME_MAX: usize = 240;

impl Staging {
    /// The staging folder (hive layout below it, files end in `.parquet.staged`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the writers of files staged here record what they wrote
    /// ([`WrittenLog::create`]).
    pub fn written(&self) -> &WrittenLog {
        &self.written
    }

    /// The path, relative to [`Staging::dir`], to stage the file `name` of partition folder
    /// `rel_dir` under: flat (`k=v%%k=v%%name`) where the name fits, so that a write into
    /// many partitions creates (and removes) no folder per partition; in the folder otherwise.
    /// [`Staging::files`] reads both back as `rel_dir/name`.
    pub fn name_for(rel_dir: &str, name: &str) -> String {
        if rel_dir.is_empty() {
            return name.to_string();
        }
        let flat = format!(
            "{}{FLAT_SEPARATOR}{name}",
            rel_dir.replace('/', FLAT_SEPARATOR)
        );
        if flat.len() <= FLAT_NAME_MAX && !rel_dir.contains(FLAT_SEPARATOR) {
            flat
        } else {
            format!("{rel_dir}/{name}")
        }
    }

    /// Every staged file, as (absolute path, final relative path).
    pub fn files(&self) -> Result<Vec<(PathBuf, String)>> {
        let mut out = vec![];
        walk(&self.dir, &mut |p| {
            let name = p.to_string_lossy();
            if let Some(stripped) = name.strip_suffix(STAGED_SUFFIX)
                && let Ok(rel) = Path::new(stripped).strip_prefix(&self.dir)
            {
                // Flat names are one component; a file staged in folders keeps its
                // folders' names as they are.
                let rel = match rel.components().count() {
                    1 => rel_string(rel).replace(FLAT_SEPARATOR, "/"),
                    _ => rel_string(rel),
                };
                out.push((p.to_path_buf(), rel));
            }
        })?;
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(self.dir.with_extension("lock"));
    }
}

impl Staging {
    /// Creates the private staging folder `tx` under `root`, guarded by `<tx>.lock`: a lock
    /// held while the folder exists, so a free guard always belongs to a writer that is gone.
    pub(crate) fn create(root: &Path, tx: &str) -> Result<Staging> {
        mkdirs(root)?;
        // The guard appears under its name already locked (locked under a temporary name,
        // then renamed).
        let guard_path = root.join(format!("{tx}.lock"));
        // The process id in the name tells a dead writer's leftover from a live one's.
        let locking = root.join(format!("{tx}.{}.locking", std::process::id()));
        let guard = File::create(&locking).map_err(Error::io(&locking))?;
        guard.lock().map_err(Error::io(&locking))?;
        fs::rename(&locking, &guard_path).map_err(Error::io(&guard_path))?;
        let dir = root.join(tx);
        mkdirs(&dir)?;
        Ok(Staging {
            dir,
            _guard: guard,
            written: WrittenLog::default(),
        })
    }

    /// Removes the staging folders under `root` whose writer died (its guard lock is free).
    pub(crate) fn remove_dead(root: &Path) {
        let Ok(entries) = fs::read_dir(root) else {
            return;
        };
        let held = |guard: &Path| File::open(guard).is_ok_and(|f| f.try_lock().is_err());
        // Each write has a folder and a guard `<tx>.lock` it holds locked from before the folder
        // exists until after it is gone; a killed writer can leave either alone.
        let mut names = std::collections::BTreeSet::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".locking") {
                // A writer holds this name for the microseconds between creating its guard and
                // locking it: it is a dead writer's when the process that made it is gone (a
                // writer killed in that window; a second old, so that a live writer whose
                // process id means nothing here, in another pid namespace, is past that window),
                // or when it is old (a name without a process id, or a process id taken by
                // another process since).
                let age = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .map_or(0, |age| age.as_secs());
                let gone = stem
                    .rsplit_once('.')
                    .and_then(|(_, pid)| pid.parse::<i32>().ok())
                    .is_some_and(crate::lock::process_gone);
                if ((gone && age >= 1) || age >= 10) && !held(&path) {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            names.insert(
                name.strip_suffix(".lock")
                    .map(str::to_string)
                    .unwrap_or(name),
            );
        }
        for name in names {
            let guard = root.join(format!("{name}.lock"));
            if !held(&guard) {
                let _ = fs::remove_dir_all(root.join(&name));
                let _ = fs::remove_file(&guard);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_left_half_made_by_a_dead_writer_is_removed_and_a_live_ones_is_not() {
        let root = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let left = root
            .path()
            .join(format!("20260101T000000-aaaa.{dead}.locking"));
        let live = root.path().join(format!(
            "20260101T000000-bbbb.{}.locking",
            std::process::id()
        ));
        let unnamed = root.path().join("20260101T000000-cccc.locking");
        let fresh = root
            .path()
            .join(format!("20260101T000000-dddd.{dead}.locking"));
        let two_seconds_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2);
        for p in [&left, &live, &unnamed, &fresh] {
            let f = File::create(p).unwrap();
            if p != &fresh {
                f.set_modified(two_seconds_ago).unwrap();
            }
        }
        Staging::remove_dead(root.path());
        assert!(!left.exists(), "a dead writer's half-made guard");
        assert!(
            fresh.exists(),
            "under a second old: maybe another pid namespace's"
        );
        assert!(live.exists(), "a live writer's, being locked");
        assert!(unnamed.exists(), "under 10 s old, without a process id");
    }

    #[test]
    fn staged_names_are_flat_where_they_fit_and_read_back_as_their_folder() {
        let name = "part-x-0000000000.parquet.staged";
        assert_eq!(Staging::name_for("", name), name);
        assert_eq!(
            Staging::name_for("a=1/b=%25%25", name),
            format!("a=1%%b=%25%25%%{name}")
        );
        // An escaped value never holds the separator: `%` only starts `%XX`.
        let value = crate::partition::escape("%%/..%");
        assert!(!value.contains(FLAT_SEPARATOR), "{value}");
        let long = ["a", "b", "c"]
            .map(|k| format!("{k}={}", "X".repeat(100)))
            .join("/");
        assert_eq!(Staging::name_for(&long, name), format!("{long}/{name}"));

        let dir = tempfile::tempdir().unwrap();
        let staging = Staging {
            dir: dir.path().to_path_buf(),
            _guard: File::create(dir.path().join("guard")).unwrap(),
            written: WrittenLog::default(),
        };
        // Another tool's folder holding the separator (found by a red team: its files were
        // read back as staged for `symbol=A/B`, and its compaction found none).
        let odd = "symbol=A%%B/day=1";
        assert_eq!(Staging::name_for(odd, name), format!("{odd}/{name}"));
        for rel in [
            Staging::name_for("a=1/b=2", name),
            Staging::name_for(&long, name),
            Staging::name_for("", name),
            Staging::name_for(odd, name),
        ] {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            File::create(path).unwrap();
        }
        let rels: Vec<String> = staging
            .files()
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let plain = name.strip_suffix(STAGED_SUFFIX).unwrap();
        assert_eq!(
            rels,
            vec![
                format!("a=1/b=2/{plain}"),
                format!("{long}/{plain}"),
                plain.to_string(),
                format!("{odd}/{plain}"),
            ]
        );
    }
}
