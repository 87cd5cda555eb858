//! Checks of the Polars crate pqdm builds patched (`vendor/polars-compute`, see its README):
//! the patch must leave every result as the published crate gives it.

#[cfg(test)]
mod tests {
    use polars_arrow::array::PrimitiveArray;
    use polars_compute::cardinality::estimate_cardinality;

    /// The estimates the published polars-compute 0.55.2 gives for `n` evenly spaced floats and
    /// integers: the numbers the Parquet writer's dictionary decision reads. Printed by
    /// `vendor/golden` (the crate as published, built alone); a histogram that lost a quarter of
    /// the registers gives 4,870 for one value.
    const PUBLISHED: [(usize, usize, usize); 9] = [
        (1, 1, 1),
        (2, 2, 2),
        (3, 3, 3),
        (100, 100, 100),
        (1_440, 1_448, 1_424),
        (5_000, 5_029, 4_979),
        (16_384, 16_463, 16_396),
        (50_000, 50_148, 49_962),
        (200_000, 198_253, 200_025),
    ];

    /// The estimates would pass unpatched too: this checks that the build takes the vendored
    /// crate (a path package has no `source` in the lock file; crates.io's has one).
    #[test]
    fn the_build_takes_polars_compute_from_the_vendor_folder() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
            .expect("Cargo.lock beside Cargo.toml");
        let packages: Vec<&str> = lock
            .split("[[package]]")
            .filter(|p| p.contains("\nname = \"polars-compute\"\n"))
            .collect();
        assert_eq!(packages.len(), 1, "{packages:?}");
        assert!(
            packages[0].contains("version = \"0.55.2\""),
            "{}",
            packages[0]
        );
        assert!(!packages[0].contains("source ="), "{}", packages[0]);
    }

    #[test]
    fn the_patched_cardinality_sketch_estimates_as_the_published_crate_does() {
        for (n, floats_estimate, ints_estimate) in PUBLISHED {
            let floats: Vec<f64> = (0..n).map(|i| i as f64 * 0.25 + 100.0).collect();
            let ints: Vec<i64> = (0..n as i64).map(|i| i * 7919).collect();
            assert_eq!(
                estimate_cardinality(&PrimitiveArray::<f64>::from_vec(floats)),
                floats_estimate,
                "{n} floats"
            );
            assert_eq!(
                estimate_cardinality(&PrimitiveArray::<i64>::from_vec(ints)),
                ints_estimate,
                "{n} integers"
            );
        }
    }
}
