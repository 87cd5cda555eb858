//! Filters from Python: `(column, operator, values)` triples the Python layer made from the old
//! tuple form or keyword arguments, values already as text (no grammar is parsed: a value may
//! hold commas or brackets). A triple with an empty operator holds a filter in the text
//! grammar (`"symbol in [BTCUSDT, ETHUSDT]"`) as its column.

use pqdm::Filter;
use pqdm::filter::Op;
use pyo3::prelude::*;

use crate::errors::{IntoPy, invalid};

/// One filter as Python passes it.
pub type Triple = (String, String, Vec<String>);

/// The typed filters of `triples`; an unknown operator or a wrong number of values is an
/// `InvalidInputError` naming the filter.
pub fn from_triples(triples: Vec<Triple>) -> PyResult<Vec<Filter>> {
    triples
        .into_iter()
        .map(|(column, op_text, raw)| {
            if op_text.is_empty() {
                // A filter in the command line's text grammar (`symbol == BTCUSDT`).
                return Filter::parse(&column).py();
            }
            let text = format!("{column} {op_text} {}", raw.join(", "));
            let op: Op = op_text
                .parse::<Op>()
                .map_err(|e| pqdm::Error::Options(format!("filter `{text}`: {e}")))
                .py()?;
            let wanted = match op {
                Op::IsNull | Op::IsNotNull => Some(0),
                Op::Between => Some(2),
                Op::In | Op::NotIn => None,
                _ => Some(1),
            };
            if let Some(n) = wanted
                && raw.len() != n
            {
                return Err(invalid(format!(
                    "invalid option: filter `{text}`: `{op}` takes {n} value(s), got {}",
                    raw.len()
                )));
            }
            if column.is_empty() {
                return Err(invalid(format!(
                    "invalid option: filter `{text}`: the column is empty"
                )));
            }
            Ok(Filter {
                column,
                op,
                raw,
                text,
            })
        })
        .collect()
}
