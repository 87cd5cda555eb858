//! Running library work with the GIL released, stoppable by Ctrl-C.
//!
//! The work runs on a scoped thread under a [`pqdm::cancel::Token`]; the calling thread, the
//! GIL released, waits for it and every 50 ms takes the GIL to let Python run its signal
//! handlers. When one raises (Ctrl-C's `KeyboardInterrupt`), the token is cancelled: the work
//! stops at its next step before a commit point and undoes itself (or finishes, if it is past
//! one), and the exception is raised once it has. The log lines the work queued then go to
//! Python's `logging` ([`crate::logs`]).

use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;

/// Runs `work` with the GIL released; a Python exception raised by a signal handler meanwhile
/// (Ctrl-C) cancels it and is raised when it has stopped. Polars' panic on a file holding a
/// column type it cannot read becomes the work's error ([`pqdm::panics::caught`]).
pub fn run<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> pqdm::Result<T> + Send,
) -> PyResult<pqdm::Result<T>> {
    let work = move || pqdm::panics::caught("reading the dataset's files", work);
    let token = pqdm::cancel::Token::new();
    let out = py.detach(|| {
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            let worker_token = token.clone();
            let worker = s.spawn(move || {
                let out = pqdm::cancel::run_under(&worker_token, work);
                let _ = tx.send(());
                out
            });
            let mut interrupted: Option<PyErr> = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if interrupted.is_none()
                            && let Err(e) = Python::attach(|py| py.check_signals())
                        {
                            token.cancel();
                            interrupted = Some(e);
                        }
                    }
                }
            }
            let out = match worker.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            match interrupted {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
    });
    crate::logs::flush(py);
    out
}
