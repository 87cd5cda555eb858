//! Memory awareness: how much memory the machine (or its cgroup) has, how wide a row is, and
//! from those the rows per scan batch and the partitions a write may keep open.

use serde::Serialize;

use crate::error::Result;
use crate::manifest::Field;
use crate::schema::ColType;

/// Bytes one scan batch aims at when no batch size is given (`PQDM_BATCH_BYTES`).
pub const DEFAULT_BATCH_BYTES: u64 = 64 << 20;
/// Rows per batch at least and at most, whatever the widths say.
const BATCH_ROWS: (usize, usize) = (1_024, 16 << 20);

/// In-memory width of one value of a dtype, in bytes (strings: a typical symbol plus offsets).
pub fn width(dtype: ColType) -> u64 {
    match dtype {
        ColType::I64 | ColType::F64 => 8,
        ColType::I32 | ColType::Date => 4,
        ColType::I16 => 2,
        ColType::I8 | ColType::Bool => 1,
        ColType::Str => 24,
    }
}

/// Bytes per row of the named columns (all of `fields` when `columns` is `None`).
pub fn row_bytes(fields: &[Field], columns: Option<&[String]>) -> u64 {
    fields
        .iter()
        .filter(|f| columns.is_none_or(|c| c.contains(&f.name)))
        .map(|f| width(f.dtype))
        .sum::<u64>()
        .max(1)
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Memory this process can still use, in bytes: the smaller of `MemAvailable` and the cgroup's
/// limit minus its usage (cgroup v2 or v1). `None` where the OS tells nothing.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
    let cgroup = [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ]
    .iter()
    .find_map(|(limit, usage)| Some(read_u64(limit)?.saturating_sub(read_u64(usage).unwrap_or(0))))
    .filter(|free| *free < 1 << 60);
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How the rows per batch were chosen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchChoice {
    /// Rows per batch.
    pub rows: usize,
    /// Estimated bytes per row of the projection.
    pub row_bytes: u64,
    /// Bytes one batch aims at.
    pub target_bytes: u64,
    /// Where the size came from (`flag`, `env`, `config`, `auto`).
    pub source: String,
}

/// Rows per batch from the projection's width: about `PQDM_BATCH_BYTES` (64 MiB) per batch,
/// at most an eighth of the available memory, a sixteenth of that with `PQDM_BLANK_MODE=1`.
pub fn auto_batch(fields: &[Field], columns: Option<&[String]>) -> Result<BatchChoice> {
    // An empty variable counts as unset, as for every other setting.
    let target = match &crate::env::env().batch_bytes {
        Some(v) => crate::options::parse_bytes(v).map_err(|e| match e {
            crate::error::Error::Options(why) => crate::error::Error::Options(format!(
                "environment variable PQDM_BATCH_BYTES: {why}"
            )),
            e => e,
        })?,
        _ => DEFAULT_BATCH_BYTES,
    };
    let mut target = available_memory().map_or(target, |free| target.min((free / 8).max(1 << 20)));
    if crate::env::env().blank_mode {
        target /= 16;
    }
    let row_bytes = row_bytes(fields, columns);
    let rows = ((target / row_bytes) as usize).clamp(BATCH_ROWS.0, BATCH_ROWS.1);
    Ok(BatchChoice {
        rows,
        row_bytes,
        target_bytes: target,
        source: "auto".into(),
    })
}

/// The memory budget of a write when none is given: the smaller of 768 MiB and a quarter of
/// the memory available (measured: Polars' partitioned sink peaks at about its input's size, so
/// slicing big inputs is what bounds a write; smaller slices were not slower).
pub fn default_write_budget() -> u64 {
    let cap = 768 << 20;
    available_memory().map_or(cap, |free| cap.min(free / 4).max(128 << 20))
}
