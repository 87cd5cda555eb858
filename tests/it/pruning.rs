//! Pruning is sound: a filtered scan (folders and files pruned by the manifest) returns exactly
//! the rows that the same predicates, written here as plain Polars expressions, keep of the
//! unpruned rows; and a fixed table of filters returns what DuckDB's WHERE returns.
//!
//! The dataset has nullable partition columns (null partitions), several files per partition
//! with disjoint time ranges, and NaN, infinities and nulls in a float column.

use std::path::Path;

use polars::prelude::*;
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, ScanOptions, WriteOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

use crate::common::*;

const KIND: &str = r#"
[[kind]]
name = "prune"
partition_by = ["venue", "tier"]
keep_extra = true
columns = [
  { name = "timestamp", dtype = "i64", timestamp = true },
  { name = "venue", dtype = "str", required = false },
  { name = "tier", dtype = "i64", required = false },
  { name = "price", dtype = "f64", required = false },
]
"#;

const T0: i64 = 1_704_412_800_000;
const BATCHES: i64 = 4;
const ROWS: i64 = 30;

fn timestamp(batch: i64, i: i64) -> i64 {
    T0 + batch * 100_000 + i * 1_000
}

const PRICES: [Option<f64>; 6] = [
    Some(f64::NAN),
    None,
    Some(-1.5),
    Some(0.0),
    Some(2.5),
    Some(f64::INFINITY),
];

/// Writes the dataset: one append per batch, so each partition holds one file per batch.
fn sample(base: &Path) -> Dataset {
    sample_with(base, CreateOptions::default())
}

/// [`sample`], created with `create`.
fn sample_with(base: &Path, create: CreateOptions) -> Dataset {
    let mut kinds = KindRegistry::default();
    kinds.add_toml(KIND, "pruning").unwrap();
    let ds = Dataset::create(base, kinds.get("prune").unwrap(), &create).unwrap();
    for b in 0..BATCHES {
        let ts: Vec<i64> = (0..ROWS).map(|i| timestamp(b, i)).collect();
        let venue: Vec<Option<&str>> = (0..ROWS)
            .map(|i| [Some("a"), Some("b"), None, Some("c")][(i % 4) as usize])
            .collect();
        let tier: Vec<Option<i64>> = (0..ROWS)
            .map(|i| [Some(1), Some(2), None][((i / 4) % 3) as usize])
            .collect();
        let price: Vec<Option<f64>> = (0..ROWS).map(|i| PRICES[((i + b) % 6) as usize]).collect();
        let frame =
            df!("timestamp" => ts, "venue" => venue, "tier" => tier, "price" => price).unwrap();
        ds.write(frame.lazy(), &WriteOptions::default()).unwrap();
    }
    ds
}

/// One value of a filter.
#[derive(Clone, Debug)]
enum V {
    I(i64),
    F(f64),
    S(&'static str),
}

impl V {
    fn text(&self) -> String {
        match self {
            V::I(v) => v.to_string(),
            V::F(v) => v.to_string(),
            V::S(v) => v.to_string(),
        }
    }

    fn lit(&self) -> Expr {
        match self {
            V::I(v) => lit(*v),
            V::F(v) => lit(*v),
            V::S(v) => lit(*v),
        }
    }
}

/// A filter: the text pqdm parses, and the same predicate as a plain Polars expression.
#[derive(Clone, Debug)]
struct F {
    column: &'static str,
    op: &'static str,
    values: Vec<V>,
}

impl F {
    fn text(&self) -> String {
        let list = || {
            let items: Vec<String> = self.values.iter().map(V::text).collect();
            format!("[{}]", items.join(", "))
        };
        match self.op {
            "is_null" | "is_not_null" => format!("{} {}", self.column, self.op),
            "in" | "not_in" | "between" => format!("{} {} {}", self.column, self.op, list()),
            _ => format!("{} {} {}", self.column, self.op, self.values[0].text()),
        }
    }

