//! `verify`: files against the manifest (missing, orphans, checksums), duplicate natural keys,
//! gaps in candle series, and suspicious values; `--repair` fixes what it safely can.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest, Operation};
use crate::metrics::OpTimer;
use crate::progress::Progress;
use crate::scan::ScanOptions;
use crate::txn::{Change, FileCopies};
use crate::write::entry_of;

/// A run of missing candles in one series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gap {
    /// The series (exchange/symbol/timeframe values).
    pub key: BTreeMap<String, String>,
    /// First missing candle (ms).
    pub from: i64,
    /// Last missing candle (ms).
    pub to: i64,
    /// Missing candles.
    pub missing: u64,
}

/// What `--repair` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Repairs {
    /// Orphans moved to `_pqdm/orphans/`.
    pub orphans_moved: Vec<String>,
    /// Files whose manifest entry was rebuilt from the file.
    pub stats_rebuilt: Vec<String>,
    /// Missing files dropped from the manifest.
    pub missing_dropped: Vec<String>,
    /// Missing files given back their link in the tree (or their kept link) from the other.
    pub links_restored: Vec<String>,
    /// Damaged tree copies (see [`VerifyReport::tree_copies_damaged`]) moved to
    /// `_pqdm/orphans/` and replaced by the intact kept copy: no row is lost.
    pub tree_copies_restored: Vec<String>,
    /// `_manifest.json` was rewritten from the current version.
    pub manifest_copy_rewritten: bool,
    /// A checkpoint of the current version was written, and the Delta log now agrees.
    pub delta_log_written: bool,
    /// Damaged files (content no longer matching their checksum) moved to `_pqdm/orphans/`
    /// and dropped from the manifest: their checksum is never rewritten to bless the damage.
    pub quarantined: Vec<String>,
    /// Rows of the missing and quarantined files, no longer in the dataset.
    pub rows_lost: u64,
    /// The version the repair committed.
    pub version: Option<u64>,
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// The operation id.
    pub op_id: String,
    /// The version checked.
    pub version: u64,
    /// Files the manifest lists.
    pub files_checked: u64,
    /// Listed but not on disk.
    pub missing: Vec<String>,
    /// On disk (visible `*.parquet`) but not listed, e.g. left by a crash.
    pub orphans: Vec<String>,
    /// Content differs from the manifest's checksum (or size).
    pub checksum_mismatches: Vec<String>,
    /// Stats in the manifest differ from the file's footer (rows, time range).
    pub stale_stats: Vec<String>,
    /// Files whose copy in the tree (what plain readers such as pyarrow and DuckDB read) no
    /// longer matches its checksum while pqdm's kept copy under `_pqdm/files/` does: the two are
    /// separate files once a copy or restore broke their hard link (`cp -r`), so damage to one
    /// is not seen through the other. `--repair` puts the kept copy back in the tree.
    pub tree_copies_damaged: Vec<String>,
    /// Natural keys stored more than once.
    pub duplicate_keys: u64,
    /// Up to five duplicated keys.
    pub duplicate_examples: Vec<String>,
    /// Missing candles, per series.
    pub gaps: Vec<Gap>,
    /// Per column, negative, NaN or infinite values where none belong (prices, quantities, volumes).
    pub bad_values: BTreeMap<String, u64>,
    /// `_manifest.json` (the copy of the current version that other readers use) is damaged,
    /// edited or out of date; `--repair` rewrites it from the history.
    pub manifest_copy_stale: bool,
    /// How the Delta log (`_delta_log/`) disagrees with the version checked, after verify has
    /// written the entries a killed writer left unwritten: a gap, a damaged or edited entry, a
    /// `_last_checkpoint` naming a missing checkpoint. `--repair` writes a checkpoint of the
    /// current version (and `_last_checkpoint`), which Delta readers then read it from.
    pub delta_log: Option<String>,
    /// Per column with bad values, what they are (`2 infinite, 1 negative`).
    pub bad_value_details: BTreeMap<String, String>,
    /// Why the data checks (keys, gaps, values) could not run, if they could not.
    pub data_error: Option<String>,
    /// What verify saw that a repair cannot explain (a history that lost versions, a damaged
    /// version file, a tree holding none of the current version's files but others), one
    /// sentence each: `--repair` refuses, changing nothing, while there is any.
    pub unexplained: Vec<String>,
    /// What `--repair` fixed.
    pub repairs: Option<Repairs>,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// Peak resident memory of the process, in bytes.
    pub peak_rss_bytes: u64,
}

