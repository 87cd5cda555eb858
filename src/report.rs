//! Typed reports of a dataset for the command line's `info` and `history` (and the Python
//! package): what they print as text is formatted from these, and `--json` is their serde form.

use std::sync::Arc;

use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::manifest::{KeySummary, Manifest, Operation};

/// `info`: the current manifest without its file list, the time range and files per key, and
/// whether the dataset has a manifest (one found by listing has none).
#[derive(Clone, Debug)]
pub struct Info {
    /// The manifest of the version described.
    pub manifest: Arc<Manifest>,
    /// Files, rows and time range per partition key (exchange/symbol/timeframe...).
    pub keys: Vec<KeySummary>,
    /// False for a folder written by other tools, described by listing its files.
    pub has_manifest: bool,
}

/// The JSON form: the manifest's fields but `files` and `kind_spec`, plus `keys` and
/// `has_manifest`.
impl Serialize for Info {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // The header alone: serialising 100,000 file entries to drop them took 200 ms.
        let mut value = crate::delta::record::header(&self.manifest);
        if let Some(obj) = value.as_object_mut() {
            obj.remove("files");
            obj.remove("kind_spec");
            let keys = serde_json::to_value(&self.keys).map_err(serde::ser::Error::custom)?;
            obj.insert("keys".into(), keys);
            obj.insert("has_manifest".into(), self.has_manifest.into());
        }
        value.serialize(s)
    }
}

/// One kept version, as `history` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct VersionEntry {
    /// The version number.
    pub version: u64,
    /// When it was committed (UTC, ISO-8601).
    pub updated_at: String,
    /// What made it.
    pub operation: Operation,
    /// Data files in it.
    pub files: u64,
    /// Rows in it.
    pub rows: u64,
}

impl Dataset {
    /// The summary `pqdm info` prints: kind, schema, partitions, version, files, rows, time
    /// range, and the same per key.
    pub fn info(&self) -> Result<Info> {
        // The per-key summaries the version carries, without reading its file list.
        let header = self.header();
        if !self.is_foreign() && header.keys_known() {
            return Ok(Info {
                keys: header.keys.clone(),
                manifest: header,
                has_manifest: true,
            });
        }
        let manifest = self.manifest()?;
        Ok(Info {
            keys: manifest.key_summaries(),
            manifest,
            has_manifest: !self.is_foreign(),
        })
    }

    /// Every kept version, oldest first (`pqdm history`).
    pub fn history(&self) -> Result<Vec<VersionEntry>> {
        let mut rows = vec![];
        let current = self.header();
        for v in self.store().versions(&current)? {
            let header;
            let m = match v == current.version {
                true => &*current,
                false => {
                    header = self.store().header_at(v)?;
                    &header
                }
            };
            rows.push(VersionEntry {
                version: m.version,
                updated_at: m.updated_at.clone(),
                operation: m.operation.clone(),
                files: m.file_count,
                rows: m.total_rows,
            });
        }
        Ok(rows)
    }

    /// The version that was current at `at` (ms since the epoch, UTC): the newest kept version
    /// committed at or before it (its `updated_at`, which `history` shows). An error names the
    /// oldest kept version when `at` is before it; a dataset without pqdm versions (a listing,
    /// another engine's Delta table) is read by version number only.
    pub fn version_as_of(&self, at: i64) -> Result<u64> {
        if self.is_foreign() {
            return Err(Error::Dataset {
                path: self.base().to_path_buf(),
                message: "has no pqdm history: read a version of it by number".into(),
            });
        }
        let current = self.header();
        let mut oldest = None;
        for v in self.store().versions(&current)?.into_iter().rev() {
            let m = match v == current.version {
                true => current.clone(),
                false => Arc::new(self.store().header_at(v)?),
            };
            let committed = chrono::DateTime::parse_from_rfc3339(&m.updated_at)
                .map_err(|e| Error::Dataset {
                    path: self.base().to_path_buf(),
                    message: format!(
                        "version {v} records its commit time as {} ({e})",
                        crate::error::clip(&m.updated_at)
                    ),
                })?
                .timestamp_millis();
            if committed <= at {
                return Ok(v);
            }
            oldest = Some((v, m.updated_at.clone()));
        }
        let before = match oldest {
            Some((v, when)) => format!("the oldest kept, version {v}, was committed at {when}"),
            None => "no version is kept".into(),
        };
        Err(Error::Dataset {
            path: self.base().to_path_buf(),
            message: format!(
                "no kept version was committed at or before {} ({before})",
                crate::timestamp::format_millis(at)
            ),
        })
    }
}
