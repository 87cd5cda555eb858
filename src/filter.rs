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
    // Commas inside quotes belong to the value (`["BTC,USDT", ETH]` is two values).
    let mut items = vec![];
    let (mut start, mut quote) = (0, None);
    for (i, c) in inner.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) if inner[start..i].trim().is_empty() => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (',', None) => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
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
        let raw = raw_values(op, value).map_err(bad)?;
        Ok(Filter {
            column: column.to_string(),
            op,
            raw,
            text: text.trim().to_string(),
        })
    }

    /// A filter from a tuple such as `("symbol", "==", "ETHUSDT")` or `("price", "between", "[1, 2]")`:
    /// the column and a scalar value are taken as they are (not parsed as the text grammar).
    pub fn from_tuple(column: &str, op: &str, value: &str) -> Result<Filter> {
        let text = format!("{column} {op} {value}");
        let bad = |msg: String| Error::Options(format!("filter `{text}`: {msg}"));
        if column.is_empty() {
            return Err(bad("the column is empty".into()));
        }
        let op: Op = op
            .parse()
            .map_err(|_| bad(format!("unknown operator `{op}` (expected {OPS})")))?;
        Ok(Filter {
            column: column.to_string(),
            op,
            raw: raw_values(op, value.trim()).map_err(bad)?,
            text,
        })
    }

    /// `column == value`. Typed constructors take values as they are: no text grammar is
    /// parsed, so a value may hold `,`, `]` or quotes. A value is typed by the column when the
    /// scan is planned (numbers and ISO dates for the timestamp column from their text).
    pub fn eq(column: &str, value: impl fmt::Display) -> Filter {
        Filter::of(column, Op::Eq, [value])
    }

    /// `column != value` (see [`Filter::eq`]).
    pub fn ne(column: &str, value: impl fmt::Display) -> Filter {
        Filter::of(column, Op::Ne, [value])
    }

    /// `column < value` (see [`Filter::eq`]).
    pub fn lt(column: &str, value: impl fmt::Display) -> Filter {
        Filter::of(column, Op::Lt, [value])
    }

    /// `column <= value` (see [`Filter::eq`]).
    pub fn le(column: &str, value: impl fmt::Display) -> Filter {
        Filter::of(column, Op::Le, [value])
    }

    /// `column > value` (see [`Filter::eq`]).
    pub fn gt(column: &str, value: impl fmt::Display) -> Filter {
        Filter::of(column, Op::Gt, [value])
    }

    /// `column >= value` (see [`Filter::eq`]).
    pub fn ge(column: &str, value: impl fmt::Display) -> Filter {
        Filter::of(column, Op::Ge, [value])
    }

    /// `column in values` (see [`Filter::eq`]).
    pub fn is_in<V: fmt::Display>(column: &str, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::of(column, Op::In, values)
    }

    /// `column not_in values` (see [`Filter::eq`]).
    pub fn not_in<V: fmt::Display>(column: &str, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::of(column, Op::NotIn, values)
    }

    /// `low <= column <= high` (see [`Filter::eq`]).
    pub fn between(column: &str, low: impl fmt::Display, high: impl fmt::Display) -> Filter {
        Filter::of(column, Op::Between, [low.to_string(), high.to_string()])
    }

    /// `column is_null`.
    pub fn is_null(column: &str) -> Filter {
        Filter::of(column, Op::IsNull, [""; 0])
    }

    /// `column is_not_null`.
    pub fn is_not_null(column: &str) -> Filter {
        Filter::of(column, Op::IsNotNull, [""; 0])
    }

    fn of<V: fmt::Display>(column: &str, op: Op, values: impl IntoIterator<Item = V>) -> Filter {
        let raw: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
        let shown = match op {
            Op::IsNull | Op::IsNotNull => String::new(),
            Op::In | Op::NotIn | Op::Between => format!(" {raw:?}"),
            _ => format!(" {}", raw.join("")),
        };
        Filter {
            column: column.to_string(),
            op,
            text: format!("{column} {op}{shown}"),
            raw,
        }
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

/// The values of a filter whose operator is `op`, from the text after it: a list for
/// `in`/`not_in`/`between`, nothing for null checks, else the text itself (unquoted). The
/// error says what the operator takes.
fn raw_values(op: Op, value: &str) -> std::result::Result<Vec<String>, String> {
    Ok(match op {
        Op::IsNull | Op::IsNotNull => {
            if !value.is_empty() {
                return Err(format!("`{op}` takes no value (got `{value}`)"));
            }
            vec![]
        }
        Op::In | Op::NotIn => {
            if !value.starts_with(['[', '(']) {
                return Err(format!("`{op}` takes a list like [a, b] (got `{value}`)"));
            }
            split_list(value)
        }
        Op::Between => {
            let list = split_list(value);
            if list.len() != 2 {
                return Err(format!(
                    "`between` takes two values like [lo, hi] (got `{value}`)"
                ));
            }
            list
        }
        _ => {
            if value.is_empty() {
                return Err(format!("`{op}` needs a value"));
            }
            vec![unquote(value).to_string()]
        }
    })
}

fn parse_value(v: &str, dtype: ColType, timestamp: bool) -> Option<Value> {
    if timestamp {
        return parse_timestamp(v).map(Value::Int);
    }
    match dtype {
        // A value past the column's width would become a null literal in Polars' cast and
        // make `!=`, `<` and `not_in` match no row at all: it does not fit, like `1.5`.
        ColType::I64 => v.trim().parse().ok().map(Value::Int),
        ColType::I32 => v.trim().parse::<i32>().ok().map(|n| Value::Int(n.into())),
        ColType::I16 => v.trim().parse::<i16>().ok().map(|n| Value::Int(n.into())),
        ColType::I8 => v.trim().parse::<i8>().ok().map(|n| Value::Int(n.into())),
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
        let int = |i: usize| self.int_value(i);
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

    /// Value `i` when it is an integer (timestamps are, in milliseconds).
    fn int_value(&self, i: usize) -> Option<i64> {
        match self.values.get(i) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }

    /// Whether every value in `[min, max]` passes this filter: a file whose values of this
    /// column all lie there, none null, needs no row filtering.
    pub fn range_always_matches(&self, min: i64, max: i64) -> bool {
        let int = |i: usize| self.int_value(i);
        let ints = || (0..self.values.len()).map(|i| self.int_value(i));
        match (self.op, int(0)) {
            (Op::Eq, Some(v)) => min == v && max == v,
            (Op::Ne, Some(v)) => max < v || min > v,
            (Op::Lt, Some(v)) => max < v,
            (Op::Le, Some(v)) => max <= v,
            (Op::Gt, Some(v)) => min > v,
            (Op::Ge, Some(v)) => min >= v,
            (Op::Between, Some(lo)) => int(1).is_some_and(|hi| lo <= min && max <= hi),
            (Op::In, _) => min == max && ints().any(|v| v == Some(min)),
            (Op::NotIn, _) => ints().all(|v| v.is_some_and(|v| v < min || max < v)),
            (Op::IsNotNull, _) => true,
            _ => false,
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

/// Whether a partition folder's value `text` reads as a value of `dtype` in every reader: it
/// parses at the column's width, and a boolean is `true` or `false`.
pub(crate) fn partition_text_fits(text: &str, dtype: ColType) -> bool {
    match dtype {
        ColType::Str => true,
        ColType::Bool => matches!(text, "true" | "false"),
        // Other readers parse the text as it is: no space around a number or a date.
        _ => text == text.trim() && parse_value(text, dtype, false).is_some(),
    }
}

/// Parses a partition value from its path text by the column's dtype (`None` if it does not fit).
/// A folder's integer is read at full width, whatever the column's: pruning compares it as it is.
pub fn partition_value(text: Option<&str>, dtype: ColType) -> Option<Value> {
    text.and_then(|t| match dtype {
        ColType::I32 | ColType::I16 | ColType::I8 => t.trim().parse().ok().map(Value::Int),
        _ => parse_value(t, dtype, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (String, Op, Vec<String>) {
        let f = Filter::parse(text).unwrap();
        (f.column, f.op, f.raw)
    }

    fn typed(text: &str, dtype: ColType) -> Result<Vec<Value>> {
        Ok(Filter::parse(text)?.typed(dtype, false)?.values)
    }

    fn error(text: &str, dtype: ColType, timestamp: bool) -> String {
        Filter::parse(text)
            .and_then(|f| f.typed(dtype, timestamp))
            .unwrap_err()
            .to_string()
    }

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_grammar_reads_every_operator_and_list() {
        let long = "é".repeat(150);
        for (text, column, op, raw) in [
            (
                "  symbol   ==  'BTC/USDT' ",
                "symbol",
                Op::Eq,
                s(&["BTC/USDT"]),
            ),
            ("a=x", "a", Op::Eq, s(&["x"])),
            ("a eq \"x y\"", "a", Op::Eq, s(&["x y"])),
            ("a != x", "a", Op::Ne, s(&["x"])),
            ("a <> x", "a", Op::Ne, s(&["x"])),
            ("a<1", "a", Op::Lt, s(&["1"])),
            ("a <= -1", "a", Op::Le, s(&["-1"])),
            ("a>1", "a", Op::Gt, s(&["1"])),
            ("a GE 1", "a", Op::Ge, s(&["1"])),
            ("a in [x, 'y', \"z\"]", "a", Op::In, s(&["x", "y", "z"])),
            (
                "a in [\"x, y\", 'z,', w]",
                "a",
                Op::In,
                s(&["x, y", "z,", "w"]),
            ),
            ("a in [it's, b]", "a", Op::In, s(&["it's", "b"])),
            ("a in []", "a", Op::In, vec![]),
            ("a not_in (x)", "a", Op::NotIn, s(&["x"])),
            ("a between [1, 2]", "a", Op::Between, s(&["1", "2"])),
            ("a is_null", "a", Op::IsNull, vec![]),
            ("a IS_NOT_NULL", "a", Op::IsNotNull, vec![]),
            // Path-like text is a value like any other: no escaping, no globbing.
            ("s == a/b%2F..[c", "s", Op::Eq, s(&["a/b%2F..[c"])),
            ("s.x == [1]", "s.x", Op::Eq, s(&["[1]"])),
        ] {
            assert_eq!(parsed(text), (column.to_string(), op, raw), "{text}");
        }
        let f = Filter::parse(&format!(" symbol == {long} ")).unwrap();
        assert_eq!(f.raw, std::slice::from_ref(&long));
        assert_eq!(f.text, format!("symbol == {long}"));
        assert_eq!(
            Filter::from_tuple("price", "between", "[1, 2]").unwrap(),
            Filter::parse("price between [1, 2]").unwrap()
        );
    }

    #[test]
    fn malformed_filters_say_what_is_wrong() {
        for (text, want) in [
            ("", "filter ``: expected `COLUMN OPERATOR VALUE`"),
            ("== x", "filter `== x`: expected `COLUMN OPERATOR VALUE`"),
            (
                "symbol",
                "filter `symbol`: missing operator (expected ==, !=",
            ),
            ("symbol ~= x", "filter `symbol ~= x`: unknown operator `~=`"),
            (
                "symbol like x",
                "filter `symbol like x`: unknown operator `like`",
            ),
            ("symbol ==", "filter `symbol ==`: `==` needs a value"),
            (
                "symbol in x",
                "filter `symbol in x`: `in` takes a list like [a, b] (got `x`)",
            ),
            (
                "p between [1]",
                "`between` takes two values like [lo, hi] (got `[1]`)",
            ),
            ("p between [1, 2, 3]", "`between` takes two values"),
            (
                "p is_null 1",
                "filter `p is_null 1`: `is_null` takes no value (got `1`)",
            ),
        ] {
            let err = Filter::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn values_are_typed_by_the_columns_dtype_and_width() {
        use ColType::*;
        assert_eq!(typed("d == 127", I8).unwrap(), [Value::Int(127)]);
        assert_eq!(typed("d == -128", I8).unwrap(), [Value::Int(-128)]);
        assert_eq!(
            typed("y in [32767, -32768]", I16).unwrap(),
            [Value::Int(32767), Value::Int(-32768)]
        );
        assert_eq!(
            typed("n == 2147483647", I32).unwrap(),
            [Value::Int(i32::MAX.into())]
        );
        assert_eq!(
            typed("n between [-9223372036854775808, 9223372036854775807]", I64).unwrap(),
            [Value::Int(i64::MIN), Value::Int(i64::MAX)]
        );
        assert_eq!(typed("p < 1e300", F64).unwrap(), [Value::Float(1e300)]);
        assert_eq!(typed("p == 42", F64).unwrap(), [Value::Float(42.0)]);
        assert_eq!(
            typed("b in [TRUE, 0, false, 1]", Bool).unwrap(),
            [
                Value::Bool(true),
                Value::Bool(false),
                Value::Bool(false),
                Value::Bool(true)
            ]
        );
        assert_eq!(
            typed("d >= 2024-01-05", Date).unwrap(),
            [Value::Date(19_727)]
        );
        assert_eq!(typed("d == 1970-01-01", Date).unwrap(), [Value::Date(0)]);
        assert_eq!(
            typed("s == 0001", Str).unwrap(),
            [Value::Str("0001".into())]
        );
        // Past the width: refused like a fraction, never a null literal that matches nothing.
        for (text, dtype, value, name) in [
            ("day != 300", I8, "300", "i8"),
            ("day not_in [5, 128]", I8, "128", "i8"),
            ("year < 32768", I16, "32768", "i16"),
            ("n > -2147483649", I32, "-2147483649", "i32"),
            (
                "n == 9223372036854775808",
                I64,
                "9223372036854775808",
                "i64",
            ),
            ("n == 1.5", I64, "1.5", "i64"),
            ("p == abc", F64, "abc", "f64"),
            ("b == yes", Bool, "yes", "bool"),
            ("d == 2024-13-01", Date, "2024-13-01", "date"),
        ] {
            let column = text.split(' ').next().unwrap();
            assert_eq!(
                error(text, dtype, false),
                format!(
                    "invalid option: filter `{text}`: value `{value}` does not fit column `{column}` ({name}); expected a {name} value"
                ),
            );
        }
    }

    #[test]
    fn timestamp_values_take_iso_text_and_numbers_of_any_unit() {
        let ts = |text: &str| {
            Filter::parse(text)
                .unwrap()
                .typed(ColType::I64, true)
                .unwrap()
                .values
        };
        let jan5 = Value::Int(1_704_412_800_000);
        for text in [
            "t >= 2024-01-05",
            "t >= 2024-01-05T00:00:00Z",
            "t >= '2024-01-05 00:00'",
            "t >= 2024-01-05T01:00:00+01:00",
            "t >= 1704412800",
            "t >= 1704412800000",
            "t >= 1704412800000000",
            "t >= 1704412800000000000",
        ] {
            assert_eq!(ts(text), std::slice::from_ref(&jan5), "{text}");
        }
        assert_eq!(
            ts("t > 2024-01-05T10:00:00.123Z"),
            [Value::Int(1_704_448_800_123)]
        );
        // i64::MIN reads as nanoseconds, rounded down to the millisecond.
        assert_eq!(
            ts("t < -9223372036854775808"),
            [Value::Int(-9_223_372_036_855)]
        );
        let err = error("t >= yesterday", ColType::I64, true);
        assert!(
            err.contains(
                "value `yesterday` does not fit column `t` (i64); expected an ISO date or time"
            ),
            "{err}"
        );
    }

    fn typed_filter(text: &str, dtype: ColType) -> TypedFilter {
        Filter::parse(text).unwrap().typed(dtype, false).unwrap()
    }

    #[test]
    fn partitions_are_kept_exactly_when_they_may_match() {
        let int = |v: i64| Some(Value::Int(v));
        let str = |v: &str| Some(Value::Str(v.into()));
        for (text, dtype, value, want) in [
            ("s == BTC", ColType::Str, str("BTC"), true),
            ("s == BTC", ColType::Str, str("btc"), false),
            ("s == BTC", ColType::Str, None, false),
            ("s != BTC", ColType::Str, None, false),
            ("s != BTC", ColType::Str, str("ETH"), true),
            ("s is_null", ColType::Str, None, true),
            ("s is_null", ColType::Str, str(""), false),
            ("s is_not_null", ColType::Str, None, false),
            ("s is_not_null", ColType::Str, str("x"), true),
            ("s in []", ColType::Str, str("x"), false),
            ("s not_in []", ColType::Str, str("x"), true),
            ("s not_in [x]", ColType::Str, None, false),
            ("d < 5", ColType::I8, int(5), false),
            ("d <= 5", ColType::I8, int(5), true),
            ("d > 5", ColType::I8, int(5), false),
            ("d >= 5", ColType::I8, int(5), true),
            ("d between [5, 5]", ColType::I8, int(5), true),
            ("d between [6, 9]", ColType::I8, int(5), false),
            ("d in [1, 5]", ColType::I8, int(5), true),
            ("d not_in [1, 5]", ColType::I8, int(5), false),
            (
                "n >= 9223372036854775807",
                ColType::I64,
                int(i64::MAX),
                true,
            ),
            (
                "n > -9223372036854775808",
                ColType::I64,
                int(i64::MIN),
                false,
            ),
            // A folder's integer past the column's width compares as the integer it is.
            ("d < 100", ColType::I8, int(300), false),
            ("p > 1", ColType::F64, int(2), true),
        ] {
            let f = typed_filter(text, dtype);
            assert_eq!(
                f.partition_may_match(value.as_ref()),
                want,
                "{text} on {value:?}"
            );
        }
        assert_eq!(partition_value(Some("300"), ColType::I8), int(300));
        assert_eq!(partition_value(Some("x"), ColType::I8), None);
        assert_eq!(partition_value(None, ColType::Str), None);
        assert_eq!(
            partition_value(Some("2024-01-05"), ColType::Date),
            Some(Value::Date(19_727))
        );
    }

    #[test]
    fn files_are_kept_exactly_when_their_range_may_match() {
        let f = |text: &str| typed_filter(text, ColType::I64);
        for (text, (min, max), want) in [
            ("t == 10", (10, 20), true),
            ("t == 20", (10, 20), true),
            ("t == 21", (10, 20), false),
            ("t < 10", (10, 20), false),
            ("t < 11", (10, 20), true),
            ("t <= 10", (10, 20), true),
            ("t > 20", (10, 20), false),
            ("t >= 20", (10, 20), true),
            ("t between [21, 30]", (10, 20), false),
            ("t between [0, 10]", (10, 20), true),
            ("t in [1, 21]", (10, 20), false),
            ("t in [1, 15]", (10, 20), true),
            ("t != 15", (15, 15), true),
            ("t is_null", (10, 20), true),
            ("t >= 0", (0, 0), true),
            ("t < 0", (0, 0), false),
        ] {
            let typed = f(text);
            assert_eq!(
                typed.range_may_match(min, max),
                want,
                "{text} on {min}..{max}"
            );
        }
    }

    #[test]
    fn expressions_keep_nulls_out_of_comparisons() {
        let df = df!("a" => [Some(1i64), Some(2), None]).unwrap();
        let kept = |text: &str| -> Vec<Option<i64>> {
            let e = typed_filter(text, ColType::I64).to_expr();
            let out = df.clone().lazy().filter(e).collect().unwrap();
            out.column("a").unwrap().i64().unwrap().iter().collect()
        };
        assert_eq!(kept("a != 1"), [Some(2)]);
        assert_eq!(kept("a not_in [1]"), [Some(2)]);
        assert_eq!(kept("a not_in []"), [Some(1), Some(2)]);
        assert_eq!(kept("a in []"), Vec::<Option<i64>>::new());
        assert_eq!(kept("a is_null"), [None]);
        assert_eq!(kept("a between [2, 2]"), [Some(2)]);
        assert_eq!(kept("a >= -9223372036854775808"), [Some(1), Some(2)]);
        let small = df!("d" => [5i8, 6]).unwrap();
        let e = typed_filter("d in [5, 127]", ColType::I8).to_expr();
        let out = small.lazy().filter(e).collect().unwrap();
        assert_eq!(out.column("d").unwrap().i8().unwrap().get(0), Some(5));
        assert_eq!(out.height(), 1);
    }
}