impl VerifyReport {
    /// Findings that `verify --repair` fixes: missing, orphaned, damaged files, stale stats and
    /// the `_manifest.json` copy (not duplicate keys, gaps or bad values, which are the data's);
    /// none while something is [`VerifyReport::unexplained`], since the repair then refuses.
    pub fn repairable(&self) -> usize {
        if !self.unexplained.is_empty() {
            return 0;
        }
        self.missing.len()
            + self.orphans.len()
            + self.checksum_mismatches.len()
            + self.stale_stats.len()
            + self.tree_copies_damaged.len()
            + usize::from(self.manifest_copy_stale)
            + usize::from(self.delta_log.is_some())
    }

    /// Findings that remain (after repairs).
    pub fn problems(&self) -> usize {
        let repaired = self.repairs.as_ref();
        let fixed_orphans = repaired.map_or(0, |r| r.orphans_moved.len());
        let fixed_missing =
            repaired.map_or(0, |r| r.missing_dropped.len() + r.links_restored.len());
        let fixed_stats = repaired.map_or(0, |r| r.stats_rebuilt.len());
        let fixed_damage = repaired.map_or(0, |r| r.quarantined.len());
        let fixed_copies = repaired.map_or(0, |r| r.tree_copies_restored.len());
        self.missing.len().saturating_sub(fixed_missing)
            + self.orphans.len().saturating_sub(fixed_orphans)
            + self.checksum_mismatches.len().saturating_sub(fixed_damage)
            + self.stale_stats.len().saturating_sub(fixed_stats)
            + self.tree_copies_damaged.len().saturating_sub(fixed_copies)
            + self.duplicate_keys as usize
            + self.gaps.len()
            + self.bad_values.len()
            + usize::from(self.data_error.is_some())
            + self.unexplained.len()
            + usize::from(
                self.manifest_copy_stale && !repaired.is_some_and(|r| r.manifest_copy_rewritten),
            )
            + usize::from(
                self.delta_log.is_some() && !repaired.is_some_and(|r| r.delta_log_written),
            )
    }
}

/// Candle cadence of a timeframe (`1m`, `4h`, `1d`, `1w`), in ms; `None` for months, which have
/// none, and for anything [`crate::timestamp::timeframe_cadence`] refuses.
pub fn cadence_ms(timeframe: &str) -> Option<i64> {
    crate::timestamp::timeframe_cadence(timeframe)
        .ok()
        .flatten()
}

const NON_NEGATIVE: &[&str] = &[
    "price",
    "quantity",
    "quote_quantity",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "mark_price",
];

/// Null counts of every column: reading them decodes every column of every file.
fn all_columns_null_count() -> Expr {
    col("*").null_count()
}
/// What makes a price, quantity or volume bad, and the test for it (each value counts once:
/// NaN is not negative, and infinity is told from a negative number).
/// A test that marks the bad values of a column.
type ValueTest = fn(Expr) -> Expr;

const BAD_VALUE_KINDS: &[(&str, ValueTest)] = &[
    ("negative", |c| c.clone().lt(lit(0.0)).and(c.is_finite())),
    ("NaN", |c| c.is_nan()),
    ("infinite", |c| c.is_infinite()),
];

fn polars_err(what: &str) -> impl FnOnce(PolarsError) -> Error + '_ {
    move |e| Error::polars(format!("verify: {what}"))(e)
}

/// What verify found of one file of a version: `None` when missing, else the entry rebuilt
/// from the file (or, when its footer is unreadable, whether its bytes still have the
/// recorded checksum).
type Checked = Option<std::result::Result<FileEntry, bool>>;

