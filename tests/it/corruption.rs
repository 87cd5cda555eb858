//! Damage inside a data file, not only its leading magic bytes: a data page, the footer's
//! metadata, a cut file, the closing magic, and one value changed so that Parquet decodes it
//! without a complaint. `scan` and `verify` name the file, exit 1 and never panic; verify's
//! checksum catches what decoding cannot, and `verify --repair` moves the file aside.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::common::*;

/// The first volume of BTCUSDT on 2024-01-05 in the sample data (no other value of the file has
/// its bytes), and the same value a little higher.
const VOLUME: f64 = 16.79026;
const CHANGED: f64 = 16.79027;

enum Damage {
    /// Bytes XORed with 0xff at an offset (from the start; negative: from the end).
    Flip(i64, usize),
    /// The file cut to this fraction (in per cent) of its length.
    Cut(u64),
    /// The first `VOLUME` replaced by `CHANGED`.
    Value,
}

struct Case {
    name: &'static str,
    compression: &'static str,
    damage: Damage,
}

/// The footer's length: the little-endian i32 before the closing `PAR1`.
fn footer_len(bytes: &[u8]) -> i64 {
    i32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as i64
}

/// Applies `damage` to `path` in place (one inode: the tree's link and pqdm's kept link alike,
/// as a failing disk would).
fn apply(path: &Path, damage: &Damage) {
    let bytes = std::fs::read(path).unwrap();
    let len = bytes.len() as i64;
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    match damage {
        Damage::Flip(at, n) => {
            let at = if *at < 0 { len + at } else { *at } as usize;
            let flipped: Vec<u8> = bytes[at..at + n].iter().map(|b| b ^ 0xff).collect();
            file.seek(SeekFrom::Start(at as u64)).unwrap();
            file.write_all(&flipped).unwrap();
        }
        Damage::Cut(per_cent) => file.set_len(len as u64 * per_cent / 100).unwrap(),
        Damage::Value => {
            let at = bytes
                .windows(8)
                .position(|w| w == VOLUME.to_le_bytes())
                .expect("the volume in the uncompressed file");
            file.seek(SeekFrom::Start(at as u64)).unwrap();
            file.write_all(&CHANGED.to_le_bytes()).unwrap();
        }
    }
}

fn check(case: &Case) {
    let name = case.name;
    let dir = tmp();
    let base = dir.path().join("ds");
    let b = base.to_str().unwrap();
    let spot = data_dir().join("spot/klines");
    let mut args = vec!["ingest", "--dataset", b, "--kind", "klines", "--json"];
    args.extend(["--compression", case.compression]);
    let inputs = [
        spot.join("BTCUSDT-1m-2024-01-05.zip"),
        spot.join("ETHUSDT-1m-2024-01-05.zip"),
    ];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    json_ok(&run(&args));
    let rel = parquet_files(&base)
        .into_iter()
        .find(|f| f.contains("symbol=BTCUSDT"))
        .unwrap();
    let path = base.join(&rel);
    if let Damage::Flip(at, _) = case.damage {
        // Aimed where the case says: inside the footer's metadata, or before it (pages).
        let (len, footer) = (
            std::fs::metadata(&path).unwrap().len() as i64,
            footer_len(&std::fs::read(&path).unwrap()),
        );
        let start = if at < 0 { len + at } else { at };
        assert_eq!(
            start >= len - 8 - footer,
            name.contains("footer") || name.contains("magic"),
            "{name}: offset {start} of {len}, footer {footer}"
        );
    }
    apply(&path, &case.damage);
    let damaged = std::fs::read(&path).unwrap();
    let no_panic = |out: &std::process::Output, what: &str| {
        assert!(
            !stderr(out).contains("panicked"),
            "{name}: {what}: {}",
            stderr(out)
        );
    };

    // The changed value (the day's first candle) is read alone, by its timestamp: `--limit 1`
    // need not return the file's first row; damaged pages are met by a scan of every column.
    let scan = if matches!(case.damage, Damage::Value) {
        let first_volume = [
            "--columns",
            "volume",
            "--filter",
            "symbol == BTCUSDT",
            "--filter",
            "timestamp == 2024-01-05",
        ];
        run(&[&["scan", b, "--format", "csv"][..], &first_volume].concat())
    } else {
        run(&["scan", b, "--format", "csv"])
    };
    no_panic(&scan, "scan");
    if matches!(case.damage, Damage::Value) {
        // Parquet decodes the changed value without a word: only the checksum tells.
        assert!(scan.status.success(), "{name}: {}", stderr(&scan));
        assert_eq!(
            String::from_utf8_lossy(&scan.stdout),
            format!("volume\n{CHANGED}\n")
        );
    } else {
        assert_eq!(scan.status.code(), Some(1), "{name}");
        let want = format!(
            "error: reading {b} failed: damaged or missing (content no longer matching the manifest's checksum): {rel} (`pqdm verify --repair {b}` moves them aside): "
        );
        assert!(
            stderr(&scan).starts_with(&want),
            "{name}: {}",
            stderr(&scan)
        );
    }

    let verify = run(&["verify", b]);
    no_panic(&verify, "verify");
    assert_eq!(verify.status.code(), Some(1), "{name}");
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        text.contains(&format!("\n  checksum mismatch: {rel}\n")),
        "{name}: {text}"
    );
    let report =
        serde_json::from_slice::<serde_json::Value>(&run(&["verify", b, "--json"]).stdout).unwrap();
    assert_eq!(
        [
            &report["checksum_mismatches"],
            &report["missing"],
            &report["orphans"]
        ],
        [
            &serde_json::json!([rel]),
            &serde_json::json!([]),
            &serde_json::json!([])
        ],
        "{name}: {report}"
    );

    let repair = run(&["verify", b, "--repair", "--json"]);
    no_panic(&repair, "verify --repair");
    let report = json_ok(&repair);
    assert_eq!(
        report["repairs"]["quarantined"],
        serde_json::json!([rel]),
        "{name}: {report}"
    );
    assert_eq!(report["repairs"]["rows_lost"], 1440, "{name}: {report}");
    assert_eq!(
        std::fs::read(base.join(format!("_pqdm/orphans/{rel}.orphan"))).unwrap(),
        damaged,
        "{name}: the damaged file is kept aside as it was"
    );
    let out = run(&["scan", b, "--columns", "symbol", "--format", "csv"]);
    assert!(out.status.success(), "{name}: {}", stderr(&out));
    let rows = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        rows,
        format!("symbol\n{}", "ETHUSDT\n".repeat(1440)),
        "{name}"
    );
    assert_eq!(run(&["verify", b]).status.code(), Some(0), "{name}");
}

