//! The library's one error type. Every variant names what was wrong and where.

use std::path::PathBuf;

/// Errors returned by the pqdm library. Messages name what was wrong and where, in the
/// library's terms; what a caller can do about one is [`Error::hint`], which each front end
/// phrases in its own (the command line as a flag).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from Polars, with what pqdm was doing when it happened.
    #[error("{context}: {}", clip_lines(&source.to_string()))]
    Polars {
        /// What pqdm was doing.
        context: String,
        /// The Polars error.
        #[source]
        source: polars::error::PolarsError,
    },
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A value that cannot be cast to the column's dtype.
    #[error(
        "{source_name}: column `{column}`, row {row}: cannot cast value {} to {dtype}",
        clip(.value)
    )]
    Cast {
        /// The input file (or "frame" for an in-memory frame).
        source_name: String,
        /// The column.
        column: String,
        /// 1-based row number among data rows.
        row: u64,
        /// The offending value, as text.
        value: String,
        /// The target dtype.
        dtype: String,
    },
    /// A timestamp outside what every reader can hold (1970-01-01 .. 2262-04-11).
    #[error(
        "{source_name}: column `{column}`, row {row}: timestamp {value} ({iso}) is outside 1970-01-01 .. 2262-04-11"
    )]
    TimestampRange {
        /// The input file.
        source_name: String,
        /// The column.
        column: String,
        /// 1-based row number among data rows.
        row: u64,
        /// The value, in milliseconds after normalisation.
        value: i64,
        /// The value as a date and time.
        iso: String,
    },
    /// A partition value that every hive reader would read back as null (an empty value, or
    /// Hive's null marker `__HIVE_DEFAULT_PARTITION__`): stored, it would share the null folder.
    #[error(
        "{at}: partition column `{column}` holds {}, which every hive reader reads back as null; nothing was written (give the row a value, or leave it null: nulls are stored as nulls)",
        clip(.value)
    )]
    PartitionValue {
        /// The input and row (`file.csv: row 3`).
        at: String,
        /// The partition column.
        column: String,
        /// The value.
        value: String,
    },
    /// A partition value whose folder name (`column=value`, percent-escaped) would be longer
    /// than a file system allows ([`crate::layout::MAX_SEGMENT_BYTES`]).
    #[error(
        "{at}: partition column `{column}` holds {}, whose folder name would be {bytes} bytes, more than the {} a file system allows; nothing was written (shorten the value, or partition by other columns)",
        clip(.value),
        crate::layout::MAX_SEGMENT_BYTES
    )]
    PartitionTooLong {
        /// The input and row (`file.csv: row 3`).
        at: String,
        /// The partition column.
        column: String,
        /// The value.
        value: String,
        /// The length of its folder name, escaped.
        bytes: usize,
    },
    /// The input does not fit the dataset's schema (missing column, unknown kind, ...).
    #[error("{0}")]
    Schema(String),
    /// A bad option or a combination of options that contradict each other.
    #[error("invalid option: {0}")]
    Options(String),
    /// A malformed input file.
    #[error("{path}: {message}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The dataset (its manifest or layout) is not what pqdm expects.
    #[error("dataset {path}: {message}")]
    Dataset {
        /// The dataset's base folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The write mode `error` found existing data in a partition the write touches.
    #[error("mode `error`: partition {partition} already holds data; nothing was written")]
    PartitionExists {
        /// The partition, as `k=v/k=v`.
        partition: String,
    },
    /// A required column has no value in a row (a short or ragged row?).
    #[error(
        "{source_name}: column `{column}`, row {row}: no value in a required column (a short or ragged row?)"
    )]
    MissingValue {
        /// The input file.
        source_name: String,
        /// The column.
        column: String,
        /// 1-based row number among data rows.
        row: u64,
    },
    /// A new dataset's kind was not given and its sources' names do not tell one.
    #[error("{}: a kind is needed to create a dataset here; the sources' names do not tell one", path.display())]
    KindNeeded {
        /// The dataset's base.
        path: PathBuf,
    },
    /// An object-store request failed; the store's own error is its source.
    #[error("{location}: {}", crate::storage::short_message(&source.to_string()))]
    ObjectStore {
        /// The `s3://` location (of the object, where there is one).
        location: String,
        /// The store client's error.
        #[source]
        source: object_store::Error,
    },
    /// An object-store request failed, or the store is not configured.
    #[error("{location}: {message}")]
    Storage {
        /// The `s3://` location.
        location: String,
        /// What went wrong.
        message: String,
    },
    /// Another writer committed first and the change could not be committed on top of it
    /// (nothing of it was committed).
    #[error(
        "concurrent commit: {location}: {conflict}; nothing of this change was committed{}",
        attempts_note(*attempts)
    )]
    Conflict {
        /// The dataset.
        location: String,
        /// What the other writer did.
        conflict: Conflict,
        /// The attempts made before giving up (1: the conflict could not be retried).
        attempts: u32,
    },
}

