//! Input files for ingest: CSV (header sniffed), CSV inside `.zip` (Binance archives),
//! `.csv.gz`, Parquet, and folders of them; Binance file names give symbol and timeframe.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::schema::{ColType, Kind};

/// Default limit on the bytes one archive entry may inflate to (`PQDM_MAX_UNZIP_BYTES`).
pub const DEFAULT_MAX_UNZIP_BYTES: u64 = 8 << 30;

/// Timeframes that Binance file names carry.
const TIMEFRAMES: &[&str] = &[
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
    "1mo",
];

/// Binance's candle folders: `klines` and its price variants, which share its file names.
const KLINE_TYPES: &[&str] = &[
    "klines",
    "markPriceKlines",
    "indexPriceKlines",
    "premiumIndexKlines",
];

/// Binance data types named in file names, with the pqdm kind each is stored as (if any).
const NAMED_TYPES: &[(&str, Option<&str>)] = &[
    ("aggTrades", Some("aggtrades")),
    ("trades", Some("trades")),
    ("fundingRate", Some("futures")),
    ("bookTicker", None),
    ("bookDepth", None),
    ("metrics", None),
    ("liquidationSnapshot", None),
    ("BVOLIndex", None),
    ("EOHSummary", None),
];

/// What a Binance public-data path says: the market from its folders (`.../spot/...`,
/// `.../futures/um/...`, `.../futures/cm/...`, `.../option/...`), and from the file name
/// (`BTCUSDT-1m-2024-01-05.zip`, `BTCUSD_PERP-aggTrades-2024-01.zip`) the symbol, the data type
/// with its timeframe, and the period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameHints {
    /// The symbol, in upper case (`BTCUSDT`, `BTCUSD_PERP`, `BTCUSDT_240329`).
    pub symbol: Option<String>,
    /// The candle timeframe (`1m`).
    pub timeframe: Option<String>,
    /// The kind the name implies (`klines`, `aggtrades`, `trades`, `futures`); `None` for
    /// Binance data types pqdm has no kind for (`bookTicker`, `metrics`, ...).
    pub kind: Option<String>,
    /// Binance's data type (`klines`, `markPriceKlines`, `aggTrades`, `bookTicker`, ...).
    pub data_type: Option<String>,
    /// The market, from the folders: `spot`, `um`, `cm` or `option`.
    pub market: Option<String>,
    /// The period the file covers (`2024-01-05` daily, `2024-01` monthly).
    pub period: Option<String>,
}

/// Whether `parts` (split at `-`) are `YYYY-MM` or `YYYY-MM-DD`.
fn is_period(parts: &[&str]) -> bool {
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    match parts {
        [y, m] => digits(y, 4) && digits(m, 2),
        [y, m, d] => digits(y, 4) && digits(m, 2) && digits(d, 2),
        _ => false,
    }
}

