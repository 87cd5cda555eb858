//! Filters: the text grammar (`symbol == ETHUSDT`, `timestamp >= 2024-01-05`,
//! `price between [1, 2]`, `symbol in [BTCUSDT, ETHUSDT]`, `funding_rate is_null`), tuples
//! (`("symbol", "==", "ETHUSDT")`) and plain Polars `Expr`s. Any number of filters, ANDed.
//!
//! Values are typed by the column's dtype; the timestamp column also takes ISO dates and times.
//! An unknown column, an unknown operator or a value that does not fit is an error naming it.
//! Typed filters also prune: partition filters select folders and timestamp ranges select
//! files by the manifest's min/max, before any file is opened.

use std::fmt;
use std::str::FromStr;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::schema::ColType;
use crate::timestamp::parse_timestamp;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in [a, b]`
    In,
    /// `not_in [a, b]`
    NotIn,
    /// `between [lo, hi]` (both ends included)
    Between,
    /// `is_null`
    IsNull,
    /// `is_not_null`
    IsNotNull,
}

const OPS: &str = "==, !=, <, <=, >, >=, in, not_in, between, is_null, is_not_null";

impl FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Op> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "==" | "=" | "eq" => Op::Eq,
            "!=" | "<>" | "ne" => Op::Ne,
            "<" | "lt" => Op::Lt,
            "<=" | "le" => Op::Le,
            ">" | "gt" => Op::Gt,
            ">=" | "ge" => Op::Ge,
            "in" => Op::In,
            "not_in" | "not in" => Op::NotIn,
            "between" => Op::Between,
            "is_null" | "is null" => Op::IsNull,
            "is_not_null" | "is not null" => Op::IsNotNull,
            other => {
                return Err(Error::Options(format!(
                    "unknown operator `{other}` (expected {OPS})"
                )));
            }
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Between => "between",
            Op::IsNull => "is_null",
            Op::IsNotNull => "is_not_null",
        })
    }
}

/// One typed value of a filter.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum Value {
    /// Integers (and timestamps in ms).
    Int(i64),
    /// Floats.
    Float(f64),
    /// Booleans.
    Bool(bool),
    /// Strings.
    Str(String),
    /// Dates, as days since the epoch.
    Date(i32),
}

impl Value {
    fn to_lit(&self, dtype: ColType) -> Expr {
        let e = match self {
            Value::Int(v) => lit(*v),
            Value::Float(v) => lit(*v),
            Value::Bool(v) => lit(*v),
            Value::Str(v) => lit(v.clone()),
            Value::Date(d) => lit(*d).cast(DataType::Date),
        };
        e.cast(dtype.dtype())
    }

    /// Orders two values of the same column.
    fn cmp(&self, other: &Value) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.partial_cmp(b),
            (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
            (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
            (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Value::Str(a), Value::Str(b)) => a.partial_cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.partial_cmp(b),
            (Value::Date(a), Value::Date(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

/// A filter: `column op values`, typed or still raw text.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// The column.
    pub column: String,
    /// The operator.
    pub op: Op,
    /// The values as written (one for comparisons, several for `in`/`not_in`, two for `between`).
    pub raw: Vec<String>,
    /// The filter as the user wrote it, for error messages.
    pub text: String,
}

/// A filter made ready for one dataset: values typed by the column's dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct TypedFilter {
    /// The column.
    pub column: String,
    /// The column's dtype.
    pub dtype: ColType,
    /// The operator.
    pub op: Op,
    /// Typed values.
    pub values: Vec<Value>,
    /// Whether the files store the column as a date-time (files of other tools, scanned
    /// without a manifest): it is then compared in milliseconds since the epoch, as pqdm's own
    /// Int64 timestamps are, whatever unit and time zone the files use.
    pub datetime: bool,
}

fn split_list(text: &str) -> Vec<String> {
    let inner = text
        .trim()
        .trim_start_matches(['[', '('])
        .trim_end_matches([']', ')']);
    if inner.trim().is_empty() {
        return vec![];
    }
    inner
        .split(',')
        .map(|s| unquote(s.trim()).to_string())
        .collect()
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

impl Filter {
    /// Parses `COL OP VALUE` (see the module docs).
    pub fn parse(text: &str) -> Result<Filter> {
        let bad = |msg: String| Error::Options(format!("filter `{text}`: {msg}"));
        let t = text.trim();
        let name_end = t
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(t.len());
        let column = &t[..name_end];
        if column.is_empty() {
            return Err(bad("expected `COLUMN OPERATOR VALUE`".into()));
        }
        let rest = t[name_end..].trim_start();
        let op_end = if rest.starts_with(|c: char| "=!<>~^%&|".contains(c)) {
            rest.find(|c: char| !"=!<>~^%&|".contains(c))
                .unwrap_or(rest.len())
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        let op_text = &rest[..op_end];
        if op_text.is_empty() {
            return Err(bad(format!("missing operator (expected {OPS})")));
        }
        let op: Op = op_text
            .parse()
            .map_err(|_| bad(format!("unknown operator `{op_text}` (expected {OPS})")))?;
        let value = rest[op_end..].trim();
        let raw = match op {
            Op::IsNull | Op::IsNotNull => {
                if !value.is_empty() {
                    return Err(bad(format!("`{op}` takes no value (got `{value}`)")));
                }
                vec![]
            }
            Op::In | Op::NotIn => {
                if !value.starts_with(['[', '(']) {
                    return Err(bad(format!(
                        "`{op}` takes a list like [a, b] (got `{value}`)"
                    )));
                }
                split_list(value)
            }
            Op::Between => {
                let list = split_list(value);
                if list.len() != 2 {
                    return Err(bad(format!(
                        "`between` takes two values like [lo, hi] (got `{value}`)"
                    )));
                }
                list
            }
            _ => {
                if value.is_empty() {
                    return Err(bad(format!("`{op}` needs a value")));
                }
                vec![unquote(value).to_string()]
            }
        };
        Ok(Filter {
            column: column.to_string(),
            op,
            raw,
            text: text.trim().to_string(),
        })
    }

    /// A filter from a tuple such as `("symbol", "==", "ETHUSDT")` or `("price", "between", "[1, 2]")`.
    pub fn from_tuple(column: &str, op: &str, value: &str) -> Result<Filter> {
        Filter::parse(&format!("{column} {op} {value}"))
    }

    /// Types the values by `dtype`; `timestamp` marks the timestamp column (ISO dates allowed).
    pub fn typed(&self, dtype: ColType, timestamp: bool) -> Result<TypedFilter> {
        let values = self
            .raw
            .iter()
            .map(|v| {
                parse_value(v, dtype, timestamp).ok_or_else(|| {
                    let expected = if timestamp {
                        "an ISO date or time (2024-01-05, 2024-01-05T10:00:00Z) or epoch number".to_string()
                    } else {
                        format!("a {} value", dtype.name())
                    };
                    Error::Options(format!(
                        "filter `{}`: value `{v}` does not fit column `{}` ({}); expected {expected}",
                        self.text,
                        self.column,
                        dtype.name()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TypedFilter {
            column: self.column.clone(),
            dtype,
            op: self.op,
            values,
            datetime: false,
        })
    }
}

fn parse_value(v: &str, dtype: ColType, timestamp: bool) -> Option<Value> {
    if timestamp {
        return parse_timestamp(v).map(Value::Int);
    }
    match dtype {
        ColType::I64 | ColType::I32 | ColType::I16 | ColType::I8 => {
            v.trim().parse().ok().map(Value::Int)
        }
        ColType::F64 => v.trim().parse().ok().map(Value::Float),
        ColType::Bool => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        ColType::Str => Some(Value::Str(v.to_string())),
        ColType::Date => chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
            .ok()
            .map(|d| Value::Date((d - chrono::NaiveDate::default()).num_days() as i32)),
    }
}

impl TypedFilter {
    /// The filter as a Polars expression.
    pub fn to_expr(&self) -> Expr {
        let c = column_expr(&self.column, self.datetime);
        let v = |i: usize| self.values[i].to_lit(self.dtype);
        let list = || {
            self.values.iter().fold(lit(false), |acc, x| {
                acc.or(c.clone().eq(x.to_lit(self.dtype)))
            })
        };
        match self.op {
            Op::Eq => c.eq(v(0)),
            Op::Ne => c.neq(v(0)),
            Op::Lt => c.lt(v(0)),
            Op::Le => c.lt_eq(v(0)),
            Op::Gt => c.gt(v(0)),
            Op::Ge => c.gt_eq(v(0)),
            Op::In => list(),
            Op::NotIn => list().not().and(c.is_not_null()),
            Op::Between => c.clone().gt_eq(v(0)).and(c.lt_eq(v(1))),
            Op::IsNull => c.is_null(),
            Op::IsNotNull => c.is_not_null(),
        }
    }

    /// Whether a partition whose value of this column is `value` may hold matching rows.
    pub fn partition_may_match(&self, value: Option<&Value>) -> bool {
        use std::cmp::Ordering::*;
        let Some(value) = value else {
            // Only null checks match the null partition; comparisons with null are never true.
            return self.op == Op::IsNull;
        };
        let c = |i: usize| value.cmp(&self.values[i]);
        match self.op {
            Op::Eq => c(0) == Some(Equal),
            Op::Ne => c(0) != Some(Equal),
            Op::Lt => c(0) == Some(Less),
            Op::Le => matches!(c(0), Some(Less | Equal)),
            Op::Gt => c(0) == Some(Greater),
            Op::Ge => matches!(c(0), Some(Greater | Equal)),
            Op::In => (0..self.values.len()).any(|i| c(i) == Some(Equal)),
            Op::NotIn => (0..self.values.len()).all(|i| c(i) != Some(Equal)),
            Op::Between => {
                matches!(c(0), Some(Greater | Equal)) && matches!(c(1), Some(Less | Equal))
            }
            Op::IsNull => false,
            Op::IsNotNull => true,
        }
    }

    /// Whether a file whose values of this column lie in `[min, max]` may hold matching rows.
    pub fn range_may_match(&self, min: i64, max: i64) -> bool {
        let int = |i: usize| match self.values.get(i) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        };
        match (self.op, int(0)) {
            (Op::Eq, Some(v)) => min <= v && v <= max,
            (Op::Lt, Some(v)) => min < v,
            (Op::Le, Some(v)) => min <= v,
            (Op::Gt, Some(v)) => max > v,
            (Op::Ge, Some(v)) => max >= v,
            (Op::Between, Some(lo)) => int(1).is_none_or(|hi| min <= hi && max >= lo),
            (Op::In, _) => self
                .values
                .iter()
                .any(|x| matches!(x, Value::Int(v) if min <= *v && *v <= max)),
            _ => true,
        }
    }
}

/// The column `name` as filters compare it: a date-time column (`datetime`) as milliseconds
/// since the epoch, like pqdm's own Int64 timestamps.
pub fn column_expr(name: &str, datetime: bool) -> Expr {
    match datetime {
        true => col(name).dt().timestamp(TimeUnit::Milliseconds),
        false => col(name),
    }
}

/// Parses a partition value from its path text by the column's dtype (`None` if it does not fit).
pub fn partition_value(text: Option<&str>, dtype: ColType) -> Option<Value> {
    text.and_then(|t| parse_value(t, dtype, false))
}
