//! Configuration: flag > environment > config file (`--config`, or `pqdm.toml` in the working
//! folder) > default, resolved in one place.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The config file's contents (every key optional).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[write]` defaults.
    #[serde(default)]
    pub write: WriteConfig,
    /// `[scan]` defaults.
    #[serde(default)]
    pub scan: ScanConfig,
    /// A TOML file declaring more kinds.
    #[serde(default)]
    pub kinds_file: Option<PathBuf>,
}

/// `[write]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteConfig {
    /// Compression (`snappy`, `zstd:3`, ...).
    pub compression: Option<String>,
    /// Rows per file at most.
    pub max_rows_per_file: Option<usize>,
    /// Rows per row group at least.
    pub min_rows_per_group: Option<usize>,
    /// Rows per row group.
    pub row_group_size: Option<usize>,
    /// Write mode (`upsert`, `append`, `overwrite`, `error`).
    pub mode: Option<String>,
}

/// `[scan]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    /// Rows per batch.
    pub batch_size: Option<usize>,
    /// Thread cap.
    pub threads: Option<usize>,
}

fn env_usize(names: &[&str]) -> Result<Option<usize>> {
    for name in names {
        if let Ok(v) = std::env::var(name) {
            return v.trim().parse().map(Some).map_err(|_| {
                Error::Options(format!(
                    "environment variable {name}={v:?} is not a whole number"
                ))
            });
        }
    }
    Ok(None)
}

impl Config {
    /// Loads `path`, or `pqdm.toml` in the working folder if present, or the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let local = PathBuf::from("pqdm.toml");
                if !local.is_file() {
                    return Ok(Config::default());
                }
                local
            }
        };
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        toml::from_str(&text).map_err(|e| Error::Options(format!("{}: {e}", path.display())))
    }

    /// Rows per scan batch when one is set (flag, then `PQDM_SCAN_BATCH_SIZE`, then
    /// `ARES_SCAN_BATCH_SIZE`, then the config file), halved by `PQDM_BLANK_MODE=1`; `None` lets
    /// the scan choose from the projection's width ([`crate::memory::auto_batch`]). Returns the size and where it came from.
    pub fn scan_batch_size(&self, flag: Option<usize>) -> Result<Option<(usize, &'static str)>> {
        let (size, source) = match flag {
            Some(f) => (f, "flag"),
            None => match env_usize(&["PQDM_SCAN_BATCH_SIZE", "ARES_SCAN_BATCH_SIZE"])? {
                Some(e) => (e, "env"),
                None => match self.scan.batch_size {
                    Some(c) => (c, "config"),
                    None => return Ok(None),
                },
            },
        };
        let blank = std::env::var("PQDM_BLANK_MODE").is_ok_and(|v| v == "1");
        Ok(Some((if blank { size / 2 } else { size }.max(1), source)))
    }

    /// Thread cap: flag > `PQDM_THREADS` > `ARROW_NUM_THREADS` > file > none.
    pub fn threads(&self, flag: Option<usize>) -> Result<Option<usize>> {
        Ok(match flag {
            Some(f) => Some(f),
            None => env_usize(&["PQDM_THREADS", "ARROW_NUM_THREADS"])?.or(self.scan.threads),
        })
    }

    /// A write setting: flag > `PQDM_<NAME>` environment variable > file.
    pub fn write_setting(
        &self,
        flag: Option<String>,
        env: &str,
        file: Option<String>,
    ) -> Option<String> {
        flag.or_else(|| std::env::var(env).ok()).or(file)
    }
}