/// Records in `report` the files of `m` that are missing, damaged or have stale statistics, by
/// what was read of each (`checked`, in `m`'s order); returns the entries rebuilt for the
/// stale ones.
fn sort_checked(m: &Manifest, checked: &[Checked], report: &mut VerifyReport) -> Vec<FileEntry> {
    let mut rebuilt = vec![];
    for (f, c) in m.files.iter().zip(checked) {
        match c {
            None => report.missing.push(f.path.clone()),
            Some(Err(same)) => {
                if !same {
                    report.checksum_mismatches.push(f.path.clone());
                }
            }
            Some(Ok(e)) => {
                if e.checksum != f.checksum || e.bytes != f.bytes {
                    report.checksum_mismatches.push(f.path.clone());
                } else if e.rows != f.rows
                    || e.min_timestamp != f.min_timestamp
                    || e.max_timestamp != f.max_timestamp
                    // Entries of earlier pqdm record no key ranges (unknown, not stale).
                    || (!f.key_ranges.is_empty() && e.key_ranges != f.key_ranges)
                {
                    report.stale_stats.push(f.path.clone());
                    rebuilt.push(e.clone());
                }
            }
        }
    }
    rebuilt
}

impl Dataset {
    /// Checks the dataset; with `repair`, moves orphans aside and rebuilds the manifest's
    /// stats from the files (committing a new version).
    pub fn verify(&self, repair: bool, progress: &Progress) -> Result<VerifyReport> {
        let timer = OpTimer::start("verify");
        // The copy `_manifest.json` is read only where the log entry records its hash, else
        // the version is rebuilt from the log: what is checked is the committed version.
        let m = match self.refresh() {
            Ok(m) => m,
            // The log cannot give the current version (a deleted or damaged entry, a missing
            // checkpoint): its files are the tree's, which the log's check below then names.
            Err(e) => match self.current_from_tree()? {
                Some(m) => {
                    log::warn!("{e}; the current version's files are read from the tree");
                    let m = Arc::new(m);
                    self.set_manifest(Arc::clone(&m));
                    m
                }
                None => return Err(e),
            },
        };
        crate::failpoint::hit("verify.loaded")?;
        let mut report = VerifyReport {
            op_id: timer.op_id.clone(),
            version: m.version,
            files_checked: m.files.len() as u64,
            ..Default::default()
        };
        report.manifest_copy_stale = !self.store().manifest_copy_current(&m);
        // A writer killed between its commit and its log entry left tidying that any later
        // command finishes (as the next reader finishes its other tidying): so does verify.
        self.store().publish_delta_after_commit(None, &m);
        report.delta_log = self.store().delta_disagreement(&m);
        let listed: BTreeSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        let listed_in_tree = crate::foreign::list_files(&self.location())?;
        report.orphans = listed_in_tree
            .iter()
            .filter(|f| !listed.contains(f.as_str()))
            .cloned()
            .collect();
        let copies = self.store().copies(&m, &listed_in_tree)?;
        let (checked, damaged) = self.read_files(&m, &*copies, progress)?;
        report.tree_copies_damaged = m
            .files
            .iter()
            .zip(&damaged)
            .filter(|(_, damaged)| **damaged)
            .map(|(f, _)| f.path.clone())
            .collect();
        // A file that lost one of its two links, and files in the tree no version lists, are
        // only problems if no commit ran meanwhile (a commit takes replaced files out of the
        // tree and puts new ones in).
        let now = self.current()?;
        let unchanged = now.version == m.version;
        let now_listed: BTreeSet<&str> = now.files.iter().map(|f| f.path.as_str()).collect();
        report
            .orphans
            .retain(|o| unchanged || !now_listed.contains(o.as_str()));
        // A file that lost one of its copies (tree, kept) is missing to some reader.
        let half_linked: Vec<String> = match unchanged {
            true => m
                .files
                .iter()
                .zip(&checked)
                .filter(|(f, c)| c.is_some() && !copies.both_present(&f.path))
                .map(|(f, _)| f.path.clone())
                .collect(),
            false => vec![],
        };
        let rebuilt = sort_checked(&m, &checked, &mut report);
        report.missing.extend(half_linked);
        let gone = checked.iter().filter(|c| c.is_none()).count();
        report.unexplained = self.unexplained(&m, gone, &report.orphans);
        if !report.missing.is_empty() {
            report.data_error = Some("skipped: files are missing".into());
        } else {
            self.run_data_checks(&mut report);
        }
        if repair {
            self.repair_verified(&mut report, rebuilt, &timer.op_id)?;
        }
        (report.wall_ms, report.peak_rss_bytes) = timer.finish();
        Ok(report)
    }

