//! Ingest: files and folders → inputs (with Binance file-name hints) → one atomic write.

use std::path::PathBuf;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::source::{self, NameHints};
use crate::write::{Input, WriteOptions, WriteReport};

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
    let tmp = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
    let bar = progress.bar(files.len() as u64, "reading inputs");
    let mut inputs = Vec::with_capacity(files.len());
    for path in &files {
        let frame = source::read(path, &kind, tmp.path())?;
        inputs.push(Input {
            frame,
            source_name: path.display().to_string(),
            constants: NameHints::from_path(path).constants(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let spinner = progress.spinner(&format!("writing {} input file(s)", files.len()));
    let report = ds.write_inputs(inputs, opts);
    spinner.finish_and_clear();
    report
}
