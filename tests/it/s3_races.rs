//! Races on S3 at every request of a commit: a writer is stopped at its 1st, 2nd, ... request
//! in turn (the test server's `nth` hold) while another writer, a compaction or a vacuum runs to
//! its end; then the stopped writer goes on. Whatever the request, both must land (the stopped
//! one going on top of the other), the later commit's values must win, and nothing may be lost,
//! duplicated or left behind.

use std::path::Path;
use std::process::{Child, Output, Stdio};

use serde_json::Value;

use crate::common::*;

const JAN1: i64 = 1_704_067_200_000;

fn cli(args: &[&str]) -> Output {
    s3_env(&mut bin()).args(args).output().expect("run pqdm")
}

fn ok_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    json_ok(&cli(&all))
}

/// A headerless BTCUSDT klines CSV of the minutes `from..to` of 2024-01-01, every close `close`.
fn minutes(dir: &Path, name: &str, from: i64, to: i64, close: f64) -> String {
    symbol_minutes(dir, name, "BTCUSDT", from, to, close)
}

/// A headerless klines CSV of `symbol`'s minutes `from..to` of 2024-01-01, every close `close`.
fn symbol_minutes(dir: &Path, name: &str, symbol: &str, from: i64, to: i64, close: f64) -> String {
    let text: String = (from..to)
        .map(|i| {
            let t = JAN1 + i * 60_000;
            format!(
                "{t},1.5,2.5,1.0,{close},10.0,{},20.0,5,4.0,8.0,0\n",
                t + 59_999
            )
        })
        .collect();
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(format!("{symbol}-1m-2024-01-01.csv"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// What runs to its end while the writer is stopped.
#[derive(Clone, Copy, Debug)]
enum Rival {
    Upsert,
    Compact,
    Vacuum,
}

/// The closes of the day, by minute (sorted), as a scan returns them.
fn closes(base: &str) -> Vec<f64> {
    let mut rows = s3_timestamp_closes(base);
    rows.sort_by_key(|r| r.0);
    let times: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let expected: Vec<i64> = (0..1440).map(|i| JAN1 + i * 60_000).collect();
    assert_eq!(times, expected, "every minute once");
    rows.into_iter().map(|r| r.1).collect()
}

/// A dataset at `base` with the day in two files and a replaced file (versions 1-3).
fn prepare(base: &str, inputs: &[String; 3]) {
    for input in inputs {
        ok_json(&["ingest", "--dataset", base, input]);
    }
}

/// How one race ended.
struct Outcome {
    /// The stopped writer lost the version it was making and tried again.
    retried: bool,
    /// Its commit came before the rival's (it was stopped after its commit point); `None` when
    /// the rival made no version (a vacuum).
    writer_first: Option<bool>,
}

/// Stops the writer at its `nth` request under `prefix`, runs `rival` to its end, lets the writer
/// go on, and checks the outcome.
fn race(bucket: &str, nth: usize, rival: Rival, inputs: &Inputs) -> Outcome {
    let name = format!("r{nth}-{rival:?}").to_lowercase();
    let base = format!("s3://{bucket}/{name}");
    prepare(&base, &inputs.setup);
    let prefix = format!("/{bucket}/{name}/");
    s3_hold_nth(&prefix, nth);
    let writer: Child = s3_env(&mut bin())
        .args(["ingest", "--json", "--dataset", &base, &inputs.writer])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let held = s3_wait_held(&prefix);
    let rival_out = match rival {
        Rival::Upsert => cli(&["ingest", "--json", "--dataset", &base, &inputs.rival]),
        Rival::Compact => cli(&["compact", "--json", &base]),
        Rival::Vacuum => cli(&[
            "vacuum",
            "--json",
            &base,
            "--retain-versions",
            "1",
            "--retention",
            "0s",
        ]),
    };
    s3_release(&prefix);
    let out = writer.wait_with_output().unwrap();
    let log = stderr(&out);
    let report = json_ok(&out);
    let rival_report = json_ok(&rival_out);
    let retried = log.contains("trying again");
    let context = format!("held {held} ({nth}), rival {rival:?}: {report} / {rival_report}\n{log}");
    // Whose values hold the day: the later of the two upserts' commits.
    let history = ok_json(&["history", &base]);
    let ops: Vec<String> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["operation"]["op_id"].as_str().unwrap_or("").to_string())
        .collect();
    let at = |op: &Value| ops.iter().position(|o| Some(o.as_str()) == op.as_str());
    let writer_at =
        at(&report["op_id"]).unwrap_or_else(|| panic!("writer's commit not in history: {context}"));
    let rival_at = at(&rival_report["op_id"]);
    let writer_first = rival_at.map(|r| writer_at < r);
    let expected = match rival {
        Rival::Upsert if writer_first == Some(true) => 3.0,
        _ => 2.0,
    };
    assert_eq!(closes(&base), vec![expected; 1440], "{context}");
    let info = ok_json(&["info", &base]);
    assert_eq!(info["total_rows"], 1440, "{context}");
    assert_verified_and_tidy(&base, &context);
    Outcome {
        retried,
        writer_first,
    }
}

/// `verify` finds nothing wrong with the S3 dataset `base`, and nothing of any commit is left in
/// staging or the journal.
fn assert_verified_and_tidy(base: &str, context: &str) {
    let verify = ok_json(&["verify", base]);
    for problem in ["missing", "orphans", "checksum_mismatches", "stale_stats"] {
        assert_eq!(
            verify[problem],
            serde_json::json!([]),
            "{problem}: {verify} {context}"
        );
    }
    assert_eq!(verify["duplicate_keys"], 0, "{context}");
    let left: Vec<String> = metadata_objects(base)
        .into_iter()
        .filter(|k| k.contains("/staging/") || k.contains("/journal/"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "{context}");
}

/// The objects under the dataset `base`'s `_pqdm/` folder (listed by pqdm's storage layer).
fn metadata_objects(base: &str) -> Vec<String> {
    s3_endpoint();
    pqdm::storage::Remote::open(Path::new(base))
        .unwrap()
        .list("_pqdm/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

struct Inputs {
    setup: [String; 3],
    writer: String,
    rival: String,
}

#[test]
fn a_commit_stopped_at_each_of_its_requests_survives_a_rival_upsert_compaction_and_vacuum() {
    let _measuring = measuring();
    let bucket = s3_bucket();
    let dir = tmp();
    // The writer's requests are counted on a dataset of its own, alone.
    let inputs = Inputs {
        setup: [
            minutes(dir.path(), "a", 0, 720, 1.0),
            minutes(dir.path(), "b", 720, 1440, 1.0),
            minutes(dir.path(), "c", 0, 720, 1.5),
        ],
        writer: minutes(dir.path(), "writer", 0, 1440, 2.0),
        rival: minutes(dir.path(), "rival", 0, 1440, 3.0),
    };
    // How many requests the writer's upsert makes, alone.
    let base = format!("s3://{bucket}/count");
    prepare(&base, &inputs.setup);
    let before = s3_requests().len();
    let mut writer_requests = 0;
    let probe = s3_env(&mut bin())
        .args(["ingest", "--json", "--dataset", &base, &inputs.writer])
        .output()
        .unwrap();
    json_ok(&probe);
    for r in &s3_requests()[before..] {
        writer_requests += r.contains(&format!("/{bucket}/count/")) as usize;
    }
    assert!(writer_requests >= 8, "{writer_requests} requests");
    for rival in [Rival::Upsert, Rival::Compact, Rival::Vacuum] {
        let outcomes: Vec<Outcome> = (1..=writer_requests)
            .map(|nth| race(&bucket, nth, rival, &inputs))
            .collect();
        let retried = outcomes.iter().filter(|o| o.retried).count();
        let first = outcomes
            .iter()
            .filter(|o| o.writer_first == Some(true))
            .count();
        let versionless = outcomes.iter().filter(|o| o.writer_first.is_none()).count();
        println!(
            "S3 races against {rival:?} at each of the writer's {writer_requests} requests: lost and retried {retried}, committed first {first}, rival made no version {versionless}"
        );
        if let Rival::Upsert = rival {
            // Stopped between reading the version and putting the next, the writer loses that
            // version to the rival and goes on top of it; stopped after its put, it wins: both
            // happened (and the values above came from whichever committed later).
            assert!(retried > 0 && first > 0, "{retried} retried, {first} first");
        }
    }
}

/// The closes of `symbol`'s day, by minute, as a scan returns them.
fn symbol_closes(base: &str, symbol: &str) -> Vec<f64> {
    let out = cli(&[
        "scan",
        base,
        "--columns",
        "symbol,timestamp,close",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut rows: Vec<(i64, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.split(',');
            (parts.next()? == symbol).then(|| {
                let t = parts.next().unwrap().parse().unwrap();
                (t, parts.next().unwrap().parse().unwrap())
            })
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    let times: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let expected: Vec<i64> = (0..1440).map(|i| JAN1 + i * 60_000).collect();
    assert_eq!(times, expected, "every minute of {symbol} once");
    rows.into_iter().map(|r| r.1).collect()
}

/// As Delta's conflict checker does: a writer that loses its version to a commit into other
/// partitions is rebased onto it without merging again (its merge read nothing that commit
/// changed), and one that loses it to a commit into its own partition merges again on top of
/// it. The writer upserts the first half of BTCUSDT's day, so its merge stages the stored
/// second half again; it is stopped after uploading, just before its conditional put, while
/// the rival commits.
#[test]
fn a_writer_beaten_by_a_commit_elsewhere_is_rebased_and_one_beaten_in_its_partition_merges_again() {
    let _measuring = measuring();
    let bucket = s3_bucket();
    let dir = tmp();
    for (case, rival_symbol, rival_from) in [("elsewhere", "ETHUSDT", 0), ("same", "BTCUSDT", 360)]
    {
        let base = format!("s3://{bucket}/{case}");
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            let input = symbol_minutes(
                dir.path(),
                &format!("{case}-{symbol}"),
                symbol,
                0,
                1440,
                1.0,
            );
            ok_json(&["ingest", "--dataset", &base, &input]);
        }
        let writer_input = symbol_minutes(dir.path(), &format!("{case}-w"), "BTCUSDT", 0, 720, 2.0);
        let rival_input = symbol_minutes(
            dir.path(),
            &format!("{case}-r"),
            rival_symbol,
            rival_from,
            1440,
            3.0,
        );
        let go = dir.path().join(format!("{case}-go"));
        let writer: Child = s3_env(&mut bin())
            .args(["ingest", "--json", "--dataset", &base, &writer_input])
            .env(
                "PQDM_FAILPOINTS",
                format!("commit.moved=wait:{}@1", go.display()),
            )
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let reached = dir.path().join(format!("{case}-go.waiting"));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !reached.exists() {
            assert!(
                std::time::Instant::now() < until,
                "{case}: the writer never reached its commit"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let rival = ok_json(&["ingest", "--dataset", &base, &rival_input]);
        assert_eq!(rival["version"], 3, "{case}: {rival}");
        std::fs::write(&go, "").unwrap();
        let out = writer.wait_with_output().unwrap();
        let log = stderr(&out);
        let report = json_ok(&out);
        let context = format!("{case}: {report}\n{log}");
        assert_eq!(report["version"], 4, "{context}");
        assert_eq!(report["commit_attempts"], 2, "{context}");
        assert_eq!(report["rows_replaced"], 720, "{context}");
        let (merges, btc_rest, eth) = match case {
            "elsewhere" => (1, 1.0, 3.0),
            _ => (2, 3.0, 1.0),
        };
        assert_eq!(report["merges"], merges, "{context}");
        assert_eq!(
            log.contains("without merging again"),
            merges == 1,
            "{context}"
        );
        let mut want = vec![2.0; 720];
        want.extend(vec![btc_rest; 720]);
        assert_eq!(symbol_closes(&base, "BTCUSDT"), want, "{context}");
        assert_eq!(
            symbol_closes(&base, "ETHUSDT"),
            vec![eth; 1440],
            "{context}"
        );
        assert_verified_and_tidy(&base, &context);
    }
}
