//! Dataset kinds: the built-in market-data schemas of the spec, and kinds declared in TOML.
//!
//! A [`Kind`] says which columns a dataset holds (with dtypes), which of them are required,
//! its natural key (for upserts), its timestamp columns and its default partitioning.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use crate::dtype::ColType;

/// One column of a kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Canonical column name.
    pub name: String,
    /// Stored dtype.
    pub dtype: ColType,
    /// A required column must be in the input; an optional one is added as nulls.
    #[serde(default = "default_true")]
    pub required: bool,
    /// Values are timestamps, normalised to milliseconds by magnitude.
    #[serde(default)]
    pub timestamp: bool,
}

fn default_true() -> bool {
    true
}

/// A dataset kind: its columns, key, timestamp column and default partitioning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kind {
    /// The kind's name (`klines`, `aggtrades`, ...).
    pub name: String,
    /// Columns in their stored order (including the identity columns `exchange`, `symbol`, ...).
    pub columns: Vec<ColumnSpec>,
    /// Natural key used by upserts; empty means append-only.
    #[serde(default)]
    pub key: Vec<String>,
    /// The column holding the row's timestamp (ms since the epoch, UTC).
    #[serde(default = "default_timestamp")]
    pub timestamp_column: String,
    /// Default partition columns.
    pub partition_by: Vec<String>,
    /// Keep input columns the kind does not name (as they are) instead of dropping them.
    #[serde(default)]
    pub keep_extra: bool,
    /// Column order of headerless CSV files (the Binance archive layout); `ignore` drops a column.
    #[serde(default)]
    pub positional: Vec<String>,
}

fn default_timestamp() -> String {
    "timestamp".to_string()
}

fn col(name: &str, dtype: ColType) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        dtype,
        required: true,
        timestamp: name == "timestamp",
    }
}

fn opt(name: &str, dtype: ColType) -> ColumnSpec {
    ColumnSpec {
        required: false,
        ..col(name, dtype)
    }
}

fn ts(name: &str, required: bool) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        dtype: ColType::I64,
        required,
        timestamp: true,
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

use ColType::*;

fn identity(timeframe: bool) -> Vec<ColumnSpec> {
    let mut cols = vec![col("exchange", Str), col("symbol", Str)];
    if timeframe {
        cols.push(col("timeframe", Str));
    }
    cols
}

fn kline_columns() -> Vec<ColumnSpec> {
    vec![
        ts("timestamp", true),
        col("open", F64),
        col("high", F64),
        col("low", F64),
        col("close", F64),
        col("volume", F64),
        ts("close_time", false),
        opt("quote_volume", F64),
        opt("trades", I64),
        opt("taker_buy_volume", F64),
        opt("taker_buy_quote_volume", F64),
    ]
}

const KLINE_POSITIONAL: &[&str] = &[
    "timestamp",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
];

