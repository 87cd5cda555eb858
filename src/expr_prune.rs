//! Pruning from Polars expressions: what an [`Expr`] given to a scan implies about one column
//! compared with literals (`col("timestamp").gt_eq(lit(..))`, `is_in`, `is_between`,
//! `is_null`, joined by `and`), as filters the manifest prunes folders and files by, exactly as
//! it does for the text grammar's filters.
//!
//! Sound by construction: every filter returned holds for each row the expression keeps, so
//! pruning by it never drops a matching row. Anything else (`or`, `not`, casts, arithmetic,
//! other functions, literals of other types) implies nothing and prunes nothing; the
//! expression itself still filters the rows.

use polars::prelude::*;

use crate::filter::{Op, TypedFilter, Value};
use crate::schema::ColType;

/// A literal of an implied comparison, before it is typed by the column.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    /// Any integer literal that fits an `i64`.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal.
    Str(String),
}

/// `column op values`, implied by an expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Implied {
    /// The column compared.
    pub column: String,
    /// The comparison (`Between` includes both ends).
    pub op: Op,
    /// The literals (one, two for `Between`, any number for `In`, none for null checks).
    pub values: Vec<Lit>,
}

impl Implied {
    /// The implied comparison typed for a column of `dtype`, if its literals fit it the way
    /// Polars compares them (integers with integer columns, floats with float columns,
    /// strings with string columns); `None` prunes nothing.
    pub fn typed(&self, dtype: ColType) -> Option<TypedFilter> {
        let values = self
            .values
            .iter()
            .map(|v| match (v, dtype) {
                (Lit::Int(i), ColType::I64 | ColType::I32 | ColType::I16 | ColType::I8) => {
                    Some(Value::Int(*i))
                }
                (Lit::Float(f), ColType::F64) => Some(Value::Float(*f)),
                (Lit::Str(s), ColType::Str) => Some(Value::Str(s.clone())),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(TypedFilter {
            column: self.column.clone(),
            dtype,
            op: self.op,
            values,
            datetime: false,
        })
    }
}

/// The comparisons `e` implies (empty when it implies none that can prune).
pub fn implied(e: &Expr) -> Vec<Implied> {
    let mut out = vec![];
    collect(e, &mut out);
    out
}

fn collect(e: &Expr, out: &mut Vec<Implied>) {
    match e {
        Expr::Alias(inner, _) => collect(inner, out),
        Expr::BinaryExpr { left, op, right } => match op {
            Operator::And | Operator::LogicalAnd => {
                collect(left, out);
                collect(right, out);
            }
            _ => out.extend(comparison(left, *op, right)),
        },
        Expr::Function { input, function } => out.extend(function_filters(input, function)),
        _ => {}
    }
}

/// `column op literal` or `literal op column` as an implied comparison.
fn comparison(left: &Expr, op: Operator, right: &Expr) -> Option<Implied> {
    let (column, value, op) = match (column_name(left), literal(right)) {
        (Some(c), Some(v)) => (c, v, op),
        _ => (column_name(right)?, literal(left)?, flipped(op)?),
    };
    let op = match op {
        Operator::Eq => Op::Eq,
        Operator::NotEq => Op::Ne,
        Operator::Lt => Op::Lt,
        Operator::LtEq => Op::Le,
        Operator::Gt => Op::Gt,
        Operator::GtEq => Op::Ge,
        _ => return None,
    };
    Some(Implied {
        column,
        op,
        values: vec![value],
    })
}

/// The operator with its sides swapped (`5 < col` is `col > 5`).
fn flipped(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq => Operator::Eq,
        Operator::NotEq => Operator::NotEq,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        _ => return None,
    })
}

fn function_filters(input: &[Expr], function: &FunctionExpr) -> Vec<Implied> {
    let FunctionExpr::Boolean(f) = function else {
        return vec![];
    };
    let Some(column) = input.first().and_then(column_name) else {
        return vec![];
    };
    let one = |op: Op, values: Vec<Lit>| {
        vec![Implied {
            column: column.clone(),
            op,
            values,
        }]
    };
    match (f, input) {
        (BooleanFunction::IsNull, [_]) => one(Op::IsNull, vec![]),
        (BooleanFunction::IsNotNull, [_]) => one(Op::IsNotNull, vec![]),
        // A null in the list may match the null partition (nulls_equal): not pruned by.
        (BooleanFunction::IsIn { .. }, [_, list]) => match literal_list(list) {
            Some(values) => one(Op::In, values),
            None => vec![],
        },
        (BooleanFunction::IsBetween { closed }, [_, lo, hi]) => {
            let (Some(lo), Some(hi)) = (literal(lo), literal(hi)) else {
                return vec![];
            };
            let (low_op, high_op) = match closed {
                ClosedInterval::Both => return one(Op::Between, vec![lo, hi]),
                ClosedInterval::Left => (Op::Ge, Op::Lt),
                ClosedInterval::Right => (Op::Gt, Op::Le),
                ClosedInterval::None => (Op::Gt, Op::Lt),
            };
            let mut out = one(low_op, vec![lo]);
            out.extend(one(high_op, vec![hi]));
            out
        }
        _ => vec![],
    }
}

fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Column(name) => Some(name.to_string()),
        _ => None,
    }
}

