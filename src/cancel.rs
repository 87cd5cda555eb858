//! Cooperative cancellation (Ctrl-C in the Python package): a caller runs an operation under a
//! [`Token`]; once the token is cancelled, the next named step before a commit point (see
//! [`crate::failpoint`]) fails with an "interrupted" error, and the operation undoes itself as
//! it does for any error there. Steps at or after a commit point never stop: a commit that has
//! begun to become visible finishes.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Steps at which a cancelled operation stops: all before anything becomes visible.
const STOPPABLE: [&str; 6] = [
    "ingest.planned",
    "compact.written",
    "commit.journaled",
    "commit.moved_first",
    "commit.moved",
    "vacuum.delete",
];

/// A flag another thread sets to stop an operation at its next stoppable step.
#[derive(Clone, Debug, Default)]
pub struct Token(Arc<AtomicBool>);

impl Token {
    /// A token not cancelled yet.
    pub fn new() -> Token {
        Token::default()
    }

    /// Asks the operation running under this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Token::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Token>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread under `token`: stoppable steps `f` passes on this thread check it.
pub fn run_under<T>(token: &Token, f: impl FnOnce() -> T) -> T {
    let before = CURRENT.with(|c| c.replace(Some(token.clone())));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = before);
    out
}

/// Called at step `name` (by [`crate::failpoint::hit`]): an "interrupted" error naming the step
/// when it is stoppable and this thread's token was cancelled.
pub fn check(name: &str) -> Result<()> {
    if !STOPPABLE.contains(&name) {
        return Ok(());
    }
    let cancelled = CURRENT.with(|c| c.borrow().as_ref().is_some_and(Token::is_cancelled));
    match cancelled {
        false => Ok(()),
        true => Err(Error::Io {
            path: name.into(),
            source: std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted before the commit point; the dataset is at its last version",
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cancelled_token_stops_and_only_before_a_commit_point() {
        let token = Token::new();
        assert!(check("commit.journaled").is_ok());
        run_under(&token, || {
            assert!(check("commit.journaled").is_ok());
            token.cancel();
            let e = check("commit.journaled").unwrap_err().to_string();
            assert_eq!(
                e,
                "commit.journaled: interrupted before the commit point; the dataset is at its last version"
            );
            assert!(check("commit.version_written").is_ok());
            assert!(check("commit.tidy").is_ok());
        });
        // Outside `run_under`, and on other threads, the token does not apply.
        assert!(check("commit.journaled").is_ok());
        let other = std::thread::scope(|s| s.spawn(|| check("commit.moved").is_ok()).join());
        assert!(other.unwrap());
    }
}