/// The six built-in kinds of the spec.
pub fn builtin_kinds() -> Vec<Kind> {
    let klines = Kind {
        name: "klines".into(),
        columns: [kline_columns(), identity(true)].concat(),
        key: names(&["exchange", "symbol", "timeframe", "timestamp"]),
        timestamp_column: "timestamp".into(),
        partition_by: names(&["exchange", "symbol", "timeframe", "year", "month", "day"]),
        keep_extra: false,
        positional: names(KLINE_POSITIONAL),
    };
    let aggtrades = Kind {
        name: "aggtrades".into(),
        columns: [
            vec![
                col("agg_trade_id", I64),
                col("price", F64),
                col("quantity", F64),
                col("first_trade_id", I64),
                col("last_trade_id", I64),
                ts("timestamp", true),
                col("is_buyer_maker", Bool),
                opt("is_best_match", Bool),
            ],
            identity(false),
        ]
        .concat(),
        key: names(&["exchange", "symbol", "agg_trade_id"]),
        timestamp_column: "timestamp".into(),
        partition_by: names(&["exchange", "symbol", "year", "month", "day"]),
        keep_extra: false,
        positional: names(&[
            "agg_trade_id",
            "price",
            "quantity",
            "first_trade_id",
            "last_trade_id",
            "timestamp",
            "is_buyer_maker",
            "is_best_match",
        ]),
    };
    let trades = Kind {
        name: "trades".into(),
        columns: [
            vec![
                col("trade_id", I64),
                col("price", F64),
                col("quantity", F64),
                opt("quote_quantity", F64),
                ts("timestamp", true),
                col("is_buyer_maker", Bool),
                opt("is_best_match", Bool),
            ],
            identity(false),
        ]
        .concat(),
        key: names(&["exchange", "symbol", "trade_id"]),
        timestamp_column: "timestamp".into(),
        partition_by: names(&["exchange", "symbol", "year", "month", "day"]),
        keep_extra: false,
        positional: names(&[
            "trade_id",
            "price",
            "quantity",
            "quote_quantity",
            "timestamp",
            "is_buyer_maker",
            "is_best_match",
        ]),
    };
    let futures = Kind {
        name: "futures".into(),
        columns: [
            vec![
                ts("timestamp", true),
                col("funding_rate", F64),
                opt("funding_interval_hours", I64),
                opt("mark_price", F64),
            ],
            identity(false),
        ]
        .concat(),
        key: names(&["exchange", "symbol", "timestamp"]),
        timestamp_column: "timestamp".into(),
        partition_by: names(&["exchange", "symbol", "year", "month"]),
        keep_extra: false,
        positional: names(&["timestamp", "funding_interval_hours", "funding_rate"]),
    };
    let split = Kind {
        name: "split".into(),
        columns: [
            vec![ts("timestamp", true), col("label", I64)],
            identity(false),
        ]
        .concat(),
        key: vec![],
        timestamp_column: "timestamp".into(),
        partition_by: names(&["exchange", "symbol", "year", "month", "day"]),
        keep_extra: true,
        positional: vec![],
    };
    let unified = Kind {
        name: "unified".into(),
        columns: [
            kline_columns(),
            identity(true),
            vec![
                col("year", I16),
                col("month", I8),
                col("day", I8),
                opt("trade_volume", F64),
                opt("avg_price", F64),
                opt("min_price", F64),
                opt("max_price", F64),
                opt("volume_ratio", F64),
                opt("funding_rate", F64),
                opt("trade_count", I64),
            ],
        ]
        .concat(),
        key: names(&["exchange", "symbol", "timeframe", "timestamp"]),
        timestamp_column: "timestamp".into(),
        partition_by: names(&["exchange", "symbol", "timeframe", "year", "month", "day"]),
        keep_extra: false,
        positional: vec![],
    };
    vec![klines, aggtrades, trades, futures, split, unified]
}

/// Column-name aliases: normalised input name → canonical name.
///
/// Names are normalised by [`normalize_name`] (lower case, no `_`, `-` or spaces), so
/// `fundingRate`, `funding_rate` and `FUNDING RATE` all match.
const ALIASES: &[(&str, &str)] = &[
    ("opentime", "timestamp"),
    ("time", "timestamp"),
    ("transacttime", "timestamp"),
    ("calctime", "timestamp"),
    ("fundingtime", "timestamp"),
    ("datetime", "timestamp"),
    ("date", "timestamp"),
    ("ts", "timestamp"),
    ("closetime", "close_time"),
    ("count", "trades"),
    ("numberoftrades", "trades"),
    ("numtrades", "trades"),
    ("qty", "quantity"),
    ("quoteqty", "quote_quantity"),
    ("quoteassetvolume", "quote_volume"),
    ("takerbuybaseassetvolume", "taker_buy_volume"),
    ("takerbuybasevolume", "taker_buy_volume"),
    ("takerbuyquoteassetvolume", "taker_buy_quote_volume"),
    ("fundingrate", "funding_rate"),
    ("lastfundingrate", "funding_rate"),
    ("markprice", "mark_price"),
    ("fundingintervalhours", "funding_interval_hours"),
    ("aggtradeid", "agg_trade_id"),
    ("aggregatetradeid", "agg_trade_id"),
    ("firsttradeid", "first_trade_id"),
    ("lasttradeid", "last_trade_id"),
    ("isbuyermaker", "is_buyer_maker"),
    ("isbestmatch", "is_best_match"),
    ("id", "trade_id"),
    ("interval", "timeframe"),
];

