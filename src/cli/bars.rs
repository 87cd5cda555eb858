//! Progress bars on a terminal (indicatif) for the library's [`Progress`]; none with
//! `--quiet`, `--json` or when stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use pqdm::progress::{Progress, ProgressSink};

/// Draws the library's tasks as bars (known length) or spinners (unknown).
#[derive(Default)]
struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl ProgressSink for Bars {
    fn start(&self, task: &str, total: Option<u64>) {
        let bar = match total {
            Some(len) => {
                let bar = ProgressBar::new(len);
                if let Ok(style) =
                    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
                {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar
            }
            None => {
                let bar = ProgressBar::new_spinner();
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            }
        };
        bar.set_message(task.to_string());
        if let Some(old) = self.lock().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, steps: u64) {
        if let Some(bar) = &*self.lock() {
            bar.inc(steps);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.lock().take() {
            bar.finish_and_clear();
        }
    }
}

impl Bars {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Bars on stderr when it is a terminal and `quiet` is false; otherwise no progress.
pub(crate) fn progress(quiet: bool) -> Progress {
    if quiet || !std::io::stderr().is_terminal() {
        return Progress::hidden();
    }
    Progress::to(Arc::new(Bars::default()))
}
