//! Local filesystem primitives: atomic writes, syncs, links, moves and walks. A leaf module
//! (it knows nothing of datasets), shared by the local log store, the cache and maintenance.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically and durably: a synced temporary file beside it (named
/// `_<name>.<pid>.tmp`, hidden from listings), renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        "_{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    {
        let mut f = File::create(&tmp).map_err(Error::io(&tmp))?;
        f.write_all(bytes).map_err(Error::io(&tmp))?;
        f.sync_all().map_err(Error::io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(Error::io(path))
}

/// Whether `name` is one of the temporary files pqdm writes before it links or renames them to
/// their name (`_<name>.<...>.tmp`, see [`write_atomic`]): a writer that died leaves them.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('_') && name.ends_with(".tmp")
}

/// Syncs a folder, so the names created or removed in it survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// The most files [`sync_written`] syncs one by one; beyond it, one `syncfs`.
pub const SYNC_FILES_AT_MOST: usize = 2_000;

/// Makes `files` (paths under `base`) durable, with their names: each file, each folder from
/// theirs up to `base`, and `base`'s own folder, synced in parallel. Beyond
/// [`SYNC_FILES_AT_MOST`] files, one `syncfs` of the filesystem instead (a write into 10,000
/// partitions touches 20,000 folders). Syncing only what was written does not wait for other
/// processes' writes to the same filesystem, as `syncfs` does.
pub fn sync_written(base: &Path, files: &[PathBuf]) -> Result<()> {
    use rayon::prelude::*;
    if files.len() > SYNC_FILES_AT_MOST {
        return sync_filesystem(base);
    }
    files.par_iter().try_for_each(|f| {
        File::open(f)
            .and_then(|f| f.sync_all())
            .map_err(Error::io(f))
    })?;
    folders_of(base, files)
        .into_par_iter()
        .try_for_each(sync_dir)
}

/// The folders holding `files` from each one's up to `base`, and `base`'s own folder.
fn folders_of<'a>(base: &'a Path, files: &'a [PathBuf]) -> BTreeSet<&'a Path> {
    let mut dirs: BTreeSet<&Path> = base
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .into_iter()
        .collect();
    for file in files {
        let mut dir = file.parent();
        // A folder already taken has its parents taken too.
        while let Some(d) = dir.filter(|d| d.starts_with(base) && dirs.insert(d)) {
            dir = d.parent();
        }
    }
    dirs
}

/// Flushes the filesystem holding `path` (file contents and folder entries) with one `syncfs`.
pub fn sync_filesystem(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let dir = File::open(path).map_err(Error::io(path))?;
    // SAFETY: `dir` is an open descriptor for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(Error::io(path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Links `from` at `to` (creating `to`'s folder), or copies it where the filesystem has no
/// hard links. An existing `to` is left as it is.
pub fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        mkdirs(parent)?;
    }
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::io(from)(e)),
        Err(_) => fs::copy(from, to).map(|_| ()).map_err(Error::io(to)),
    }
}

/// Creates `dir` and its parents.
pub fn mkdirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io(dir))
}

/// Moves `from` to `to`, creating `to`'s folder.
pub fn move_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        mkdirs(parent)?;
    }
    fs::rename(from, to).map_err(Error::io(from))
}

/// Removes empty folders from `dir` up to (not including) `stop`.
pub fn prune_empty_dirs(mut dir: &Path, stop: &Path) {
    while dir != stop && dir.starts_with(stop) {
        if fs::remove_dir(dir).is_err() {
            break;
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => break,
        }
    }
}

/// Removes `path` (if present) and the folders it leaves empty, up to `stop`.
pub fn remove_file_and_dirs(path: &Path, stop: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path)(e)),
    }
    if let Some(parent) = path.parent() {
        prune_empty_dirs(parent, stop);
    }
    Ok(())
}

/// Reads `path`; `None` when it does not exist.
pub fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// `rel`'s components joined with `/`, whatever the platform's separator.
pub fn rel_string(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Calls `f` on every file below `dir` (depth first, no symlinks followed); a missing `dir`
/// holds nothing.
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io(dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(Error::io(&path))?;
        if ft.is_dir() {
            walk(&path, f)?;
        } else if ft.is_file() {
            f(&path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folders_synced_are_those_up_to_the_base_and_the_base_s_own() {
        let files: Vec<PathBuf> = [
            "/d/k/a=1/b=2/f.parquet",
            "/d/k/a=1/b=3/g.parquet",
            "/d/k/top",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let got: Vec<&str> = folders_of(Path::new("/d/k"), &files)
            .into_iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(
            got,
            ["/d", "/d/k", "/d/k/a=1", "/d/k/a=1/b=2", "/d/k/a=1/b=3"]
        );
        let relative = [PathBuf::from("k/x/f")];
        let got: Vec<&Path> = folders_of(Path::new("k"), &relative).into_iter().collect();
        assert_eq!(got, [Path::new("k"), Path::new("k/x")]);
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.json".to_string()]);
    }

    #[test]
    fn removing_a_file_prunes_the_folders_it_empties_up_to_the_stop() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a=1/b=2/f.parquet");
        let kept = dir.path().join("a=1/other.parquet");
        mkdirs(deep.parent().unwrap()).unwrap();
        fs::write(&deep, b"x").unwrap();
        fs::write(&kept, b"y").unwrap();
        remove_file_and_dirs(&deep, dir.path()).unwrap();
        assert!(!dir.path().join("a=1/b=2").exists());
        assert!(kept.exists());
        // Gone already: nothing to do, no error.
        remove_file_and_dirs(&deep, dir.path()).unwrap();
        assert_eq!(read_opt(&deep).unwrap(), None);
        assert_eq!(read_opt(&kept).unwrap().as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn walk_finds_files_at_every_depth_and_a_missing_folder_holds_none() {
        let dir = tempfile::tempdir().unwrap();
        mkdirs(&dir.path().join("x/y")).unwrap();
        fs::write(dir.path().join("x/y/1"), b"").unwrap();
        fs::write(dir.path().join("2"), b"").unwrap();
        let mut found = vec![];
        walk(dir.path(), &mut |p| {
            found.push(rel_string(p.strip_prefix(dir.path()).unwrap()))
        })
        .unwrap();
        found.sort();
        assert_eq!(found, vec!["2", "x/y/1"]);
        let mut none = 0;
        walk(&dir.path().join("missing"), &mut |_| none += 1).unwrap();
        assert_eq!(none, 0);
    }
}