/// Normalises a column name for matching: lower case without `_`, `-`, spaces or dots.
pub fn normalize_name(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl Kind {
    /// The key columns whose value ranges file entries record: every key column but the
    /// timestamp (whose range entries always record). Partition columns among them have no
    /// statistics in the files, so no range.
    pub fn range_columns(&self) -> impl Iterator<Item = &String> {
        self.key.iter().filter(|k| **k != self.timestamp_column)
    }

    /// The column spec named `name`, if the kind has it.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The canonical column an input column name stands for, if any.
    pub fn canonical_name(&self, input: &str) -> Option<String> {
        let norm = normalize_name(input);
        if let Some(c) = self
            .columns
            .iter()
            .find(|c| normalize_name(&c.name) == norm)
        {
            return Some(c.name.clone());
        }
        ALIASES
            .iter()
            .find(|(alias, _)| *alias == norm)
            .map(|(_, canonical)| canonical.to_string())
            .filter(|canonical| self.column(canonical).is_some())
    }

    /// Checks the kind's own consistency (key and partition columns exist, one timestamp column).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, name: &str| {
            Error::Schema(format!(
                "kind `{}`: {what} `{name}` is not one of its columns",
                self.name
            ))
        };
        if self.column(&self.timestamp_column).is_none() {
            return Err(bad("timestamp column", &self.timestamp_column));
        }
        for k in &self.key {
            if self.column(k).is_none() {
                return Err(bad("key column", k));
            }
        }
        for p in &self.partition_by {
            if self.column(p).is_none() && !crate::partition::is_derived(p) {
                return Err(bad("partition column", p));
            }
        }
        Ok(())
    }
}

/// Refuses partition column `name` of kind `kind` where it cannot name a folder (see
/// [`crate::partition::column_name_problem`]); checked where a dataset is created, so that one
/// such kind does not make a whole kinds file unusable.
pub(crate) fn check_partition_name(kind: &str, name: &str) -> Result<()> {
    match crate::partition::column_name_problem(name) {
        Some(why) => Err(Error::Schema(format!(
            "kind `{kind}`: partition column {} {why}",
            crate::error::clip(name)
        ))),
        None => Ok(()),
    }
}

/// The kinds pqdm knows: the built-ins plus any declared in TOML files.
#[derive(Clone, Debug)]
pub struct KindRegistry {
    kinds: BTreeMap<String, Kind>,
}

/// The shape of a kinds TOML file: `[[kind]]` tables.
#[derive(Deserialize)]
struct KindFile {
    #[serde(default)]
    kind: Vec<Kind>,
}

impl Default for KindRegistry {
    fn default() -> Self {
        KindRegistry {
            kinds: builtin_kinds()
                .into_iter()
                .map(|k| (k.name.clone(), k))
                .collect(),
        }
    }
}

impl KindRegistry {
    /// Adds the kinds declared in a TOML string (`[[kind]]` tables); `origin` names it in errors.
    ///
    /// ```
    /// let mut kinds = pqdm::schema::KindRegistry::default();
    /// kinds.add_toml(r#"
    /// [[kind]]
    /// name = "book"
    /// key = ["symbol", "timestamp"]
    /// partition_by = ["symbol", "year"]
    /// columns = [
    ///   { name = "timestamp", dtype = "i64", timestamp = true },
    ///   { name = "symbol", dtype = "str" },
    ///   { name = "bid", dtype = "f64" },
    /// ]
    /// "#, "example").unwrap();
    /// assert_eq!(kinds.get("book").unwrap().columns.len(), 3);
    /// ```
    pub fn add_toml(&mut self, text: &str, origin: &str) -> Result<()> {
        let file: KindFile = toml::from_str(text)
            .map_err(|e| Error::Schema(format!("{origin}: invalid kinds file: {e}")))?;
        for kind in file.kind {
            kind.validate()?;
            self.kinds.insert(kind.name.clone(), kind);
        }
        Ok(())
    }

    /// Adds the kinds declared in a TOML file.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        self.add_toml(&text, &path.display().to_string())
    }

    /// The kind named `name` (case-insensitive), or an error listing the known kinds.
    pub fn get(&self, name: &str) -> Result<&Kind> {
        let lower = name.to_ascii_lowercase();
        self.kinds
            .get(&lower)
            .or_else(|| self.kinds.get(name))
            .ok_or_else(|| {
                Error::Schema(format!(
                    "unknown kind `{name}` (known kinds: {})",
                    self.kinds.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })
    }

    /// Names of all known kinds.
    pub fn names(&self) -> Vec<String> {
        self.kinds.keys().cloned().collect()
    }
}
