//! An order-independent digest of a frame's rows, added up batch by batch: what compaction
//! compares between the rows it read and the rows it wrote, without holding either in memory.
//!
//! Each row hashes to 64 bits: every value (floats by their bits, text by a hash of its bytes;
//! a null by a marker) xored with its column's salt into the rotated hash so far, which is then
//! multiplied by an odd constant (see [`ODD`]); the row's hash fully mixed at its end
//! (splitmix64). The digest is the row count with the wrapping sum
//! and the xor of the row hashes. Reordering rows keeps it; changing, dropping, duplicating or
//! swapping values changes it except with probability about 2^-64.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polars::prelude::*;
use polars_arrow::array::Array;

use crate::error::{Error, Result};

/// The digest of a multiset of rows (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowDigest {
    /// Rows digested.
    pub rows: u64,
    sum: u64,
    xor: u64,
}

/// An odd multiplier: each value goes into its row's hash as `(hash.rotl(23) ^ v ^ salt) * ODD`,
/// a bijection of the hash for any value, one multiply per value (the row's hash is mixed fully
/// once, at its end; a full mix per value cost 1.6 times as much). The multiply folds the
/// hash, not the value alone: a value's multiple, xored into a rotated hash, left a change of
/// the top bit (a float's sign) a change of that bit only, and rotations repeat every 64
/// columns, so two sign flips 64 columns apart cancelled (found by a red team).
const ODD: u64 = 0x9fb2_1c65_1e98_df25;

/// Stands for a null in a row's hash (any value's hash differs from it but by chance).
const NULL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The splitmix64 finaliser: a fast bijective mix of 64 bits.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = mix(bytes.len() as u64 ^ 0xcbf2_9ce4_8422_2325);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(word));
    }
    h
}

/// `lf` unchanged, showing `columns` (names of `lf`'s columns, in that order) of every batch
/// of rows it yields to `observe` on the way: a pass-through map of the last of them, which
/// the streaming engine runs on each morsel as it flows (in any order, on any thread). The last
/// carries the map because a key's leading columns are often constants (an exchange given on
/// the command line), which a map would turn from one value into a column of copies.
pub(crate) fn tap_columns(
    lf: LazyFrame,
    columns: &[String],
    observe: impl Fn(&[Column]) -> PolarsResult<()> + Send + Sync + 'static,
) -> LazyFrame {
    let Some((carrier, rest)) = columns.split_last() else {
        return lf;
    };
    let others: Vec<Expr> = rest.iter().map(|c| col(c.as_str())).collect();
    let tapped = col(carrier.as_str()).map_many(
        move |cols: &mut [Column]| {
            // The map's own column comes first: shown to `observe` in the order asked for.
            let ordered: Vec<Column> = cols[1..].iter().chain(&cols[..1]).cloned().collect();
            observe(&ordered)?;
            Ok(std::mem::take(&mut cols[0]))
        },
        &others,
        |_, fields| Ok(fields[0].clone()),
    );
    lf.with_column(tapped.alias(carrier.as_str()))
}

impl RowDigest {
    /// Adds the rows of `df` (columns are told apart by position).
    pub fn add(&mut self, df: &DataFrame) -> Result<()> {
        // Row ranges hash in parallel (the parts add up: the digest is order-independent).
        const PART: usize = 16 * 1024;
        if df.height() > PART {
            use rayon::prelude::*;
            let offsets: Vec<usize> = (0..df.height()).step_by(PART).collect();
            let parts = offsets
                .into_par_iter()
                .map(|at| {
                    let mut part = RowDigest::default();
                    part.add_rows(&df.slice(at as i64, PART))?;
                    Ok(part)
                })
                .collect::<Result<Vec<_>>>()?;
            for part in parts {
                self.merge(part);
            }
            return Ok(());
        }
        self.add_rows(df)
    }

    fn add_rows(&mut self, df: &DataFrame) -> Result<()> {
        let mut rows = vec![0u64; df.height()];
        for (i, column) in df.columns().iter().enumerate() {
            let salt = mix(i as u64 + 1);
            fold(column.as_materialized_series(), salt, &mut rows)?;
        }
        for h in rows {
            let h = mix(h);
            self.sum = self.sum.wrapping_add(h);
            self.xor ^= h;
        }
        self.rows += df.height() as u64;
        Ok(())
    }

