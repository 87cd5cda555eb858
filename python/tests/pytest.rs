//! Runs the Python package's pytest suite (`python/tests/test_*.py`) against the extension
//! this same `cargo test` built: no second build, no nested cargo.
//!
//! The cdylib (`lib_pqdm.so`) lies in the profile folder above this test's executable
//! (`target/release/deps/pytest-…` -> `target/release/`). It is laid out with the package's
//! Python files as `pqdm/` in a fresh folder put on `PYTHONPATH`, and pytest runs in the tests'
//! one virtualenv (tests/pyenv.py: pytest, pandas, pyarrow, Polars, moto).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this package is `python/` under it).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The extension module this `cargo test` built: beside this test's executable in `deps/`
/// (a cdylib keeps its plain name there), or its copy in the profile folder above.
fn extension() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let deps = exe.parent().expect("target/<profile>/deps");
    let names = ["lib_pqdm.so", "lib_pqdm.dylib", "_pqdm.dll"];
    [deps, deps.parent().unwrap_or(deps)]
        .iter()
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {names:?} in {}: is the cdylib built?", deps.display()))
}

/// The tests' virtualenv's python (made on first use from tests/requirements.txt).
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
    let out = Command::new("python3")
        .arg(repo().join("tests/pyenv.py"))
        .arg(&venv)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("python3 tests/pyenv.py");
    assert!(
        out.status.success(),
        "tests/pyenv.py could not make {venv:?}"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// `pqdm/` as an installed package would hold it: the Python files and the extension.
fn lay_out_package(root: &Path) {
    let package = root.join("pqdm");
    std::fs::create_dir_all(&package).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("pqdm");
    for entry in std::fs::read_dir(&source).unwrap().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".py") || name.ends_with(".pyi") || name == "py.typed" {
            std::fs::copy(entry.path(), package.join(&*name)).unwrap();
        }
    }
    std::fs::copy(extension(), package.join("_pqdm.abi3.so")).unwrap();
}

#[test]
fn pytest_suite_passes() {
    let root = tempfile::tempdir().unwrap();
    lay_out_package(root.path());
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut cmd = Command::new(python());
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp"])
        .arg(root.path().join("pytest-tmp"))
        .arg(&tests)
        .current_dir(root.path())
        .env("PYTHONPATH", root.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("HOME", root.path())
        .env("PQDM_REPO", repo());
    // The command line beside the extension, built by the same `cargo test`: its `--json`
    // must be what the Python reports hold.
    let exe = std::env::current_exe().expect("the test executable");
    let cli = exe.parent().and_then(Path::parent).unwrap().join("pqdm");
    if cli.exists() {
        cmd.env("PQDM_BIN", cli);
    }
    for var in [
        "PQDM_CACHE_DIR",
        "PQDM_SCAN_BATCH_SIZE",
        "ARES_SCAN_BATCH_SIZE",
        "PQDM_FAILPOINTS",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary line shows in `cargo test`'s output (`--nocapture`) and in a failure.
    println!("{}", text.lines().last().unwrap_or(""));
    assert!(out.status.success(), "pytest failed:\n{text}");
}
