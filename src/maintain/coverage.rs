//! `coverage`: which days each series (exchange/symbol/timeframe) holds and where candles are
//! missing, day by day; drawn as a heat map on a terminal ([`text`]) or as SVG/PNG ([`image`]).
//!
//! Candles: a series' missing candles are the runs between consecutive candles more than its
//! timeframe's cadence apart, counted exactly as `verify` counts them
//! ([`candle_gaps`](crate::maintain::verify)), read from the timestamp column alone; each
//! missing candle falls on the day its open time does. Kinds without a timeframe (aggTrades,
//! trades, funding) and month timeframes show presence: a day inside a series' first .. last
//! day holds rows or is missing. Where every file holds one day of one series (aggTrades and
//! trades partitioned by day) that answer comes from the manifest's row counts and time ranges
//! alone, no data file is opened.

pub mod image;
pub mod text;

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::maintain::verify::{SeriesGap, cadence_ms, candle_gaps};
use crate::manifest::{FileEntry, Manifest};
use crate::progress::Progress;
use crate::scan::ScanOptions;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// The last day a timestamp can fall on (2262-04-11), in days since 1970-01-01 (day 0, the
/// first one).
pub const MAX_DAY: i64 = crate::timestamp::MAX_MS / DAY_MS;

/// The columns that tell one series from another, those of them a dataset has.
const SERIES_COLUMNS: &[&str] = &["exchange", "symbol", "timeframe"];

/// What to show.
#[derive(Clone, Debug, Default)]
pub struct CoverageOptions {
    /// Filters on partition columns (`symbol in [BTCUSDT, ETHUSDT]`), ANDed.
    pub filters: Vec<Filter>,
    /// The first day shown, as any time of it in ms (default: the first day with data). It
    /// only clips what is shown: a gap that began before it still counts from its start.
    pub from: Option<i64>,
    /// The last day shown, as any time of it in ms (default: the last day with data).
    pub to: Option<i64>,
}

/// How complete one day (or one cell of several days) of a series is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Completeness {
    /// Every candle due is there (presence kinds: the day has rows).
    Full,
    /// Some candles are there, some are missing (a cell of several days: some days are not
    /// full).
    Partial,
    /// Nothing is there although something was due.
    Missing,
    /// Nothing is there and nothing was due: outside the series' first .. last day, or a day
    /// no candle of a coarse timeframe (`1w`) opens on.
    NoData,
}

impl Completeness {
    /// Every state, in the order a legend lists them.
    pub const ALL: [Completeness; 4] = [
        Completeness::Full,
        Completeness::Partial,
        Completeness::Missing,
        Completeness::NoData,
    ];

    /// What the state means, for a legend.
    pub fn meaning(self) -> &'static str {
        match self {
            Completeness::Full => "full",
            Completeness::Partial => "partial (gaps)",
            Completeness::Missing => "missing",
            Completeness::NoData => "no data",
        }
    }
}

/// One day of one series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Day {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Days since 1970-01-01.
    #[serde(skip)]
    pub index: i64,
    /// Rows stored that day.
    pub rows: u64,
    /// Candles due that day: those there plus those missing (`None` for presence series).
    pub expected: Option<u64>,
    /// Distinct candle open times stored that day (`None` for presence series).
    pub present: Option<u64>,
    /// Missing candles whose open time falls on that day (`None` for presence series).
    pub missing: Option<u64>,
    /// How complete the day is.
    pub status: Completeness,
}

/// Sums over days.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Rows stored on the days shown.
    pub rows: u64,
    /// Candles due (`None` where no series has a cadence).
    pub expected: Option<u64>,
    /// Candles stored.
    pub present: Option<u64>,
    /// Candles missing.
    pub missing: Option<u64>,
    /// Days that are [`Completeness::Full`].
    pub days_full: u64,
    /// Days that are [`Completeness::Partial`].
    pub days_partial: u64,
    /// Days that are [`Completeness::Missing`].
    pub days_missing: u64,
}

/// The coverage of one series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    /// The series' values of the dataset's series columns (`None`: null).
    pub key: BTreeMap<String, Option<String>>,
    /// The values joined by spaces (`BINANCE BTCUSDT 1m`), `(all)` without series columns.
    pub label: String,
    /// Candle cadence in ms (`None`: a presence series).
    pub cadence_ms: Option<i64>,
    /// The series' first and last timestamp (ms) over all its rows, the days shown or not.
    pub first_timestamp: i64,
    /// See `first_timestamp`.
    pub last_timestamp: i64,
    /// Every day shown that is not [`Completeness::NoData`], in order.
    pub days: Vec<Day>,
    /// Sums over `days`.
    pub totals: Totals,
}