    /// `lf` unchanged, adding every row that flows through it to `digest` on the way (one pass:
    /// the streaming engine runs the tap on each morsel, in any order, which the digest does
    /// not see). `columns` are `lf`'s columns in order.
    pub fn tap(lf: LazyFrame, columns: &[String], digest: Arc<Mutex<RowDigest>>) -> LazyFrame {
        let names: Vec<PlSmallStr> = columns.iter().map(|c| c.as_str().into()).collect();
        tap_columns(lf, columns, move |cols| {
            let frame = DataFrame::new_infer_height(
                cols.iter()
                    .zip(&names)
                    .map(|(c, n)| c.clone().with_name(n.clone()))
                    .collect(),
            )?;
            let mut part = RowDigest::default();
            part.add(&frame)
                .map_err(|e| polars_err!(ComputeError: "{e}"))?;
            digest.lock().unwrap_or_else(|e| e.into_inner()).merge(part);
            Ok(())
        })
    }

    /// Adds the rows another digest holds.
    pub fn merge(&mut self, other: RowDigest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
        self.xor ^= other.xor;
    }

    /// The digest of every row of the Parquet `files` (each with its row count, from its
    /// footer), read in the order given through `read`, `rows_per_read` rows at a time, and
    /// whether the integer column `ordered` never decreases from one row to the next in that
    /// order (a null breaks the order; no column: in order); `context` names the read in
    /// errors.
    ///
    /// Row ranges, not one streamed query: Polars maps a local file into memory and the pages a
    /// query touched stay counted in the process's memory until it ends, so a streamed
    /// read-back of a 128 MB file peaked at 180-210 MiB, a range at a time at 60 MiB, as fast.
    pub fn of_files_ordered(
        files: &[(PathBuf, u64)],
        rows_per_read: u64,
        read: impl Fn(&Path) -> Result<LazyFrame>,
        context: &str,
        ordered: Option<&str>,
    ) -> Result<(RowDigest, bool)> {
        let mut seen = Ordered::new(ordered);
        for (path, rows) in files {
            let mut offset = 0;
            while offset < *rows {
                let len = rows_per_read.max(1).min(rows - offset);
                let batch = read(path)?
                    .slice(offset as i64, len as IdxSize)
                    .collect_with_engine(Engine::Streaming)
                    .map_err(Error::polars(format!("{context}: {}", path.display())))?
                    .unwrap_single();
                if batch.height() == 0 {
                    // Fewer rows than the footer says: the digests' row counts tell.
                    break;
                }
                offset += batch.height() as u64;
                seen.add(&batch, &format!("{context}: {}", path.display()))?;
            }
        }
        Ok((seen.digest, seen.in_order))
    }
}

/// A digest of rows seen in an order, and whether a column never decreased in it.
struct Ordered<'a> {
    digest: RowDigest,
    column: Option<&'a str>,
    in_order: bool,
    last: i64,
}

impl<'a> Ordered<'a> {
    fn new(column: Option<&'a str>) -> Self {
        Ordered {
            digest: RowDigest::default(),
            column,
            in_order: true,
            last: i64::MIN,
        }
    }

    /// Adds the rows of `batch`, the next in order (`context` names it in errors).
    fn add(&mut self, batch: &DataFrame, context: &str) -> Result<()> {
        if let Some(column) = self.column.filter(|_| self.in_order) {
            let values = batch
                .column(column)
                .and_then(|c| c.cast(&DataType::Int64))
                .map_err(Error::polars(context))?;
            for v in values.i64().map_err(Error::polars(context))?.iter() {
                match v {
                    Some(v) if v >= self.last => self.last = v,
                    _ => {
                        self.in_order = false;
                        break;
                    }
                }
            }
        }
        self.digest.add(batch)
    }
}

/// Mixes one value's hash (`None`: a null) into a row's hash.
#[inline]
fn put(acc: &mut u64, salt: u64, v: Option<u64>) {
    *acc = (acc.rotate_left(23) ^ v.map_or(NULL, |v| v) ^ salt).wrapping_mul(ODD);
}

/// Mixes each value of `ca` (its bits by `bits`) into its row's hash, a chunk at a time: a
/// chunk without nulls runs over its value slice, the hot case.
fn fold_numeric<T: PolarsNumericType>(
    ca: &ChunkedArray<T>,
    salt: u64,
    rows: &mut [u64],
    bits: impl Fn(T::Native) -> u64,
) {
    let mut at = 0;
    for arr in ca.downcast_iter() {
        let out = &mut rows[at..at + arr.len()];
        at += arr.len();
        if arr.null_count() == 0 {
            for (acc, v) in out.iter_mut().zip(arr.values().iter()) {
                put(acc, salt, Some(bits(*v)));
            }
        } else {
            for (acc, v) in out.iter_mut().zip(arr.iter()) {
                put(acc, salt, v.map(|v| bits(*v)));
            }
        }
    }
}

