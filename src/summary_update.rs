//! A version's summary (file count, totals, time range, files, rows, bytes and time range per
//! partition key) updated from the files a commit adds and removes, instead of recomputed from
//! every file: what a write on a snapshot of only the partitions it touches does (it has no
//! other files). Where the files removed held an extreme the files added do not reach again (an
//! overwrite that shortened a series), only a recomputation knows the new one: [`update`] says
//! so and leaves it to the caller.

use std::collections::BTreeMap;

use crate::manifest::{FileEntry, KeySummary, Manifest};

/// A key's values in the order of its columns (the order `keys` is sorted by).
type Key<'a> = Vec<Option<&'a str>>;

/// The extreme (by `pick`, `max` or `min`) of a set of files that held `was`, after files
/// holding `removed` at most (least) left and files holding `added` came: `None` when only the
/// files that stayed could tell (the removed ones held it and the added ones do not reach it).
fn extreme(
    was: Option<i64>,
    removed: Option<i64>,
    added: Option<i64>,
    pick: fn(i64, i64) -> i64,
) -> Option<Option<i64>> {
    let either = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, None) => a,
        (None, b) => b,
    };
    match (was, removed) {
        (_, None) => Some(either(was, added)),
        // A removed file held a timestamp beyond what the summary counted: not this version's.
        (None, Some(_)) => None,
        (Some(w), Some(r)) if pick(w, r) != w => None,
        // A file that stayed holds the extreme.
        (Some(w), Some(r)) if w != r => Some(either(was, added)),
        // The removed files held it: only an added file reaching it says what it is now.
        (Some(w), Some(_)) => match added {
            Some(a) if pick(a, w) == a => Some(Some(a)),
            _ => None,
        },
    }
}

/// The largest of the files' values, `get` reading one.
fn max_of<'a>(
    files: impl Iterator<Item = &'a FileEntry>,
    get: fn(&FileEntry) -> Option<i64>,
) -> Option<i64> {
    files.filter_map(get).max()
}

/// Sets `next`'s summary from `prev`'s and the files `removed` from it and `added` to it, as
/// [`Manifest::refresh_summary`] would compute it from `next.files`; `false` (and `next`'s
/// summary untouched) where it cannot tell without reading every file.
pub(crate) fn update(
    prev: &Manifest,
    next: &mut Manifest,
    removed: &[&FileEntry],
    added: &[&FileEntry],
) -> bool {
    if !prev.is_partial() && !totals_agree(prev) {
        // A summary its files contradict (a version file edited by hand) is recomputed. (A
        // snapshot of some partitions cannot tell: its header is `_manifest.json`, checked
        // against the hash the log entry records.)
        return false;
    }
    let sum = |files: &[&FileEntry], get: fn(&FileEntry) -> u64| -> u64 {
        files.iter().map(|f| get(f)).sum()
    };
    let count = |was: u64, gone: u64, came: u64| was.checked_sub(gone)?.checked_add(came);
    let (Some(file_count), Some(total_rows), Some(total_bytes)) = (
        count(prev.file_count, removed.len() as u64, added.len() as u64),
        count(
            prev.total_rows,
            sum(removed, |f| f.rows),
            sum(added, |f| f.rows),
        ),
        count(
            prev.total_bytes,
            sum(removed, |f| f.bytes),
            sum(added, |f| f.bytes),
        ),
    ) else {
        return false;
    };
    let latest = extreme(
        prev.latest_timestamp,
        max_of(removed.iter().copied(), |f| f.max_timestamp),
        max_of(added.iter().copied(), |f| f.max_timestamp),
        i64::max,
    );
    let earliest = extreme(
        prev.earliest_timestamp,
        removed.iter().filter_map(|f| f.min_timestamp).min(),
        added.iter().filter_map(|f| f.min_timestamp).min(),
        i64::min,
    );
    let (Some(latest), Some(earliest)) = (latest, earliest) else {
        return false;
    };
    let Some(keys) = keys(prev, removed, added) else {
        return false;
    };
    next.file_count = file_count;
    next.total_rows = total_rows;
    next.total_bytes = total_bytes;
    next.latest_timestamp = latest;
    next.earliest_timestamp = earliest;
    next.latest_by_key = crate::manifest::latest_of(&keys);
    next.keys = keys;
    true
}

