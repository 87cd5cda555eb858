//! Which stored files a write reads: those that can hold the keys of its rows, told apart by
//! their paths as the Delta log names them, so that a write's snapshot skips every other file
//! (see [`crate::txn::Store::load_current_where`]).

use std::collections::HashSet;
use std::path::Path;
use std::sync::RwLock;

// Polars' hash map (foldhash): a 100,000-file snapshot asks about each of its paths' folder
// segments, where SipHash took a tenth of the read.
use polars::prelude::PlHashMap as HashMap;

use crate::manifest::Field;
use crate::partition;
use crate::upsert::KeyScope;
use crate::write::typed_folder;

/// The stored files a write's merge can compare with or replace: those whose folders agree
/// with one of the write's folders on every partition column that fixes a key (all of them
/// but the free ones of [`KeyScope`]), by typed value, so that an adopted `month=01` is the
/// written `month=1`. Each column is matched on its own: a write into several values of two
/// columns also reads their other combinations (more files than it needs, never fewer). An
/// append reads none.
pub(crate) struct Touched<'a> {
    base: &'a Path,
    columns: &'a [Field],
    /// Per column that fixes a key: the typed values the write's folders hold. Empty for an
    /// append.
    wanted: HashMap<&'a str, HashSet<Option<String>>>,
    append: bool,
    /// Folder segments (`name=value` as stored) typed already: whether wanted.
    seen: RwLock<HashMap<String, bool>>,
}