fn is_symbol(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('-')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The market and the candle data type from the folders above a file (the nearest wins).
fn folder_hints(path: &Path) -> (Option<String>, Option<String>) {
    let dirs: Vec<String> = path
        .parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut market = None;
    let mut kline_type = None;
    for (i, dir) in dirs.iter().enumerate().rev() {
        let parent = i.checked_sub(1).map(|j| dirs[j].as_str());
        if market.is_none() {
            market = match (parent, dir.as_str()) {
                (_, "spot") => Some("spot"),
                (Some("futures"), "um") => Some("um"),
                (Some("futures"), "cm") => Some("cm"),
                (_, "option" | "options") => Some("option"),
                _ => None,
            };
        }
        if kline_type.is_none() && KLINE_TYPES.contains(&dir.as_str()) {
            kline_type = Some(dir.clone());
        }
    }
    (market.map(String::from), kline_type)
}

impl NameHints {
    /// Reads the hints from a path; names that are not Binance's give none, folders that are
    /// not Binance's give no market.
    pub fn from_path(path: &Path) -> NameHints {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let stem = name.split('.').next().unwrap_or_default();
        let parts: Vec<&str> = stem.split('-').collect();
        // SYMBOL-TYPE-YYYY-MM[-DD][-anything], where an option symbol may hold `-` itself.
        let is_type = |t: &str| TIMEFRAMES.contains(&t) || NAMED_TYPES.iter().any(|(n, _)| *n == t);
        let period_at = |i: usize| {
            [3, 2]
                .into_iter()
                .find(|n| parts.len() > i + n && is_period(&parts[i + 1..=i + n]))
        };
        let Some((type_at, period_len)) = (1..parts.len())
            .filter(|i| is_type(parts[*i]))
            .find_map(|i| period_at(i).map(|n| (i, n)))
        else {
            return NameHints::default();
        };
        let symbol = parts[..type_at].join("-");
        if !is_symbol(&symbol) {
            return NameHints::default();
        }
        let (market, kline_type) = folder_hints(path);
        let token = parts[type_at];
        let mut hints = NameHints {
            symbol: Some(symbol.to_ascii_uppercase()),
            market,
            period: Some(parts[type_at + 1..=type_at + period_len].join("-")),
            ..Default::default()
        };
        if TIMEFRAMES.contains(&token) {
            hints.timeframe = Some(token.to_string());
            hints.kind = Some("klines".into());
            hints.data_type = Some(kline_type.unwrap_or_else(|| "klines".into()));
        } else if let Some((t, kind)) = NAMED_TYPES.iter().find(|(t, _)| *t == token) {
            hints.kind = kind.map(String::from);
            hints.data_type = Some(t.to_string());
        } else {
            return NameHints::default();
        }
        hints
    }

    /// The exchange value that keeps markets and candle types apart: `BINANCE` for spot (and
    /// where the folders do not say), `BINANCE_UM`, `BINANCE_CM`, `BINANCE_OPTION`, and for
    /// the price-kline variants a suffix (`BINANCE_UM_MARKPRICE`, `_INDEXPRICE`, `_PREMIUMINDEX`).
    pub fn exchange(&self) -> Option<String> {
        self.symbol.as_ref()?;
        let mut out = String::from("BINANCE");
        if let Some(m) = self.market.as_deref().filter(|m| *m != "spot") {
            out.push('_');
            out.push_str(&m.to_ascii_uppercase());
        }
        if let Some(variant) = self
            .data_type
            .as_deref()
            .filter(|t| *t != "klines")
            .and_then(|t| t.strip_suffix("Klines"))
        {
            out.push('_');
            out.push_str(&variant.to_ascii_uppercase());
        }
        Some(out)
    }

    /// The constants these hints give (`symbol`, `timeframe`, and `exchange`, see
    /// [`NameHints::exchange`]).
    pub fn constants(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let (Some(s), Some(e)) = (&self.symbol, self.exchange()) {
            out.insert("symbol".into(), s.clone());
            out.insert("exchange".into(), e);
        }
        if let Some(t) = &self.timeframe {
            out.insert("timeframe".into(), t.clone());
        }
        out
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_hidden_name)
}

/// Names of files and folders that are no one's data (`_SUCCESS`, `.crc`, `_temporary`).
fn is_hidden_name(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

fn supported(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    [".csv", ".csv.gz", ".zip", ".parquet", ".pq"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Expands folders into the supported files below them (sorted; hidden names skipped).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for p in paths {
        if let Some(objects) = crate::storage::expand_objects(p, supported, is_hidden_name)? {
            out.extend(objects);
            continue;
        }
        let meta = std::fs::metadata(p).map_err(Error::io(p))?;
        if meta.is_dir() {
            let mut found = vec![];
            collect_dir(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else if supported(p) {
            out.push(p.clone());
        } else {
            return Err(Error::Input {
                path: p.clone(),
                message: "unsupported input (expected .csv, .csv.gz, .zip or .parquet)".into(),
            });
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = entry.map_err(Error::io(dir))?.path();
        if is_hidden(&path) {
            continue;
        }
        if path.is_dir() {
            collect_dir(&path, out)?;
        } else if supported(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// An input made ready to read: Parquet as it is, archives inflated to plain CSV.
#[derive(Clone, Debug)]
pub enum Prepared {
    /// A Parquet file.
    Parquet(PathBuf),
    /// A plain CSV file; `shape` is its header line, or its field count when it has none,
    /// so that files of one shape can be read by one scan.
    Csv {
        /// The plain CSV (inflated from `origin` where that is an archive, without its BOM and
        /// blank lines where it had them).
        file: PathBuf,
        /// The file the user named.
        origin: PathBuf,
        /// Whether the first line is a header.
        header: bool,
        /// Header line or field count.
        shape: String,
        /// The field separator.
        separator: u8,
        /// Blank lines left out.
        blank_lines: u64,
    },
}

impl Prepared {
    /// The file the user named.
    pub fn origin(&self) -> &Path {
        match self {
            Prepared::Parquet(p) => p,
            Prepared::Csv { origin, .. } => origin,
        }
    }
}

/// Inflates archives into `tmp` and sniffs CSV headers; Parquet footers are checked here.
pub fn prepare(path: &Path, tmp: &Path) -> Result<Prepared> {
    if let Some(local) = crate::storage::fetch_object(path, tmp)? {
        return Ok(match prepare(&local, tmp)? {
            Prepared::Csv {
                file,
                header,
                shape,
                separator,
                blank_lines,
                ..
            } => Prepared::Csv {
                file,
                origin: path.to_path_buf(),
                header,
                shape,
                separator,
                blank_lines,
            },
            parquet => parquet,
        });
    }
    let lower = path.to_string_lossy().to_ascii_lowercase();
    if lower.ends_with(".parquet") || lower.ends_with(".pq") {
        let mut file = File::open(path).map_err(Error::io(path))?;
        polars_parquet::read::read_metadata(&mut file).map_err(|e| Error::Input {
            path: path.to_path_buf(),
            message: format!("not a readable Parquet file: {e}"),
        })?;
        return Ok(Prepared::Parquet(path.to_path_buf()));
    }
    let file = if lower.ends_with(".zip") {
        unzip_single_csv(path, tmp)?
    } else if lower.ends_with(".gz") {
        gunzip(path, tmp)?
    } else {
        path.to_path_buf()
    };
    let (file, blank_lines) = without_blank_lines(&file, path, tmp)?;
    let (header, first) = first_line(&file, path)?;
    let sniffed = sniff(&first);
    // Lines too long matter without a header (Polars refuses them with one); misplaced quotes
    // either way.
    let fields = if header { usize::MAX } else { sniffed.fields };
    refuse_long_lines(&file, path, sniffed.separator, fields)?;
    let shape = if header {
        first
    } else {
        sniffed.fields.to_string()
    };
    Ok(Prepared::Csv {
        file,
        origin: path.to_path_buf(),
        header,
        shape,
        separator: sniffed.separator,
        blank_lines,
    })
}

/// How CSV columns are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typing {
    /// Numbers as the kind's dtypes (f64 columns as Float64, integer and timestamp columns as
    /// Int64), the rest as text: fast, and a value that does not parse fails the whole read
    /// with Polars' error, so the caller reads again as [`Typing::Text`].
    Kind,
    /// Every column as text, for the cast to convert and to name each value it cannot.
    Text,
}

/// Opens one input as a `LazyFrame` with the kind's column names where the file has no header,
/// every CSV column as text. Archives are inflated into `tmp` first.
pub fn read(path: &Path, kind: &Kind, tmp: &Path) -> Result<LazyFrame> {
    read_prepared(&[prepare(path, tmp)?], kind, None, Typing::Text)
}

/// Reads inputs of one shape (all CSV of the same header or field count, or one Parquet file)
/// with one scan; `source_column` names a column that gets each row's file path.
pub fn read_prepared(
    inputs: &[Prepared],
    kind: &Kind,
    source_column: Option<&str>,
    typing: Typing,
) -> Result<LazyFrame> {
    match inputs {
        [Prepared::Parquet(p)] => read_parquet(p),
        [
            Prepared::Csv {
                origin,
                header,
                shape,
                separator,
                ..
            },
            ..,
        ] => {
            let files: Vec<PlRefPath> = inputs
                .iter()
                .filter_map(|i| match i {
                    Prepared::Csv { file, .. } => Some(PlRefPath::try_from_path(file)),
                    Prepared::Parquet(_) => None,
                })
                .collect::<PolarsResult<_>>()
                .map_err(Error::polars("path"))?;
            let fields = if *header {
                0
            } else {
                shape.parse().unwrap_or(0)
            };
            let shape = CsvShape {
                header: *header,
                names: if *header {
                    split_header(shape, *separator)
                } else {
                    vec![]
                },
                fields,
                separator: *separator,
                typing,
            };
            read_csv(files, &shape, origin, kind, source_column)
        }
        _ => Err(Error::Options(
            "read_prepared takes CSV files of one shape or one Parquet file".into(),
        )),
    }
}

fn max_unzip_bytes() -> u64 {
    crate::env::env()
        .max_unzip_bytes
        .unwrap_or(DEFAULT_MAX_UNZIP_BYTES)
}

/// Free space an inflation leaves on the disk it writes to: `PQDM_UNZIP_RESERVE_BYTES`, else a
/// tenth of that disk's size, at most 1 GiB. With it, the size limit is bounded by the free space
/// too: an archive is refused before it fills a small disk, not when the disk is full.
fn free_space_reserve(disk_bytes: u64) -> u64 {
    crate::env::env()
        .unzip_reserve_bytes
        .unwrap_or((disk_bytes / 10).min(1 << 30))
}

/// (available, total) bytes of the file system holding `dir`; `None` where it cannot be told.
fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a zeroed struct the call fills in.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let unit = st.f_frsize as u64;
    Some((
        (st.f_bavail as u64).saturating_mul(unit),
        (st.f_blocks as u64).saturating_mul(unit),
    ))
}

/// Bytes inflated between two looks at the free space.
const SPACE_CHECK_BYTES: u64 = 8 << 20;

/// Copies at most `limit` bytes (a zip or gzip bomb guard), and stops before the free space of
/// the disk holding `out` falls below [`free_space_reserve`]; either is an error naming `origin`,
/// and the partial copy is removed.
fn copy_limited(reader: &mut dyn Read, out: &Path, limit: u64, origin: &Path) -> Result<()> {
    let copied = copy_within(reader, out, limit, origin);
    if copied.is_err() {
        let _ = std::fs::remove_file(out);
    }
    copied
}

fn copy_within(reader: &mut dyn Read, out: &Path, limit: u64, origin: &Path) -> Result<()> {
    let refuse = |message: String| Error::Input {
        path: origin.to_path_buf(),
        message,
    };
    let dir = out.parent().unwrap_or(Path::new("."));
    let mut file = File::create(out).map_err(Error::io(out))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    let mut next_check = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(refuse(format!("cannot decompress: {e}"))),
        };
        if n == 0 {
            break;
        }
        copied += n as u64;
        if copied > limit {
            return Err(refuse(format!(
                "inflates past {limit} bytes (PQDM_MAX_UNZIP_BYTES); refused as a possible zip bomb"
            )));
        }
        if copied >= next_check {
            next_check = copied + SPACE_CHECK_BYTES;
            if let Some((free, total)) = disk_space(dir) {
                let reserve = free_space_reserve(total);
                if free.saturating_sub(n as u64) < reserve {
                    return Err(refuse(format!(
                        "inflating it would leave less than {reserve} bytes free on the disk \
                         holding {} ({free} bytes free after {} inflated bytes); refused before \
                         the disk fills (PQDM_UNZIP_RESERVE_BYTES sets the space to leave)",
                        dir.display(),
                        copied - n as u64
                    )));
                }
            }
        }
        file.write_all(&buf[..n]).map_err(Error::io(out))?;
    }
    file.flush().map_err(Error::io(out))
}

fn unzip_single_csv(path: &Path, tmp: &Path) -> Result<PathBuf> {
    let bad = |message: String| Error::Input {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(Error::io(path))?;
    let mut archive = ::zip::ZipArchive::new(file)
        .map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    let csvs: Vec<usize> = (0..archive.len())
        .filter(|i| {
            archive
                .name_for_index(*i)
                .is_some_and(|n| n.to_ascii_lowercase().ends_with(".csv"))
        })
        .collect();
    let index = match csvs.as_slice() {
        [one] => *one,
        [] => return Err(bad("the archive holds no CSV file".into())),
        many => {
            return Err(bad(format!(
                "the archive holds {} CSV files; expected one",
                many.len()
            )));
        }
    };
    let mut entry = archive
        .by_index(index)
        .map_err(|e| bad(format!("cannot read entry: {e}")))?;
    let limit = max_unzip_bytes();
    if entry.size() > limit {
        return Err(bad(format!(
            "entry {} declares {} bytes, past the {limit}-byte limit (PQDM_MAX_UNZIP_BYTES); refused as a possible zip bomb",
            entry.name(),
            entry.size()
        )));
    }
    let out = tmp.join(format!(
        "{}.csv",
        blake3::hash(path.to_string_lossy().as_bytes()).to_hex()
    ));
    copy_limited(&mut entry, &out, limit, path)?;
    Ok(out)
}

fn gunzip(path: &Path, tmp: &Path) -> Result<PathBuf> {
    let file = File::open(path).map_err(Error::io(path))?;
    let mut decoder = flate2::read::MultiGzDecoder::new(BufReader::new(file));
    let out = tmp.join(format!(
        "{}.csv",
        blake3::hash(path.to_string_lossy().as_bytes()).to_hex()
    ));
    copy_limited(&mut decoder, &out, max_unzip_bytes(), path)?;
    Ok(out)
}

/// The most bytes header sniffing reads: a header or first row is never near this long.
const FIRST_LINE_MAX_BYTES: u64 = 1 << 20;

/// Whether the first line of a CSV is a header (see [`sniff`]), and the line. Reads at most
/// [`FIRST_LINE_MAX_BYTES`]: a longer first line is refused, whatever the file's size.
fn first_line(csv: &Path, origin: &Path) -> Result<(bool, String)> {
    let file = File::open(csv).map_err(Error::io(csv))?;
    let mut bytes = Vec::new();
    BufReader::new(file)
        .take(FIRST_LINE_MAX_BYTES)
        .read_until(b'\n', &mut bytes)
        .map_err(Error::io(origin))?;
    if bytes.len() as u64 == FIRST_LINE_MAX_BYTES && !bytes.ends_with(b"\n") {
        return Err(Error::Input {
            path: origin.to_path_buf(),
            message: format!(
                "no line break in the first {FIRST_LINE_MAX_BYTES} bytes (starts with {}): not a CSV file",
                crate::error::clip(&String::from_utf8_lossy(&bytes))
            ),
        });
    }
    let line = String::from_utf8_lossy(&bytes);
    if line.trim().is_empty() {
        return Err(Error::Input {
            path: origin.to_path_buf(),
            message: "empty file".into(),
        });
    }
    Ok((sniff(&line).header, line.trim_end().to_string()))
}

/// Refuses a CSV with a misplaced or unclosed double quote, or (headerless: `fields` is the
/// first line's count, else `usize::MAX`) a line of more fields than its first line, naming the
/// line: Polars reads a headerless file by the columns the first line gives and, for the
/// columns a write needs, stops reading each line after them, so the fields past them (a line
/// joined to the next one by a lost line break: a whole candle) would be dropped unseen.
fn refuse_long_lines(csv: &Path, origin: &Path, separator: u8, fields: usize) -> Result<()> {
    let file = File::open(csv).map_err(Error::io(csv))?;
    match first_long_line(
        &mut BufReader::with_capacity(1 << 16, file),
        separator,
        fields,
    )
    .map_err(Error::io(origin))?
    {
        Some(LineProblem::Long {
            line,
            fields: found,
        }) => Err(Error::Input {
            path: origin.to_path_buf(),
            message: format!(
                "line {line} has {found} fields, the first line {fields}: two lines joined by a lost line break, or a field holding an unquoted {:?}?",
                char::from(separator)
            ),
        }),
        Some(LineProblem::StrayQuote { line }) => Err(Error::Input {
            path: origin.to_path_buf(),
            message: format!(
                "line {line} holds a double quote inside a field (as in `5\"inch`), which CSV \
                 allows only around a whole field: Polars would join lines at it and lose rows; \
                 quote the field (`\"5\"\"inch\"`) or remove the quote"
            ),
        }),
        Some(LineProblem::UnclosedQuote { line }) => Err(Error::Input {
            path: origin.to_path_buf(),
            message: format!(
                "line {line} opens a double quote that no later line closes (a stray `\"`?)"
            ),
        }),
        None => Ok(()),
    }
}

/// What the pass over a CSV found wrong first.
#[derive(Debug, PartialEq, Eq)]
enum LineProblem {
    /// A line (1-based) holding more fields than the first line.
    Long { line: u64, fields: usize },
    /// A double quote opened on this line and never closed: Polars would read the rest of the
    /// file as one field and fail on it, quoting megabytes and naming no line.
    UnclosedQuote { line: u64 },
    /// A double quote inside an unquoted field (`5"inch`) on this line: Polars takes it for the
    /// start of a quoted field, and two of them join the lines between into one row, whose
    /// last field a write drops: a row lost without a word.
    StrayQuote { line: u64 },
}

/// The first line (1-based) of `input` holding more than `fields` fields separated by
/// `separator` outside double quotes, or a double quote that is not where a quoted field
/// starts or that is never closed (RFC 4180: a quoted field starts with its quote; `""` inside
/// it is one quote).
fn first_long_line(
    input: &mut dyn BufRead,
    separator: u8,
    fields: usize,
) -> std::io::Result<Option<LineProblem>> {
    let (mut line, mut found, mut opened) = (1u64, 1usize, 0u64);
    // Inside a quoted field; just after a quote that may close it (or start `""`); at the
    // start of a field.
    let (mut quoted, mut closing, mut field_start) = (false, false, true);
    let long = |line, found| {
        (found > fields).then_some(LineProblem::Long {
            line,
            fields: found,
        })
    };
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(match quoted && !closing {
                true => Some(LineProblem::UnclosedQuote { line: opened }),
                false => long(line, found),
            });
        }
        for &b in chunk {
            if quoted {
                match (b, closing) {
                    // `""`: a quote inside the field.
                    (b'"', true) => closing = false,
                    (b'"', false) => closing = true,
                    (_, false) => continue,
                    // The field ended at the quote: a separator or line end follows.
                    (_, true) if b == separator || b == b'\n' || b == b'\r' => {
                        (quoted, closing) = (false, false)
                    }
                    (_, true) => return Ok(Some(LineProblem::StrayQuote { line })),
                }
                if quoted {
                    continue;
                }
            }
            match b {
                b'"' if field_start => (quoted, opened, field_start) = (true, line, false),
                b'"' => return Ok(Some(LineProblem::StrayQuote { line })),
                b'\n' if found > fields => return Ok(long(line, found)),
                b'\n' => (line, found, field_start) = (line + 1, 1, true),
                b'\r' => {}
                _ if b == separator => (found, field_start) = (found + 1, true),
                _ => field_start = false,
            }
        }
        let len = chunk.len();
        input.consume(len);
    }
}

/// The UTF-8 byte order mark some Windows tools put before the first line.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Separators a CSV may use, in order of preference on ties.
const SEPARATORS: &[u8] = b",\t;|";

/// What the first line of a CSV says about the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sniffed {
    /// Whether the line is a header: its first field is neither a number nor an ISO date or time.
    pub header: bool,
    /// The field separator: whichever of `,`, tab, `;` and `|` the line holds most of outside
    /// quotes (`,` when it holds none).
    pub separator: u8,
    /// The number of fields.
    pub fields: usize,
}

/// Reads the first line of a CSV (a UTF-8 byte order mark is ignored).
///
/// ```
/// let s = pqdm::source::sniff("1704412800000;42000.5;42001\r\n");
/// assert_eq!((s.header, s.separator, s.fields), (false, b';', 3));
/// assert!(pqdm::source::sniff("\u{feff}open_time,open").header);
/// ```
pub fn sniff(line: &str) -> Sniffed {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let line = line.trim_end_matches(['\r', '\n']);
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for b in line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = SEPARATORS.iter().position(|s| *s == b) {
            counts[i] += 1;
        }
    }
    let (best, n) = counts
        .iter()
        .enumerate()
        .fold((0, 0), |acc, (i, n)| if *n > acc.1 { (i, *n) } else { acc });
    let separator = SEPARATORS[best];
    let mut quoted = false;
    let first_end = line
        .bytes()
        .position(|b| {
            if b == b'"' {
                quoted = !quoted;
            }
            !quoted && b == separator
        })
        .unwrap_or(line.len());
    let first = line[..first_end].trim().trim_matches('"').trim();
    let data = first.parse::<f64>().is_ok() || starts_with_date(first);
    Sniffed {
        header: !data,
        separator,
        fields: n + 1,
    }
}

/// Whether `text` starts with an ISO date (`2024-01-05`, then anything): a timestamp, not a name.
fn starts_with_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Counts blank lines (empty or only spaces, tabs and `\r`) in `input`, and copies the other
/// lines to `out` where given; a leading byte order mark is dropped. Reads in chunks, so a huge
/// line costs no memory.
fn blank_lines(
    input: &mut dyn Read,
    mut out: Option<&mut dyn Write>,
) -> std::io::Result<(u64, bool)> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let bom = reader.fill_buf()?.starts_with(BOM);
    if bom {
        reader.consume(BOM.len());
    }
    let mut blank = 0u64;
    // Whitespace at the start of the current line, held until the line proves not blank.
    let mut pending: Vec<u8> = vec![];
    let mut in_content = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if b == b'\n' {
                if in_content {
                    if let Some(w) = out.as_mut() {
                        w.write_all(&chunk[start..=i])?;
                    }
                } else {
                    blank += 1;
                }
                pending.clear();
                in_content = false;
                start = i + 1;
            } else if !in_content {
                if matches!(b, b' ' | b'\t' | b'\r') {
                    pending.push(b);
                    start = i + 1;
                } else {
                    in_content = true;
                    if let Some(w) = out.as_mut() {
                        w.write_all(&pending)?;
                    }
                    pending.clear();
                    start = i;
                }
            }
        }
        if in_content && let Some(w) = out.as_mut() {
            w.write_all(&chunk[start..])?;
        }
        reader.consume(len);
    }
    if !in_content && !pending.is_empty() {
        blank += 1;
    }
    Ok((blank, bom))
}

