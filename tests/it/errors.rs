//! Every way the CLI ends in an error, one row each: each `Error` variant and each refusal,
//! with its exit code, a message naming what and where, the dataset byte for byte as it was,
//! and, where the message gives advice, that following it works.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// What the message advises, followed by the test: then the command must succeed.
enum Advice {
    /// The message gives none (the test checks that it offers no `--repair`).
    None,
    /// Run the command again with these arguments added.
    AddArgs(&'static [&'static str]),
    /// Run this `pqdm` command first (it must succeed), then the command again.
    RunFirst(&'static [&'static str]),
    /// Do this to the dataset by hand first, then the command again.
    ByHand(fn(&Path)),
}

struct Case {
    name: &'static str,
    /// What breaks the dataset (a copy of the sample one) before the command.
    setup: fn(&Path),
    /// The command; `{ds}` is the dataset, `{in}` the folder of inputs, `{data}` the sample data.
    args: &'static [&'static str],
    code: i32,
    /// What the message must say (with the same placeholders).
    says: &'static [&'static str],
    advice: Advice,
}

fn keep(_: &Path) {}

/// The newest version file: the current version, as an earlier pqdm wrote it (see
/// [`write_version_files`]).
fn current_version(ds: &Path) -> PathBuf {
    write_version_files(ds);
    let mut versions: Vec<PathBuf> = std::fs::read_dir(ds.join("_pqdm/versions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    versions.pop().unwrap()
}

/// Edits the current version file's JSON by hand.
fn edit_current(ds: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = current_version(ds);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

fn damage_manifest_copy(ds: &Path) {
    std::fs::write(ds.join("_manifest.json"), "{").unwrap();
}

fn damage_current_version(ds: &Path) {
    std::fs::write(current_version(ds), "{").unwrap();
}

fn newer_format(ds: &Path) {
    edit_current(ds, |v| v["format_version"] = 99.into());
}

fn not_a_manifest(ds: &Path) {
    std::fs::write(current_version(ds), r#"{"format_version": 1}"#).unwrap();
}

fn file_outside(ds: &Path) {
    edit_current(ds, |v| v["files"][0]["path"] = "../outside.parquet".into());
}

fn file_twice(ds: &Path) {
    edit_current(ds, |v| {
        let first = v["files"][0].clone();
        v["files"].as_array_mut().unwrap().push(first);
    });
}

/// Log entry 1 copied to 3 by hand: the newest commit point holds another version's record.
fn version_copied(ds: &Path) {
    let versions = ds.join("_delta_log");
    std::fs::copy(
        versions.join(format!("{:020}.json", 1)),
        versions.join(format!("{:020}.json", 3)),
    )
    .unwrap();
}

const JOURNAL: &str = "_pqdm/journal/planted.json";

fn bad_journal(ds: &Path) {
    std::fs::write(ds.join(JOURNAL), "garbage").unwrap();
}

fn move_journal_away(ds: &Path) {
    std::fs::rename(ds.join(JOURNAL), ds.join("planted-journal.txt")).unwrap();
}

/// The ETH file of the sample dataset, in the tree and under `_pqdm/files` (hard links).
fn eth_files(ds: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    pqdm::manifest::walk(ds, &mut |p| {
        if p.to_string_lossy().contains("symbol=ETHUSDT") && p.is_file() {
            found.push(p.to_path_buf());
        }
    })
    .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    found
}

fn lose_eth_file(ds: &Path) {
    for f in eth_files(ds) {
        std::fs::remove_file(f).unwrap();
    }
}

fn cut_eth_footer(ds: &Path) {
    for f in eth_files(ds) {
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
    }
}

fn stray_parquet(ds: &Path) {
    let live = eth_files(ds)
        .into_iter()
        .find(|f| !f.to_string_lossy().contains("_pqdm"))
        .unwrap();
    std::fs::copy(&live, live.with_file_name("part-stray.parquet")).unwrap();
}

/// The history loses its newest version (2, BTC), while `_manifest.json` still holds it.
fn lose_newest_version(ds: &Path) {
    std::fs::remove_file(ds.join("_delta_log/00000000000000000002.json")).unwrap();
}

/// Version 1, in the middle of the history, is no longer JSON.
fn damage_middle_version(ds: &Path) {
    std::fs::write(ds.join("_delta_log/00000000000000000001.json"), "{").unwrap();
}

/// Every data file of the current version renamed in the tree, and its kept link gone: the
/// tree holds files no version names, and none of the current version's.
fn rename_every_file(ds: &Path) {
    std::fs::remove_dir_all(ds.join("_pqdm/files")).unwrap();
    for rel in parquet_files(ds) {
        let path = ds.join(rel);
        let name = format!("renamed-{}", path.file_name().unwrap().to_string_lossy());
        std::fs::rename(&path, path.with_file_name(name)).unwrap();
    }
}

fn cases() -> Vec<Case> {
    vec![
        // Error::Dataset, from a damaged or edited manifest: every command refuses it.
        Case {
            name: "version file not JSON",
            setup: damage_current_version,
            args: &["scan", "{ds}"],
            code: 1,
            says: &[
                "dataset {ds}",
                "00000000000000000002.json is not valid JSON",
            ],
            advice: Advice::None,
        },
        Case {
            name: "version file from a newer pqdm",
            setup: newer_format,
            args: &["info", "{ds}"],
            code: 1,
            says: &[
                "dataset {ds}",
                "has format version 99, newer than this pqdm reads",
            ],
            advice: Advice::None,
        },
        Case {
            name: "version file not a manifest",
            setup: not_a_manifest,
            args: &["history", "{ds}"],
            code: 1,
            says: &["00000000000000000002.json does not hold a pqdm manifest"],
            advice: Advice::None,
        },
        Case {
            name: "manifest lists a file outside",
            setup: file_outside,
            args: &["scan", "{ds}"],
            code: 1,
            says: &["lists a file outside the dataset", "\"../outside.parquet\""],
            advice: Advice::None,
        },
        Case {
            name: "manifest lists a file twice",
            setup: file_twice,
            args: &["info", "{ds}"],
            code: 1,
            says: &["dataset {ds}", "lists the file exchange=", "twice"],
            advice: Advice::None,
        },
        Case {
            name: "log entry copied by hand",
            setup: version_copied,
            args: &[
                "ingest",
                "{data}/spot/klines/ETHUSDT-1m-2025-01-01.csv",
                "--dataset",
                "{ds}",
            ],
            code: 1,
            says: &["{ds}/_delta_log: entry 3 holds the pqdm record of version 1"],
            advice: Advice::None,
        },
        Case {
            name: "unreadable journal",
            setup: bad_journal,
            // `--force`: the sample holds this file already, and would skip it unread.
            args: &[
                "ingest",
                "{data}/spot/klines/ETHUSDT-1m-2025-01-01.csv",
                "--dataset",
                "{ds}",
                "--force",
            ],
            code: 1,
            says: &[
                "planted.json: is not a readable journal",
                "Move it away once no writer runs",
            ],
            advice: Advice::ByHand(move_journal_away),
        },
        Case {
            name: "version not kept",
            setup: keep,
            args: &["scan", "{ds}", "--version", "99"],
            code: 1,
            says: &["dataset {ds}: version 99 is not kept (see `pqdm history`)"],
            advice: Advice::None,
        },
        Case {
            name: "no dataset",
            setup: keep,
            args: &["info", "{ds}/nowhere"],
            code: 1,
            says: &["dataset {ds}/nowhere: no such folder"],
            advice: Advice::None,
        },
        Case {
            name: "another kind",
            setup: keep,
            args: &[
                "ingest",
                "{data}/spot/aggTrades",
                "--dataset",
                "{ds}",
                "--kind",
                "aggtrades",
            ],
            code: 1,
            says: &["dataset {ds}: holds kind `klines`, not `aggtrades`"],
            advice: Advice::None,
        },
        Case {
            name: "nested dataset",
            setup: keep,
            args: &[
                "ingest",
                "{data}/spot/klines",
                "--dataset",
                "{ds}/exchange=BINANCE",
                "--kind",
                "klines",
            ],
            code: 1,
            says: &[
                "dataset {ds}/exchange=BINANCE: datasets cannot be nested",
                "inside the dataset at {ds}",
            ],
            advice: Advice::None,
        },
        Case {
            name: "materialize over a dataset",
            setup: keep,
            args: &["materialize", "{ds}", "--to", "{ds}"],
            code: 1,
            says: &["dataset {ds}: a dataset already exists here"],
            advice: Advice::None,
        },
        Case {
            name: "adopt a pqdm dataset",
            setup: keep,
            args: &["adopt", "{ds}", "--kind", "klines"],
            code: 1,
            says: &["dataset {ds}: already has a pqdm manifest"],
            advice: Advice::None,
        },
        // verify: findings it can repair say so, and the repair works; the data's own do not.
        Case {
            name: "manifest copy damaged",
            setup: damage_manifest_copy,
            args: &["verify", "{ds}"],
            code: 1,
            says: &["verify found 1 problem(s) in {ds}; `pqdm verify --repair {ds}` fixes the 1"],
            advice: Advice::RunFirst(&["verify", "--repair", "{ds}"]),
        },
        Case {
            name: "data file lost",
            setup: lose_eth_file,
            args: &["verify", "{ds}"],
            code: 1,
            says: &["verify found 2 problem(s) in {ds}; `pqdm verify --repair {ds}` fixes the 1"],
            advice: Advice::RunFirst(&["verify", "--repair", "{ds}"]),
        },
        Case {
            name: "data file damaged",
            setup: cut_eth_footer,
            args: &["verify", "{ds}"],
            code: 1,
            says: &["verify found 2 problem(s) in {ds}; `pqdm verify --repair {ds}` fixes the 1"],
            advice: Advice::RunFirst(&["verify", "--repair", "{ds}"]),
        },
        Case {
            name: "orphan file",
            setup: stray_parquet,
            args: &["verify", "{ds}"],
            code: 1,
            says: &["verify found 1 problem(s) in {ds}; `pqdm verify --repair {ds}` fixes the 1"],
            advice: Advice::RunFirst(&["verify", "--repair", "{ds}"]),
        },
        // verify --repair refuses states it cannot explain, naming what it saw; verify alone
        // reports them and offers no repair.
        Case {
            name: "history lost its newest version",
            setup: lose_newest_version,
            args: &["verify", "--repair", "{ds}"],
            code: 1,
            says: &[
                "dataset {ds}: repair refused, nothing was changed: _manifest.json holds version 2, \
                 newer than the newest version in the history (1)",
            ],
            advice: Advice::None,
        },
        Case {
            name: "history lost its newest version, verify",
            setup: lose_newest_version,
            args: &["verify", "{ds}"],
            code: 1,
            says: &["verify found 3 problem(s) in {ds}\n"],
            advice: Advice::None,
        },
        Case {
            name: "version in the middle of the history not JSON",
            setup: damage_middle_version,
            args: &["verify", "--repair", "{ds}"],
            code: 1,
            says: &[
                "dataset {ds}: repair refused, nothing was changed: version 1 cannot be read from the log (entry 1 holds a line that is not JSON",
            ],
            advice: Advice::None,
        },
        Case {
            name: "none of the current files but others",
            setup: rename_every_file,
            args: &["verify", "--repair", "{ds}"],
            code: 1,
            says: &[
                "repair refused, nothing was changed: none of the 2 file(s) of version 2 is in \
                 place, yet the tree holds 2 other data file(s) (`exchange=BINANCE/symbol=BTCUSDT/",
                "/renamed-part-",
                "no kept version names them",
            ],
            advice: Advice::None,
        },
        // Error::Polars: a damaged file met by a scan, named by its checksum.
        Case {
            name: "scan of a damaged file",
            setup: cut_eth_footer,
            args: &["scan", "{ds}"],
            code: 1,
            says: &[
                "reading {ds} failed: damaged or missing (content no longer matching the manifest's checksum): exchange=BINANCE/symbol=ETHUSDT/timeframe=1m/",
                "(`pqdm verify --repair {ds}` moves them aside)",
                "parquet",
            ],
            advice: Advice::RunFirst(&["verify", "--repair", "{ds}"]),
        },
        // Errors of the inputs: Cast, TimestampRange, PartitionValue, PartitionTooLong, Input, Io,
        // Schema.
        Case {
            name: "value that does not cast",
            setup: keep,
            args: &[
                "ingest",
                "{in}/BTCUSDT-1m-2024-01-05.csv",
                "--dataset",
                "{ds}",
            ],
            code: 1,
            says: &[
                "{in}/BTCUSDT-1m-2024-01-05.csv: column `close`, row 2: cannot cast value \"abc\" to f64",
                "use --lenient",
            ],
            advice: Advice::AddArgs(&["--lenient"]),
        },
        Case {
            name: "timestamp before 1970",
            setup: keep,
            args: &[
                "ingest",
                "{in}/early.csv",
                "--dataset",
                "{ds}",
                "--timestamp-unit",
                "ms",
                "--exchange",
                "BINANCE",
                "--symbol",
                "BTCUSDT",
                "--timeframe",
                "1m",
            ],
            code: 1,
            says: &[
                "{in}/early.csv: column `timestamp`, row 2: timestamp -60000 (1969-12-31T23:59:00.000Z) is outside 1970-01-01 .. 2262-04-11",
                "use --lenient",
            ],
            advice: Advice::AddArgs(&["--lenient"]),
        },
        Case {
            name: "empty partition value",
            setup: keep,
            args: &[
                "ingest",
                "{data}/spot/klines/ETHUSDT-1m-2025-01-01.csv",
                "--dataset",
                "{ds}",
                "--symbol",
                "",
            ],
            code: 1,
            says: &[
                "ETHUSDT-1m-2025-01-01.csv: row 1: partition column `symbol` holds \"\", which every hive reader reads back as null",
            ],
            advice: Advice::None,
        },
        Case {
            name: "partition value too long for a folder name",
            setup: keep,
            args: &[
                "ingest",
                "{in}/symbols.csv",
                "--dataset",
                "{ds}",
                "--kind",
                "klines",
                "--exchange",
                "X",
                "--timeframe",
                "1m",
            ],
            code: 1,
            says: &[
                "{in}/symbols.csv: row 2: partition column `symbol` holds \"ÉÉÉ",
                "É\", whose folder name would be 907 bytes, more than the 255 a file system allows; nothing was written",
            ],
            advice: Advice::None,
        },
        Case {
            name: "input not a zip",
            setup: keep,
            args: &[
                "ingest",
                "{in}/BTCUSDT-1m-2024-01-06.zip",
                "--dataset",
                "{ds}",
            ],
            code: 1,
            says: &["{in}/BTCUSDT-1m-2024-01-06.zip: not a readable zip archive"],
            advice: Advice::None,
        },
        Case {
            name: "input missing",
            setup: keep,
            args: &["ingest", "{in}/nosuch.csv", "--dataset", "{ds}"],
            code: 1,
            says: &["{in}/nosuch.csv: No such file or directory"],
            advice: Advice::None,
        },
        Case {
            name: "input lacks columns",
            setup: keep,
            args: &[
                "ingest",
                "{in}/short.csv",
                "--dataset",
                "{ds}",
                "--exchange",
                "BINANCE",
                "--symbol",
                "BTCUSDT",
                "--timeframe",
                "1m",
            ],
            code: 1,
            says: &[
                "{in}/short.csv: missing required columns `low`, `close`, `volume` for kind `klines`",
            ],
            advice: Advice::None,
        },
        Case {
            name: "unknown kind",
            setup: keep,
            args: &[
                "ingest",
                "{data}/spot/klines",
                "--dataset",
                "{ds}/../new",
                "--kind",
                "nosuch",
            ],
            code: 1,
            says: &["unknown kind `nosuch` (known kinds: aggtrades, futures, klines"],
            advice: Advice::None,
        },
        // Error::PartitionExists.
        Case {
            name: "mode error over data",
            setup: keep,
            // `--force`: the sample holds this file already, and would skip it unread.
            args: &[
                "ingest",
                "{data}/spot/klines/ETHUSDT-1m-2025-01-01.csv",
                "--dataset",
                "{ds}",
                "--mode",
                "error",
                "--force",
            ],
            code: 1,
            says: &[
                "mode `error`: partition exchange=BINANCE/symbol=ETHUSDT/timeframe=1m/year=2025/month=1/day=1 already holds data; nothing was written",
            ],
            advice: Advice::None,
        },
        // Error::Options and the binary's own refusals.
        Case {
            name: "unknown mode",
            setup: keep,
            args: &[
                "ingest",
                "{data}/spot/klines/ETHUSDT-1m-2025-01-01.csv",
                "--dataset",
                "{ds}",
                "--mode",
                "bogus",
            ],
            code: 1,
            says: &[
                "invalid option: unknown write mode `bogus` (expected upsert, append, overwrite or error)",
            ],
            advice: Advice::None,
        },
        Case {
            name: "compression level",
            setup: keep,
            args: &[
                "ingest",
                "{data}/spot/klines/ETHUSDT-1m-2025-01-01.csv",
                "--dataset",
                "{ds}",
                "--compression",
                "zstd:99",
            ],
            code: 1,
            says: &["invalid option: compression `zstd:99`: level must be a number in 1..=22"],
            advice: Advice::None,
        },
        Case {
            name: "memory budget",
            setup: keep,
            args: &[
                "ingest",
                "{data}/spot/klines/ETHUSDT-1m-2025-01-01.csv",
                "--dataset",
                "{ds}",
                "--memory-limit",
                "12zz",
            ],
            code: 1,
            says: &["invalid option: size `12zz`: unknown unit `zz`"],
            advice: Advice::None,
        },
        Case {
            name: "filter without a value",
            setup: keep,
            args: &["scan", "{ds}", "--filter", "close =="],
            code: 1,
            says: &["invalid option: filter `close ==`: `==` needs a value"],
            advice: Advice::None,
        },
        Case {
            name: "filter on an unknown column",
            setup: keep,
            args: &["scan", "{ds}", "--filter", "nosuch == 1"],
            code: 1,
            says: &["filter `nosuch == 1`: unknown column `nosuch` (columns: timestamp, open"],
            advice: Advice::None,
        },
        Case {
            name: "unknown projected column",
            setup: keep,
            args: &["scan", "{ds}", "--columns", "nosuch"],
            code: 1,
            says: &["columns: unknown column `nosuch` (columns: timestamp, open"],
            advice: Advice::None,
        },
        Case {
            name: "lock timeout not a number",
            setup: keep,
            args: &[
                "ingest",
                "{data}/spot/klines/ETHUSDT-1m-2025-01-01.csv",
                "--dataset",
                "{ds}",
                "--lock-timeout",
                "abc",
            ],
            code: 1,
            says: &["--lock-timeout `abc` is not a number of seconds (e.g. 300 or 0.5)"],
            advice: Advice::None,
        },
        Case {
            name: "storage option without a value",
            setup: keep,
            args: &["info", "{ds}", "--storage-option", "nonsense"],
            code: 1,
            says: &["invalid option: --storage-option nonsense: expected KEY=VALUE"],
            advice: Advice::None,
        },
        Case {
            name: "unknown flag",
            setup: keep,
            args: &["scan", "{ds}", "--bogus"],
            code: 2,
            says: &["unexpected argument '--bogus' found", "Usage: pqdm scan"],
            advice: Advice::None,
        },
        // Error::Storage: a store that does not answer (a closed port), named by its location.
        Case {
            name: "object store unreachable",
            setup: keep,
            args: &[
                "info",
                "s3://bucket/ds",
                "--storage-option",
                "endpoint=http://127.0.0.1:9",
                "--storage-option",
                "allow_http=true",
                "--storage-option",
                "region=us-east-1",
                "--storage-option",
                "access_key_id=a",
                "--storage-option",
                "secret_access_key=b",
            ],
            code: 1,
            says: &["s3://bucket/ds/_manifest.json: ", "127.0.0.1:9"],
            advice: Advice::None,
        },
        // Error::KindNeeded: a new dataset, no --kind, and a file name that tells none.
        Case {
            name: "kind needed",
            setup: keep,
            args: &["ingest", "{in}/early.csv", "--dataset", "{in}/new"],
            code: 1,
            says: &[
                "{in}/new: a kind is needed to create a dataset here; the sources' names do not tell one (pass --kind)",
            ],
            advice: Advice::None,
        },
        // Error::Conflict (a rival wins every attempt) is in object_storage.rs.
    ]
}

/// The inputs the cases read, in `dir`.
fn write_inputs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let row = |t: i64, close: &str| format!("{t},1,1,1,{close},1,{},1,1,1,1,0\n", t + 59_999);
    let jan5 = 1_704_412_800_000;
    let files = [
        (
            "BTCUSDT-1m-2024-01-05.csv",
            row(jan5, "1") + &row(jan5 + 60_000, "abc"),
        ),
        ("early.csv", row(jan5, "1") + &row(-60_000, "1")),
        (
            "symbols.csv",
            format!(
                "open_time,open,high,low,close,volume,symbol\n{jan5},1,1,1,1,1,BTCUSDT\n{jan5},1,1,1,1,1,{}\n",
                "é".repeat(150)
            ),
        ),
        ("short.csv", format!("{jan5},1,1\n")),
        ("BTCUSDT-1m-2024-01-06.zip", "not a zip".into()),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn fill(text: &str, ds: &Path, inputs: &Path) -> String {
    text.replace("{ds}", ds.to_str().unwrap())
        .replace("{in}", inputs.to_str().unwrap())
        .replace("{data}", data_dir().to_str().unwrap())
}

fn pqdm(args: &[&str], ds: &Path, inputs: &Path) -> Output {
    let args: Vec<String> = args.iter().map(|a| fill(a, ds, inputs)).collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs)
}

#[test]
fn every_error_names_what_and_where_changes_nothing_and_its_advice_works() {
    let dir = tmp();
    let inputs = dir.path().join("in");
    write_inputs(&inputs);
    // The sample: version 1 ETH, version 2 BTC, both 1m BINANCE candles.
    let sample = dir.path().join("sample");
    for file in ["ETHUSDT-1m-2025-01-01.csv", "BTCUSDT-1m-2024-01-05.zip"] {
        let path = data_dir().join("spot/klines").join(file);
        let out = run(&[
            "ingest",
            path.to_str().unwrap(),
            "--dataset",
            sample.to_str().unwrap(),
            "--kind",
            "klines",
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for (n, case) in cases().into_iter().enumerate() {
        let ds = dir.path().join(format!("case{n}"));
        // `cp -a` keeps the hard links between the tree and `_pqdm/files`.
        let copied = std::process::Command::new("cp")
            .args(["-a"])
            .arg(&sample)
            .arg(&ds)
            .status()
            .unwrap();
        assert!(copied.success());
        (case.setup)(&ds);
        let before = snapshot(&ds);
        let out = pqdm(case.args, &ds, &inputs);
        let said = stderr(&out);
        let name = case.name;
        assert_eq!(out.status.code(), Some(case.code), "{name}: {said}");
        assert!(!said.contains("panicked"), "{name}: {said}");
        for part in case.says {
            let part = fill(part, &ds, &inputs);
            assert!(said.contains(&part), "{name}: `{part}` not in: {said}");
        }
        assert!(snapshot(&ds) == before, "{name}: the dataset changed");
        match case.advice {
            Advice::None => {
                assert!(!said.contains("--repair"), "{name}: {said}");
                continue;
            }
            Advice::AddArgs(extra) => {
                let args = [case.args, extra].concat();
                let again = pqdm(&args, &ds, &inputs);
                assert!(
                    again.status.success(),
                    "{name}, advised: {}",
                    stderr(&again)
                );
                continue;
            }
            Advice::RunFirst(first) => {
                let fix = pqdm(first, &ds, &inputs);
                assert!(fix.status.success(), "{name}, advice: {}", stderr(&fix));
            }
            Advice::ByHand(fix) => fix(&ds),
        }
        let again = pqdm(case.args, &ds, &inputs);
        assert!(
            again.status.success(),
            "{name}, advice followed: {}",
            stderr(&again)
        );
    }
}