    /// The current version where the log cannot give it: `_manifest.json`'s header (the copy
    /// the newest log entry records the hash of) with the files the tree holds, which are the
    /// current version's (the layout's rule), read for their statistics and checksums (each
    /// counted as added by the current version); `None` where there is no such copy, or the
    /// tree holds another number of files or rows than it says.
    fn current_from_tree(&self) -> Result<Option<Manifest>> {
        let Ok(Some(head)) = self.store().load_head() else {
            return Ok(None);
        };
        if !head.is_partial() {
            return Ok(None);
        }
        let tree = crate::foreign::list_files(&self.location())?;
        let files: Vec<FileEntry> = tree
            .par_iter()
            .map(|rel| {
                crate::write::file_entry(
                    &self.store().data_path(rel),
                    rel,
                    &head.kind_spec,
                    head.version,
                )
            })
            .collect::<Result<_>>()?;
        let rows: u64 = files.iter().map(|f| f.rows).sum();
        if files.len() as u64 != head.file_count || rows != head.total_rows {
            return Ok(None);
        }
        Ok(Some(Manifest {
            files_in: None,
            files,
            ..head
        }))
    }

    /// Reads every file of `m` through `copies`, in parallel: what each holds (see
    /// [`Checked`]) and whether its tree copy is damaged.
    fn read_files(
        &self,
        m: &Manifest,
        copies: &dyn FileCopies,
        progress: &Progress,
    ) -> Result<(Vec<Checked>, Vec<bool>)> {
        let bar = progress.bar(m.files.len() as u64, "checking files");
        let checked: Vec<(Checked, bool)> = m
            .files
            .par_iter()
            .map(|f| -> Result<(Checked, bool)> {
                let path = self.store().data_path(&f.path);
                let (bytes, tree_copy_damaged) = copies.read(&f.path, &f.checksum)?;
                let out = bytes.map(|bytes| {
                    entry_of(&bytes, &path, &f.path, &m.kind_spec, f.added_in)
                        .map_err(|_| blake3::hash(&bytes).to_hex().as_str() == f.checksum)
                });
                bar.inc(1);
                Ok((out, tree_copy_damaged))
            })
            .collect::<Result<_>>()?;
        Ok(checked.into_iter().unzip())
    }

    /// Repairs what `report` found (refused while anything is unexplained), then checks the
    /// data of the version the repair made.
    fn repair_verified(
        &self,
        report: &mut VerifyReport,
        rebuilt: Vec<FileEntry>,
        op_id: &str,
    ) -> Result<()> {
        if !report.unexplained.is_empty() {
            return Err(Error::Dataset {
                path: self.base().to_path_buf(),
                message: format!(
                    "repair refused, nothing was changed: {}. Restore the dataset (or the named \
                     files) from a backup, or move what does not belong away by hand",
                    report.unexplained.join("; ")
                ),
            });
        }
        let repairs = self.repair(report, rebuilt, op_id)?;
        // The data checks describe the version the repair made, never one they skipped.
        let changed = !(repairs.missing_dropped.is_empty()
            && repairs.quarantined.is_empty()
            && repairs.links_restored.is_empty());
        report.repairs = Some(repairs);
        if changed {
            self.run_data_checks(report);
        }
        Ok(())
    }