/// The CSV without its byte order mark and blank lines: `csv` itself when it has neither,
/// else a copy in `tmp`; and how many blank lines were left out.
fn without_blank_lines(csv: &Path, origin: &Path, tmp: &Path) -> Result<(PathBuf, u64)> {
    let io = |e| Error::io(origin)(e);
    let mut file = File::open(csv).map_err(Error::io(csv))?;
    let (blank, bom) = blank_lines(&mut file, None).map_err(io)?;
    if blank == 0 && !bom {
        return Ok((csv.to_path_buf(), 0));
    }
    let out = tmp.join(format!(
        "{}.clean.csv",
        blake3::hash(origin.to_string_lossy().as_bytes()).to_hex()
    ));
    let mut writer = std::io::BufWriter::new(File::create(&out).map_err(Error::io(&out))?);
    let mut file = File::open(csv).map_err(Error::io(csv))?;
    blank_lines(&mut file, Some(&mut writer as &mut dyn Write)).map_err(io)?;
    writer.flush().map_err(Error::io(&out))?;
    if blank > 0 {
        log::info!("{}: skipped {blank} blank line(s)", origin.display());
    }
    Ok((out, blank))
}

/// The column names of a header line.
fn split_header(line: &str, separator: u8) -> Vec<String> {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    line.split(char::from(separator))
        .map(|n| n.trim().trim_matches('"').to_string())
        .collect()
}

