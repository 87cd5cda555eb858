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

/// What a Binance archive name says (`BTCUSDT-1m-2024-01-05.zip`, `ETHUSDT-aggTrades-2024-01.zip`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameHints {
    /// The symbol (`BTCUSDT`).
    pub symbol: Option<String>,
    /// The candle timeframe (`1m`).
    pub timeframe: Option<String>,
    /// The kind the name implies (`klines`, `aggtrades`, `trades`, `futures`).
    pub kind: Option<String>,
}

impl NameHints {
    /// Reads the hints from a file name; names that are not Binance's give none.
    pub fn from_path(path: &Path) -> NameHints {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let stem = name.split('.').next().unwrap_or_default();
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() < 3
            || parts[0].is_empty()
            || !parts[0].chars().all(|c| c.is_ascii_alphanumeric())
        {
            return NameHints::default();
        }
        let symbol = Some(parts[0].to_string());
        match parts[1] {
            tf if TIMEFRAMES.contains(&tf) => NameHints {
                symbol,
                timeframe: Some(tf.to_string()),
                kind: Some("klines".into()),
            },
            "aggTrades" => NameHints {
                symbol,
                kind: Some("aggtrades".into()),
                ..Default::default()
            },
            "trades" => NameHints {
                symbol,
                kind: Some("trades".into()),
                ..Default::default()
            },
            "fundingRate" => NameHints {
                symbol,
                kind: Some("futures".into()),
                ..Default::default()
            },
            _ => NameHints::default(),
        }
    }