/// Which days each series holds and where candles are missing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// The version described.
    pub version: u64,
    /// The dataset's kind.
    pub kind: String,
    /// The columns that tell series apart (exchange, symbol, timeframe: those the dataset has).
    pub series_columns: Vec<String>,
    /// First day shown, `YYYY-MM-DD` (`None`: nothing to show).
    pub from: Option<String>,
    /// Last day shown.
    pub to: Option<String>,
    /// Days from `from` to `to`, both included.
    pub days: u64,
    /// `from` and `to` as days since 1970-01-01.
    #[serde(skip)]
    pub range: Option<(i64, i64)>,
    /// One entry per series, ordered by key.
    pub series: Vec<Series>,
    /// Sums over every series.
    pub totals: Totals,
    /// Rows whose timestamp is null or outside 1970-01-01 .. 2262-04-11 (on no day).
    pub rows_without_day: u64,
    /// Data files whose timestamps were read (0: answered from the manifest alone).
    pub files_read: u64,
}

/// The rows of one series on one day.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bucket {
    /// The series' values.
    pub key: Vec<Option<String>>,
    /// Days since 1970-01-01 (may lie outside the storable days).
    pub day: i64,
    /// Rows.
    pub rows: u64,
    /// Distinct timestamps (only read ones are exact; from the manifest it is `rows`).
    pub present: u64,
    /// Smallest timestamp.
    pub first: i64,
    /// Largest timestamp.
    pub last: i64,
}

/// The day a timestamp falls on (days since 1970-01-01; before it, negative).
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// `YYYY-MM-DD` of a day index.
pub fn date_text(day: i64) -> String {
    chrono::DateTime::from_timestamp(day.saturating_mul(86_400), 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("day {day}"))
}

/// Candles of a run starting at `from`, `count` long, `cadence` apart, whose open time falls
/// on `day`. Exact for any `i64` inputs (computed in `i128`).
pub fn slots_in_day(from: i64, count: u64, cadence: i64, day: i64) -> u64 {
    if cadence <= 0 || count == 0 {
        return 0;
    }
    let (f, c) = (i128::from(from), i128::from(cadence));
    let start = i128::from(day) * i128::from(DAY_MS);
    let ceil_div = |a: i128, b: i128| -> i128 { -((-a).div_euclid(b)) };
    let lo = ceil_div(start - f, c).max(0);
    let hi = ceil_div(start + i128::from(DAY_MS) - f, c).min(i128::from(count));
    u64::try_from((hi - lo).max(0)).unwrap_or(0)
}

/// How complete a candle day is, from the candles there and the ones missing.
pub fn classify_candles(present: u64, missing: u64) -> Completeness {
    match (present, missing) {
        (0, 0) => Completeness::NoData,
        (0, _) => Completeness::Missing,
        (_, 0) => Completeness::Full,
        _ => Completeness::Partial,
    }
}

/// How complete a presence day is, from its rows and whether rows were due.
pub fn classify_presence(rows: u64, due: bool) -> Completeness {
    match (rows, due) {
        (0, true) => Completeness::Missing,
        (0, false) => Completeness::NoData,
        _ => Completeness::Full,
    }
}

/// The completeness of a cell of several days: full or missing when every day with something
/// due is, [`Completeness::NoData`] when no day has, else partial.
pub fn combine(days: impl IntoIterator<Item = Completeness>) -> Completeness {
    let (mut full, mut missing, mut partial) = (false, false, false);
    for d in days {
        match d {
            Completeness::Full => full = true,
            Completeness::Missing => missing = true,
            Completeness::Partial => partial = true,
            Completeness::NoData => {}
        }
    }
    match (full, missing, partial) {
        (false, false, false) => Completeness::NoData,
        (true, false, false) => Completeness::Full,
        (false, true, false) => Completeness::Missing,
        _ => Completeness::Partial,
    }
}

/// How days are folded into cells: cell `i` holds days `start + i * per_cell ..` (`per_cell`
/// of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fold {
    /// The first day of the first cell.
    pub start: i64,
    /// Days per cell: 1, or whole weeks starting on Mondays.
    pub per_cell: i64,
    /// Cells.
    pub cells: usize,
}

impl Fold {
    /// Days `first ..= last` in at most `max_cells` cells (at least one): a day per cell when
    /// they fit, else as few whole weeks per cell as fit.
    pub fn new(first: i64, last: i64, max_cells: usize) -> Fold {
        let max_cells = max_cells.max(1) as i64;
        let days = last.saturating_sub(first).saturating_add(1).max(1);
        if days <= max_cells {
            return Fold {
                start: first,
                per_cell: 1,
                cells: days as usize,
            };
        }
        // 1970-01-01 was a Thursday: Monday is weekday 0.
        let start = first.saturating_sub(first.saturating_add(3).rem_euclid(7));
        let span = last.saturating_sub(start).saturating_add(1).max(1) as u64;
        let weeks = span.div_ceil(7 * max_cells as u64).max(1);
        let per_cell = weeks * 7;
        Fold {
            start,
            per_cell: per_cell as i64,
            cells: span.div_ceil(per_cell) as usize,
        }
    }