/// The dtype an input column named `name` is read with.
fn read_dtype(kind: &Kind, name: &str, typing: Typing) -> DataType {
    let spec = kind
        .canonical_name(name)
        .and_then(|c| kind.column(&c).cloned());
    match (typing, spec) {
        (Typing::Kind, Some(s)) if s.timestamp => DataType::Int64,
        (Typing::Kind, Some(s)) => match s.dtype {
            ColType::F64 => DataType::Float64,
            ColType::I64 | ColType::I32 | ColType::I16 | ColType::I8 => DataType::Int64,
            _ => DataType::String,
        },
        _ => DataType::String,
    }
}

/// The schema of a headerless CSV of `fields` columns in the kind's positional layout.
/// `None` when the kind has no such layout or the file has more columns than it names.
fn positional_schema(kind: &Kind, fields: usize, typing: Typing) -> Option<SchemaRef> {
    if kind.positional.is_empty() || fields > kind.positional.len() {
        return None;
    }
    let mut schema = Schema::default();
    for name in kind.positional.iter().take(fields) {
        schema.with_column(name.as_str().into(), read_dtype(kind, name, typing));
    }
    Some(Arc::new(schema))
}

/// The dtypes of a header's columns that are not text (for [`Typing::Kind`]).
fn header_dtypes(kind: &Kind, names: &[String], typing: Typing) -> Option<SchemaRef> {
    let mut schema = Schema::default();
    for name in names {
        let dtype = read_dtype(kind, name, typing);
        if dtype != DataType::String {
            schema.with_column(name.as_str().into(), dtype);
        }
    }
    (!schema.is_empty()).then(|| Arc::new(schema))
}

