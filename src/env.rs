//! The environment variables the library reads, read once per process into one [`Env`], so
//! that each one's meaning is written in one place. (The command line resolves its own
//! settings, flag > environment > config file > default, in `pqdm::config`; the S3 client's
//! `AWS_*` variables are read where its credentials are, in [`crate::storage`].)

use std::path::PathBuf;
use std::sync::OnceLock;

/// What the environment says, as read at the first use.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `PQDM_BLANK_MODE=1` (only `1`): smaller batches for machines short of memory. An explicit
    /// scan batch size is halved; the automatic one aims at a sixteenth of its bytes.
    pub blank_mode: bool,
    /// `PQDM_BATCH_BYTES`: the bytes an automatic scan batch aims at (text; checked where
    /// used, so a bad value is an error naming the variable).
    pub batch_bytes: Option<String>,
    /// `PQDM_LOCK_TIMEOUT`: seconds a writer waits for the commit lock (text, checked where
    /// used).
    pub lock_timeout: Option<String>,
    /// `PQDM_STALE_SECS`: on object storage, the age after which what a writer left is taken
    /// to be a dead writer's (default an hour).
    pub stale_secs: Option<i64>,
    /// `PQDM_FAILPOINTS`: failures injected by tests (see [`crate::failpoint`]).
    pub failpoints: Option<String>,
    /// `PQDM_MAX_UNZIP_BYTES`: the most bytes one archive may inflate to.
    pub max_unzip_bytes: Option<u64>,
    /// `PQDM_UNZIP_RESERVE_BYTES`: free space an inflation leaves on its disk.
    pub unzip_reserve_bytes: Option<u64>,
    /// `PQDM_SCRATCH_DIR`: where work files of object-storage locations go (default: the
    /// system's temporary folder).
    pub scratch_dir: Option<PathBuf>,
}

/// A variable's value; an empty one counts as unset, as for every setting.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Env {
    /// Reads the variables now.
    pub fn read() -> Env {
        Env {
            blank_mode: var("PQDM_BLANK_MODE").is_some_and(|v| v == "1"),
            batch_bytes: var("PQDM_BATCH_BYTES"),
            lock_timeout: var("PQDM_LOCK_TIMEOUT"),
            stale_secs: var("PQDM_STALE_SECS").and_then(|v| v.trim().parse().ok()),
            failpoints: std::env::var("PQDM_FAILPOINTS").ok(),
            max_unzip_bytes: var("PQDM_MAX_UNZIP_BYTES").and_then(|v| v.trim().parse().ok()),
            unzip_reserve_bytes: var("PQDM_UNZIP_RESERVE_BYTES")
                .and_then(|v| v.trim().parse().ok()),
            scratch_dir: std::env::var_os("PQDM_SCRATCH_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }
}

/// The environment as read at the first call in this process.
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(Env::read)
}
