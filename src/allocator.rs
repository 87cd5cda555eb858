//! The allocator pqdm's programs (the command line and the Python extension) run on: mimalloc,
//! told to hand freed memory back to the OS within 10 ms, and (the command line) to work without
//! transparent huge pages.
//!
//! mimalloc 3 keeps freed pages for a second before it returns them (`purge_delay`, 1,000 ms).
//! A streaming write frees and allocates morsels many times a second, so a second's worth of
//! freed morsels counted in the process's memory: measured on a 500-partition, 3M-row write under
//! a 512 MiB budget, peaks of 350-400 MiB alone and 550-580 MiB beside other work, against
//! 270-320 MiB with a 10 ms delay (mimalloc 2's default) at the same speed. A memory budget that
//! the allocator's slack can break is not a budget.

pub use mimalloc::MiMalloc;

use std::ffi::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the same in its versions 2 and 3, the
/// `mimalloc` crate's `v2` feature and its default).
const PURGE_DELAY: c_int = 15;

/// Milliseconds freed memory may stay with the allocator before it goes back to the OS.
pub const PURGE_DELAY_MS: c_long = 10;

/// `mi_option_allow_thp` in mimalloc 3's `mi_option_e` (37 in mimalloc 2's, which pqdm does not
/// build; the test below proves the version).
const ALLOW_THP: c_int = 43;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    fn mi_option_get(option: c_int) -> c_long;
}

/// Makes mimalloc return freed memory within [`PURGE_DELAY_MS`], unless `MIMALLOC_PURGE_DELAY`
/// (or its former name `MIMALLOC_RESET_DELAY`) says otherwise: a user's own setting wins. Call it first thing in `main`.
pub fn return_freed_memory_promptly() {
    // mimalloc also reads the option's former name.
    let set_by_user = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    if !set_by_user {
        // SAFETY: mimalloc's options may be set at any time from any thread; the value is an
        // integer option read on each purge.
        unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// Turns transparent huge pages off for the whole process, as `MIMALLOC_ALLOW_THP=0` does
/// (`prctl(PR_SET_THP_DISABLE)`, and mimalloc no longer asks for them), unless
/// `MIMALLOC_ALLOW_THP` says otherwise: a user's own setting wins. Call it first thing in the
/// command line's `main`; not in the Python extension, where it would change the whole
/// interpreter's memory.
///
/// mimalloc asks for huge pages on its arenas, and with the short purge delay a write's freed
/// morsels go back to the OS and come back as 2 MiB pages the kernel zeroes whole: on the
/// 36,500-partition ingest of the README, 9% of the CPU time was the kernel clearing pages.
/// Without them, that ingest's peak fell from 650-680 MiB to 555-580 MiB and its time by about
/// 5% (three rounds each), and a one-day upsert's peak from 115-122 MiB to 75-80 MiB.
pub fn without_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // SAFETY: as in `return_freed_memory_promptly`; `prctl` with this option takes plain
    // integers and only sets a flag of the calling process.
    unsafe {
        mi_option_set(ALLOW_THP, 0);
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// The purge delay mimalloc uses now, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: reading an option is always allowed.
    unsafe { mi_option_get(PURGE_DELAY) }
}

/// The purge delay while a [`HoldFreedMemory`] is held, in milliseconds.
pub const BUSY_PURGE_DELAY_MS: c_long = 100;

/// How many [`HoldFreedMemory`] are held, and the delay to restore when the last one goes.
static HELD: std::sync::Mutex<(usize, Option<c_long>)> = std::sync::Mutex::new((0, None));

/// While alive, freed memory stays with the allocator up to [`BUSY_PURGE_DELAY_MS`] instead of
/// [`PURGE_DELAY_MS`], if pqdm's own delay is in force (a user's setting is left alone).
///
/// For work that frees and takes back the same amounts many times a second (compaction: slices
/// read back, morsels decoded and encoded; a write's sink): each memory handed back to the OS is
/// taken back zeroed, page by page. Measured on the README's compaction of 20M rows: kernel
/// time 1.9-2.2 s at 10 ms, 0.8-1.3 s at 100 ms, peak 107 MiB against 123-138 MiB. A tenth of
/// a second of freed morsels stays within a write's budget (`a_500_partition_write_under_a_memory_limit`);
/// the second that mimalloc's default keeps does not.
pub struct HoldFreedMemory(());

impl HoldFreedMemory {
    /// Raises the delay until the last holder is dropped.
    pub fn start() -> HoldFreedMemory {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if held.0 == 0 && purge_delay_ms() == PURGE_DELAY_MS {
            // SAFETY: as in `return_freed_memory_promptly`.
            unsafe { mi_option_set(PURGE_DELAY, BUSY_PURGE_DELAY_MS) };
            held.1 = Some(PURGE_DELAY_MS);
        }
        held.0 += 1;
        HoldFreedMemory(())
    }
}

impl Drop for HoldFreedMemory {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        held.0 -= 1;
        if held.0 == 0
            && let Some(delay) = held.1.take()
        {
            // SAFETY: as in `return_freed_memory_promptly`.
            unsafe { mi_option_set(PURGE_DELAY, delay) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        // mimalloc 3's default purge delay is 1,000 ms and no other option of its enum defaults
        // to that: reading it before the change proves the index names the purge delay.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), 1_000);
        }
        // Not pqdm's delay (mimalloc's default here, or a user's): holding changes nothing.
        let before = purge_delay_ms();
        let held = HoldFreedMemory::start();
        assert_eq!(purge_delay_ms(), before);
        drop(held);
        assert_eq!(purge_delay_ms(), before);
        return_freed_memory_promptly();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
            // Held twice, the delay is raised until the last holder goes.
            let first = HoldFreedMemory::start();
            let second = HoldFreedMemory::start();
            assert_eq!(purge_delay_ms(), BUSY_PURGE_DELAY_MS);
            drop(first);
            assert_eq!(purge_delay_ms(), BUSY_PURGE_DELAY_MS);
            drop(second);
            assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
        }
    }

    #[test]
    fn huge_pages_go_off_for_the_process() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        // mimalloc 3's default for `allow_thp` (the purge delay test proves mimalloc 3).
        // SAFETY: reading an option is always allowed.
        assert_eq!(unsafe { mi_option_get(ALLOW_THP) }, 1);
        without_huge_pages();
        assert_eq!(unsafe { mi_option_get(ALLOW_THP) }, 0);
        // SAFETY: reading the flag takes no pointer.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) },
            1
        );
    }
}