/// A scalar literal of a type pruning can compare (no casts: a cast may change the value).
fn literal(e: &Expr) -> Option<Lit> {
    match e {
        // Untyped literals: integers and strings (a dynamic float prunes nothing).
        Expr::Literal(d @ LiteralValue::Dyn(_)) => match (d.extract_i64(), d.extract_str()) {
            (Ok(i), _) => Some(Lit::Int(i)),
            (_, Some(s)) => Some(Lit::Str(s.to_string())),
            _ => None,
        },
        Expr::Literal(LiteralValue::Scalar(s)) => any_value(s.value()),
        _ => None,
    }
}

fn any_value(v: &AnyValue) -> Option<Lit> {
    Some(match v {
        AnyValue::Int8(i) => Lit::Int((*i).into()),
        AnyValue::Int16(i) => Lit::Int((*i).into()),
        AnyValue::Int32(i) => Lit::Int((*i).into()),
        AnyValue::Int64(i) => Lit::Int(*i),
        AnyValue::UInt8(i) => Lit::Int((*i).into()),
        AnyValue::UInt16(i) => Lit::Int((*i).into()),
        AnyValue::UInt32(i) => Lit::Int((*i).into()),
        AnyValue::UInt64(i) => Lit::Int(i64::try_from(*i).ok()?),
        AnyValue::Float32(f) => Lit::Float((*f).into()),
        AnyValue::Float64(f) => Lit::Float(*f),
        AnyValue::String(s) => Lit::Str(s.to_string()),
        AnyValue::StringOwned(s) => Lit::Str(s.to_string()),
        _ => return None,
    })
}

/// The values of a list literal (`is_in(lit(Series))`), all of one prunable type, no null.
fn literal_list(e: &Expr) -> Option<Vec<Lit>> {
    let e = match e {
        Expr::Agg(AggExpr::Implode { input, .. }) => input.as_ref(),
        e => e,
    };
    let Expr::Literal(LiteralValue::Series(s)) = e else {
        return None;
    };
    let s: &Series = s;
    // `is_in` takes a list-typed literal; its one row holds the values.
    let s = match s.dtype() {
        DataType::List(_) if s.len() == 1 => s.list().ok()?.get_as_series(0)?,
        _ => s.clone(),
    };
    s.iter().map(|v| any_value(&v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(column: &str, op: Op, values: Vec<Lit>) -> Implied {
        Implied {
            column: column.into(),
            op,
            values,
        }
    }

    #[test]
    fn comparisons_joined_by_and_are_implied_either_way_round() {
        let e = col("timestamp")
            .gt_eq(lit(1_704_067_200_000i64))
            .and(lit(5i32).lt(col("day")))
            .and(col("symbol").eq(lit("BTC,USDT]")));
        assert_eq!(
            implied(&e),
            vec![
                one("timestamp", Op::Ge, vec![Lit::Int(1_704_067_200_000)]),
                one("day", Op::Gt, vec![Lit::Int(5)]),
                one("symbol", Op::Eq, vec![Lit::Str("BTC,USDT]".into())]),
            ]
        );
    }

    #[test]
    fn is_in_is_between_and_null_checks_are_implied() {
        let list = Series::new("s".into(), ["BTCUSDT", "ETHUSDT"]);
        let e = col("symbol")
            .is_in(lit(list).implode(false), false)
            .and(col("open_time").is_between(lit(10i64), lit(20i64), ClosedInterval::Left))
            .and(col("price").is_not_null());
        assert_eq!(
            implied(&e),
            vec![
                one(
                    "symbol",
                    Op::In,
                    vec![Lit::Str("BTCUSDT".into()), Lit::Str("ETHUSDT".into())]
                ),
                one("open_time", Op::Ge, vec![Lit::Int(10)]),
                one("open_time", Op::Lt, vec![Lit::Int(20)]),
                one("price", Op::IsNotNull, vec![]),
            ]
        );
        let both = col("t").is_between(lit(1i64), lit(2i64), ClosedInterval::Both);
        assert_eq!(
            implied(&both),
            vec![one("t", Op::Between, vec![Lit::Int(1), Lit::Int(2)])]
        );
    }

    #[test]
    fn or_not_casts_and_arithmetic_imply_nothing() {
        for e in [
            col("a").eq(lit(1i64)).or(col("b").eq(lit(2i64))),
            col("a").eq(lit(1i64)).not(),
            col("a").cast(DataType::Int8).eq(lit(1i64)),
            col("a").eq(lit(1i64).cast(DataType::Int8)),
            (col("a") + lit(1i64)).gt(lit(5i64)),
            col("a").eq(col("b")),
            col("a").is_in(lit(Series::new("s".into(), [Some(1i64), None])), true),
        ] {
            assert_eq!(implied(&e), vec![], "{e:?}");
        }
        // One side of an `and` still implies what it implies.
        let e = col("a")
            .eq(lit(1i64))
            .and(col("b").eq(lit(2i64)).or(col("c").is_null()));
        assert_eq!(implied(&e), vec![one("a", Op::Eq, vec![Lit::Int(1)])]);
    }

    #[test]
    fn literals_type_only_for_columns_polars_compares_them_with_unchanged() {
        let int = one("x", Op::Eq, vec![Lit::Int(3)]);
        assert_eq!(int.typed(ColType::I16).unwrap().values, vec![Value::Int(3)]);
        assert!(int.typed(ColType::Str).is_none());
        assert!(int.typed(ColType::F64).is_none());
        let s = one("x", Op::In, vec![Lit::Str("a".into()), Lit::Int(1)]);
        assert!(s.typed(ColType::Str).is_none());
        assert_eq!(
            one("x", Op::IsNull, vec![])
                .typed(ColType::Date)
                .unwrap()
                .op,
            Op::IsNull
        );
    }
}
