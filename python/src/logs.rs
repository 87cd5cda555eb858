//! pqdm's log lines (the `log` crate: warnings such as a compaction that failed after its write
//! committed, `RUST_LOG=info` lines of the command line) into Python's `logging`, logger `pqdm`.
//!
//! Lines are queued, not sent from the thread that logs: that may be a Polars worker while the
//! thread holding the GIL waits for it. [`flush`] hands them to `logging` after each call, with
//! the GIL held.

use std::sync::Mutex;

use pyo3::prelude::*;

static QUEUE: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Queue;

impl log::Log for Queue {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("pqdm")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = (
                record.level(),
                record.target().to_string(),
                record.args().to_string(),
            );
            QUEUE.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }

    fn flush(&self) {}
}

static LOGGER: Queue = Queue;

/// Installs the queue as the `log` logger (at `level`: `warn` unless `PQDM_LOG` says
/// `info`/`debug`), once per process; a logger installed before is kept.
pub fn install() {
    let level = match std::env::var("PQDM_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Sends the queued lines to `logging.getLogger("pqdm")` (needs the GIL).
pub fn flush(py: Python<'_>) {
    let lines = std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|e| e.into_inner()));
    if lines.is_empty() {
        return;
    }
    let Ok(logger) = py
        .import("logging")
        .and_then(|m| m.call_method1("getLogger", ("pqdm",)))
    else {
        return;
    };
    for (level, target, message) in lines {
        let number = match level {
            log::Level::Error => 40,
            log::Level::Warn => 30,
            log::Level::Info => 20,
            log::Level::Debug | log::Level::Trace => 10,
        };
        let _ = logger.call_method1("log", (number, format!("{target}: {message}")));
    }
}
