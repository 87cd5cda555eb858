//! Configuration: flag > environment > config file (`--config`, or `pqdm.toml` in the working
//! folder) > default, resolved in one place.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dataset::CreateOptions;
use crate::error::{Error, Result};
use crate::options::{Compression, FileLayout, MemoryLimit, WriteMode};
use crate::schema::KindRegistry;
use crate::write::WriteOptions;

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
    /// A TOML file declaring more kinds (a relative path is relative to the config file's folder).
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

/// The first of the environment variables `names` that is set and not empty (an empty value
/// counts as unset), with its name.
fn env_value(names: &[&'static str]) -> Option<(&'static str, String)> {
    names.iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*name, v))
    })
}

/// A count setting from the first of `names` that is set: a whole number, at least 1.
fn env_count(names: &[&'static str]) -> Result<Option<usize>> {
    let Some((name, v)) = env_value(names) else {
        return Ok(None);
    };
    let n: usize = v.trim().parse().map_err(|_| {
        Error::Options(format!(
            "environment variable {name}={v:?} is not a whole number"
        ))
    })?;
    at_least_one(n, &format!("environment variable {name}")).map(Some)
}

/// Refuses a count of 0 where at least one is needed (a batch, a thread), naming the setting.
fn at_least_one(n: usize, setting: &str) -> Result<usize> {
    match n {
        0 => Err(Error::Options(format!(
            "{setting} is 0; it must be at least 1"
        ))),
        n => Ok(n),
    }
}

/// Write settings given on the command line (`None` where a flag was not given).
#[derive(Clone, Debug, Default)]
pub struct WriteFlags {
    /// `--compression`.
    pub compression: Option<String>,
    /// `--mode`.
    pub mode: Option<String>,
    /// `--max-rows-per-file`.
    pub max_rows_per_file: Option<usize>,
    /// `--min-rows-per-group`.
    pub min_rows_per_group: Option<usize>,
    /// `--row-group-size`.
    pub row_group_size: Option<usize>,
    /// `--memory-limit`.
    pub memory_limit: Option<String>,
}

/// Write settings resolved from flags, environment and config file, for every command that
/// writes (ingest, migrate) alike.
#[derive(Clone, Debug, Default)]
pub struct WriteSettings {
    /// Compression; `None`: the dataset's (or, when creating, the default).
    pub compression: Option<Compression>,
    /// Write mode; `None`: the kind's default.
    pub mode: Option<WriteMode>,
    /// Rows per file at most; `None`: the dataset's setting.
    pub max_rows_per_file: Option<usize>,
    /// Rows per row group at least.
    pub min_rows_per_group: Option<usize>,
    /// Rows per row group.
    pub row_group_size: Option<usize>,
    /// How large inputs are sliced.
    pub memory_limit: crate::options::MemoryLimit,
}

impl WriteSettings {
    /// Options for creating a dataset with these settings.
    pub fn create_options(&self, partition_by: Option<Vec<String>>) -> CreateOptions {
        CreateOptions {
            partition_by,
            compression: self.compression.unwrap_or_default(),
            max_rows_per_file: self.max_rows_per_file,
            ..Default::default()
        }
    }

    /// Options for one write with these settings (constants, metadata and the rest left to
    /// the caller).
    pub fn write_options(&self) -> WriteOptions {
        WriteOptions {
            mode: self.mode,
            compression: self.compression,
            layout: FileLayout {
                max_rows_per_file: self.max_rows_per_file,
                min_rows_per_group: self.min_rows_per_group,
                row_group_size: self.row_group_size,
            },
            memory_limit: self.memory_limit,
            ..Default::default()
        }
    }
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
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| Error::Options(format!("{}: {e}", path.display())))?;
        if let (Some(kinds), Some(dir)) = (&mut config.kinds_file, path.parent())
            && kinds.is_relative()
        {
            *kinds = dir.join(&*kinds);
        }
        Ok(config)
    }

    /// The built-in kinds plus those declared in `flag` (`--kinds`), else in the config file's
    /// `kinds_file`.
    pub fn kinds(&self, flag: Option<&Path>) -> Result<KindRegistry> {
        let mut kinds = KindRegistry::default();
        if let Some(f) = flag.or(self.kinds_file.as_deref()) {
            kinds.add_file(f)?;
        }
        Ok(kinds)
    }

    /// Write settings: flag > environment (`PQDM_COMPRESSION`, `PQDM_MODE`,
    /// `PQDM_MEMORY_LIMIT`) > `[write]` > none.
    pub fn write_settings(&self, flags: &WriteFlags) -> Result<WriteSettings> {
        let w = &self.write;
        let compression = self.write_setting(
            flags.compression.clone(),
            "PQDM_COMPRESSION",
            w.compression.clone(),
        );
        let mode = self.write_setting(flags.mode.clone(), "PQDM_MODE", w.mode.clone());
        let memory = self.write_setting(flags.memory_limit.clone(), "PQDM_MEMORY_LIMIT", None);
        Ok(WriteSettings {
            compression: compression.map(|c| c.parse()).transpose()?,
            mode: mode.map(|m| m.parse()).transpose()?,
            max_rows_per_file: flags.max_rows_per_file.or(w.max_rows_per_file),
            min_rows_per_group: flags.min_rows_per_group.or(w.min_rows_per_group),
            row_group_size: flags.row_group_size.or(w.row_group_size),
            memory_limit: match memory.as_deref().map(str::trim) {
                None => MemoryLimit::Auto,
                Some(v) if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("off") => {
                    MemoryLimit::Off
                }
                Some(v) => match crate::options::parse_bytes(v)? {
                    0 => MemoryLimit::Off,
                    bytes => MemoryLimit::Bytes(bytes),
                },
            },
        })
    }

    /// Rows per scan batch when one is set (flag, then `PQDM_SCAN_BATCH_SIZE`, then
    /// `ARES_SCAN_BATCH_SIZE`, then the config file), halved by `PQDM_BLANK_MODE=1`; `None` lets
    /// the scan choose from the projection's width ([`crate::memory::auto_batch`]). Returns the size and where it came from.
    pub fn scan_batch_size(&self, flag: Option<usize>) -> Result<Option<(usize, &'static str)>> {
        let (size, source) = match flag {
            Some(f) => (at_least_one(f, "--batch-size")?, "flag"),
            None => match env_count(&["PQDM_SCAN_BATCH_SIZE", "ARES_SCAN_BATCH_SIZE"])? {
                Some(e) => (e, "env"),
                None => match self.scan.batch_size {
                    Some(c) => (
                        at_least_one(c, "[scan] batch_size in the config file")?,
                        "config",
                    ),
                    None => return Ok(None),
                },
            },
        };
        let blank = crate::env::env().blank_mode;
        Ok(Some((if blank { size / 2 } else { size }.max(1), source)))
    }

    /// The projection cache folder: flag > `PQDM_CACHE_DIR` (an empty flag or variable counts
    /// as unset) > none.
    pub fn cache_dir(&self, flag: Option<&Path>) -> Option<PathBuf> {
        flag.filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .or_else(|| env_value(&["PQDM_CACHE_DIR"]).map(|(_, v)| PathBuf::from(v)))
    }

    /// Thread cap: flag > `PQDM_THREADS` > `ARROW_NUM_THREADS` > file > none; 0 anywhere is
    /// an error naming the setting (Polars cannot run without a thread).
    pub fn threads(&self, flag: Option<usize>) -> Result<Option<usize>> {
        if let Some(f) = flag {
            return at_least_one(f, "--threads").map(Some);
        }
        if let Some(n) = env_count(&["PQDM_THREADS", "ARROW_NUM_THREADS"])? {
            return Ok(Some(n));
        }
        self.scan
            .threads
            .map(|n| at_least_one(n, "[scan] threads in the config file"))
            .transpose()
    }

    /// A write setting: flag > `PQDM_<NAME>` environment variable (unless empty) > file.
    pub fn write_setting(
        &self,
        flag: Option<String>,
        env: &'static str,
        file: Option<String>,
    ) -> Option<String> {
        flag.or_else(|| env_value(&[env]).map(|(_, v)| v)).or(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_counts_are_refused_naming_the_setting() {
        let err = at_least_one(0, "[scan] threads in the config file").unwrap_err();
        assert!(err.to_string().contains("[scan] threads"), "{err}");
        assert_eq!(at_least_one(3, "x").unwrap(), 3);
        let config = Config {
            scan: ScanConfig {
                threads: Some(0),
                batch_size: Some(0),
            },
            ..Default::default()
        };
        assert!(config.threads(Some(2)).is_ok());
        assert!(config.scan_batch_size(Some(0)).is_err());
    }

    #[test]
    fn an_empty_cache_flag_is_unset() {
        let config = Config::default();
        assert_eq!(
            config.cache_dir(Some(Path::new("c"))),
            Some(PathBuf::from("c"))
        );
        if std::env::var_os("PQDM_CACHE_DIR").is_none() {
            assert_eq!(config.cache_dir(Some(Path::new(""))), None);
        }
    }
}
