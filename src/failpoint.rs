//! Failpoints: named steps of a commit, a recovery or a vacuum at which the test suite makes
//! pqdm fail or die, to prove that every step leaves a dataset at its last committed version
//! (and `ingest.planned`, after an ingest has hashed its sources and before it reads them).
//!
//! `PQDM_FAILPOINTS="commit.moved=error,commit.tidy=kill"` arms them for one process: `error`
//! makes the step fail with an I/O error, `kill` ends the process there with SIGKILL (as a
//! power cut or the OOM killer would), `sleep:MS` stalls it (to let another process act in
//! between), `wait:PATH` stalls it until a file exists at `PATH` (it first creates
//! `PATH.waiting`, so a test knows the step is reached and can make another process act at
//! exactly that point), `kill@N` / `error@N` / ... only on the N-th hit (1-based).
//! Without the variable, [`hit`] is one relaxed atomic load.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// What an armed failpoint does.
#[derive(Clone, Debug, PartialEq)]
enum Action {
    Error,
    Kill,
    Sleep(u64),
    Wait(std::path::PathBuf),
}

/// How long a `wait:` failpoint waits for its file before failing the step.
const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

struct Armed {
    action: Action,
    /// Fire on this hit only (1-based); 0: every hit.
    nth: u64,
    hits: AtomicU64,
}

fn armed() -> &'static Option<BTreeMap<String, Armed>> {
    static ARMED: OnceLock<Option<BTreeMap<String, Armed>>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let parsed = parse(crate::env::env().failpoints.as_deref()?);
        (!parsed.is_empty()).then_some(parsed)
    })
}

fn parse(text: &str) -> BTreeMap<String, Armed> {
    text.split(',')
        .filter_map(|item| {
            let (name, how) = item.trim().split_once('=')?;
            let (action, nth) = match how.split_once('@') {
                Some((a, n)) => (a, n.parse().ok()?),
                None => (how, 0),
            };
            let action = match action {
                "error" => Action::Error,
                "kill" => Action::Kill,
                other => match other.strip_prefix("wait:") {
                    Some(path) if !path.is_empty() => Action::Wait(path.into()),
                    _ => Action::Sleep(other.strip_prefix("sleep:")?.parse().ok()?),
                },
            };
            Some((
                name.to_string(),
                Armed {
                    action,
                    nth,
                    hits: AtomicU64::new(0),
                },
            ))
        })
        .collect()
}

/// Passes step `name`: fails or kills the process there when a test armed it, and stops a
/// cancelled operation there when the step comes before its commit point ([`crate::cancel`]).
pub fn hit(name: &str) -> Result<()> {
    act(name)?;
    crate::cancel::check(name)
}

fn act(name: &str) -> Result<()> {
    let Some(points) = armed() else {
        return Ok(());
    };
    let Some(point) = points.get(name) else {
        return Ok(());
    };
    let n = point.hits.fetch_add(1, Ordering::SeqCst) + 1;
    if point.nth != 0 && point.nth != n {
        return Ok(());
    }
    match &point.action {
        Action::Error => Err(Error::Io {
            path: name.into(),
            source: std::io::Error::other(format!("failpoint {name}")),
        }),
        Action::Sleep(ms) => {
            std::thread::sleep(std::time::Duration::from_millis(*ms));
            Ok(())
        }
        Action::Wait(path) => wait_for(name, path),
        Action::Kill => {
            // SAFETY: sends SIGKILL to this process; nothing runs after it.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            unreachable!("SIGKILL delivered")
        }
    }
}

/// Marks failpoint `name` reached (`PATH.waiting`), then waits until `path` exists.
fn wait_for(name: &str, path: &std::path::Path) -> Result<()> {
    let mut marker = path.as_os_str().to_owned();
    marker.push(".waiting");
    std::fs::write(&marker, name).map_err(|e| Error::Io {
        path: marker.into(),
        source: e,
    })?;
    let started = std::time::Instant::now();
    while !path.exists() {
        if started.elapsed() > WAIT_LIMIT {
            return Err(Error::Io {
                path: path.into(),
                source: std::io::Error::other(format!("failpoint {name}: nothing appeared here")),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let p = parse("a=error, b=kill@3,c=bogus,d,e=sleep:250,f=wait:/tmp/x=1/go@2,g=wait:");
        assert_eq!(p.len(), 4);
        assert_eq!(p["f"].action, Action::Wait("/tmp/x=1/go".into()));
        assert_eq!(p["f"].nth, 2);
        assert_eq!(p["e"].action, Action::Sleep(250));
        assert_eq!(p["a"].action, Action::Error);
        assert_eq!(p["a"].nth, 0);
        assert_eq!(p["b"].action, Action::Kill);
        assert_eq!(p["b"].nth, 3);
    }
}