/// How the CSV files of one scan are laid out, and how to read them.
struct CsvShape {
    header: bool,
    /// Column names (files with a header).
    names: Vec<String>,
    /// Fields per line (headerless files).
    fields: usize,
    separator: u8,
    typing: Typing,
}

/// Reads CSV files of one shape; see [`read_prepared`]. Columns are read with the kind's dtypes
/// or as text ([`Typing`]), never as inferred from the first rows, and the cast gives them the
/// kind's dtype (naming any value that does not fit); headerless files get the kind's
/// positional names.
fn read_csv(
    files: Vec<PlRefPath>,
    shape: &CsvShape,
    origin: &Path,
    kind: &Kind,
    source_column: Option<&str>,
) -> Result<LazyFrame> {
    let reader = LazyCsvReader::new_paths(files.into())
        .with_has_header(shape.header)
        .with_separator(shape.separator)
        // Paths are literal: a file named `two[1].csv` is no pattern.
        .with_glob(false)
        .with_infer_schema_length(Some(0))
        .with_include_file_paths(source_column.map(Into::into));
    if shape.header {
        return reader
            .with_dtype_overwrite(header_dtypes(kind, &shape.names, shape.typing))
            .finish()
            .map_err(Error::polars(format!("{}: open CSV", origin.display())));
    }
    let Some(schema) = positional_schema(kind, shape.fields, shape.typing) else {
        let message = if kind.positional.is_empty() {
            format!(
                "CSV without a header row, and kind `{}` has no positional layout",
                kind.name
            )
        } else {
            format!(
                "{} columns in a headerless CSV (separator {:?}); kind `{}` expects at most {} ({})",
                shape.fields,
                char::from(shape.separator),
                kind.name,
                kind.positional.len(),
                kind.positional.join(",")
            )
        };
        return Err(Error::Input {
            path: origin.to_path_buf(),
            message,
        });
    };
    let lf = reader
        .with_schema(Some(schema))
        .finish()
        .map_err(Error::polars(format!("{}: open CSV", origin.display())))?;
    // Named by the kind already; drop the columns it ignores.
    let keep: Vec<Expr> = kind
        .positional
        .iter()
        .take(shape.fields)
        .filter(|n| n.as_str() != "ignore")
        .map(|n| col(n.as_str()))
        .chain(source_column.map(col))
        .collect();
    Ok(lf.select(keep))
}

