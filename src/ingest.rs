//! Ingest and migrate: files and folders → inputs (with Binance file-name hints) → one atomic write.

use std::path::PathBuf;

use polars::prelude::*;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::source::{self, NameHints};
use crate::write::{Input, WriteOptions, WriteReport};

/// An input file that `--skip-bad` left out, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub error: String,
}

/// What a migration did.
#[derive(Clone, Debug, Serialize)]
pub struct MigrateReport {
    /// The write of every readable file.
    #[serde(flatten)]
    pub write: WriteReport,
    /// Files left out as unreadable (only with `skip_bad`).
    pub skipped: Vec<Skipped>,
}

/// Ingests `sources` (files or folders) into `ds` as one commit.
///
/// Symbol, timeframe and exchange come from Binance file names where `opts.constants` does
/// not give them. A bad file fails the whole ingest and leaves the dataset as it was.
pub fn ingest(
    ds: &Dataset,
    sources: &[PathBuf],
    opts: &WriteOptions,
    progress: &Progress,
) -> Result<WriteReport> {
    Ok(load(ds, sources, opts, progress, false)?.write)
}

/// Migrates flat Parquet or CSV files (e.g. the old tool's `part-0.parquet` outputs) into `ds`,
/// adding `opts.constants` as columns. An unreadable file stops the migration with nothing
/// written, unless `skip_bad`, which reads every file through first and leaves the bad ones out.
pub fn migrate(
    ds: &Dataset,
    sources: &[PathBuf],
    opts: &WriteOptions,
    skip_bad: bool,
    progress: &Progress,
) -> Result<MigrateReport> {
    load(ds, sources, opts, progress, skip_bad)
}

/// Reads one input through (every column decoded) to tell whether it is whole.
fn check_readable(frame: &LazyFrame) -> std::result::Result<(), String> {
    frame
        .clone()
        .select([col("*").null_count()])
        .collect_with_engine(Engine::Streaming)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn load(
    ds: &Dataset,
    sources: &[PathBuf],
    opts: &WriteOptions,
    progress: &Progress,
    skip_bad: bool,
) -> Result<MigrateReport> {
    let files = source::expand(sources)?;
    if files.is_empty() {
        return Err(Error::Options(format!(
            "no input files (.csv, .csv.gz, .zip, .parquet) under {}",
            sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let kind = ds.manifest().kind_spec.clone();
    // Archives inflate inside the dataset's own scratch space: nothing is written outside it.
    let tmp = ds
        .store()
        .staging(&format!("{}-inputs", crate::metrics::new_op_id()))?;
    let bar = progress.bar(files.len() as u64, "reading inputs");
    let mut inputs = Vec::with_capacity(files.len());
    let mut skipped = vec![];
    for path in &files {
        bar.inc(1);
        let frame = match source::read(path, &kind, tmp.dir()) {
            Ok(f) => f,
            Err(e) if skip_bad => {
                skipped.push(Skipped {
                    path: path.clone(),
                    error: e.to_string(),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        if skip_bad && let Err(error) = check_readable(&frame) {
            skipped.push(Skipped {
                path: path.clone(),
                error,
            });
            continue;
        }
        inputs.push(Input {
            frame,
            source_name: path.display().to_string(),
            constants: NameHints::from_path(path).constants(),
        });
    }
    bar.finish_and_clear();
    for s in &skipped {
        log::warn!("skipped {}: {}", s.path.display(), s.error);
    }
    let spinner = progress.spinner(&format!("writing {} input file(s)", inputs.len()));
    let write = ds.write_inputs(inputs, opts);
    spinner.finish_and_clear();
    Ok(MigrateReport {
        write: write?,
        skipped,
    })
}
