//! The harness itself: a `pqdm` run by a test sees none of the settings of whoever runs the
//! tests (variables, a `pqdm.toml` in the working folder, `~/.aws`).

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// Settings that turn a second ingest of the same file into a refusal when they reach `pqdm`.
const STRAY_ENV: &[(&str, &str)] = &[
    ("PQDM_MODE", "error"),
    ("PQDM_COMPRESSION", "gzip"),
    ("AWS_PROFILE", "stray"),
    ("POLARS_MAX_THREADS", "1"),
];
const STRAY_TOML: &str = "[write]\nmode = \"error\"\ncompression = \"gzip\"\n";

/// Ingests the same klines file twice into `base` with `pqdm` (`--force`: read again, not
/// skipped as ingested before); both outputs.
fn ingest_twice(pqdm: &dyn Fn(&[&str]) -> Output, base: &Path) -> (Output, Output) {
    let csv = data_dir().join("spot/klines/ETHUSDT-1m-2025-01-01.csv");
    let args = [
        "ingest",
        csv.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "klines",
        "--quiet",
        "--force",
    ];
    (pqdm(&args), pqdm(&args))
}

#[test]
fn stray_settings_of_the_runner_do_not_reach_pqdm() {
    let dir = tmp();
    let cwd = dir.path().join("cwd");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(cwd.join("pqdm.toml"), STRAY_TOML).unwrap();
    // The strays work: each alone makes a plain `pqdm` (not the hermetic `bin`) refuse the
    // second ingest.
    for (name, folder, env) in [
        ("pqdm.toml", &cwd, &[][..]),
        ("PQDM_MODE", &elsewhere, STRAY_ENV),
    ] {
        let plain = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_pqdm"))
                .args(args)
                .current_dir(folder)
                .envs(env.iter().copied())
                .output()
                .unwrap()
        };
        let (first, second) = ingest_twice(&plain, &dir.path().join(format!("control-{name}")));
        assert!(first.status.success(), "{name}: {}", stderr(&first));
        assert_eq!(second.status.code(), Some(1), "{name}: {}", stderr(&second));
        assert!(
            stderr(&second).contains("mode `error`: partition"),
            "{name}: {}",
            stderr(&second)
        );
    }
    // This test binary, run again in that folder with those variables, runs the probe below
    // through the hermetic helpers: there they change nothing.
    let probe = Command::new(std::env::current_exe().unwrap())
        .args(["hermetic::probe_without_strays", "--exact", "--ignored"])
        .current_dir(&cwd)
        .envs(STRAY_ENV.iter().copied())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&probe.stdout);
    assert!(probe.status.success(), "{said}{}", stderr(&probe));
    assert!(said.contains("test result: ok. 1 passed"), "{said}");
}

/// Run only by the test above, in a working folder holding a `pqdm.toml` and with `PQDM_MODE`
/// and `PQDM_COMPRESSION` set: the helpers' `pqdm` sees neither.
#[test]
#[ignore = "run by stray_settings_of_the_runner_do_not_reach_pqdm, in a stray environment"]
fn probe_without_strays() {
    assert_eq!(std::env::var("PQDM_MODE").as_deref(), Ok("error"));
    assert!(Path::new("pqdm.toml").is_file());
    let dir = tmp();
    let base = dir.path().join("ds");
    let (first, second) = ingest_twice(&|args| run(args), &base);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(second.status.success(), "{}", stderr(&second));
    let info = json_ok(&run(&["info", base.to_str().unwrap(), "--json"]));
    assert_eq!(info["settings"]["compression"], "snappy", "{info}");
    // The second, an upsert of the same rows, succeeded and changed nothing.
    assert_eq!(info["version"], 1, "{info}");
}
