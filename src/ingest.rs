//! Ingest and migrate: files and folders → inputs (with Binance file-name hints) → one atomic write.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use crate::cast::{CastOptions, cast_to_kind};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::ingested::{self, SourcePlan};
use crate::metrics::OpTimer;
use crate::progress::Progress;
use crate::schema::Kind;
use crate::source::{self, NameHints, Prepared, Typing};
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

/// How `ingest` treats the sources it ingested before.
#[derive(Clone, Copy, Debug, Default)]
pub struct IngestOptions {
    /// Read every source, even those the sources index holds unchanged (see [`crate::ingested`]).
    pub force: bool,
}

/// Ingests `sources` (files or folders) into `ds` as one commit, skipping the files an earlier
/// ingest committed that are unchanged since (see [`crate::ingested`]); [`ingest_with`] and
/// [`IngestOptions::force`] read them all.
///
/// Symbol, timeframe and exchange come from Binance file names where `opts.constants` does
/// not give them. A bad file fails the whole ingest and leaves the dataset as it was.
pub fn ingest(
    ds: &Dataset,
    sources: &[PathBuf],
    opts: &WriteOptions,
    progress: &Progress,
) -> Result<WriteReport> {
    ingest_with(ds, sources, opts, &IngestOptions::default(), progress)
}

/// [`ingest`] with [`IngestOptions`].
pub fn ingest_with(
    ds: &Dataset,
    sources: &[PathBuf],
    opts: &WriteOptions,
    how: &IngestOptions,
    progress: &Progress,
) -> Result<WriteReport> {
    Ok(load(ds, sources, opts, progress, Load::Ingest(*how))?.write)
}

/// What [`load`] is for.
#[derive(Clone, Copy)]
enum Load {
    /// An ingest, which keeps the sources index.
    Ingest(IngestOptions),
    /// A migration (reads every source, records none), leaving unreadable files out or not.
    Migrate { skip_bad: bool },
}

/// The hash of what besides its content decides the rows the source at `path` makes in this
/// write (see [`ingested::params`]).
fn source_params(path: &Path, opts: &WriteOptions) -> String {
    let mut constants = NameHints::from_path(path).constants();
    constants.extend(opts.constants.clone());
    ingested::params(&constants, opts.timestamp_unit, opts.lenient)
}

/// Which of `files` to read, by the sources index of `ds` for an ingest (all for a migration).
fn plan_sources(
    ds: &Dataset,
    files: Vec<PathBuf>,
    opts: &WriteOptions,
    what: Load,
) -> Result<SourcePlan> {
    let Load::Ingest(how) = what else {
        return Ok(SourcePlan {
            read: files,
            ..Default::default()
        });
    };
    let index = ingested::SourceIndex::load(ds.store(), &*ds.current_header()?)?;
    ingested::plan(&index, &files, |p| source_params(p, opts), how.force)
}

/// The report of an ingest that found every source ingested before: nothing read or written.
fn nothing_new(
    ds: &Dataset,
    opts: &WriteOptions,
    skipped: u64,
    timer: &OpTimer,
) -> Result<WriteReport> {
    let current = ds.current_header()?;
    let mode = opts.mode.unwrap_or(if current.kind_spec.key.is_empty() {
        crate::options::WriteMode::Append
    } else {
        crate::options::WriteMode::Upsert
    });
    let mut report = WriteReport {
        op_id: timer.op_id.clone(),
        version: current.version,
        mode: mode.to_string(),
        unchanged: true,
        sources_skipped: skipped,
        ..Default::default()
    };
    (report.wall_ms, report.peak_rss_bytes) = timer.finish();
    Ok(report)
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
    load(ds, sources, opts, progress, Load::Migrate { skip_bad })
}

/// Reads one input through, cast to the kind as the write will cast it (every column decoded),
/// to tell whether the write would take it: a truncated file, a missing required column or a
/// value that does not cast are all errors naming the file.
fn check_input(p: &Prepared, kind: &Kind, opts: &WriteOptions) -> Result<()> {
    let origin = p.origin().to_path_buf();
    let frame = source::read_prepared(std::slice::from_ref(p), kind, None, Typing::Text)?;
    let mut constants = NameHints::from_path(&origin).constants();
    constants.extend(opts.constants.clone());
    let cast = cast_to_kind(
        frame,
        kind,
        &CastOptions {
            source_name: origin.display().to_string(),
            lenient: opts.lenient,
            constants,
            timestamp_unit: opts.timestamp_unit,
        },
    )?;
    cast.check()?;
    cast.frame
        .select([col("*").null_count()])
        .collect_with_engine(Engine::Streaming)
        .map(|_| ())
        .map_err(|e| Error::Input {
            path: origin,
            message: crate::error::clip_lines(&e.to_string()),
        })
}