    /// The days of cell `i`.
    pub fn days(&self, i: usize) -> std::ops::Range<i64> {
        let start = self.start + i as i64 * self.per_cell;
        start..start + self.per_cell
    }

    /// Whether cell `i` holds the first of a month (of a January with `years`).
    pub fn starts_month(&self, i: usize, years: bool) -> bool {
        use chrono::Datelike;
        self.days(i).any(|d| {
            chrono::DateTime::from_timestamp(d.saturating_mul(86_400), 0)
                .is_some_and(|t| t.day() == 1 && (!years || t.month() == 1))
        })
    }

    /// One completeness per cell for `series` (its days outside the cells are left out).
    pub fn cells_of(&self, series: &Series) -> Vec<Completeness> {
        let mut by_cell: Vec<Vec<Completeness>> = vec![vec![]; self.cells];
        for d in &series.days {
            let i = (d.index - self.start).div_euclid(self.per_cell);
            if let Some(cell) = usize::try_from(i).ok().and_then(|i| by_cell.get_mut(i)) {
                cell.push(d.status);
            }
        }
        by_cell.into_iter().map(combine).collect()
    }
}

/// A month timeframe's count (`1M`, `3mo`), if `timeframe` is one.
fn months_of(timeframe: &str) -> Option<i64> {
    if cadence_ms(timeframe).is_some() || crate::timestamp::timeframe_cadence(timeframe).is_err() {
        return None;
    }
    let n = timeframe
        .strip_suffix("mo")
        .or_else(|| timeframe.strip_suffix('M'))?;
    n.parse::<i64>().ok().filter(|n| *n >= 1)
}

/// Whether a candle of an `n`-month timeframe whose first candle opened on `first` day opens
/// on `day`: the first day of every `n`th month from the first candle's month.
fn month_candle_due(day: i64, first: i64, n: i64) -> bool {
    use chrono::Datelike;
    let date = |d: i64| chrono::DateTime::from_timestamp(d.saturating_mul(86_400), 0);
    let (Some(d), Some(f)) = (date(day), date(first)) else {
        return false;
    };
    let months =
        |x: &chrono::DateTime<chrono::Utc>| i64::from(x.year()) * 12 + i64::from(x.month0());
    d.day() == 1 && (months(&d) - months(&f)).rem_euclid(n) == 0
}

/// What is due on a series' days.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Due {
    /// Candles every `cadence` ms: missing ones come from the gaps.
    Candles(i64),
    /// The first day of every `n`th month, from the first candle's.
    Months(i64),
    /// Rows on every day from the first to the last.
    EveryDay,
}

fn due_of(timeframe: Option<&str>) -> Due {
    match timeframe {
        Some(tf) => match (cadence_ms(tf), months_of(tf)) {
            (Some(c), _) => Due::Candles(c),
            (None, Some(n)) => Due::Months(n),
            (None, None) => Due::EveryDay,
        },
        None => Due::EveryDay,
    }
}

/// Missing candles per day of one series' gaps, on the days `range` holds.
fn missing_by_day(gaps: &[&SeriesGap], range: (i64, i64)) -> BTreeMap<i64, u64> {
    let mut out = BTreeMap::new();
    for g in gaps {
        let first = day_of(g.from).max(range.0);
        let last = day_of(g.to).min(range.1);
        for day in first..=last {
            let n = slots_in_day(g.from, g.missing, g.cadence, day);
            if n > 0 {
                *out.entry(day).or_insert(0) += n;
            }
        }
    }
    out
}

/// One series' coverage on the days `range` from its buckets (on storable days) and gaps.
fn series_coverage(
    columns: &[String],
    key: Vec<Option<String>>,
    buckets: &BTreeMap<i64, Bucket>,
    gaps: &[&SeriesGap],
    range: (i64, i64),
) -> Option<Series> {
    let first_timestamp = buckets.values().map(|b| b.first).min()?;
    let last_timestamp = buckets.values().map(|b| b.last).max()?;
    let timeframe = columns
        .iter()
        .position(|c| c == "timeframe")
        .and_then(|i| key[i].as_deref());
    let due = due_of(timeframe);
    let (first_day, last_day) = (day_of(first_timestamp), day_of(last_timestamp));
    let missing = match due {
        Due::Candles(_) => missing_by_day(gaps, range),
        _ => BTreeMap::new(),
    };
    let mut days = vec![];
    for index in range.0.max(first_day)..=range.1.min(last_day) {
        let b = buckets.get(&index);
        let rows = b.map_or(0, |b| b.rows);
        let day = match due {
            Due::Candles(_) => {
                let present = b.map_or(0, |b| b.present);
                let lost = missing.get(&index).copied().unwrap_or(0);
                Day {
                    date: date_text(index),
                    index,
                    rows,
                    expected: Some(present + lost),
                    present: Some(present),
                    missing: Some(lost),
                    status: classify_candles(present, lost),
                }
            }
            Due::Months(n) => presence_day(index, rows, month_candle_due(index, first_day, n)),
            Due::EveryDay => presence_day(index, rows, true),
        };
        if day.status != Completeness::NoData {
            days.push(day);
        }
    }
    let totals = totals_of(&days, matches!(due, Due::Candles(_)));
    Some(Series {
        key: columns.iter().cloned().zip(key.iter().cloned()).collect(),
        label: label_of(&key),
        cadence_ms: match due {
            Due::Candles(c) => Some(c),
            _ => None,
        },
        first_timestamp,
        last_timestamp,
        days,
        totals,
    })
}