/// Opens one Parquet input. Polars 0.55 (built without its `dtype-decimal` feature) cannot
/// even plan a scan of a file with a DECIMAL column, so such files are decoded here, column by
/// column, with DECIMAL values turned into their exact text for the cast. Anything else Polars
/// cannot read is an error naming the file, never a panic.
fn read_parquet(path: &Path) -> Result<LazyFrame> {
    let mut file = File::open(path).map_err(Error::io(path))?;
    let meta = polars_parquet::read::read_metadata(&mut file).map_err(|e| Error::Input {
        path: path.to_path_buf(),
        message: format!("not a readable Parquet file: {e}"),
    })?;
    let schema = polars_parquet::read::infer_schema(&meta).map_err(|e| Error::Input {
        path: path.to_path_buf(),
        message: format!("unreadable Parquet schema: {e}"),
    })?;
    // Any other type this build of Polars cannot read would panic while planning.
    if let Some(f) = schema
        .iter_values()
        .find(|f| !is_decimal(&f.dtype) && !crate::footer::polars_reads(&f.dtype))
    {
        return Err(crate::footer::unreadable(
            path,
            &f.name,
            &crate::footer::arrow_type_name(&f.dtype),
        ));
    }
    if schema.iter_values().any(|f| is_decimal(&f.dtype)) {
        return read_with_decimals(path, &meta, &schema).map(IntoLazy::lazy);
    }
    let mut lf = crate::footer::scan_one(path)?;
    let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lf.collect_schema()));
    match planned {
        Ok(Ok(_)) => Ok(lf),
        Ok(Err(e)) => Err(Error::polars(format!("{}: open Parquet", path.display()))(
            e,
        )),
        Err(panic) => Err(Error::Input {
            path: path.to_path_buf(),
            message: format!(
                "a column type Polars cannot read: {}",
                crate::panics::message(&*panic)
            ),
        }),
    }
}