    /// The constants these hints give (`symbol`, `timeframe`, and `exchange` = BINANCE).
    pub fn constants(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(s) = &self.symbol {
            out.insert("symbol".into(), s.clone());
            out.insert("exchange".into(), "BINANCE".into());
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
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
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
        if crate::storage::is_remote(p) {
            out.extend(expand_remote(p)?);
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

/// An `s3://` source: the object itself when it names a supported file, else the supported
/// objects below it as a prefix (one listing).
fn expand_remote(url: &Path) -> Result<Vec<PathBuf>> {
    if supported(url) {
        return Ok(vec![url.to_path_buf()]);
    }
    let remote = crate::storage::Remote::open(url)?;
    let found: Vec<PathBuf> = remote
        .list("")?
        .into_iter()
        .filter(|(rel, _)| {
            !rel.split('/')
                .any(|c| c.starts_with('.') || c.starts_with('_'))
        })
        .map(|(rel, _)| PathBuf::from(format!("{}/{rel}", remote.url())))
        .filter(|p| supported(p))
        .collect();
    if found.is_empty() && remote.head("")?.is_none() {
        return Err(Error::Input {
            path: url.to_path_buf(),
            message: "no such object or prefix".into(),
        });
    }
    Ok(found)
}

/// Downloads an `s3://` source object into `tmp` (same file name, so name hints still apply).
fn download(url: &Path, tmp: &Path) -> Result<PathBuf> {
    let (remote, name) = crate::storage::object(url)?;
    let dir = tmp.join(format!(
        "download-{}",
        &blake3::hash(url.as_os_str().as_encoded_bytes()).to_hex()[..12]
    ));
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let local = dir.join(&name);
    remote.download(&name, &local)?;
    Ok(local)
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
        /// The plain CSV (inflated from `origin` where that is an archive).
        file: PathBuf,
        /// The file the user named.
        origin: PathBuf,
        /// Whether the first line is a header.
        header: bool,
        /// Header line or field count.
        shape: String,
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
    if crate::storage::is_remote(path) {
        let local = download(path, tmp)?;
        return Ok(match prepare(&local, tmp)? {
            Prepared::Csv {
                file,
                header,
                shape,
                ..
            } => Prepared::Csv {
                file,
                origin: path.to_path_buf(),
                header,
                shape,
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
    let (header, first) = first_line(&file, path)?;
    let shape = if header {
        first
    } else {
        first.split(',').count().to_string()
    };
    Ok(Prepared::Csv {
        file,
        origin: path.to_path_buf(),
        header,
        shape,
    })
}

/// Opens one input as a `LazyFrame` with the kind's column names where the file has no header.
/// Archives are inflated into `tmp` first.
pub fn read(path: &Path, kind: &Kind, tmp: &Path) -> Result<LazyFrame> {
    read_prepared(&[prepare(path, tmp)?], kind, None)
}

/// Reads inputs of one shape (all CSV of the same header or field count, or one Parquet file)
/// with one scan; `source_column` names a column that gets each row's file path.
pub fn read_prepared(
    inputs: &[Prepared],
    kind: &Kind,
    source_column: Option<&str>,
) -> Result<LazyFrame> {
    match inputs {
        [Prepared::Parquet(p)] => crate::footer::scan_one(p),
        [
            Prepared::Csv {
                origin,
                header,
                shape,
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
            read_csv(files, *header, fields, origin, kind, source_column)
        }
        _ => Err(Error::Options(
            "read_prepared takes CSV files of one shape or one Parquet file".into(),
        )),
    }
}

fn max_unzip_bytes() -> u64 {
    std::env::var("PQDM_MAX_UNZIP_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_UNZIP_BYTES)
}

/// Free space an inflation leaves on the disk it writes to: `PQDM_UNZIP_RESERVE_BYTES`, else a
/// tenth of that disk's size, at most 1 GiB. With it, the size limit is bounded by the free space
/// too: an archive is refused before it fills a small disk, not when the disk is full.
fn free_space_reserve(disk_bytes: u64) -> u64 {
    std::env::var("PQDM_UNZIP_RESERVE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
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

/// Whether the first line of a CSV is a header (its first field is not a number), and the line.
/// Reads at most [`FIRST_LINE_MAX_BYTES`]: a longer first line is refused, whatever the file's size.
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
    let first = line
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches('"');
    Ok((first.parse::<f64>().is_err(), line.trim_end().to_string()))
}

/// The schema of a headerless CSV of `fields` columns in the kind's positional layout, so
/// that many files read without inferring each one: numbers typed, everything else text for the
/// cast. `None` when the kind has no such layout or the file has more columns than it names.
fn positional_schema(kind: &Kind, fields: usize) -> Option<SchemaRef> {
    if kind.positional.is_empty() || fields > kind.positional.len() {
        return None;
    }
    let mut schema = Schema::default();
    for name in kind.positional.iter().take(fields) {
        let dtype = match kind.column(name).map(|c| c.dtype) {
            Some(ColType::F64) => DataType::Float64,
            Some(ColType::I64 | ColType::I32 | ColType::I16 | ColType::I8) => DataType::Int64,
            _ => DataType::String,
        };
        schema.with_column(name.as_str().into(), dtype);
    }
    Some(Arc::new(schema))
}

/// Reads CSV files of one shape (`fields` columns); see [`read_prepared`].
fn read_csv(
    files: Vec<PlRefPath>,
    header: bool,
    fields: usize,
    origin: &Path,
    kind: &Kind,
    source_column: Option<&str>,
) -> Result<LazyFrame> {
    let typed = (!header && source_column.is_some())
        .then(|| positional_schema(kind, fields))
        .flatten();
    let reader = LazyCsvReader::new_paths(files.into())
        .with_has_header(header)
        // Paths are literal: a file named `two[1].csv` is no pattern.
        .with_glob(false)
        .with_infer_schema_length(Some(10_000))
        .with_include_file_paths(source_column.map(Into::into));
    let reader = match &typed {
        Some(schema) => reader.with_schema(Some(schema.clone())),
        None => reader,
    };
    let lf = reader
        .finish()
        .map_err(Error::polars(format!("{}: open CSV", origin.display())))?;
    if header {
        return Ok(lf);
    }
    if typed.is_some() {
        // Named and typed by the kind already; drop the columns it ignores.
        let keep: Vec<Expr> = kind
            .positional
            .iter()
            .take(fields)
            .filter(|n| n.as_str() != "ignore")
            .map(|n| col(n.as_str()))
            .chain(source_column.map(col))
            .collect();
        return Ok(lf.select(keep));
    }
    if kind.positional.is_empty() {
        return Err(Error::Input {
            path: origin.to_path_buf(),
            message: format!(
                "CSV without a header row, and kind `{}` has no positional layout",
                kind.name
            ),
        });
    }
    let mut lf = lf;
    let schema = lf
        .collect_schema()
        .map_err(Error::polars(format!("{}: read CSV", origin.display())))?;
    if schema.len() - usize::from(source_column.is_some_and(|s| schema.contains(s)))
        > kind.positional.len()
    {
        return Err(Error::Input {
            path: origin.to_path_buf(),
            message: format!(
                "{} columns in a headerless CSV; kind `{}` expects at most {} ({})",
                schema.len(),
                kind.name,
                kind.positional.len(),
                kind.positional.join(",")
            ),
        });
    }
    let source = source_column.filter(|s| schema.contains(s));
    let data = schema.len() - usize::from(source.is_some());
    let mut exprs: Vec<Expr> = schema
        .iter_names()
        .take(data)
        .zip(&kind.positional)
        .filter(|(_, to)| to.as_str() != "ignore")
        .map(|(from, to)| col(from.clone()).alias(to.as_str()))
        .collect();
    exprs.extend(source.map(col));
    Ok(lf.select(exprs))
}
