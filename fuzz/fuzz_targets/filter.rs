//! The filter grammar (`Filter::parse`), typing by every dtype (`Filter::typed`,
//! `partition_value`) and the pruning decisions on the typed filter: never a panic, and a
//! filter's own text parses back to the same filter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdm::filter::{Filter, Op, partition_value};
use pqdm::schema::ColType;

const TYPES: [ColType; 8] = [
    ColType::I64,
    ColType::I32,
    ColType::I16,
    ColType::I8,
    ColType::F64,
    ColType::Bool,
    ColType::Str,
    ColType::Date,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // First line: the filter; second line: a partition value to prune with.
    let (filter_text, probe) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(f) = Filter::parse(filter_text) else {
        return;
    };
    assert!(!f.column.is_empty());
    assert_eq!(
        Filter::parse(&f.text).ok().as_ref(),
        Some(&f),
        "re-parse of {:?}",
        f.text
    );
    assert_eq!(f.op.to_string().parse::<Op>().ok(), Some(f.op));
    match f.op {
        Op::IsNull | Op::IsNotNull => assert!(f.raw.is_empty()),
        Op::Between => assert_eq!(f.raw.len(), 2),
        Op::In | Op::NotIn => {}
        _ => assert_eq!(f.raw.len(), 1),
    }
    let _ = Filter::from_tuple(&f.column, &f.op.to_string(), probe);
    let bound = probe.len() as i64;
    for dtype in TYPES {
        for timestamp in [false, true] {
            let Ok(t) = f.typed(dtype, timestamp) else {
                continue;
            };
            assert_eq!(t.values.len(), f.raw.len());
            let _ = t.to_expr();
            let value = partition_value(Some(probe), dtype);
            let _ = t.partition_may_match(value.as_ref());
            let _ = t.partition_may_match(None);
            for (lo, hi) in [
                (i64::MIN, i64::MAX),
                (0, 0),
                (bound, -bound),
                (-bound, bound),
            ] {
                let _ = t.range_may_match(lo, hi);
            }
        }
    }
});