fn is_decimal(dtype: &ArrowDataType) -> bool {
    match dtype {
        ArrowDataType::Decimal(..)
        | ArrowDataType::Decimal32(..)
        | ArrowDataType::Decimal64(..)
        | ArrowDataType::Decimal256(..) => true,
        ArrowDataType::Dictionary(_, values, _) => is_decimal(values),
        _ => false,
    }
}

/// Decodes every column of a Parquet file with DECIMAL columns; those become exact text.
fn read_with_decimals(
    path: &Path,
    meta: &polars_parquet::read::FileMetadata,
    schema: &ArrowSchema,
) -> Result<DataFrame> {
    let bad = |e: PolarsError| Error::Input {
        path: path.to_path_buf(),
        message: format!("cannot decode: {e}"),
    };
    let bytes = polars_buffer::Buffer::from(std::fs::read(path).map_err(Error::io(path))?);
    let mut columns = Vec::with_capacity(schema.len());
    for field in schema.iter_values() {
        let mut chunks: Vec<ArrayRef> = vec![];
        for rg in &meta.row_groups {
            let parts: Vec<_> = rg
                .columns_under_root_iter(&field.name)
                .into_iter()
                .flatten()
                .map(|cc| {
                    let range = cc.byte_range();
                    let chunk = bytes
                        .clone()
                        .sliced(range.start as usize..range.end as usize);
                    let pages = polars_parquet::read::PageReader::new(
                        std::io::Cursor::new(chunk),
                        cc,
                        vec![],
                        usize::MAX,
                    );
                    (
                        polars_parquet::read::BasicDecompressor::new(pages, vec![]),
                        &cc.descriptor().descriptor.primitive_type,
                    )
                })
                .collect();
            let (pages, types): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
            let (arrays, _) =
                polars_parquet::read::column_iter_to_arrays(pages, types, field.clone(), None)
                    .map_err(bad)?;
            for array in arrays {
                chunks.push(decimal_as_text(array).map_err(|message| Error::Input {
                    path: path.to_path_buf(),
                    message: format!("column `{}`: {message}", field.name),
                })?);
            }
        }
        if chunks.is_empty() {
            let empty = polars_arrow::array::new_empty_array(field.dtype.clone());
            chunks.push(decimal_as_text(empty).map_err(|message| Error::Input {
                path: path.to_path_buf(),
                message,
            })?);
        }
        let series = Series::from_arrow_chunks(field.name.clone(), chunks).map_err(bad)?;
        columns.push(Column::from(series));
    }
    DataFrame::new_infer_height(columns).map_err(bad)
}

/// A DECIMAL array as the exact text of its values (`123.45000000`); other arrays as they are.
fn decimal_as_text(array: ArrayRef) -> std::result::Result<ArrayRef, String> {
    use polars_arrow::array::{MutableBinaryViewArray, PrimitiveArray};
    let scale = match array.dtype() {
        ArrowDataType::Decimal(_, s) => *s,
        d if is_decimal(d) => return Err(format!("{d:?} is not supported (at most 38 digits)")),
        _ => return Ok(array),
    };
    let values = array
        .as_any()
        .downcast_ref::<PrimitiveArray<i128>>()
        .ok_or_else(|| "DECIMAL values of an unexpected layout".to_string())?;
    let mut text = MutableBinaryViewArray::<str>::with_capacity(values.len());
    for v in values.iter() {
        text.push(v.map(|v| decimal_text(*v, scale)));
    }
    Ok(text.freeze().boxed())
}