/// Whether `m`'s counts, totals and time range are its files' (one pass, no allocation: a
/// hundredth of recomputing the summary).
fn totals_agree(m: &Manifest) -> bool {
    let (mut rows, mut bytes) = (0u64, 0u64);
    let (mut latest, mut earliest) = (None, None);
    for f in &m.files {
        rows = rows.wrapping_add(f.rows);
        bytes = bytes.wrapping_add(f.bytes);
        latest = latest.max(f.max_timestamp);
        earliest = match (earliest, f.min_timestamp) {
            (Some(a), Some(b)) => Some(i64::min(a, b)),
            (a, b) => a.or(b),
        };
    }
    m.file_count == m.files.len() as u64
        && m.total_rows == rows
        && m.total_bytes == bytes
        && m.latest_timestamp == latest
        && m.earliest_timestamp == earliest
}

/// `prev`'s per-key summaries with the keys of the files removed and added updated, in the
/// order [`Manifest::key_summaries`] gives; `None` where a key's new time range or counts
/// cannot be told (or `prev` has none to update).
fn keys<'a>(
    prev: &'a Manifest,
    removed: &[&'a FileEntry],
    added: &[&'a FileEntry],
) -> Option<Vec<KeySummary>> {
    if !prev.keys_known() {
        return None;
    }
    let columns = prev.key_columns();
    let key_of =
        |f: &'a FileEntry| -> Key<'a> { columns.iter().map(|c| f.partition.value(c)).collect() };
    // Per key touched: what its removed files and its added files hold.
    let mut touched: BTreeMap<Key<'a>, (Held, Held)> = BTreeMap::new();
    for f in removed {
        touched.entry(key_of(f)).or_default().0.add(f);
    }
    for f in added {
        touched.entry(key_of(f)).or_default().1.add(f);
    }
    let mut entries: BTreeMap<Key<'a>, KeySummary> = prev
        .keys
        .iter()
        .map(|e| {
            let key: Key = columns
                .iter()
                .map(|c| e.key.get(*c).and_then(|v| v.as_deref()))
                .collect();
            (key, e.clone())
        })
        .collect();
    for (key, (gone, came)) in touched {
        let was = entries
            .remove(&key)
            .unwrap_or_else(|| KeySummary::empty(&columns, &key));
        let count = |was: u64, gone: u64, came: u64| was.checked_sub(gone)?.checked_add(came);
        let now = KeySummary {
            files: count(was.files, gone.files, came.files)?,
            rows: count(was.rows, gone.rows, came.rows)?,
            bytes: count(was.bytes, gone.bytes, came.bytes)?,
            min_timestamp: extreme(was.min_timestamp, gone.min, came.min, i64::min)?,
            max_timestamp: extreme(was.max_timestamp, gone.max, came.max, i64::max)?,
            key: was.key,
        };
        if now.files > 0 {
            entries.insert(key, now);
        }
    }
    Some(entries.into_values().collect())
}

/// What a set of one key's files holds: their count, rows, bytes and time range.
#[derive(Default)]
struct Held {
    files: u64,
    rows: u64,
    bytes: u64,
    min: Option<i64>,
    max: Option<i64>,
}

impl Held {
    fn add(&mut self, f: &FileEntry) {
        self.files += 1;
        self.rows = self.rows.saturating_add(f.rows);
        self.bytes = self.bytes.saturating_add(f.bytes);
        self.min = match (self.min, f.min_timestamp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = self.max.max(f.max_timestamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extreme_the_removed_files_held_is_known_only_when_an_added_file_reaches_it() {
        let max = |w, r, a| extreme(w, r, a, i64::max);
        assert_eq!(max(Some(10), None, Some(12)), Some(Some(12)));
        assert_eq!(max(Some(10), None, None), Some(Some(10)));
        assert_eq!(max(None, None, Some(3)), Some(Some(3)));
        assert_eq!(max(None, None, None), Some(None));
        // A file that stayed holds 10.
        assert_eq!(max(Some(10), Some(7), Some(8)), Some(Some(10)));
        assert_eq!(max(Some(10), Some(7), None), Some(Some(10)));
        // The removed files held 10: an added file holding 10 or more says it.
        assert_eq!(max(Some(10), Some(10), Some(10)), Some(Some(10)));
        assert_eq!(max(Some(10), Some(10), Some(11)), Some(Some(11)));
        assert_eq!(max(Some(10), Some(10), Some(9)), None);
        assert_eq!(max(Some(10), Some(10), None), None);
        // Removed files beyond what the summary counted: not this version's.
        assert_eq!(max(None, Some(1), Some(2)), None);
        assert_eq!(max(Some(10), Some(11), Some(12)), None);
        let min = |w, r, a| extreme(w, r, a, i64::min);
        assert_eq!(min(Some(5), Some(5), Some(4)), Some(Some(4)));
        assert_eq!(min(Some(5), Some(6), Some(9)), Some(Some(5)));
        assert_eq!(min(Some(5), Some(5), Some(6)), None);
        assert_eq!(
            min(Some(i64::MIN), Some(i64::MIN), Some(i64::MIN)),
            Some(Some(i64::MIN))
        );
    }

    /// On random versions and random changes (files removed and added across keys, with null
    /// partition values and files without timestamps), the update gives exactly the summary a
    /// recomputation gives whenever it gives one, and always gives one where each removed
    /// file's rows come again in its partition (an upsert's replacements).
    #[test]
    fn an_update_is_the_recomputation() {
        let kind = crate::schema::KindRegistry::default()
            .get("klines")
            .unwrap()
            .clone();
        let field = |name: &str, dtype| crate::manifest::Field {
            name: name.into(),
            dtype,
        };
        let columns = vec![
            field("symbol", crate::schema::ColType::Str),
            field("timeframe", crate::schema::ColType::Str),
            field("day", crate::schema::ColType::I8),
        ];
        let empty = Manifest::empty(
            std::path::Path::new("/d"),
            &kind,
            vec![],
            columns,
            crate::manifest::Settings {
                compression: "snappy".into(),
                max_rows_per_file: 1,
                auto_compact: None,
                checkpoint_interval: None,
                manifest_max_files: None,
            },
        );
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next_random = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut counter = 0;
        let mut file = |random: &mut dyn FnMut(u64) -> u64| {
            counter += 1;
            let symbol = [Some("A"), Some("B"), None][random(3) as usize];
            let timeframe = [Some("1m"), Some("1h")][random(2) as usize];
            let day = random(4).to_string();
            let lo = random(50) as i64 - 25;
            let (min, max) = match random(8) {
                0 => (None, None),
                _ => (Some(lo), Some(lo + random(30) as i64)),
            };
            let values = BTreeMap::from([
                ("symbol".to_string(), symbol.map(String::from)),
                ("timeframe".to_string(), timeframe.map(String::from)),
                ("day".to_string(), Some(day)),
            ]);
            FileEntry {
                path: format!("f{counter:06}.parquet"),
                partition: crate::manifest::PartitionValues::from(values),
                rows: random(100),
                bytes: random(1000),
                min_timestamp: min,
                max_timestamp: max,
                key_ranges: BTreeMap::new(),
                checksum: String::new(),
                added_in: 0,
                null_timestamps: None,
            }
        };
        let (mut updated, mut cases) = (0, 0);
        for _ in 0..3_000 {
            let mut prev = empty.clone();
            let n = next_random(12);
            prev.files = (0..n).map(|_| file(&mut next_random)).collect();
            prev.refresh_summary();
            let (mut kept, mut removed) = (vec![], vec![]);
            for f in &prev.files {
                match next_random(3) {
                    0 => removed.push(f),
                    _ => kept.push(f.clone()),
                }
            }
            let mut added: Vec<FileEntry> = (0..next_random(4))
                .map(|_| file(&mut next_random))
                .collect();
            // Every other case replaces each removed file as an upsert does: its rows again in
            // its partition, with more (later or earlier) beside them.
            let replaces = cases % 2 == 0;
            if replaces {
                for f in &removed {
                    let mut again = file(&mut next_random);
                    again.partition = f.partition.clone();
                    again.min_timestamp = f.min_timestamp.map(|t| t - next_random(3) as i64);
                    again.max_timestamp = f.max_timestamp.map(|t| t + next_random(3) as i64);
                    added.push(again);
                }
            }
            let mut want = prev.without_files();
            want.files = kept.iter().cloned().chain(added.iter().cloned()).collect();
            want.refresh_summary();
            let mut got = prev.without_files();
            cases += 1;
            if update(&prev, &mut got, &removed, &added.iter().collect::<Vec<_>>()) {
                updated += 1;
                got.files = want.files.clone();
                assert_eq!(
                    got, want,
                    "removed {removed:?} added {added:?} from {prev:?}"
                );
            } else {
                assert!(
                    !replaces,
                    "a replacement is not updated: {removed:?} {added:?}"
                );
            }
        }
        assert!(updated * 2 > cases, "{updated} of {cases} updated");
        // A summary its files contradict is recomputed.
        let mut prev = empty.clone();
        prev.files = (0..3).map(|_| file(&mut next_random)).collect();
        prev.refresh_summary();
        prev.total_rows += 1;
        assert!(!update(&prev, &mut prev.without_files(), &[], &[]));
    }
}
