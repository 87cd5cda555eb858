//! Progress of long work (ingest, compaction, verify, coverage), reported to whoever watches:
//! a [`ProgressSink`] the caller supplies. The library draws nothing itself; the command line
//! draws bars with indicatif, Python could forward to a callback, and the default reports to
//! no one.

use std::sync::Arc;

/// Receives the progress of long work. Tasks run one after another, never nested; a task of
/// known length is advanced step by step, possibly from several threads at once.
pub trait ProgressSink: Send + Sync {
    /// A task began: `total` steps (`None`: its length is unknown).
    fn start(&self, task: &str, total: Option<u64>);

    /// `steps` more steps of the current task are done.
    fn advance(&self, steps: u64);

    /// The current task ended (also when it failed).
    fn finish(&self);
}

/// Where a long operation reports its progress: nowhere ([`Progress::hidden`], the default),
/// or a [`ProgressSink`].
#[derive(Clone, Default)]
pub struct Progress {
    sink: Option<Arc<dyn ProgressSink>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("reported", &self.sink.is_some())
            .finish()
    }
}

impl Progress {
    /// No progress reported at all.
    pub fn hidden() -> Progress {
        Progress { sink: None }
    }

    /// Progress reported to `sink`.
    pub fn to(sink: Arc<dyn ProgressSink>) -> Progress {
        Progress { sink: Some(sink) }
    }

    /// A task of `total` steps; ends when the returned guard is dropped.
    pub(crate) fn bar(&self, total: u64, task: &str) -> Task<'_> {
        self.start(task, Some(total))
    }

    /// A task of unknown length; ends when the returned guard is dropped.
    pub(crate) fn spinner(&self, task: &str) -> Task<'_> {
        self.start(task, None)
    }

    fn start(&self, task: &str, total: Option<u64>) -> Task<'_> {
        if let Some(sink) = &self.sink {
            sink.start(task, total);
        }
        Task {
            sink: self.sink.as_deref(),
        }
    }
}

/// One running task; reports its end when dropped, so a task that fails ends too.
pub(crate) struct Task<'a> {
    sink: Option<&'a dyn ProgressSink>,
}

impl Task<'_> {
    /// One more step done.
    pub(crate) fn inc(&self, steps: u64) {
        if let Some(sink) = self.sink {
            sink.advance(steps);
        }
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        if let Some(sink) = self.sink {
            sink.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl ProgressSink for Recorder {
        fn start(&self, task: &str, total: Option<u64>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {task} {total:?}"));
        }
        fn advance(&self, steps: u64) {
            self.0.lock().unwrap().push(format!("advance {steps}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
    }

    #[test]
    fn a_task_reports_its_steps_and_ends_when_dropped_even_on_an_early_return() {
        let recorder = Arc::new(Recorder::default());
        let progress = Progress::to(recorder.clone());
        let failing = || -> Result<(), ()> {
            let bar = progress.bar(3, "checking files");
            bar.inc(1);
            Err(())?;
            bar.inc(1);
            Ok(())
        };
        assert!(failing().is_err());
        drop(progress.spinner("writing"));
        assert_eq!(
            *recorder.0.lock().unwrap(),
            [
                "start checking files Some(3)",
                "advance 1",
                "finish",
                "start writing None",
                "finish"
            ]
        );
    }
}