/// The exact text of an unscaled DECIMAL value with `scale` digits after the point.
fn decimal_text(unscaled: i128, scale: usize) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_is_exact() {
        assert_eq!(decimal_text(4_200_050_000_000, 8), "42000.50000000");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(123, 0), "123");
    }

    #[test]
    fn lines_of_more_fields_than_the_first_are_found_outside_quotes() {
        let long = |text: &str, fields: usize| {
            first_long_line(&mut text.as_bytes(), b',', fields).unwrap()
        };
        assert_eq!(long("1,2,3\n4,5,6\n", 3), None);
        assert_eq!(long("1,2,3\n4,5,6", 3), None);
        // Fewer fields are for the required columns to find.
        assert_eq!(long("1,2,3\n4,5\n", 3), None);
        // Two lines joined: the second line holds five fields.
        assert_eq!(
            long("1,2,3\n4,5,61,2,3\n7,8,9\n", 3),
            Some(LineProblem::Long { line: 2, fields: 5 })
        );
        // The last line without a line break.
        assert_eq!(
            long("1,2,3\n4,5,6,7", 3),
            Some(LineProblem::Long { line: 2, fields: 4 })
        );
        // Separators and line breaks inside quotes are no fields or lines.
        assert_eq!(
            long("1,\"a,b\",3\n4,\"x\ny,z\",6\n7,8,9,0\n", 3),
            Some(LineProblem::Long { line: 3, fields: 4 })
        );
        assert_eq!(
            first_long_line(&mut "1;2;3\n4,5,6,7;8\n".as_bytes(), b';', 3).unwrap(),
            None
        );
        assert_eq!(
            first_long_line(&mut "1;2\n3;4;5\n".as_bytes(), b';', 2).unwrap(),
            Some(LineProblem::Long { line: 2, fields: 3 })
        );
        // A quote never closed is named by the line that opens it.
        assert_eq!(
            long("1,2,3\n4,\"5,6\n7,8,9\n", 3),
            Some(LineProblem::UnclosedQuote { line: 2 })
        );
        assert_eq!(long("1,\"a\",3\n", 3), None);
        // RFC 4180: `""` inside a quoted field is a quote; a quoted field may hold line breaks;
        // CRLF line ends.
        assert_eq!(long("1,\"a\"\"b\",3\r\n4,\"x\ny\",6\r\n", 3), None);
        assert_eq!(long("1,\"\",3\n", 3), None);
        // A quote inside an unquoted field: two such pair up in Polars and join lines.
        assert_eq!(
            long("1,5\"inch,3\n4,6\"inch,6\n", 3),
            Some(LineProblem::StrayQuote { line: 1 })
        );
        assert_eq!(
            long("1,2,3\n4,\"5\"x,6\n", 3),
            Some(LineProblem::StrayQuote { line: 2 })
        );
        // With a header the field count is not checked (`usize::MAX`), quotes are.
        assert_eq!(long("1,2,3\n4,5,6,7\n", usize::MAX), None);
    }

    #[test]
    fn blank_lines_are_counted_and_dropped() {
        let input = b"\xEF\xBB\xBF1,2\r\n\r\n  \n3,4\n\n";
        let mut out = vec![];
        let (blank, bom) = blank_lines(&mut &input[..], Some(&mut out as &mut dyn Write)).unwrap();
        assert_eq!((blank, bom), (3, true));
        assert_eq!(out, b"1,2\r\n3,4\n");
    }

    fn hints(path: &str) -> NameHints {
        NameHints::from_path(Path::new(path))
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn name_hints_read_binance_names_and_nothing_else() {
        assert_eq!(
            hints("data/futures/um/daily/markPriceKlines/BTCUSDT/1m/btcusdt-1m-2024-01-05.zip"),
            NameHints {
                symbol: some("BTCUSDT"),
                timeframe: some("1m"),
                kind: some("klines"),
                data_type: some("markPriceKlines"),
                market: some("um"),
                period: some("2024-01-05"),
            }
        );
        let monthly = hints("BTCUSD_PERP-fundingRate-2024-01.zip");
        assert_eq!(
            monthly,
            NameHints {
                symbol: some("BTCUSD_PERP"),
                kind: some("futures"),
                data_type: some("fundingRate"),
                period: some("2024-01"),
                ..Default::default()
            }
        );
        assert_eq!(monthly.exchange(), some("BINANCE"));
        let option =
            hints("option/daily/BVOLIndex/BTCBVOLUSDT/BTC-240329-70000-C-BVOLIndex-2024-03-01.zip");
        assert_eq!(
            (
                option.symbol.as_deref(),
                option.kind.as_deref(),
                option.market.as_deref()
            ),
            (Some("BTC-240329-70000-C"), None, Some("option"))
        );
        assert_eq!(option.exchange(), some("BINANCE_OPTION"));
        let cm = hints("futures/cm/monthly/indexPriceKlines/X/1mo/BTCUSD_PERP-1mo-2024-01.zip");
        assert_eq!(cm.exchange(), some("BINANCE_CM_INDEXPRICE"));
        assert_eq!(
            cm.constants().into_iter().collect::<Vec<_>>(),
            [
                ("exchange".to_string(), "BINANCE_CM_INDEXPRICE".to_string()),
                ("symbol".into(), "BTCUSD_PERP".into()),
                ("timeframe".into(), "1mo".into()),
            ]
        );
        // Names that are not Binance's: no hints at all, so no constants and no exchange.
        for path in [
            "",
            "part-0.parquet",
            "BTCUSDT.csv",
            "BTCUSDT-1m.csv",
            "BTCUSDT-1m-2024.csv",
            "BTCUSDT-2m-2024-01-05.csv",
            "BTCUSDT-1m-24-01-05.csv",
            "-1m-2024-01-05.csv",
            "BTC%2FUSDT-1m-2024-01-05.csv",
            "BTC..USDT-1m-2024-01-05.csv",
            "[BTC]-1m-2024-01-05.csv",
        ] {
            let h = hints(path);
            assert_eq!(h, NameHints::default(), "{path:?}");
            assert_eq!((h.exchange(), h.constants().len()), (None, 0), "{path:?}");
        }
        let long = format!("{}-1m-2024-01-05.csv", "A".repeat(300));
        assert_eq!(hints(&long).symbol, Some("A".repeat(300)));
    }
}