#[test]
fn damaged_pages_footers_and_values_are_named_by_scan_and_verify() {
    let cases = [
        Case {
            name: "a compressed data page",
            compression: "snappy",
            // Inside the `low` column's page (bytes 23,345 to 30,637 of this file): snappy meets
            // a copy offset past its output. (Flips elsewhere in a snappy page can decode to
            // other values without a word, like the uncompressed case below.)
            damage: Damage::Flip(25_133, 8),
        },
        Case {
            name: "the footer's metadata",
            compression: "snappy",
            damage: Damage::Flip(-1_000, 16),
        },
        Case {
            name: "the closing magic",
            compression: "none",
            damage: Damage::Flip(-1, 1),
        },
        Case {
            name: "cut in half",
            compression: "zstd",
            damage: Damage::Cut(50),
        },
        Case {
            name: "one value of an uncompressed page",
            compression: "none",
            damage: Damage::Value,
        },
    ];
    std::thread::scope(|scope| {
        for case in &cases {
            scope.spawn(move || check(case));
        }
    });
}

/// A copy that breaks the hard link between a tree file and pqdm's kept copy (`cp -r`, a
/// restore): damage to the tree's copy, which plain readers read, is reported though pqdm's own
/// copy is intact, and `--repair` puts the intact copy back with no row lost.
#[test]
fn a_damaged_tree_copy_beside_an_intact_kept_copy_is_found_and_restored() {
    let dir = tmp();
    let original = dir.path().join("original");
    let spot = data_dir().join("spot/klines");
    let btc = spot.join("BTCUSDT-1m-2024-01-05.zip");
    json_ok(&run(&[
        "ingest",
        "--dataset",
        original.to_str().unwrap(),
        "--kind",
        "klines",
        "--compression",
        "none",
        "--json",
        btc.to_str().unwrap(),
    ]));
    let base = dir.path().join("copy");
    let copied = std::process::Command::new("cp")
        .args(["-r", original.to_str().unwrap(), base.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(copied.success());
    let b = base.to_str().unwrap();
    let rel = parquet_files(&base).into_iter().next().unwrap();
    let kept_bytes = std::fs::read(base.join("_pqdm/files").join(format!("{rel}.kept"))).unwrap();
    apply(&base.join(&rel), &Damage::Value);

    let out = run(&["verify", b, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tree_copies_damaged"], serde_json::json!([rel]));
    assert_eq!(report["checksum_mismatches"], serde_json::json!([]));
    let text = run(&["verify", b]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&format!(
            "tree copy damaged (the kept copy is intact): {rel}"
        )),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    let repaired = json_ok(&run(&["verify", "--repair", b, "--json"]));
    assert_eq!(
        repaired["repairs"]["tree_copies_restored"],
        serde_json::json!([rel])
    );
    assert_eq!(repaired["repairs"]["rows_lost"], 0);
    assert_eq!(std::fs::read(base.join(&rel)).unwrap(), kept_bytes);
    assert!(
        base.join("_pqdm/orphans")
            .join(format!("{rel}.orphan"))
            .exists(),
        "the damaged copy is kept aside"
    );
    let again = run(&["verify", b, "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
}