/// What another writer did that kept a commit from landing ([`Error::Conflict`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// Another writer made the version this commit meant to make.
    VersionTaken {
        /// The version.
        version: u64,
    },
    /// Another writer's commit took a file out of the dataset that this change meant to
    /// replace.
    FileReplaced {
        /// The file, relative to the dataset.
        path: String,
        /// What this change was doing.
        during: String,
    },
    /// A commit made while this change read the files of its version took files away.
    ReadChanged {
        /// The version this change read.
        read: u64,
        /// The version committed meanwhile.
        now: u64,
        /// The error the read met.
        error: String,
    },
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::VersionTaken { version } => {
                write!(f, "version {version} was committed by another writer first")
            }
            Conflict::FileReplaced { path, during } => {
                write!(f, "{path} was replaced by another writer during {during}")
            }
            Conflict::ReadChanged { read, now, error } => write!(
                f,
                "version {now} was committed while this change read the files of version {read} ({error})"
            ),
        }
    }
}

impl Error {
    /// A conflict at `location` (a first attempt's; see [`Error::Conflict`]).
    pub(crate) fn conflict(location: impl std::fmt::Display, conflict: Conflict) -> Error {
        Error::Conflict {
            location: location.to_string(),
            conflict,
            attempts: 1,
        }
    }
}

fn attempts_note(attempts: u32) -> String {
    match attempts {
        0 | 1 => String::new(),
        n => format!(" (gave up after {n} attempts)"),
    }
}

/// What a caller can do about an error, for each front end to say in its own terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// Lenient casting turns values that do not fit their column into nulls.
    LenientNulls,
    /// Lenient casting keeps rows missing a required value.
    LenientKeepsRows,
    /// Name the dataset's kind.
    NameTheKind,
    /// Nothing was committed because of another writer; running the operation again starts
    /// from the version that writer made.
    TryAgain,
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a Polars error with what pqdm was doing.
    pub fn polars(context: impl Into<String>) -> impl FnOnce(polars::error::PolarsError) -> Error {
        let context = context.into();
        move |source| Error::Polars { context, source }
    }

    /// What the caller can do about this error, if pqdm knows something.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            Error::Cast { .. } | Error::TimestampRange { .. } => Some(Hint::LenientNulls),
            Error::MissingValue { .. } => Some(Hint::LenientKeepsRows),
            Error::KindNeeded { .. } => Some(Hint::NameTheKind),
            Error::Conflict { .. } => Some(Hint::TryAgain),
            _ => None,
        }
    }

    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// The most characters of a value or an input line an error message quotes.
pub const QUOTE_CHARS: usize = 200;

/// `text` quoted for an error message: at most [`QUOTE_CHARS`] characters, then how many more
/// there were, so that a huge value or line never floods the terminal or a log.
///
/// ```
/// assert_eq!(pqdm::error::clip("abc"), "\"abc\"");
/// assert!(pqdm::error::clip(&"x".repeat(1000)).ends_with("\"... (800 more characters)"));
/// ```
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((at, _)) => format!(
            "{:?}... ({} more characters)",
            &text[..at],
            text[at..].chars().count()
        ),
        None => format!("{text:?}"),
    }
}

/// A message of Polars' as pqdm shows it: every line cut to about [`QUOTE_CHARS`] characters,
/// at most [`QUOTE_LINES`] lines (Polars quotes whole fields, lines or the rest of the input, a
/// CSV quote never closed, which may be megabytes long), and the URLs a scan on object storage
/// hands Polars put back as the `s3://` URLs they stand for.
pub fn clip_lines(text: &str) -> String {
    const LINE_CHARS: usize = QUOTE_CHARS + 100;
    let text = crate::known_sizes::real_urls(text);
    let lines = text.split('\n').count();
    let more = lines.saturating_sub(QUOTE_LINES);
    text.split('\n')
        .take(QUOTE_LINES)
        .map(|line| match line.char_indices().nth(LINE_CHARS) {
            Some((at, _)) => format!(
                "{}... ({} more characters)",
                &line[..at],
                line[at..].chars().count()
            ),
            None => line.to_string(),
        })
        .chain((more > 0).then(|| format!("... ({more} more lines)")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines of a message [`clip_lines`] keeps.
pub const QUOTE_LINES: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut() {
        let text = format!("short\n{}\nend", "y".repeat(10_000));
        let cut = clip_lines(&text);
        assert_eq!(
            cut,
            format!("short\n{}... (9700 more characters)\nend", "y".repeat(300))
        );
        assert_eq!(clip_lines("a\nb"), "a\nb");
        let rows: Vec<String> = (0..100_000).map(|i| format!("{i},1.5,x")).collect();
        let cut = clip_lines(&format!("could not parse:\n{}", rows.join("\n")));
        let lines: Vec<&str> = cut.lines().collect();
        assert_eq!(lines.len(), QUOTE_LINES + 1);
        assert_eq!(lines[0], "could not parse:");
        assert_eq!(lines[QUOTE_LINES - 1], "10,1.5,x");
        assert_eq!(lines[QUOTE_LINES], "... (99989 more lines)");
    }
}