    /// Runs [`Self::check_data`] afresh on the handle's version, recording why it could not.
    fn run_data_checks(&self, report: &mut VerifyReport) {
        report.duplicate_keys = 0;
        report.duplicate_examples.clear();
        report.gaps.clear();
        report.bad_values.clear();
        report.data_error = crate::panics::caught("verify", || self.check_data(report))
            .err()
            .map(|e| e.to_string());
    }

    /// Every column of every file read as a scan reads it (a file a scan cannot open is a
    /// problem even where no other check needs its columns), then duplicate keys, candle gaps
    /// and bad values, read with projection from the data.
    fn check_data(&self, report: &mut VerifyReport) -> Result<()> {
        let all = ScanOptions::default();
        self.scan(&all)?
            .select([all_columns_null_count()])
            .collect_with_engine(Engine::Streaming)
            .map_err(polars_err("read every file as a scan does"))?;
        self.check_duplicate_keys(report)?;
        self.check_values(report)?;
        self.check_gaps(report)
    }

    /// Keys held by more than one row: how many, and the first five.
    fn check_duplicate_keys(&self, report: &mut VerifyReport) -> Result<()> {
        let m = self.header();
        if m.key.is_empty() {
            return Ok(());
        }
        let key: Vec<Expr> = m.key.iter().map(|k| col(k.as_str())).collect();
        let dups = self
            .scan(&ScanOptions {
                columns: Some(m.key.clone()),
                ..Default::default()
            })?
            .group_by(key)
            .agg([len().alias("__n")])
            .filter(col("__n").gt(lit(1)))
            .collect()
            .map_err(polars_err("duplicate keys"))?;
        report.duplicate_keys = dups.height() as u64;
        for i in 0..dups.height().min(5) {
            let row: Vec<String> = m
                .key
                .iter()
                .map(|k| {
                    dups.column(k)
                        .ok()
                        .and_then(|c| c.get(i).ok())
                        .and_then(|v| crate::partition::value_text(&v))
                        .unwrap_or_default()
                })
                .collect();
            report.duplicate_examples.push(row.join("/"));
        }
        Ok(())
    }

    /// Negative, NaN and infinite values in the columns that can hold none of them.
    fn check_values(&self, report: &mut VerifyReport) -> Result<()> {
        let m = self.header();
        let checks: Vec<Expr> = NON_NEGATIVE
            .iter()
            .filter(|c| {
                m.schema
                    .iter()
                    .any(|f| &f.name == *c && f.dtype == crate::schema::ColType::F64)
            })
            .flat_map(|c| {
                BAD_VALUE_KINDS.iter().map(move |(what, test)| {
                    test(col(*c))
                        .cast(DataType::UInt64)
                        .sum()
                        .alias(format!("{c}\u{1f}{what}"))
                })
            })
            .collect();
        if checks.is_empty() {
            return Ok(());
        }
        let counts = self
            .scan(&ScanOptions::default())?
            .select(checks)
            .collect()
            .map_err(polars_err("values"))?;
        for c in counts.columns() {
            let n = c.get(0).ok().and_then(|v| v.extract::<u64>()).unwrap_or(0);
            let Some((name, what)) = c.name().split_once('\u{1f}') else {
                continue;
            };
            if n > 0 {
                *report.bad_values.entry(name.to_string()).or_default() += n;
                let detail = report
                    .bad_value_details
                    .entry(name.to_string())
                    .or_default();
                if !detail.is_empty() {
                    detail.push_str(", ");
                }
                detail.push_str(&format!("{n} {what}"));
            }
        }
        Ok(())
    }