/// Column that carries each row's file path through a grouped CSV scan.
const SOURCE: &str = "__pqdm_source";

/// One scan over CSV files of one shape (and the same file-name hints), with the hints joined
/// in per file: one Polars scan instead of one per file, which is what makes folders of many
/// small daily files fast.
fn grouped_input(
    group: &[Prepared],
    kind: &Kind,
    opts: &WriteOptions,
    typing: Typing,
) -> Result<Input> {
    let origins: Vec<&Path> = group.iter().map(Prepared::origin).collect();
    let name = match origins.as_slice() {
        [one] => one.display().to_string(),
        [first, rest @ ..] => format!("{} (and {} more files)", first.display(), rest.len()),
        [] => String::new(),
    };
    if group.len() == 1 {
        let frame = source::read_prepared(group, kind, None, typing)?;
        let rows = match &group[0] {
            Prepared::Parquet(p) => Some(crate::footer::read_footer(p, None)?.rows),
            Prepared::Csv { .. } => None,
        };
        return Ok(Input {
            rows,
            frame,
            source_name: name,
            constants: NameHints::from_path(origins[0]).constants(),
        });
    }
    let mut frame = source::read_prepared(group, kind, Some(SOURCE), typing)?;
    let present = frame
        .collect_schema()
        .map_err(Error::polars(format!("{name}: read CSV")))?;
    let hint_keys: Vec<String> = NameHints::from_path(origins[0])
        .constants()
        .into_keys()
        .filter(|k| {
            !opts.constants.contains_key(k)
                && !present
                    .iter_names()
                    .any(|n| kind.canonical_name(n).as_deref() == Some(k))
        })
        .collect();
    if !hint_keys.is_empty() {
        let paths: Vec<String> = group
            .iter()
            .filter_map(|p| match p {
                Prepared::Csv { file, .. } => Some(file.to_string_lossy().into_owned()),
                Prepared::Parquet(_) => None,
            })
            .collect();
        let mut columns = vec![Column::new(SOURCE.into(), paths)];
        for key in &hint_keys {
            let values: Vec<Option<String>> = origins
                .iter()
                .map(|o| NameHints::from_path(o).constants().get(key).cloned())
                .collect();
            columns.push(Column::new(key.as_str().into(), values));
        }
        let hints =
            DataFrame::new_infer_height(columns).map_err(Error::polars("file-name hints"))?;
        // The rows keep the files' order: a write under a memory budget stages the input in
        // slices by row number, each slice a new run of this query, and a join free to reorder
        // (Polars' default) gave each run another order, so slices overlapped and rows were
        // lost.
        let mut args = JoinArgs::new(JoinType::Left);
        args.maintain_order = MaintainOrderJoin::Left;
        frame = frame.join(hints.lazy(), [col(SOURCE)], [col(SOURCE)], args);
    }
    Ok(Input {
        frame: frame.drop(Selector::ByName {
            names: [SOURCE.into()].into(),
            strict: false,
        }),
        source_name: name,
        constants: Default::default(),
        rows: None,
    })
}

/// What CSV files must share to be read by one scan: header or not, shape, separator, hint
/// columns.
type GroupKey = (bool, String, u8, Vec<String>);