fn presence_day(index: i64, rows: u64, due: bool) -> Day {
    Day {
        date: date_text(index),
        index,
        rows,
        expected: None,
        present: None,
        missing: None,
        status: classify_presence(rows, due),
    }
}

fn label_of(key: &[Option<String>]) -> String {
    if key.is_empty() {
        return "(all)".into();
    }
    key.iter()
        .map(|v| v.as_deref().unwrap_or("null"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn totals_of(days: &[Day], candles: bool) -> Totals {
    let mut t = Totals {
        expected: candles.then_some(0),
        present: candles.then_some(0),
        missing: candles.then_some(0),
        ..Default::default()
    };
    for d in days {
        t.rows += d.rows;
        add_opt(&mut t.expected, d.expected);
        add_opt(&mut t.present, d.present);
        add_opt(&mut t.missing, d.missing);
        match d.status {
            Completeness::Full => t.days_full += 1,
            Completeness::Partial => t.days_partial += 1,
            Completeness::Missing => t.days_missing += 1,
            Completeness::NoData => {}
        }
    }
    t
}

fn add_opt(sum: &mut Option<u64>, v: Option<u64>) {
    if let Some(v) = v {
        *sum = Some(sum.unwrap_or(0).saturating_add(v));
    }
}

fn add_totals(sum: &mut Totals, t: &Totals) {
    sum.rows = sum.rows.saturating_add(t.rows);
    add_opt(&mut sum.expected, t.expected);
    add_opt(&mut sum.present, t.present);
    add_opt(&mut sum.missing, t.missing);
    sum.days_full += t.days_full;
    sum.days_partial += t.days_partial;
    sum.days_missing += t.days_missing;
}

/// Puts buckets and gaps together: the range shown is `wanted` (clipped to the storable
/// days) or the first to the last day with data. Buckets outside the storable days count in
/// [`Coverage::rows_without_day`].
pub(crate) fn assemble(
    columns: &[String],
    buckets: Vec<Bucket>,
    gaps: &[SeriesGap],
    wanted: (Option<i64>, Option<i64>),
) -> Coverage {
    let mut out = Coverage {
        series_columns: columns.to_vec(),
        ..Default::default()
    };
    let mut by_series: BTreeMap<Vec<Option<String>>, BTreeMap<i64, Bucket>> = BTreeMap::new();
    for b in buckets {
        if !(0..=MAX_DAY).contains(&b.day) {
            out.rows_without_day = out.rows_without_day.saturating_add(b.rows);
            continue;
        }
        let days = by_series.entry(b.key.clone()).or_default();
        match days.get_mut(&b.day) {
            Some(have) => {
                have.rows += b.rows;
                have.present += b.present;
                have.first = have.first.min(b.first);
                have.last = have.last.max(b.last);
            }
            None => {
                days.insert(b.day, b);
            }
        }
    }
    let data_days = by_series.values().flat_map(|d| d.keys().copied());
    let (lo, hi) = (data_days.clone().min(), data_days.max());
    let clip = |d: i64| d.clamp(0, MAX_DAY);
    let range = match (wanted.0.map(clip).or(lo), wanted.1.map(clip).or(hi)) {
        (Some(a), Some(b)) if a <= b => (a, b),
        _ => return out,
    };
    out.range = Some(range);
    out.from = Some(date_text(range.0));
    out.to = Some(date_text(range.1));
    out.days = (range.1 - range.0 + 1) as u64;
    for (key, days) in by_series {
        let mine: Vec<&SeriesGap> = gaps.iter().filter(|g| g.key == key).collect();
        if let Some(s) = series_coverage(columns, key, &days, &mine, range) {
            add_totals(&mut out.totals, &s.totals);
            out.series.push(s);
        }
    }
    out
}

/// One bucket per file from the manifest alone, when every file holds one series (all the
/// series columns are partition columns) and has a time range within one day; `None` else.
pub(crate) fn manifest_buckets(
    files: &[&FileEntry],
    columns: &[String],
    partition_columns: &[String],
) -> Option<Vec<Bucket>> {
    if !columns.iter().all(|c| partition_columns.contains(c)) {
        return None;
    }
    files
        .iter()
        .map(|f| {
            let (first, last) = (f.min_timestamp?, f.max_timestamp?);
            (day_of(first) == day_of(last)).then(|| Bucket {
                key: columns
                    .iter()
                    .map(|c| f.partition.value(c).map(String::from))
                    .collect(),
                day: day_of(first),
                rows: f.rows,
                present: f.rows,
                first,
                last,
            })
        })
        .collect()
}

fn polars_err(what: &str) -> impl FnOnce(PolarsError) -> Error + '_ {
    move |e| Error::polars(format!("coverage: {what}"))(e)
}

/// Rows, distinct timestamps and time range per series and day, read from `lf` (the series
/// columns and the timestamp `ts`).
fn read_buckets(lf: LazyFrame, columns: &[String], ts: &str) -> Result<(Vec<Bucket>, u64)> {
    let mut by: Vec<Expr> = columns.iter().map(|c| col(c.as_str())).collect();
    by.push(col("__day"));
    let df = lf
        .with_column(col(ts).floor_div(lit(DAY_MS)).alias("__day"))
        .group_by(by)
        .agg([
            len().cast(DataType::UInt64).alias("__rows"),
            col(ts).n_unique().cast(DataType::UInt64).alias("__present"),
            col(ts).min().alias("__first"),
            col(ts).max().alias("__last"),
        ])
        .collect()
        .map_err(polars_err("read timestamps"))?;
    let i64s = |name: &str| -> Result<Int64Chunked> {
        df.column(name)
            .and_then(|c| c.cast(&DataType::Int64))
            .and_then(|c| c.i64().cloned())
            .map_err(polars_err("read timestamps"))
    };
    let (day, rows, present) = (i64s("__day")?, i64s("__rows")?, i64s("__present")?);
    let (first, last) = (i64s("__first")?, i64s("__last")?);
    let mut out = vec![];
    let mut undated = 0u64;
    for i in 0..df.height() {
        let n = rows.get(i).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        let (Some(d), Some(f), Some(l)) = (day.get(i), first.get(i), last.get(i)) else {
            undated += n;
            continue;
        };
        let key = columns
            .iter()
            .map(|c| {
                df.column(c)
                    .ok()
                    .and_then(|col| col.get(i).ok())
                    .and_then(|v| crate::partition::value_text(&v))
            })
            .collect();
        out.push(Bucket {
            key,
            day: d,
            rows: n,
            present: present
                .get(i)
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            first: f,
            last: l,
        });
    }
    Ok((out, undated))
}

fn has_column(m: &Manifest, name: &str) -> bool {
    m.schema
        .iter()
        .chain(&m.partition_columns)
        .any(|f| f.name == name)
}

impl Dataset {
    /// Which days each series holds and where candles are missing (see the module docs),
    /// from the manifest and, where needed, the timestamp column alone.
    ///
    /// ```no_run
    /// use pqdm::maintain::coverage::CoverageOptions;
    /// let ds = pqdm::Dataset::open("target/demo/klines")?;
    /// let c = ds.coverage(&CoverageOptions::default(), &pqdm::progress::Progress::hidden())?;
    /// for s in &c.series {
    ///     println!("{}: {:?} candles missing", s.label, s.totals.missing);
    /// }
    /// # Ok::<(), pqdm::Error>(())
    /// ```
    pub fn coverage(&self, opts: &CoverageOptions, progress: &Progress) -> Result<Coverage> {
        let m = self.manifest()?;
        let ts = m.timestamp_column.clone();
        if ts.is_empty() || !has_column(&m, &ts) {
            return Err(Error::Dataset {
                path: self.base().to_path_buf(),
                message: "coverage needs a timestamp column, and this dataset has none".into(),
            });
        }
        let partitions: Vec<String> = m.partition_columns.iter().map(|p| p.name.clone()).collect();
        if let Some(f) = opts
            .filters
            .iter()
            .find(|f| !partitions.contains(&f.column))
        {
            return Err(Error::Options(format!(
                "coverage filter `{}`: only partition columns can be filtered ({}); \
                 the first and last day choose the days shown",
                f.text,
                partitions.join(", ")
            )));
        }
        if let (Some(a), Some(b)) = (opts.from, opts.to)
            && day_of(a) > day_of(b)
        {
            return Err(Error::Options(format!(
                "coverage: the first day {} is after the last day {}",
                date_text(day_of(a)),
                date_text(day_of(b))
            )));
        }
        let columns: Vec<String> = SERIES_COLUMNS
            .iter()
            .filter(|c| has_column(&m, c))
            .map(|c| c.to_string())
            .collect();
        let scan = ScanOptions {
            columns: Some([columns.clone(), vec![ts.clone()]].concat()),
            filters: opts.filters.clone(),
            ..Default::default()
        };
        let plan = self.plan(&scan)?;
        let planned: std::collections::HashSet<&std::path::PathBuf> = plan.files.iter().collect();
        let files: Vec<&FileEntry> = m
            .files
            .iter()
            .zip(self.file_paths(&m))
            .filter(|(_, p)| planned.contains(p))
            .map(|(f, _)| f)
            .collect();
        let candles = columns.iter().any(|c| c == "timeframe");
        let spinner = progress.spinner("reading timestamps");
        let from_manifest = match candles {
            true => None,
            false => manifest_buckets(&files, &columns, &partitions),
        };
        let (buckets, undated, files_read) = match from_manifest {
            Some(b) => (b, 0, 0),
            None => {
                let (b, undated) = read_buckets(self.scan(&scan)?, &columns, &ts)?;
                (b, undated, files.len() as u64)
            }
        };
        let gaps = match candles {
            true => candle_gaps(self.scan(&scan)?, &columns, &ts)?,
            false => vec![],
        };
        drop(spinner);
        let mut out = assemble(
            &columns,
            buckets,
            &gaps,
            (opts.from.map(day_of), opts.to.map(day_of)),
        );
        out.version = m.version;
        out.kind = m.kind.clone();
        out.rows_without_day = out.rows_without_day.saturating_add(undated);
        out.files_read = files_read;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;
    /// 2024-01-05, days since 1970-01-01.
    const D: i64 = 19_727;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn key(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|s| Some(s.to_string())).collect()
    }

    /// A bucket of `n` candles `cadence` apart from `first`.
    fn run(k: &[&str], first: i64, n: u64, cadence: i64) -> Bucket {
        Bucket {
            key: key(k),
            day: day_of(first),
            rows: n,
            present: n,
            first,
            last: first + (n as i64 - 1) * cadence,
        }
    }

    fn gap(k: &[&str], from: i64, missing: u64, cadence: i64) -> SeriesGap {
        SeriesGap {
            key: key(k),
            from,
            to: from + (missing as i64 - 1) * cadence,
            missing,
            cadence,
        }
    }

    #[test]
    fn days_bucket_by_utc_midnight_at_any_timestamp() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY - 1), 0);
        assert_eq!(day_of(DAY), 1);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(1_704_412_800_000), D);
        assert_eq!(day_of(i64::MIN), i64::MIN.div_euclid(DAY));
        assert_eq!(day_of(i64::MAX), i64::MAX / DAY);
        assert_eq!(date_text(D), "2024-01-05");
        assert_eq!(date_text(MAX_DAY), "2262-04-11");
        assert!(date_text(i64::MAX / DAY).starts_with("day "));
    }

    #[test]
    fn missing_candles_fall_on_the_day_they_open() {
        // 1m candles missing from 23:58 to 00:02 the next day: 2 on the first day, 3 on the next.
        let from = (D + 1) * DAY - 2 * 60_000;
        assert_eq!(slots_in_day(from, 5, 60_000, D), 2);
        assert_eq!(slots_in_day(from, 5, 60_000, D + 1), 3);
        assert_eq!(slots_in_day(from, 5, 60_000, D + 2), 0);
        assert_eq!(slots_in_day(from, 5, 60_000, D - 1), 0);
        // A whole day of 1m candles, and of 1d and 1w ones.
        assert_eq!(slots_in_day(D * DAY, 1440, 60_000, D), 1440);
        assert_eq!(slots_in_day(D * DAY, 3, DAY, D + 1), 1);
        assert_eq!(slots_in_day(D * DAY, 2, 7 * DAY, D + 3), 0);
        assert_eq!(slots_in_day(D * DAY, 2, 7 * DAY, D + 7), 1);
        // Nothing overflows at the extremes.
        assert_eq!(slots_in_day(i64::MIN, u64::MAX, 1, 0), DAY as u64);
        assert_eq!(
            slots_in_day(i64::MAX, u64::MAX, i64::MAX, i64::MAX / DAY),
            1
        );
        assert_eq!(slots_in_day(0, 5, 0, 0), 0);
    }

    #[test]
    fn completeness_of_days_and_cells() {
        use Completeness::*;
        assert_eq!(classify_candles(1440, 0), Full);
        assert_eq!(classify_candles(1430, 10), Partial);
        assert_eq!(classify_candles(0, 1440), Missing);
        assert_eq!(classify_candles(0, 0), NoData);
        assert_eq!(classify_presence(5, true), Full);
        assert_eq!(classify_presence(5, false), Full);
        assert_eq!(classify_presence(0, true), Missing);
        assert_eq!(classify_presence(0, false), NoData);
        assert_eq!(combine([Full, NoData, Full]), Full);
        assert_eq!(combine([Missing, NoData]), Missing);
        assert_eq!(combine([Full, Missing]), Partial);
        assert_eq!(combine([Partial]), Partial);
        assert_eq!(combine([NoData, NoData]), NoData);
        assert_eq!(combine([]), NoData);
    }

    #[test]
    fn days_fold_into_whole_weeks_from_a_monday_when_they_do_not_fit() {
        assert_eq!(
            Fold::new(D, D + 9, 10),
            Fold {
                start: D,
                per_cell: 1,
                cells: 10
            }
        );
        assert_eq!(Fold::new(D, D, 1).cells, 1);
        // 2024-01-05 is a Friday: the first cell starts on Monday 2024-01-01.
        let f = Fold::new(D, D + 362, 60);
        assert_eq!((f.start, f.per_cell), (D - 4, 7));
        assert_eq!(date_text(f.start), "2024-01-01");
        assert!(f.cells <= 60 && f.days(f.cells - 1).contains(&(D + 362)));
        let f = Fold::new(D, D + 362, 20);
        assert_eq!(f.per_cell, 21);
        assert!(f.cells <= 20);
        // Every storable day in a few cells; a silly width still gives one cell per call.
        let f = Fold::new(0, MAX_DAY, 10);
        assert!(f.cells <= 10 && f.days(f.cells - 1).contains(&MAX_DAY));
        assert_eq!(Fold::new(D, D + 3, 0).cells, 1);
    }

    #[test]
    fn cells_combine_the_days_they_hold() {
        let none: [&str; 0] = [];
        // Rows on D (a Friday), D+2 and D+10: the days between are missing.
        let buckets = [D, D + 2, D + 10]
            .map(|d| run(&none, d * DAY, 1, 1))
            .to_vec();
        let c = assemble(&[], buckets, &[], (None, None));
        use Completeness::*;
        let daily = Fold::new(D, D + 10, 11);
        let mut want = vec![Full, Missing, Full];
        want.extend([Missing; 7]);
        want.push(Full);
        assert_eq!(daily.cells_of(&c.series[0]), want);
        // Weeks from Monday D-4: the first week holds no-data days, full and missing ones.
        let weekly = Fold::new(D, D + 10, 3);
        assert_eq!((weekly.start, weekly.per_cell, weekly.cells), (D - 4, 7, 3));
        assert_eq!(weekly.cells_of(&c.series[0]), [Partial, Missing, Full]);
        assert!(weekly.starts_month(0, false) && !weekly.starts_month(1, false));
        assert!(
            weekly.starts_month(0, true),
            "2024-01-01 is in the first week"
        );
    }

    #[test]
    fn the_manifest_answers_when_every_file_holds_one_day_of_one_series() {
        let entry = |min: Option<i64>, max: Option<i64>| FileEntry {
            path: "x".into(),
            partition: crate::manifest::PartitionValues::new([("symbol", Some("BTC/USDT"))]),
            rows: 7,
            bytes: 1,
            min_timestamp: min,
            max_timestamp: max,
            key_ranges: BTreeMap::new(),
            checksum: String::new(),
            added_in: 1,
            null_timestamps: None,
        };
        let parts = cols(&["symbol", "year"]);
        let one_day = entry(Some(D * DAY), Some(D * DAY + 5));
        let b = manifest_buckets(&[&one_day], &cols(&["symbol"]), &parts).unwrap();
        assert_eq!(b[0].key, key(&["BTC/USDT"]));
        assert_eq!((b[0].day, b[0].rows), (D, 7));
        // Extremes: one day each, far outside the storable days, without overflow.
        let low = entry(Some(i64::MIN), Some(i64::MIN));
        let high = entry(Some(i64::MAX), Some(i64::MAX));
        let b = manifest_buckets(&[&low, &high], &cols(&["symbol"]), &parts).unwrap();
        let c = assemble(&cols(&["symbol"]), b, &[], (None, None));
        assert_eq!((c.rows_without_day, c.series.len(), c.range), (14, 0, None));
        // A file spanning days, without statistics, or a series column no partition holds:
        // read the data.
        let wide = entry(Some(i64::MIN), Some(i64::MAX));
        assert_eq!(manifest_buckets(&[&wide], &cols(&["symbol"]), &parts), None);
        assert_eq!(
            manifest_buckets(&[&entry(None, None)], &cols(&["symbol"]), &parts),
            None
        );
        assert_eq!(
            manifest_buckets(&[&one_day], &cols(&["exchange"]), &parts),
            None
        );
        assert_eq!(
            manifest_buckets(&[], &cols(&["symbol"]), &parts),
            Some(vec![])
        );
    }

    #[test]
    fn an_empty_dataset_shows_nothing() {
        let c = assemble(&cols(&["symbol"]), vec![], &[], (None, None));
        assert_eq!((c.range, c.days, c.series.len()), (None, 0, 0));
        assert_eq!(c.totals, Totals::default());
        // A range asked for alone shows nothing either (no series).
        let c = assemble(&cols(&["symbol"]), vec![], &[], (Some(D), Some(D + 2)));
        assert_eq!((c.days, c.series.len()), (3, 0));
    }

    #[test]
    fn a_full_day_and_gaps_counted_per_day() {
        let k = ["BINANCE", "BTCUSDT", "1m"];
        let columns = cols(&["exchange", "symbol", "timeframe"]);
        // Day D full; day D+1 loses 10 candles at 12:00; day D+2 lost; day D+3 full.
        let m = 60_000;
        let buckets = vec![
            run(&k, D * DAY, 1440, m),
            run(&k, (D + 1) * DAY, 720, m),
            run(&k, (D + 1) * DAY + 730 * m, 710, m),
            run(&k, (D + 3) * DAY, 1440, m),
        ];
        let gaps = [
            gap(&k, (D + 1) * DAY + 720 * m, 10, m),
            gap(&k, (D + 2) * DAY, 1440, m),
        ];
        let c = assemble(&columns, buckets, &gaps, (None, None));
        assert_eq!((c.from.as_deref(), c.days), (Some("2024-01-05"), 4));
        let s = &c.series[0];
        assert_eq!(s.label, "BINANCE BTCUSDT 1m");
        assert_eq!(s.cadence_ms, Some(m));
        let status: Vec<_> = s.days.iter().map(|d| d.status).collect();
        use Completeness::*;
        assert_eq!(status, [Full, Partial, Missing, Full]);
        let missing: Vec<_> = s.days.iter().map(|d| d.missing.unwrap()).collect();
        assert_eq!(missing, [0, 10, 1440, 0]);
        assert!(s.days.iter().all(|d| d.expected == Some(1440)));
        assert_eq!(s.totals.missing, Some(1450));
        assert_eq!(s.totals.present, Some(4 * 1440 - 1450));
        assert_eq!(
            (
                s.totals.days_full,
                s.totals.days_partial,
                s.totals.days_missing
            ),
            (2, 1, 1)
        );
        assert_eq!(c.totals, s.totals);
        // Clipped to a range: the days outside are not shown, a day before the series is no data.
        let c = assemble(
            &columns,
            vec![run(&k, D * DAY, 1440, m)],
            &[],
            (Some(D - 2), Some(D)),
        );
        assert_eq!((c.days, c.series[0].days.len()), (3, 1));
    }

    #[test]
    fn coarse_and_month_timeframes_are_due_on_their_own_days() {
        let w = 7 * DAY;
        let weekly = ["BINANCE", "BTCUSDT", "1w"];
        // Candles on D, D+14 (D+7 missing).
        let buckets = vec![
            run(&weekly, D * DAY, 1, w),
            run(&weekly, (D + 14) * DAY, 1, w),
        ];
        let gaps = [gap(&weekly, (D + 7) * DAY, 1, w)];
        let columns = cols(&["exchange", "symbol", "timeframe"]);
        let c = assemble(&columns, buckets, &gaps, (None, None));
        let s = &c.series[0];
        let shown: Vec<_> = s.days.iter().map(|d| (d.index - D, d.status)).collect();
        use Completeness::*;
        assert_eq!(shown, [(0, Full), (7, Missing), (14, Full)]);
        assert_eq!(s.totals.expected, Some(3));
        // 1M: due on the first of each month; 2024-02-01 is missing.
        let monthly = ["BINANCE", "BTCUSDT", "1M"];
        let jan = 19_723; // 2024-01-01
        let mar = jan + 31 + 29;
        let buckets = vec![
            run(&monthly, jan * DAY, 1, DAY),
            run(&monthly, mar * DAY, 1, DAY),
        ];
        let c = assemble(&columns, buckets, &[], (None, None));
        let s = &c.series[0];
        assert_eq!(s.cadence_ms, None);
        let shown: Vec<_> = s
            .days
            .iter()
            .map(|d| (date_text(d.index), d.status))
            .collect();
        assert_eq!(
            shown,
            [
                ("2024-01-01".to_string(), Full),
                ("2024-02-01".to_string(), Missing),
                ("2024-03-01".to_string(), Full)
            ]
        );
    }

    #[test]
    fn presence_series_without_series_columns_or_with_odd_symbols() {
        // No series column at all: one series, "(all)"; a day between two with rows is missing.
        let none: [&str; 0] = [];
        let buckets = vec![run(&none, D * DAY, 3, 1), run(&none, (D + 2) * DAY, 3, 1)];
        let c = assemble(&[], buckets, &[], (None, None));
        assert_eq!(c.series[0].label, "(all)");
        let status: Vec<_> = c.series[0].days.iter().map(|d| d.status).collect();
        use Completeness::*;
        assert_eq!(status, [Full, Missing, Full]);
        assert_eq!(c.totals.expected, None);
        assert_eq!((c.totals.rows, c.totals.days_missing), (6, 1));
        // Symbols with `/`, `%` and 300 bytes are labels like any other, one series each.
        let long = "X".repeat(300);
        let buckets = vec![
            run(&["BTC/USDT"], D * DAY, 1, 1),
            run(&["100%"], D * DAY, 1, 1),
            run(&[long.as_str()], D * DAY, 1, 1),
        ];
        let c = assemble(&cols(&["symbol"]), buckets, &[], (None, None));
        let labels: Vec<_> = c.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["100%", "BTC/USDT", long.as_str()]);
    }
}