impl<'a> Touched<'a> {
    /// What a write into the folders of `rels` (relative file paths) of a dataset at `base`
    /// partitioned by `columns` reads; `append`: nothing.
    pub fn new<'r>(
        base: &'a Path,
        columns: &'a [Field],
        scope: &KeyScope<'a>,
        rels: impl IntoIterator<Item = &'r str>,
        append: bool,
    ) -> Touched<'a> {
        let mut wanted: HashMap<&'a str, HashSet<Option<String>>> = columns
            .iter()
            .filter(|c| !scope.is_free(&c.name))
            .map(|c| (c.name.as_str(), HashSet::new()))
            .collect();
        if !append {
            let dirs: HashSet<&str> = rels.into_iter().map(partition::dir_of).collect();
            for dir in dirs {
                for (name, value) in typed_folder(dir, columns) {
                    if let Some(values) = wanted.get_mut(name.as_str()) {
                        values.insert(value);
                    }
                }
            }
        }
        Touched {
            base,
            columns,
            wanted,
            append,
            seen: RwLock::new(HashMap::default()),
        }
    }

    /// Whether the write reads the file the log names `logged` (its path as logged, escaped
    /// per the protocol). A path that does not decode is kept: the log's reader refuses it.
    pub fn keeps(&self, logged: &str) -> bool {
        if self.append {
            return false;
        }
        let decoded;
        let path = match logged.contains('%') {
            false => logged,
            true => match crate::delta::replay::decode_path(self.base, logged) {
                Ok(p) => {
                    decoded = p;
                    decoded.as_str()
                }
                Err(_) => return true,
            },
        };
        let rel = crate::delta::record::dataset_path(path);
        let mut matched = 0;
        // The deepest folders first: they tell most files apart (the days of a series).
        for segment in partition::dir_of(rel).rsplit('/') {
            let Some((name, _)) = segment.split_once('=') else {
                continue;
            };
            if !self.wanted.contains_key(name) {
                continue;
            }
            if !self.segment_wanted(segment) {
                return false;
            }
            matched += 1;
        }
        matched == self.wanted.len()
    }

    /// Whether one folder segment of a column that fixes a key holds a value the write's
    /// folders hold (typed once per distinct segment: 100,000 daily folders have a few hundred).
    fn segment_wanted(&self, segment: &str) -> bool {
        if let Some(known) = self
            .seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(segment)
        {
            return *known;
        }
        let wanted = typed_folder(segment, self.columns)
            .into_iter()
            .next()
            .is_some_and(|(name, value)| {
                self.wanted
                    .get(name.as_str())
                    .is_some_and(|values| values.contains(&value))
            });
        self.seen
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(segment.to_string(), wanted);
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColType, KindRegistry};

    fn field(name: &str, dtype: ColType) -> Field {
        Field {
            name: name.into(),
            dtype,
        }
    }

    fn columns() -> Vec<Field> {
        vec![
            field("exchange", ColType::Str),
            field("symbol", ColType::Str),
            field("timeframe", ColType::Str),
            field("year", ColType::I16),
            field("month", ColType::I8),
            field("day", ColType::I8),
        ]
    }

    /// Which of `logged` a write of `rels` into a `kind` dataset reads.
    fn kept<'p>(kind: &str, rels: &[&str], append: bool, logged: &[&'p str]) -> Vec<&'p str> {
        let kind = KindRegistry::default().get(kind).unwrap().clone();
        let columns = columns();
        let scope = KeyScope::new(&kind, &columns);
        let t = Touched::new(
            Path::new("/d"),
            &columns,
            &scope,
            rels.iter().copied(),
            append,
        );
        logged.iter().copied().filter(|p| t.keeps(p)).collect()
    }

    #[test]
    fn a_write_reads_the_stored_files_of_its_folders_in_any_spelling() {
        let rels = [
            "exchange=B/symbol=A%2FB/timeframe=1m/year=2024/month=1/day=5/new.parquet",
            "exchange=B/symbol=C/timeframe=1m/year=2024/month=1/day=5/new.parquet",
        ];
        let logged = [
            // The same folders: in the tree, as kept copies, zero-padded (adopted), and with
            // the log's own escape of the folder's `%`.
            "exchange=B/symbol=C/timeframe=1m/year=2024/month=1/day=5/a.parquet",
            "_pqdm/files/exchange=B/symbol=C/timeframe=1m/year=2024/month=01/day=05/b.parquet.kept",
            "_pqdm/files/exchange=B/symbol=A%252FB/timeframe=1m/year=2024/month=1/day=5/c.parquet.kept",
            // Other folders: another day, symbol, month or timeframe, a folder holding fewer
            // partition columns, a file at the root.
            "_pqdm/files/exchange=B/symbol=C/timeframe=1m/year=2024/month=1/day=6/d.parquet.kept",
            "_pqdm/files/exchange=B/symbol=A/timeframe=1m/year=2024/month=1/day=5/e.parquet.kept",
            "_pqdm/files/exchange=B/symbol=C/timeframe=1m/year=2024/month=2/day=5/f.parquet.kept",
            "_pqdm/files/exchange=B/symbol=C/timeframe=1h/year=2024/month=1/day=5/g.parquet.kept",
            "exchange=B/symbol=C/timeframe=1m/year=2024/month=1/h.parquet",
            "i.parquet",
        ];
        assert_eq!(kept("klines", &rels, false, &logged), logged[..3].to_vec());
        // Each column is matched on its own: symbol C on day 5 and symbol A%2FB on day 6 are
        // read for a write into (C, day 6) and (A/B, day 5).
        let crossed = [
            "exchange=B/symbol=C/timeframe=1m/year=2024/month=1/day=6/new.parquet",
            "exchange=B/symbol=A%2FB/timeframe=1m/year=2024/month=1/day=5/new.parquet",
        ];
        assert_eq!(
            kept("klines", &crossed, false, &logged[..4]),
            logged[..4].to_vec()
        );
        // An append reads nothing.
        assert!(kept("klines", &rels, true, &logged).is_empty());
    }

    #[test]
    fn a_key_that_spans_days_reads_every_day_of_its_series() {
        // aggTrades rows are keyed by their id, not their time: an id may be stored on any day.
        let rels = ["exchange=B/symbol=C/timeframe=1m/year=2024/month=1/day=5/new.parquet"];
        let logged = [
            "exchange=B/symbol=C/timeframe=1m/year=2023/month=12/day=31/a.parquet",
            "exchange=B/symbol=C/timeframe=1m/year=2024/month=1/day=5/b.parquet",
            "exchange=B/symbol=D/timeframe=1m/year=2024/month=1/day=5/c.parquet",
        ];
        assert_eq!(
            kept("aggtrades", &rels, false, &logged),
            logged[..2].to_vec()
        );
    }

    #[test]
    fn a_path_that_does_not_decode_is_left_to_the_log_reader() {
        let rels = ["exchange=B/symbol=C/timeframe=1m/year=2024/month=1/day=5/new.parquet"];
        let logged = ["/abs/exchange=B/x%41.parquet"];
        assert_eq!(kept("klines", &rels, false, &logged), logged.to_vec());
    }
}