    /// Missing candles per exchange/symbol/timeframe, where the dataset has those columns.
    fn check_gaps(&self, report: &mut VerifyReport) -> Result<()> {
        let m = self.header();
        let series: Vec<String> = ["exchange", "symbol", "timeframe"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let has = |c: &str| {
            m.schema.iter().any(|f| f.name == c) || m.partition_columns.iter().any(|p| p.name == c)
        };
        if !series.iter().all(|c| has(c)) || !has(&m.timestamp_column) {
            return Ok(());
        }
        let ts = m.timestamp_column.as_str();
        let lf = self.scan(&ScanOptions {
            columns: Some([series.clone(), vec![ts.to_string()]].concat()),
            ..Default::default()
        })?;
        report.gaps = candle_gaps(lf, &series, ts)?
            .into_iter()
            .map(|g| Gap {
                key: series
                    .iter()
                    .cloned()
                    .zip(g.key.into_iter().map(Option::unwrap_or_default))
                    .collect(),
                from: g.from,
                to: g.to,
                missing: g.missing,
            })
            .collect();
        Ok(())
    }

    fn repair(
        &self,
        report: &VerifyReport,
        rebuilt: Vec<FileEntry>,
        op_id: &str,
    ) -> Result<Repairs> {
        let mut repairs = Repairs::default();
        {
            let lock = self.store().lock()?;
            let current = self.current()?;
            if report.manifest_copy_stale {
                self.store().rewrite_copies(&lock, &current)?;
                repairs.manifest_copy_rewritten = true;
            }
            if report.delta_log.is_some() && current.version == report.version {
                // The current version in one checkpoint: what the log before it holds (a gap,
                // a damaged entry) no longer decides what Delta readers see of it; each file
                // with the partition values of its folder (an entry edited by hand may have
                // given it others).
                let fixed = with_folder_values(&current);
                self.store().checkpoint_now(&fixed)?;
                repairs.delta_log_written = self.store().delta_disagreement(&fixed).is_none();
            }
            for rel in &report.missing {
                if self.store().restore_links(&lock, rel)? {
                    repairs.links_restored.push(rel.clone());
                }
            }
            for rel in &report.tree_copies_damaged {
                self.store().quarantine(&lock, rel)?;
                if self.store().restore_links(&lock, rel)? {
                    repairs.tree_copies_restored.push(rel.clone());
                }
            }
            let live: std::collections::HashSet<&str> =
                current.files.iter().map(|f| f.path.as_str()).collect();
            for orphan in &report.orphans {
                if !live.contains(orphan.as_str()) {
                    self.store().quarantine(&lock, orphan)?;
                    repairs.orphans_moved.push(orphan.clone());
                }
            }
        }
        let damaged = &report.checksum_mismatches;
        let gone: Vec<String> = report
            .missing
            .iter()
            .filter(|m| !repairs.links_restored.contains(m))
            .cloned()
            .collect();
        if rebuilt.is_empty() && gone.is_empty() && damaged.is_empty() {
            return Ok(repairs);
        }
        repairs.stats_rebuilt = rebuilt.iter().map(|e| e.path.clone()).collect();
        repairs.missing_dropped = gone.clone();
        let dropped: BTreeSet<&String> = gone.iter().chain(damaged).collect();
        repairs.rows_lost = self
            .manifest()?
            .files
            .iter()
            .filter(|f| dropped.contains(&f.path))
            .map(|f| f.rows)
            .sum();
        let operation = Operation {
            name: "repair".into(),
            op_id: op_id.to_string(),
            rows_removed: repairs.rows_lost,
            files_removed: dropped.len() as u64,
            ..Default::default()
        };
        let fixes: BTreeMap<String, FileEntry> =
            rebuilt.into_iter().map(|e| (e.path.clone(), e)).collect();
        let (next, _) = self.with_commit_retries(op_id, |lock, current| {
            self.commit_change(
                lock,
                current,
                Change {
                    staged: &[],
                    added: vec![],
                    replaced: &[],
                    operation: operation.clone(),
                },
                |next| {
                    next.files.retain(|f| !dropped.contains(&f.path));
                    for f in next.files.iter_mut() {
                        if let Some(e) = fixes.get(&f.path) {
                            *f = FileEntry {
                                added_in: f.added_in,
                                ..e.clone()
                            };
                        }
                    }
                },
            )
        })?;
        repairs.version = Some(next.version);
        // Damaged files leave the tree once no current version lists them; kept for inspection.
        let lock = self.store().lock()?;
        for path in damaged {
            if self.store().data_exists(path)? {
                self.store().quarantine(&lock, path)?;
            }
            repairs.quarantined.push(path.clone());
        }
        Ok(repairs)
    }
}

/// `m` with each file's partition values those its folder names.
fn with_folder_values(m: &Manifest) -> Manifest {
    let mut fixed = m.clone();
    for f in fixed.files.iter_mut() {
        f.partition = crate::manifest::PartitionValues::new(crate::partition::parse_path(&f.path));
    }
    fixed
}

/// A run of missing candles in one series, as [`candle_gaps`] finds it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SeriesGap {
    /// The series' values, in the order of the `series` columns (`None`: null).
    pub key: Vec<Option<String>>,
    /// First missing candle (ms).
    pub from: i64,
    /// Last missing candle (ms).
    pub to: i64,
    /// Missing candles.
    pub missing: u64,
    /// The series' cadence (ms, at least 1).
    pub cadence: i64,
}