    /// SQL semantics: a comparison with null is not true, so such rows are not kept.
    fn expr(&self) -> Expr {
        let c = col(self.column);
        let v = |i: usize| self.values[i].lit();
        match self.op {
            "==" => c.eq(v(0)),
            "!=" => c.neq(v(0)),
            "<" => c.lt(v(0)),
            "<=" => c.lt_eq(v(0)),
            ">" => c.gt(v(0)),
            ">=" => c.gt_eq(v(0)),
            "between" => c.clone().gt_eq(v(0)).and(c.lt_eq(v(1))),
            "in" => self
                .values
                .iter()
                .fold(lit(false), |acc, x| acc.or(c.clone().eq(x.lit()))),
            "not_in" => self
                .values
                .iter()
                .fold(lit(true), |acc, x| acc.and(c.clone().neq(x.lit()))),
            "is_null" => c.is_null(),
            "is_not_null" => c.is_not_null(),
            op => unreachable!("{op}"),
        }
    }

    /// The predicate as a Rust pipeline would give it to a scan: `is_in` and `is_between` where
    /// they apply (not on the float column, whose NaN `is_in` compares otherwise).
    fn scan_expr(&self) -> Expr {
        let series = || match &self.values[0] {
            V::I(_) => Series::new(
                "v".into(),
                self.values
                    .iter()
                    .map(|v| match v {
                        V::I(i) => *i,
                        _ => unreachable!(),
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => Series::new(
                "v".into(),
                self.values.iter().map(V::text).collect::<Vec<_>>(),
            ),
        };
        match (self.op, self.column) {
            (_, "price") => self.expr(),
            ("in", _) => col(self.column).is_in(lit(series()).implode(false), false),
            ("between", _) => col(self.column).is_between(
                self.values[0].lit(),
                self.values[1].lit(),
                ClosedInterval::Both,
            ),
            _ => self.expr(),
        }
    }
}

const COMPARE: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

fn op_and_values(
    values: BoxedStrategy<V>,
    nullable: bool,
) -> BoxedStrategy<(&'static str, Vec<V>)> {
    let one = (prop::sample::select(COMPARE), values.clone()).prop_map(|(op, v)| (op, vec![v]));
    let list = (
        prop::sample::select(&["in", "not_in"][..]),
        prop::collection::vec(values.clone(), 1..4),
    );
    let between = (values.clone(), values).prop_map(|(lo, hi)| ("between", vec![lo, hi]));
    let nulls = prop::sample::select(if nullable {
        &["is_null", "is_not_null"][..]
    } else {
        &["is_not_null"][..]
    })
    .prop_map(|op| (op, vec![]));
    prop_oneof![4 => one, 2 => list, 2 => between, 1 => nulls].boxed()
}

/// Timestamps at and beside the first and last of every file (the bounds pruning compares), and
/// any row's.
fn timestamps(ds: &Dataset) -> BoxedStrategy<V> {
    let mut bounds: Vec<i64> = ds
        .manifest()
        .unwrap()
        .files
        .iter()
        .flat_map(|f| [f.min_timestamp.unwrap(), f.max_timestamp.unwrap()])
        .flat_map(|t| [t - 1, t, t + 1])
        .collect();
    bounds.sort();
    bounds.dedup();
    prop_oneof![
        3 => prop::sample::select(bounds).prop_map(V::I),
        1 => (0..BATCHES, -1..=ROWS).prop_map(|(b, i)| V::I(timestamp(b, i))),
    ]
    .boxed()
}

fn filter(ds: &Dataset) -> impl Strategy<Value = F> {
    let ts = op_and_values(timestamps(ds), false).prop_map(|(op, values)| F {
        column: "timestamp",
        op,
        values,
    });
    let venue = prop::sample::select(&["a", "b", "c", "z"][..])
        .prop_map(V::S)
        .boxed();
    let venue = op_and_values(venue, true).prop_map(|(op, values)| F {
        column: "venue",
        op,
        values,
    });
    let tier = (0i64..4).prop_map(V::I).boxed();
    let tier = op_and_values(tier, true).prop_map(|(op, values)| F {
        column: "tier",
        op,
        values,
    });
    let price = prop::sample::select(&[f64::NAN, -1.5, 0.0, 1.0, 2.5, f64::INFINITY][..])
        .prop_map(V::F)
        .boxed();
    let price = op_and_values(price, true).prop_map(|(op, values)| F {
        column: "price",
        op,
        values,
    });
    prop_oneof![3 => ts, 1 => venue, 1 => tier, 1 => price]
}

/// The timestamps (one per row) a scan of `ds` with `filters` returns, sorted.
fn scanned(ds: &Dataset, filters: &[String]) -> Vec<i64> {
    let mut opts = ScanOptions::default();
    for f in filters {
        opts = opts.filter(f).unwrap();
    }
    timestamps_of(ds.scan(&opts).unwrap())
}

/// A property runner of `cases` cases from `seed`.
fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    })
}

/// The filters as text, and the timestamps of the rows of `all` they keep.
fn texts_and_rows(all: &DataFrame, filters: &[F]) -> (Vec<String>, Vec<i64>) {
    let texts = filters.iter().map(F::text).collect();
    let predicate = filters.iter().fold(lit(true), |acc, f| acc.and(f.expr()));
    (texts, timestamps_of(all.clone().lazy().filter(predicate)))
}

fn timestamps_of(lf: LazyFrame) -> Vec<i64> {
    let df = lf
        .select([col("timestamp")])
        .sort(["timestamp"], Default::default())
        .collect()
        .unwrap();
    df.column("timestamp")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

#[test]
fn pruned_scans_keep_exactly_the_rows_the_predicates_keep() {
    let dir = tmp();
    let ds = sample(&dir.path().join("prune"));
    let all = ds.scan(&ScanOptions::default()).unwrap().collect().unwrap();
    assert_eq!(all.height() as i64, BATCHES * ROWS);
    let seed = seed_from_env("PQDM_PRUNE_SEED");
    println!("pruning soundness: PQDM_PRUNE_SEED={seed}");
    let cases = std::env::var("PQDM_PRUNE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let mut runner = runner(cases, seed);
    let result = runner.run(&prop::collection::vec(filter(&ds), 1..4), |filters| {
        let (texts, want) = texts_and_rows(&all, &filters);
        prop_assert_eq!(scanned(&ds, &texts), want.clone(), "filters {:?}", texts);
        // The same predicates as Polars expressions given to the scan: the same rows, and the
        // same folders and files pruned as by the text filters.
        let by_expr = filters
            .iter()
            .fold(ScanOptions::default(), |o, f| o.filter_expr(f.scan_expr()));
        prop_assert_eq!(
            timestamps_of(ds.scan(&by_expr).unwrap()),
            want,
            "exprs {:?}",
            texts
        );
        let by_text = texts
            .iter()
            .fold(ScanOptions::default(), |o, t| o.filter(t).unwrap());
        prop_assert_eq!(
            ds.plan(&by_expr).unwrap().files.len(),
            ds.plan(&by_text).unwrap().files.len(),
            "files kept for {:?}",
            texts
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// An older version read with filters on partition columns reads only those partitions' files
/// from the log (from its checkpoint and from the entries after it): for random filters, the
/// rows of the whole version the predicates keep, the same files planned as for the same
/// predicates given as expressions (which read the version whole), and a manifest listing only
/// files of partitions the filters may match while the plan counts the version's files. A
/// version vacuum dropped is refused as before.
#[test]
fn older_versions_read_with_partition_filters_keep_exactly_the_rows_the_predicates_keep() {
    let dir = tmp();
    let ds = sample_with(
        &dir.path().join("prune"),
        CreateOptions {
            checkpoint_interval: Some(3),
            ..Default::default()
        },
    );
    // A fifth version overwrites venue a's tier 1 and 2, so that the others are older ones,
    // and adds a column to the schema.
    let frame = df!(
        "timestamp" => [T0 + 7, T0 + 8], "venue" => ["a", "a"], "tier" => [1i64, 2],
        "price" => [9.0, 9.5], "fee" => [0.5, 0.25]
    )
    .unwrap();
    let overwrite = WriteOptions {
        mode: Some(pqdm::WriteMode::Overwrite),
        ..Default::default()
    };
    assert_eq!(ds.write(frame.lazy(), &overwrite).unwrap().version, 5);
    let seed = seed_from_env("PQDM_PRUNE_SEED");
    println!("older versions: PQDM_PRUNE_SEED={seed}");
    for version in [2u64, 3, 4] {
        let at = |o: ScanOptions| ScanOptions {
            version: Some(version),
            ..o
        };
        let all = ds
            .scan(&at(ScanOptions::default()))
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(all.height() as i64, version as i64 * ROWS);
        let whole = ds.manifest_at(Some(version)).unwrap();
        // The batch size of a scan of the version follows its own schema, read from its header.
        let row_bytes = |version| {
            let opts = ScanOptions {
                version,
                ..Default::default()
            };
            ds.batch_choice(&opts, Some((1000, "test")))
                .unwrap()
                .row_bytes
        };
        assert!(!whole.schema.iter().any(|f| f.name == "fee"));
        assert!(
            row_bytes(Some(version)) < row_bytes(None),
            "version {version}"
        );
        assert_eq!(row_bytes(Some(version)), row_bytes(Some(2)));
        let mut runner = runner(48, seed + version);
        let result = runner.run(&prop::collection::vec(filter(&ds), 1..4), |filters| {
            let (texts, want) = texts_and_rows(&all, &filters);
            let by_text = texts
                .iter()
                .fold(at(ScanOptions::default()), |o, t| o.filter(t).unwrap());
            prop_assert_eq!(
                timestamps_of(ds.scan(&by_text).unwrap()),
                want,
                "version {} filters {:?}",
                version,
                texts
            );
            let by_expr = filters.iter().fold(at(ScanOptions::default()), |o, f| {
                o.filter_expr(f.scan_expr())
            });
            let (text_plan, expr_plan) = (ds.plan(&by_text).unwrap(), ds.plan(&by_expr).unwrap());
            prop_assert_eq!(
                &text_plan.files,
                &expr_plan.files,
                "files kept for {:?}",
                texts
            );
            prop_assert_eq!(text_plan.total_files, whole.files.len());
            prop_assert_eq!(expr_plan.manifest.files.len(), whole.files.len());
            let on_partitions = texts
                .iter()
                .any(|t| t.starts_with("venue") || t.starts_with("tier"));
            let listed = text_plan.manifest.files.len();
            prop_assert!(listed <= whole.files.len() && listed >= text_plan.files.len());
            if !on_partitions {
                prop_assert_eq!(listed, whole.files.len(), "{:?}", texts);
            }
            for f in &text_plan.manifest.files {
                prop_assert!(whole.files.contains(f), "{:?} lists {}", texts, f.path);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
    // A partition filter that keeps one partition lists only its files.
    let plan = ds
        .plan(
            &ScanOptions {
                version: Some(4),
                ..Default::default()
            }
            .filter("venue == b")
            .unwrap()
            .filter("tier == 2")
            .unwrap(),
        )
        .unwrap();
    assert_eq!(plan.manifest.files.len(), 4);
    assert!(
        plan.manifest
            .files
            .iter()
            .all(|f| f.path.starts_with("venue=b/tier=2/"))
    );
    ds.vacuum(&pqdm::maintain::vacuum::VacuumOptions {
        retain_versions: 2,
        retention: std::time::Duration::ZERO,
    })
    .unwrap();
    let err = ds
        .scan(
            &ScanOptions {
                version: Some(3),
                ..Default::default()
            }
            .filter("venue == b")
            .unwrap(),
        )
        .err()
        .expect("version 3 was vacuumed")
        .to_string();
    assert!(err.contains("version 3 is not kept"), "{err}");
}

/// A partition column of timestamps filtered in seconds or microseconds keeps the same rows
/// of an older version as of the current one: the partial read types the filter as the plan
/// does (red team: typed as plain numbers, the matching partitions were skipped and the rows
/// lost).
#[test]
fn an_older_version_filtered_on_a_partition_of_timestamps_keeps_its_rows_in_any_unit() {
    let dir = tmp();
    let ds = klines_by(&dir.path().join("k"), &["symbol", "close_time"]);
    let t0: i64 = 1_704_067_200_000;
    let write = |mode| {
        ds.write(
            candles(t0, 3, 1.0).lazy(),
            &WriteOptions {
                mode: Some(mode),
                ..kline_opts("BTCUSDT")
            },
        )
        .unwrap()
        .version
    };
    assert_eq!(write(pqdm::WriteMode::Upsert), 1);
    assert_eq!(write(pqdm::WriteMode::Append), 2);
    // close_time: t0 + 59,999, + 119,999 and + 179,999 ms.
    let micros = format!("close_time == {}", (t0 + 59_999) * 1_000);
    let seconds = format!("close_time >= {}", (t0 + 60_000) / 1_000);
    let millis = format!("close_time >= {}", t0 + 60_000);
    for (filter, rows) in [(&micros, 1), (&seconds, 2), (&millis, 2)] {
        for (version, copies) in [(Some(1), 1), (None, 2), (Some(2), 2)] {
            let df = ds
                .read(
                    &ScanOptions {
                        version,
                        ..Default::default()
                    }
                    .filter(filter)
                    .unwrap(),
                )
                .unwrap();
            assert_eq!(df.height(), rows * copies, "{filter} at {version:?}");
        }
    }
}

/// An older version whose log entry lost an add is refused read with partition filters as
/// it is read whole, even when the lost file lies in a partition the filters skip, from
/// entries alone and from a checkpoint and the entry after it (red team: the partial read,
/// which checked no count, returned the remaining rows without an error).
#[test]
fn an_older_version_whose_log_lost_a_file_is_refused_with_partition_filters_too() {
    let t0: i64 = 1_704_067_200_000;
    let day = 86_400_000;
    // (checkpoint interval, the version whose entry loses its add, what its log then lists, an
    // earlier version, its rows and its BTC rows).
    let cases = [
        (
            100,
            4,
            "3 files of 9 rows, its pqdm record 4 of 12",
            3,
            9,
            6,
        ),
        (2, 3, "2 files of 6 rows, its pqdm record 3 of 9", 2, 6, 3),
    ];
    for (interval, damaged, lists, earlier, rows, btc) in cases {
        let dir = tmp();
        let ds = Dataset::create(
            dir.path().join("k"),
            KindRegistry::default().get("klines").unwrap(),
            &CreateOptions {
                checkpoint_interval: Some(interval),
                ..Default::default()
            },
        )
        .unwrap();
        for (symbol, start) in [
            ("BTCUSDT", t0),
            ("ETHUSDT", t0),
            ("BTCUSDT", t0 + day),
            ("ETHUSDT", t0 + day),
            ("SOLUSDT", t0),
        ] {
            ds.write(candles(start, 3, 1.0).lazy(), &kline_opts(symbol))
                .unwrap();
        }
        let entry = ds.base().join(format!("_delta_log/{damaged:020}.json"));
        let text = std::fs::read_to_string(&entry).unwrap();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("{\"add\""))
            .collect();
        assert_eq!(kept.len() + 1, text.lines().count());
        std::fs::write(&entry, kept.join("\n") + "\n").unwrap();
        for filter in [None, Some("symbol == BTCUSDT"), Some("symbol == ETHUSDT")] {
            let mut opts = ScanOptions {
                version: Some(damaged),
                ..Default::default()
            };
            if let Some(f) = filter {
                opts = opts.filter(f).unwrap();
            }
            let err = ds
                .read(&opts)
                .err()
                .unwrap_or_else(|| panic!("{filter:?} read a damaged version"))
                .to_string();
            assert!(
                err.contains(&format!("version {damaged} cannot be read from the log"))
                    && err.contains(&format!("the log lists {lists}")),
                "{filter:?}: {err}"
            );
        }
        // A version the damage does not reach still reads, whole or partially.
        let opts = ScanOptions {
            version: Some(earlier),
            ..Default::default()
        };
        assert_eq!(ds.read(&opts).unwrap().height(), rows);
        assert_eq!(
            ds.read(&opts.filter("symbol == BTCUSDT").unwrap())
                .unwrap()
                .height(),
            btc
        );
    }
}

/// Filters and the same predicate as a DuckDB WHERE clause.
const AGAINST_DUCKDB: &[(&[&str], &str)] = &[
    (&["venue != a"], "venue <> 'a'"),
    (&["venue not_in [a, c]"], "venue NOT IN ('a', 'c')"),
    (&["venue is_null"], "venue IS NULL"),
    (&["venue in [b, z]"], "venue IN ('b', 'z')"),
    (&["tier != 2"], "tier <> 2"),
    (&["tier not_in [1]"], "tier NOT IN (1)"),
    (
        &["tier is_null", "venue == c"],
        "tier IS NULL AND venue = 'c'",
    ),
    (&["tier between [2, 3]"], "tier BETWEEN 2 AND 3"),
    (&["price == NaN"], "price = 'NaN'::DOUBLE"),
    (&["price != NaN"], "price <> 'NaN'::DOUBLE"),
    (&["price > 0"], "price > 0"),
    (&["price < inf"], "price < 'inf'::DOUBLE"),
    (&["price not_in [0, 2.5]"], "price NOT IN (0, 2.5)"),
    (&["price is_null"], "price IS NULL"),
    // Each file's first and last timestamps, and one beside them: 1704412900000 opens the
    // files of batch 1 (venue a, tier 1 first), 1704412829000 closes one of batch 0.
    (
        &["timestamp <= 1704412900000"],
        "timestamp <= 1704412900000",
    ),
    (&["timestamp < 1704412900001"], "timestamp < 1704412900001"),
    (
        &["timestamp >= 1704412829000"],
        "timestamp >= 1704412829000",
    ),
    (
        &["timestamp >= 1704412900000"],
        "timestamp >= 1704412900000",
    ),
    (&["timestamp > 1704412900000"], "timestamp > 1704412900000"),
    (
        &["timestamp <= 1704412829000"],
        "timestamp <= 1704412829000",
    ),
    (&["timestamp < 1704412829000"], "timestamp < 1704412829000"),
    (&["timestamp == 1704413129000"], "timestamp = 1704413129000"),
    (
        &["timestamp != 1704412800000"],
        "timestamp <> 1704412800000",
    ),
    (
        &["timestamp between [1704412829000, 1704412900000]"],
        "timestamp BETWEEN 1704412829000 AND 1704412900000",
    ),
    (
        &["timestamp in [1704412800000, 1704413129001]", "venue == a"],
        "timestamp IN (1704412800000, 1704413129001) AND venue = 'a'",
    ),
    (
        &["timestamp not_in [1704412800000]", "tier == 1"],
        "timestamp NOT IN (1704412800000) AND tier = 1",
    ),
];

/// DuckDB loads the files into a table first: its Parquet reader, given a comparison on a
/// float column whose chunk has no min/max statistics (Polars writes none where a NaN is),
/// skips the whole chunk (DuckDB 2.0.1), and the oracle is DuckDB's SQL, not its pruning.
const DUCKDB: &str = r#"
import json, sys, duckdb
base, clauses = sys.argv[1], json.loads(sys.argv[2])
duckdb.sql(
    f"CREATE TABLE t AS SELECT * FROM read_parquet('{base}/**/*.parquet', hive_partitioning=true, "
    f"hive_types={{'venue': VARCHAR, 'tier': BIGINT}})"
)
for where in clauses:
    rows = duckdb.sql(f"SELECT timestamp FROM t WHERE {where} ORDER BY timestamp").fetchall()
    print(json.dumps([r[0] for r in rows]))
"#;

#[test]
fn pruned_scans_return_what_duckdb_returns() {
    let dir = tmp();
    let base = dir.path().join("prune");
    let ds = sample(&base);
    let clauses: Vec<&str> = AGAINST_DUCKDB.iter().map(|(_, sql)| *sql).collect();
    let duck = py(
        DUCKDB,
        &[
            base.to_str().unwrap(),
            &serde_json::to_string(&clauses).unwrap(),
        ],
    );
    let duck: Vec<Vec<i64>> = duck
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(duck.len(), AGAINST_DUCKDB.len());
    for ((filters, sql), want) in AGAINST_DUCKDB.iter().zip(duck) {
        let texts: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            scanned(&ds, &texts),
            want,
            "{filters:?} against DuckDB's {sql}"
        );
    }
}

/// Typed filters take their values as they are: a value holding `,`, `]` or quotes is one
/// value, not text to parse; and a Polars expression given to the scan prunes as a filter does.
#[test]
fn typed_filters_keep_values_whole_and_expressions_prune_like_filters() {
    let mut kinds = KindRegistry::default();
    kinds.add_toml(KIND, "pruning").unwrap();
    let dir = tmp();
    let ds = Dataset::create(
        dir.path().join("odd"),
        kinds.get("prune").unwrap(),
        &CreateOptions::default(),
    )
    .unwrap();
    let venues = ["x,y]", "\"q\"", "[z]", "x"];
    let frame = df!(
        "timestamp" => [T0, T0 + 1, T0 + 2, T0 + 3],
        "venue" => venues,
        "tier" => [1i64, 1, 1, 1],
        "price" => [1.0, 2.0, 3.0, 4.0],
    )
    .unwrap();
    ds.write(frame.lazy(), &WriteOptions::default()).unwrap();
    let rows = |opts: ScanOptions| timestamps_of(ds.scan(&opts).unwrap());
    let files = |opts: ScanOptions| ds.plan(&opts).unwrap().files.len();
    use pqdm::filter::Filter;
    assert_eq!(
        rows(ScanOptions::default().with(Filter::eq("venue", "x,y]"))),
        [T0]
    );
    assert_eq!(
        rows(ScanOptions::default().with(Filter::is_in("venue", ["x,y]", "\"q\""]))),
        [T0, T0 + 1]
    );
    assert_eq!(
        rows(ScanOptions::default().with(Filter::not_in("venue", ["[z]", "x,y]"]))),
        [T0 + 1, T0 + 3]
    );
    assert_eq!(
        rows(ScanOptions::default().with(Filter::from_tuple("venue", "==", "[z]").unwrap())),
        [T0 + 2]
    );
    assert_eq!(
        rows(ScanOptions::default().with(Filter::between("timestamp", T0 + 1, T0 + 2))),
        [T0 + 1, T0 + 2]
    );
    assert_eq!(
        files(ScanOptions::default().with(Filter::eq("venue", "x,y]"))),
        1
    );
    // The same through expressions: the folder pruned by the manifest, not only the rows.
    let expr = ScanOptions::default().filter_expr(
        col("venue")
            .eq(lit("x,y]"))
            .and(col("timestamp").gt_eq(lit(T0))),
    );
    assert_eq!((rows(expr.clone()), files(expr)), (vec![T0], 1));
    let is_in = ScanOptions::default().filter_expr(col("venue").is_in(
        lit(Series::new("v".into(), ["[z]", "x"])).implode(false),
        false,
    ));
    assert_eq!(
        (rows(is_in.clone()), files(is_in)),
        (vec![T0 + 2, T0 + 3], 2)
    );
    // An `or` implies nothing to prune by: every file is planned, the rows are still right.
    let either = ScanOptions::default()
        .filter_expr(col("venue").eq(lit("x")).or(col("venue").eq(lit("[z]"))));
    assert_eq!(
        (rows(either.clone()), files(either)),
        (vec![T0 + 2, T0 + 3], 4)
    );
}

/// Filters every row of the planned files passes (their partition's value does, or their whole
/// time range does) are not applied to the rows; the rows are exactly those of the filters all
/// the same, with nulls, a file that straddles a bound, and a file holding a null timestamp.
#[test]
fn filters_the_manifest_settles_are_not_applied_to_rows() {
    use pqdm::WriteMode;
    use pqdm::filter::Filter;
    let mut kinds = KindRegistry::default();
    kinds.add_toml(KIND, "pruning").unwrap();
    let dir = tmp();
    let ds = Dataset::create(
        dir.path().join("settled"),
        kinds.get("prune").unwrap(),
        &CreateOptions::default(),
    )
    .unwrap();
    let append = |ts: Vec<Option<i64>>, venue: Option<&str>, lenient: bool| {
        let n = ts.len();
        let frame = df!(
            "timestamp" => ts,
            "venue" => vec![venue; n],
            "tier" => vec![1i64; n],
            "price" => vec![1.0; n],
        )
        .unwrap();
        let opts = WriteOptions {
            mode: Some(WriteMode::Append),
            lenient,
            ..Default::default()
        };
        ds.write(frame.lazy(), &opts).unwrap();
    };
    // venue=a: T0..T0+9 and T0+10..T0+19 (two files); venue=b: T0+5..T0+14 and a file of
    // T0+20 with a null timestamp (lenient); the null venue: T0..T0+4.
    append((0..10).map(|i| Some(T0 + i)).collect(), Some("a"), false);
    append((10..20).map(|i| Some(T0 + i)).collect(), Some("a"), false);
    append((5..15).map(|i| Some(T0 + i)).collect(), Some("b"), false);
    append(vec![Some(T0 + 20), None], Some("b"), true);
    append((0..5).map(|i| Some(T0 + i)).collect(), None, false);
    let scan = |filters: &[Filter]| {
        let opts = filters
            .iter()
            .cloned()
            .fold(ScanOptions::default(), |o, f| o.with(f));
        let plan = ds.plan(&opts).unwrap();
        let applied: Vec<String> = plan.row_filters.iter().map(|f| f.column.clone()).collect();
        let df = ds
            .scan(&opts)
            .unwrap()
            .select([col("timestamp")])
            .sort(
                ["timestamp"],
                SortMultipleOptions::default().with_nulls_last(true),
            )
            .collect()
            .unwrap();
        let rows: Vec<Option<i64>> = df
            .column("timestamp")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        (rows, plan.files.len(), applied)
    };
    let ts = |r: std::ops::Range<i64>| r.map(|i| Some(T0 + i)).collect::<Vec<_>>();
    // The partition filter and a range holding both of venue=a's files: nothing left to apply.
    assert_eq!(
        scan(&[
            Filter::eq("venue", "a"),
            Filter::between("timestamp", T0, T0 + 19)
        ]),
        (ts(0..20), 2, vec![])
    );
    // A bound inside the second file: the timestamp filter is applied, the venue one is not.
    assert_eq!(
        scan(&[Filter::eq("venue", "a"), Filter::lt("timestamp", T0 + 15)]),
        (ts(0..15), 2, vec!["timestamp".to_string()])
    );
    // venue=b's lenient file holds a null timestamp: its range alone settles nothing.
    assert_eq!(
        scan(&[Filter::eq("venue", "b"), Filter::ge("timestamp", T0 + 5)]),
        (
            ts(5..15).into_iter().chain(ts(20..21)).collect(),
            2,
            vec!["timestamp".to_string()]
        )
    );
    // Partition filters that select the null partition, or all but one value. The null
    // partition is never settled by its folder (an empty `k=` reads as "" in Polars).
    assert_eq!(
        scan(&[Filter::is_null("venue")]),
        (ts(0..5), 1, vec!["venue".to_string()])
    );
    assert_eq!(
        scan(&[Filter::ne("venue", "a"), Filter::ge("timestamp", T0 + 5)]),
        (
            ts(5..15).into_iter().chain(ts(20..21)).collect(),
            2,
            vec!["timestamp".to_string()]
        )
    );
    assert_eq!(
        scan(&[Filter::not_in("venue", ["a", "b"])]),
        (vec![], 0, vec![])
    );
    assert_eq!(
        scan(&[
            Filter::is_in("venue", ["a"]),
            Filter::gt("timestamp", T0 - 1)
        ]),
        (ts(0..20), 2, vec![])
    );
}

/// A folder with an empty partition value (`symbol=`, as pyarrow and Polars write "") is not the
/// null partition for the rows' filter: scanned as a plain folder, and after `adopt`, only the
/// `__HIVE_DEFAULT_PARTITION__` folder's row is null.
#[test]
fn an_empty_partition_folder_is_not_taken_for_the_null_partition() {
    let dir = tmp();
    let plain = dir.path().join("plain");
    for (folder, label) in [
        ("symbol=", 1i64),
        ("symbol=BTC", 2),
        ("symbol=__HIVE_DEFAULT_PARTITION__", 3),
    ] {
        let at = plain.join(folder);
        std::fs::create_dir_all(&at).unwrap();
        let mut df = df!("timestamp" => [T0 + label], "label" => [label]).unwrap();
        ParquetWriter::new(std::fs::File::create(at.join("part-0.parquet")).unwrap())
            .finish(&mut df)
            .unwrap();
    }
    let labels = |filter: &str| -> Vec<String> {
        let out = run(&[
            "scan",
            plain.to_str().unwrap(),
            "--filter",
            filter,
            "--columns",
            "label",
            "--format",
            "csv",
        ]);
        assert!(out.status.success(), "{filter}: {}", stderr(&out));
        let mut rows: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(labels("symbol is_null"), ["3"]);
    assert_eq!(labels("symbol == BTC"), ["2"]);
    json_ok(&run(&["adopt", plain.to_str().unwrap(), "--json"]));
    assert_eq!(labels("symbol is_null"), ["3"]);
    assert_eq!(labels("symbol == BTC"), ["2"]);
}
