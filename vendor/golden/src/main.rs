//! Prints `(n, estimate of n floats, estimate of n integers)` from the published crate, in the
//! form of `PUBLISHED` in src/polars_patch.rs (which builds the same arrays).

use polars_arrow::array::PrimitiveArray;
use polars_compute::cardinality::estimate_cardinality;

fn main() {
    for n in [1usize, 2, 3, 100, 1_440, 5_000, 16_384, 50_000, 200_000] {
        let floats: Vec<f64> = (0..n).map(|i| i as f64 * 0.25 + 100.0).collect();
        let ints: Vec<i64> = (0..n as i64).map(|i| i * 7919).collect();
        println!(
            "({n}, {}, {}),",
            estimate_cardinality(&PrimitiveArray::<f64>::from_vec(floats)),
            estimate_cardinality(&PrimitiveArray::<i64>::from_vec(ints))
        );
    }
}
