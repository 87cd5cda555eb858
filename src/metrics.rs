//! Operation ids, wall time and peak resident memory, for reports and log lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new id unique across processes and time (`20261124T194501-4f2a9c1b`), tagging one
/// operation's log lines and naming its data files.
pub(crate) fn new_op_id() -> String {
    let now = chrono::Utc::now();
    let mut h = blake3::Hasher::new();
    h.update(&now.timestamp_nanos_opt().unwrap_or_default().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let hex = h.finalize().to_hex();
    format!("{}-{}", now.format("%Y%m%dT%H%M%S"), &hex[..8])
}

/// Peak resident memory of this process so far, in bytes: the kernel's high-water mark of its
/// own memory (`VmHWM` in `/proc/self/status`), else `getrusage`'s.
///
/// Not `getrusage` first: on Linux its `ru_maxrss` survives `exec`, and a program started by
/// `fork`/`vfork` and `exec` inherits its starter's peak. A `pqdm` started by a 1.5 GiB Python
/// process reported a 1.5 GiB peak for an `info` that used 22 MiB.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status_hwm_bytes(&status))
        .unwrap_or_else(rusage_peak_bytes)
}

/// `VmHWM` of a `/proc/<pid>/status` text, in bytes.
fn status_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib * 1024)
}

/// `getrusage`'s peak for this process, in bytes (includes a starter's peak on Linux).
fn rusage_peak_bytes() -> u64 {
    // SAFETY: getrusage writes into the struct we pass and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return 0;
    }
    (usage.ru_maxrss.max(0) as u64) * 1024
}

/// Times one operation and logs its start and end under its id.
pub(crate) struct OpTimer {
    /// The operation's id.
    pub op_id: String,
    name: &'static str,
    start: Instant,
}

impl OpTimer {
    /// Starts timing operation `name` with a fresh id.
    pub fn start(name: &'static str) -> OpTimer {
        let op_id = new_op_id();
        log::info!("[{op_id}] {name}: start");
        OpTimer {
            op_id,
            name,
            start: Instant::now(),
        }
    }

    /// Milliseconds since the start.
    pub fn wall_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Logs the end with wall time and peak memory; returns (wall_ms, peak_rss_bytes).
    pub fn finish(&self) -> (u64, u64) {
        let (ms, rss) = (self.wall_ms(), peak_rss_bytes());
        log::info!(
            "[{}] {}: done in {ms} ms, peak RSS {} MiB",
            self.op_id,
            self.name,
            rss >> 20
        );
        (ms, rss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_water_mark_is_read_from_a_status_text() {
        let status = "Name:\tpqdm\nVmPeak:\t 2175584 kB\nVmHWM:\t  201392 kB\nVmRSS:\t  1000 kB\n";
        assert_eq!(status_hwm_bytes(status), Some(201_392 * 1024));
        assert_eq!(status_hwm_bytes("VmRSS:\t 5 kB\n"), None);
        assert_eq!(status_hwm_bytes("VmHWM:\t lots kB\n"), None);
        assert_eq!(status_hwm_bytes("VmHWM:\t 5 MB\n"), None);
    }

    #[test]
    fn this_process_peak_is_at_least_what_it_holds() {
        let held = std::hint::black_box(vec![1u8; 64 << 20]);
        assert!(peak_rss_bytes() >= 64 << 20);
        assert!(peak_rss_bytes() <= rusage_peak_bytes() + (1 << 20));
        drop(held);
    }
}