/// Groups prepared inputs that one scan can read: runs of consecutive CSV files of one shape
/// with the same kind of file-name hints; every Parquet file on its own. Groups keep the inputs'
/// order (a file of another shape between two of one shape splits them), so that in an upsert
/// the last row of a repeated key is the last one given.
fn group_inputs(prepared: Vec<Prepared>) -> Vec<Vec<Prepared>> {
    let mut groups: Vec<(Option<GroupKey>, Vec<Prepared>)> = vec![];
    for p in prepared {
        let key = match &p {
            Prepared::Csv {
                header,
                shape,
                separator,
                origin,
                ..
            } => Some((
                *header,
                shape.clone(),
                *separator,
                NameHints::from_path(origin)
                    .constants()
                    .into_keys()
                    .collect(),
            )),
            Prepared::Parquet(_) => None,
        };
        match groups.last_mut().filter(|(k, _)| k.is_some() && *k == key) {
            Some((_, members)) => members.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Sorts Binance files by the kind their names imply (`klines`, `aggtrades`, `trades`,
/// `futures`); a file whose name implies no kind is an error that lists every such file.
pub fn split_by_kind(
    files: &[PathBuf],
) -> Result<std::collections::BTreeMap<String, Vec<PathBuf>>> {
    let mut out: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    let mut unknown = vec![];
    for f in files {
        let hints = NameHints::from_path(f);
        match hints.kind {
            Some(k) => out.entry(k).or_default().push(f.clone()),
            None => unknown.push(match hints.data_type {
                Some(t) => format!("{} (Binance {t}: no pqdm kind)", f.display()),
                None => format!("{} (not a Binance file name)", f.display()),
            }),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::Options(format!(
            "an ingest by kind takes the kind from Binance file names, and these give none: {}",
            unknown.join(", ")
        )));
    }
    Ok(out)
}

/// Where a Binance file comes from, as far as its path tells: market and data type, and for a
/// file outside Binance's folder layout its folder (pqdm cannot tell two such folders apart).
fn provenance(path: &Path, hints: &NameHints) -> String {
    let market = match &hints.market {
        Some(m) => m.clone(),
        None => format!(
            "unknown market (folder {})",
            path.parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    };
    format!(
        "{market}, {}",
        hints.data_type.as_deref().unwrap_or("unknown data type")
    )
}

/// Refuses inputs whose rows would land on each other's keys although their paths say (or
/// cannot rule out) that they hold different data: Binance's spot, USDⓈ-M and COIN-M files
/// share names, and so do `klines` and `markPriceKlines`. Files of one market and data type
/// may overlap (a daily and a monthly file): they hold the same rows.
fn check_markets(files: &[PathBuf], opts: &WriteOptions) -> Result<()> {
    type Identity = (String, String, Option<String>, Option<String>);
    let mut seen: std::collections::BTreeMap<Identity, Vec<(String, String, &Path)>> =
        Default::default();
    for path in files {
        let hints = NameHints::from_path(path);
        let (Some(period), Some(exchange)) = (hints.period.clone(), hints.exchange()) else {
            continue;
        };
        let given = |k: &str, hint: Option<String>| opts.constants.get(k).cloned().or(hint);
        let identity = (
            given("exchange", Some(exchange)).unwrap_or_default(),
            given("symbol", hints.symbol.clone()).unwrap_or_default(),
            given("timeframe", hints.timeframe.clone()),
            hints.kind.clone(),
        );
        let origin = provenance(path, &hints);
        let others = seen.entry(identity.clone()).or_default();
        let overlaps = |p: &str| p.starts_with(period.as_str()) || period.starts_with(p);
        if let Some((_, other_origin, other)) =
            others.iter().find(|(p, o, _)| *o != origin && overlaps(p))
        {
            return Err(Error::Options(format!(
                "{} ({origin}) and {} ({other_origin}) would be stored as the same rows \
                 (exchange {}, symbol {}{}): ingest them in separate writes with different \
                 exchange values, or keep Binance's folder layout (.../spot/..., \
                 .../futures/um/..., .../futures/cm/..., .../markPriceKlines/...), from which \
                 pqdm gives each market and candle type its own exchange value",
                path.display(),
                other.display(),
                identity.0,
                identity.1,
                identity
                    .2
                    .as_ref()
                    .map(|t| format!(", timeframe {t}"))
                    .unwrap_or_default()
            )));
        }
        others.push((period, origin, path));
    }
    Ok(())
}

fn load(
    ds: &Dataset,
    sources: &[PathBuf],
    opts: &WriteOptions,
    progress: &Progress,
    what: Load,
) -> Result<MigrateReport> {
    // The report's time and memory cover the whole ingest: hashing sources, inflating
    // archives and the write.
    let timer = OpTimer::start("ingest");
    let skip_bad = matches!(what, Load::Migrate { skip_bad: true });
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
    check_markets(&files, opts)?;
    let SourcePlan {
        read: files,
        skipped: skipped_sources,
        batch: mut recorded,
    } = plan_sources(ds, files, opts, what)?;
    let skipped_sources = skipped_sources.len() as u64;
    crate::failpoint::hit("ingest.planned")?;
    if files.is_empty() {
        return Ok(MigrateReport {
            write: nothing_new(ds, opts, skipped_sources, &timer)?,
            skipped: vec![],
        });
    }
    let kind = ds.header().kind_spec.clone();
    // Archives inflate inside the dataset's own scratch space: nothing is written outside it.
    let tmp = ds
        .store()
        .staging(&format!("{}-inputs", crate::metrics::new_op_id()))?;
    let bar = progress.bar(files.len() as u64, "reading inputs");
    let mut prepared = Vec::with_capacity(files.len());
    let mut skipped = vec![];
    for path in &files {
        bar.inc(1);
        let checked = source::prepare(path, tmp.dir()).and_then(|p| {
            if skip_bad {
                check_input(&p, &kind, opts)?;
            }
            Ok(p)
        });
        match checked {
            Ok(p) => prepared.push(p),
            Err(e) if skip_bad => skipped.push(Skipped {
                path: path.clone(),
                error: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    drop(bar);
    for s in &skipped {
        log::warn!("skipped {}: {}", s.path.display(), s.error);
    }
    let blank_lines: u64 = prepared
        .iter()
        .map(|p| match p {
            Prepared::Csv { blank_lines, .. } => *blank_lines,
            Prepared::Parquet(_) => 0,
        })
        .sum();
    let spinner = progress.spinner(&format!("writing {} input file(s)", prepared.len()));
    let groups = group_inputs(prepared);
    let read = |typing| {
        groups
            .iter()
            .map(|g| grouped_input(g, &kind, opts, typing))
            .collect::<Result<Vec<_>>>()
    };
    let before = ds.current_header()?.version;
    // Only errors of reading the input are read again (a storage, lock or conflict error is
    // no better the second time), and never after a commit: a failed write commits nothing,
    // and the version says so.
    let retry = |e: &Error| {
        matches!(
            e,
            Error::Polars { .. }
                | Error::Input { .. }
                | Error::Cast { .. }
                | Error::Schema(_)
                | Error::TimestampRange { .. }
        ) && ds.current_header().is_ok_and(|m| m.version == before)
    };
    let mut write = ds.write_recording(read(Typing::Kind)?, opts, &mut recorded);
    // CSV numbers are read typed first (fast); a value that does not parse so fails the read,
    // and the CSV is read again as text for the cast to convert it or name it.
    let csv = groups
        .iter()
        .flatten()
        .any(|p| matches!(p, Prepared::Csv { .. }));
    if let Err(e) = &write
        && csv
        && retry(e)
    {
        log::info!("typed CSV read failed ({e}); reading the CSV as text");
        write = ds.write_recording(read(Typing::Text)?, opts, &mut recorded);
    }
    // A bad row found in a grouped scan is found again file by file, to name its file and row.
    if let Err(e) = &write
        && groups.iter().any(|g| g.len() > 1)
        && retry(e)
    {
        log::info!("grouped ingest failed ({e}); reading file by file to locate the problem");
        let single = groups
            .iter()
            .flatten()
            .map(|p| grouped_input(std::slice::from_ref(p), &kind, opts, Typing::Text))
            .collect::<Result<Vec<_>>>()?;
        write = ds.write_recording(single, opts, &mut recorded);
    }
    drop(spinner);
    let mut write = write?;
    ds.compact_touched(&mut write, opts);
    write.blank_lines_skipped = blank_lines;
    write.sources_read = files.len() as u64;
    write.sources_skipped = skipped_sources;
    (write.wall_ms, write.peak_rss_bytes) = timer.finish();
    Ok(MigrateReport { write, skipped })
}

/// Opens the dataset at `base` for writing `sources` into it, creating it (with `create`)
/// when there is none: as `kind`, or else as the kind the sources' file names tell (Binance's
/// names: `BTCUSDT-1m-2024-01-05.zip` is klines). An existing dataset of another kind than
/// `kind` is an error. Safe when several processes race to create it. Returns the dataset and
/// whether this call created it (see [`remove_if_created`]).
pub fn open_or_create_for(
    base: &Path,
    kind: Option<&crate::schema::Kind>,
    kinds: &crate::schema::KindRegistry,
    sources: &[PathBuf],
    create: &crate::dataset::CreateOptions,
) -> Result<(Dataset, bool)> {
    let created = !crate::txn::Store::new(base)?.try_exists()?;
    if !created {
        let ds = Dataset::open(base)?;
        if let Some(want) = kind
            && want.name != ds.header().kind
        {
            return Err(Error::Dataset {
                path: base.to_path_buf(),
                message: format!("holds kind `{}`, not `{}`", ds.header().kind, want.name),
            });
        }
        return Ok((ds, false));
    }
    let kind = match kind {
        Some(k) => k,
        None => {
            let hinted = crate::source::expand(sources)?
                .iter()
                .find_map(|p| crate::source::NameHints::from_path(p).kind)
                .ok_or_else(|| Error::KindNeeded {
                    path: base.to_path_buf(),
                })?;
            kinds.get(&hinted)?
        }
    };
    Ok((Dataset::open_or_create(base, kind, create)?, true))
}

/// `result` of a write into the dataset at `base`; when it failed and `created` (this run made
/// the dataset), the empty dataset it left behind is removed, so a failed first write leaves
/// nothing.
pub fn remove_if_created<T>(base: &Path, created: bool, result: Result<T>) -> Result<T> {
    if result.is_err() && created {
        let _ = crate::txn::Store::new(base).and_then(|s| s.remove_if_empty());
    }
    result
}