/// The runs of missing candles in `lf`, which holds the `series` columns (`timeframe` among
/// them) and the timestamp column `ts`: wherever two consecutive candles of a series are more
/// than its timeframe's cadence apart ([`cadence_ms`]; series whose timeframe has none, such
/// as months, are skipped). `verify` and `coverage` both count missing candles so.
pub(crate) fn candle_gaps(lf: LazyFrame, series: &[String], ts: &str) -> Result<Vec<SeriesGap>> {
    let timeframes = lf
        .clone()
        .select([col("timeframe").unique()])
        .collect()
        .map_err(polars_err("timeframes"))?;
    let mut cadence = lit(NULL).cast(DataType::Int64);
    for tf in timeframes
        .column("timeframe")
        .map_err(polars_err("gaps"))?
        .str()
        .map_err(polars_err("gaps"))?
        .iter()
        .flatten()
    {
        if let Some(c) = cadence_ms(tf) {
            cadence = when(col("timeframe").eq(lit(tf.to_string())))
                .then(lit(c))
                .otherwise(cadence);
        }
    }
    let same_series = series
        .iter()
        .map(|s| col(s.as_str()).eq(col(s.as_str()).shift(lit(1))))
        .reduce(|a, b| a.and(b))
        .unwrap_or(lit(true));
    let gaps = lf
        .sort(
            [series.to_vec(), vec![ts.to_string()]].concat(),
            Default::default(),
        )
        .with_column(
            when(same_series)
                .then(col(ts) - col(ts).shift(lit(1)))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .alias("__step"),
        )
        .with_column(cadence.alias("__cadence"))
        .filter(col("__step").gt(col("__cadence")))
        .collect()
        .map_err(polars_err("gaps"))?;
    let get_i64 = |name: &str| -> Result<Int64Chunked> {
        Ok(gaps
            .column(name)
            .map_err(polars_err("gaps"))?
            .i64()
            .map_err(polars_err("gaps"))?
            .clone())
    };
    let (step, t, cad) = (get_i64("__step")?, get_i64(ts)?, get_i64("__cadence")?);
    let mut out = vec![];
    for i in 0..gaps.height() {
        let (Some(d), Some(t), Some(c)) = (step.get(i), t.get(i), cad.get(i)) else {
            continue;
        };
        let key = series
            .iter()
            .map(|s| {
                gaps.column(s)
                    .ok()
                    .and_then(|col| col.get(i).ok())
                    .and_then(|v| crate::partition::value_text(&v))
            })
            .collect();
        // Timestamps of datasets written by other tools can be anything: no arithmetic on
        // them may overflow (`c` is at least 1, see `cadence_ms`, and `d` exceeds it).
        let (Some(from), Some(to), Some(missing)) = (
            t.checked_sub(d).and_then(|p| p.checked_add(c)),
            t.checked_sub(c),
            d.checked_div(c).and_then(|n| u64::try_from(n - 1).ok()),
        ) else {
            continue;
        };
        out.push(SeriesGap {
            key,
            from,
            to,
            missing,
            cadence: c,
        });
    }
    Ok(out)
}
