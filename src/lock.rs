//! The commit lock of a dataset on a local disk: `_pqdm/lock`, an advisory `flock` that the
//! operating system releases when its holder dies. The holder writes who it is into the file
//! (pid, host, operation, start time), so a writer kept waiting says whom it waits for, and
//! gives up after a timeout (`PQDM_LOCK_TIMEOUT`, `--lock-timeout`; five minutes by default)
//! with an error naming the holder instead of hanging behind a hung process.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How long a writer waits for the lock by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

static TIMEOUT: Mutex<Option<Duration>> = Mutex::new(None);

/// Sets how long writers of this process wait for a dataset's lock (the CLI's
/// `--lock-timeout`); without it, `PQDM_LOCK_TIMEOUT` (seconds) or five minutes.
pub fn set_timeout(timeout: Duration) {
    *TIMEOUT.lock().unwrap_or_else(|e| e.into_inner()) = Some(timeout);
}

/// The wait in force: [`set_timeout`], else `PQDM_LOCK_TIMEOUT` (seconds, fractions allowed),
/// else [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Result<Duration> {
    if let Some(t) = *TIMEOUT.lock().unwrap_or_else(|e| e.into_inner()) {
        return Ok(t);
    }
    match &crate::env::env().lock_timeout {
        Some(v) => parse_seconds(v).ok_or_else(|| {
            Error::Options(format!(
                "PQDM_LOCK_TIMEOUT `{v}` is not a number of seconds (e.g. 300 or 0.5)"
            ))
        }),
        _ => Ok(DEFAULT_TIMEOUT),
    }
}

/// Parses a non-negative, finite number of seconds.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// Who holds a lock.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// What the holder is doing (`commit`, `recover`, ...).
    pub operation: String,
    /// When it took the lock (UTC, ISO-8601).
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} ({}, since {})",
            self.pid, self.host, self.operation, self.since
        )
    }
}

fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into())
}

/// An exclusive lock on a file, released when dropped or when the process dies.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock at `path` (created if missing) for `operation`, waiting at most
    /// [`timeout`]; while waiting longer than a second it logs whom it waits for once.
    pub fn acquire(path: &Path, operation: &str) -> Result<FileLock> {
        let limit = timeout()?;
        let start = Instant::now();
        let mut told = false;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(lock) = Self::try_acquire(path, operation)? {
                return Ok(lock);
            }
            let waited = start.elapsed();
            if waited >= limit {
                return Err(Error::Dataset {
                    path: path.to_path_buf(),
                    message: format!(
                        "gave up after {:.1} s waiting for the commit lock, held by {} (a hung writer? stop it, or wait longer with PQDM_LOCK_TIMEOUT)",
                        waited.as_secs_f64(),
                        Self::describe_holder(path)
                    ),
                });
            }
            if !told && waited >= Duration::from_secs(1) {
                told = true;
                log::warn!(
                    "waiting for the commit lock of {}, held by {}",
                    path.display(),
                    Self::describe_holder(path)
                );
            }
            std::thread::sleep(pause.min(limit.saturating_sub(waited)));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Takes the lock if it is free now; `None` if another holds it.
    pub fn try_acquire(path: &Path, operation: &str) -> Result<Option<FileLock>> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(path)
                .map_err(Error::io(path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(path)(e)),
            }
            // The file may have been removed (a dataset removed by its failed first write)
            // between our open and our lock: a lock on an unlinked file guards nothing.
            let held = file.metadata().map_err(Error::io(path))?;
            match fs::metadata(path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {}
                _ => continue,
            }
            let mut lock = FileLock {
                file,
                path: path.to_path_buf(),
            };
            lock.record(operation);
            return Ok(Some(lock));
        }
    }

    fn record(&mut self, operation: &str) {
        let holder = Holder {
            pid: std::process::id(),
            host: host_name(),
            operation: operation.to_string(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        let bytes = serde_json::to_vec(&holder).expect("holder serialises");
        // Best effort: the lock itself is the flock, the text only tells others who we are.
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(&bytes);
    }

    /// Who holds the lock at `path`, as recorded in it.
    pub fn holder(path: &Path) -> Option<Holder> {
        let mut text = String::new();
        File::open(path).ok()?.read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn describe_holder(path: &Path) -> String {
        Self::holder(path)
            .map(|h| h.to_string())
            .unwrap_or_else(|| "a process that did not say who it is".into())
    }

    /// Removes the lock file while holding it (the dataset is being removed): processes
    /// waiting on it notice and open the path again.
    pub fn remove_file(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.path)(e)),
        }
    }
}

impl Drop for FileLock {
    /// Clears who held it (the flock itself goes with the file handle).
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// Whether no process has the id `pid` (a process of another user counts as alive).
pub(crate) fn process_gone(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_or_refuse() {
        assert_eq!(parse_seconds("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_seconds(" 0.25 "), Some(Duration::from_millis(250)));
        assert_eq!(parse_seconds("0"), Some(Duration::ZERO));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("NaN"), None);
        assert_eq!(parse_seconds("inf"), None);
        assert_eq!(parse_seconds("5m"), None);
    }

    #[test]
    fn a_second_taker_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = FileLock::acquire(&path, "commit").unwrap();
        assert!(FileLock::try_acquire(&path, "other").unwrap().is_none());
        let holder = FileLock::holder(&path).unwrap();
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.operation, "commit");
        drop(first);
        assert!(FileLock::try_acquire(&path, "other").unwrap().is_some());
    }
}