/// Mixes each value of `s` (with `salt`, its column's) into its row's hash.
fn fold(s: &Series, salt: u64, rows: &mut [u64]) -> Result<()> {
    let s = s.to_physical_repr();
    let err = Error::polars("digest rows");
    match s.dtype() {
        DataType::Int64 => fold_numeric(s.i64().map_err(err)?, salt, rows, |v| v as u64),
        DataType::Int32 => fold_numeric(s.i32().map_err(err)?, salt, rows, |v| i64::from(v) as u64),
        DataType::Float64 => fold_numeric(s.f64().map_err(err)?, salt, rows, f64::to_bits),
        DataType::String => {
            let mut at = 0;
            for arr in s.str().map_err(err)?.downcast_iter() {
                let out = &mut rows[at..at + arr.len()];
                at += arr.len();
                for (acc, v) in out.iter_mut().zip(arr.iter()) {
                    put(acc, salt, v.map(|v| hash_bytes(v.as_bytes())));
                }
            }
        }
        DataType::Boolean => {
            let mut at = 0;
            for arr in s.bool().map_err(err)?.downcast_iter() {
                let out = &mut rows[at..at + arr.len()];
                at += arr.len();
                if arr.null_count() == 0 {
                    for (acc, v) in out.iter_mut().zip(arr.values_iter()) {
                        put(acc, salt, Some(u64::from(v)));
                    }
                } else {
                    for (acc, v) in out.iter_mut().zip(arr.iter()) {
                        put(acc, salt, v.map(u64::from));
                    }
                }
            }
        }
        DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16 => {
            let wide = s.cast(&DataType::Int64).map_err(err)?;
            return fold(&wide, salt, rows);
        }
        // Any other dtype (files of other tools): by each value's text, slower but exact.
        _ => {
            for (acc, v) in rows.iter_mut().zip(s.iter()) {
                put(
                    acc,
                    salt,
                    (!v.is_null()).then(|| hash_bytes(format!("{v:?}").as_bytes())),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(df: &DataFrame) -> RowDigest {
        let mut d = RowDigest::default();
        d.add(df).unwrap();
        d
    }

    fn frame(ts: &[i64], price: &[Option<f64>], sym: &[Option<&str>]) -> DataFrame {
        df!("ts" => ts, "price" => price, "sym" => sym).unwrap()
    }

    #[test]
    fn the_same_rows_in_any_order_and_batching_digest_alike() {
        let a = frame(
            &[1, 2, 3],
            &[Some(1.5), None, Some(f64::NAN)],
            &[Some("x"), Some(""), None],
        );
        let b = frame(
            &[3, 1, 2],
            &[Some(f64::NAN), Some(1.5), None],
            &[None, Some("x"), Some("")],
        );
        assert_eq!(digest(&a), digest(&b));
        let mut halves = RowDigest::default();
        halves.add(&a.slice(0, 1)).unwrap();
        halves.add(&a.slice(1, 2)).unwrap();
        assert_eq!(halves, digest(&a));
        assert_eq!(digest(&a).rows, 3);
    }

    /// Found by a red team: with a value's multiple xored into a rotated hash, a float's sign
    /// (its top bit) changed the hash by that bit only, and rotations repeat every 64 columns,
    /// so negating columns 64 apart (a wide `split` frame's features) left the digest as it was.
    #[test]
    fn sign_flips_in_columns_64_apart_show() {
        let width = 133;
        let frame = |negated: &dyn Fn(usize) -> bool| {
            DataFrame::new_infer_height(
                (0..width)
                    .map(|c| {
                        let sign = if negated(c) { -1.0 } else { 1.0 };
                        Column::new(format!("f{c}").into(), [sign * (c as f64 + 0.5), 2.0])
                    })
                    .collect(),
            )
            .unwrap()
        };
        let base = digest(&frame(&|_| false));
        for first in 0..width - 64 {
            let pair = digest(&frame(&|c| c == first || c == first + 64));
            assert_ne!(base, pair, "columns {first} and {}", first + 64);
        }
        assert_ne!(base, digest(&frame(&|c| c >= 3)));
        assert_ne!(base, digest(&frame(&|c| c % 64 == 5)));
    }

    #[test]
    fn any_change_of_a_value_a_row_or_a_column_shows() {
        let base = frame(&[1, 2], &[Some(1.0), Some(2.0)], &[Some("a"), Some("b")]);
        let changed = [
            frame(&[1, 2], &[Some(1.0), Some(2.5)], &[Some("a"), Some("b")]),
            frame(&[1, 2], &[Some(1.0), None], &[Some("a"), Some("b")]),
            frame(&[1, 2], &[Some(1.0), Some(2.0)], &[Some("a"), Some("")]),
            frame(&[1, 2], &[Some(1.0), Some(2.0)], &[Some("a"), None]),
            // a row swapped for a copy of the other
            frame(&[1, 1], &[Some(1.0), Some(1.0)], &[Some("a"), Some("a")]),
            // two values of one row swapped between rows
            frame(&[2, 1], &[Some(1.0), Some(2.0)], &[Some("a"), Some("b")]),
            frame(&[1, 2], &[Some(-0.0), Some(2.0)], &[Some("a"), Some("b")]),
        ];
        for other in &changed {
            assert_ne!(digest(&base), digest(other), "{other}");
        }
        // Two columns' values exchanged: told apart by position.
        let ab = df!("a" => [1i64], "b" => [2i64]).unwrap();
        let ba = df!("a" => [2i64], "b" => [1i64]).unwrap();
        assert_ne!(digest(&ab), digest(&ba));
        // A repeated row counts twice.
        let once = df!("a" => [1i64, 2]).unwrap();
        let twice = df!("a" => [1i64, 2, 2]).unwrap();
        assert_ne!(digest(&once), digest(&twice));
    }

    #[test]
    fn a_tap_digests_what_flows_through_it_and_changes_nothing() {
        let df = df!("t" => (0..300_000i64).collect::<Vec<_>>(), "s" => (0..300_000).map(|i| (i % 7).to_string()).collect::<Vec<_>>()).unwrap();
        let digest = Arc::new(Mutex::new(RowDigest::default()));
        let out = RowDigest::tap(df.clone().lazy(), &["t".into(), "s".into()], digest.clone())
            .collect_with_engine(Engine::Streaming)
            .unwrap()
            .unwrap_single();
        assert!(out.equals(&df));
        assert_eq!(*digest.lock().unwrap(), digest_of(&df));
    }

    fn digest_of(df: &DataFrame) -> RowDigest {
        let mut d = RowDigest::default();
        d.add(df).unwrap();
        d
    }

    #[test]
    fn order_is_seen_across_ranges_and_files_and_broken_by_a_step_back_or_a_null() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, ts: &[Option<i64>]| {
            let path = dir.path().join(name);
            let mut df = df!("t" => ts, "v" => ts.iter().map(|t| t.map(|t| t as f64 / 2.0)).collect::<Vec<_>>()).unwrap();
            ParquetWriter::new(std::fs::File::create(&path).unwrap())
                .finish(&mut df)
                .unwrap();
            (path, df)
        };
        let read = |p: &Path| crate::write::scan_files(&[p.to_path_buf()], false);
        let check = |files: &[(PathBuf, DataFrame)], per_read: u64| {
            let listed: Vec<(PathBuf, u64)> = files
                .iter()
                .map(|(p, df)| (p.clone(), df.height() as u64))
                .collect();
            let (got, ordered) =
                RowDigest::of_files_ordered(&listed, per_read, read, "test", Some("t")).unwrap();
            let mut want = RowDigest::default();
            for (_, df) in files {
                want.add(df).unwrap();
            }
            assert_eq!(got, want);
            ordered
        };
        let a = write("a.parquet", &[Some(i64::MIN), Some(1), Some(1), Some(7)]);
        let b = write("b.parquet", &[Some(7), Some(9), Some(i64::MAX)]);
        let early = write("early.parquet", &[Some(6), Some(8)]);
        let gap = write("gap.parquet", &[Some(8), None, Some(9)]);
        let empty = write("empty.parquet", &[]);
        for per_read in [1, 2, 3, 100] {
            assert!(check(&[a.clone(), b.clone()], per_read), "{per_read}");
            assert!(check(&[a.clone(), empty.clone(), b.clone()], per_read));
            assert!(!check(&[b.clone(), a.clone()], per_read), "{per_read}");
            assert!(!check(&[a.clone(), early.clone()], per_read), "{per_read}");
            assert!(!check(std::slice::from_ref(&gap), per_read), "{per_read}");
        }
        // A footer that counts more rows than the file yields: the digest holds the rows read.
        let (got, _) =
            RowDigest::of_files_ordered(&[(a.0.clone(), 9)], 2, read, "test", Some("t")).unwrap();
        assert_eq!(got.rows, 4);
    }

    #[test]
    fn narrow_integers_dates_and_bytes_hash_by_value() {
        let narrow = df!("a" => [1i8, -1], "b" => [300i16, -300]).unwrap();
        let same = df!("a" => [-1i8, 1], "b" => [-300i16, 300]).unwrap();
        assert_eq!(digest(&narrow), digest(&same));
        let d = |days: i32| {
            DataFrame::new_infer_height(vec![
                Series::new("d".into(), [days])
                    .cast(&DataType::Date)
                    .unwrap()
                    .into(),
            ])
            .unwrap()
        };
        assert_ne!(digest(&d(1)), digest(&d(2)));
        assert_ne!(hash_bytes(b"ab"), hash_bytes(b"ab\0"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }
}
