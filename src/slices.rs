//! How a write stages its input under a memory budget: in slices of rows, each sized so that
//! its data, about twice its raw width in flight, fits the budget.
//!
//! An input that yields the same rows in the same order every time it runs (pqdm's scans of
//! Parquet files, whose row counts the footers give) runs once per slice, each run reading only
//! its own rows. Any other input runs once: its batches are gathered into slices as they
//! stream. Running a frame whose order is not fixed (a group-by, a join, a caller's own frame)
//! once per row range would stage some rows twice and others never.

use std::num::NonZeroUsize;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::manifest::Field;
use crate::options::MemoryLimit;

/// Memory a write takes besides its data (engine, buffers, manifest).
const WRITE_BASELINE_BYTES: u64 = 128 << 20;

/// Rows streamed from an input run once, a batch at a time, while a slice gathers.
const BATCH_ROWS: usize = 50_000;

/// How an input is staged.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Slicing {
    /// In one piece (no budget, or it fits).
    Whole,
    /// Running the input once per row range `(offset, len)`.
    Replay(Vec<(usize, usize)>),
    /// Running the input once, staging each time this many rows have gathered.
    Stream(usize),
}

/// Rows of one slice under `budget`: the budget above the write's baseline (a quarter of it at
/// least), over twice the raw width of a row; never fewer than 10,000.
fn slice_rows(fields: &[Field], budget: u64) -> usize {
    let row_bytes = crate::memory::row_bytes(fields, None) + 16;
    (budget.saturating_sub(WRITE_BASELINE_BYTES).max(budget / 4) / (row_bytes * 2)).max(10_000)
        as usize
}

/// Row ranges covering `total` rows in slices of `rows`; `Whole` when one slice holds them.
fn ranges(total: u64, rows: usize) -> Slicing {
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    if total <= rows {
        return Slicing::Whole;
    }
    Slicing::Replay(
        (0..total)
            .step_by(rows)
            .map(|o| (o, rows.min(total - o)))
            .collect(),
    )
}

impl Slicing {
    /// How to stage an input of row width `fields` under `limit`. `known_rows` is the input's
    /// row count when every one of its parts tells it without being read (and yields its rows in
    /// the same order each run); then a budget slices it by row ranges, else (an explicit
    /// budget only) it streams once into slices.
    pub(crate) fn plan(limit: MemoryLimit, fields: &[Field], known_rows: Option<u64>) -> Slicing {
        let budget = match limit {
            MemoryLimit::Off => return Slicing::Whole,
            MemoryLimit::Bytes(budget) => budget,
            // Without a count for free, a default budget would cost an input the wait for its
            // first slice to gather before anything is written: only asked-for budgets do.
            MemoryLimit::Auto if known_rows.is_none() => return Slicing::Whole,
            MemoryLimit::Auto => crate::memory::default_write_budget(),
        };
        let rows = slice_rows(fields, budget);
        let slicing = match known_rows {
            Some(total) => ranges(total, rows),
            // A gathered slice is held whole while it is staged: half the rows keep its
            // data and the staging's in flight within the same budget.
            None => Slicing::Stream((rows / 2).max(10_000)),
        };
        let rows = match slicing {
            Slicing::Stream(gathered) => gathered,
            _ => rows,
        };
        log::info!(
            "memory budget {budget} bytes: {} rows in slices of {rows}",
            known_rows.map_or("an unknown number of".into(), |n| n.to_string())
        );
        slicing
    }

    /// Stages `frame` slice by slice: `stage(part, index)` gets each slice's rows and its
    /// index (`None` for a whole input), in input order. Returns how many slices it staged.
    pub(crate) fn stage(
        &self,
        frame: &LazyFrame,
        mut stage: impl FnMut(LazyFrame, Option<usize>) -> Result<()>,
    ) -> Result<usize> {
        match self {
            Slicing::Whole => stage(frame.clone(), None).map(|()| 1),
            Slicing::Replay(ranges) => {
                for (i, (offset, len)) in ranges.iter().enumerate() {
                    stage(
                        frame.clone().slice(*offset as i64, *len as IdxSize),
                        Some(i),
                    )?;
                }
                Ok(ranges.len())
            }
            Slicing::Stream(rows) => {
                let batch = NonZeroUsize::new(BATCH_ROWS.min(*rows).max(1)).expect("positive");
                let batches = crate::batches::Batches::start(frame.clone(), Some(batch))
                    .map_err(Error::polars("read the input"))?;
                let mut gathered = Gathered::default();
                let mut staged = 0;
                for df in batches {
                    gathered.push(df.map_err(Error::polars("read the input"))?)?;
                    if gathered.rows >= *rows {
                        stage(gathered.take().lazy(), Some(staged))?;
                        staged += 1;
                    }
                }
                if gathered.rows > 0 || staged == 0 {
                    let last = match gathered.frame {
                        Some(_) => gathered.take(),
                        // An empty input: its schema, no rows.
                        None => DataFrame::empty_with_schema(
                            frame
                                .clone()
                                .collect_schema()
                                .map_err(Error::polars("read the input's schema"))?
                                .as_ref(),
                        ),
                    };
                    stage(last.lazy(), Some(staged))?;
                    staged += 1;
                }
                Ok(staged)
            }
        }
    }
}

/// Batches gathered into the next slice.
#[derive(Default)]
struct Gathered {
    frame: Option<DataFrame>,
    rows: usize,
}

impl Gathered {
    fn push(&mut self, df: DataFrame) -> Result<()> {
        self.rows += df.height();
        match &mut self.frame {
            None => self.frame = Some(df),
            Some(f) => {
                f.vstack_mut_owned(df)
                    .map_err(Error::polars("gather a slice of the input"))?;
            }
        }
        Ok(())
    }

    fn take(&mut self) -> DataFrame {
        self.rows = 0;
        self.frame.take().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColType;

    fn fields() -> [Field; 2] {
        [
            Field {
                name: "a".into(),
                dtype: ColType::I64,
            },
            Field {
                name: "b".into(),
                dtype: ColType::F64,
            },
        ]
    }

    #[test]
    fn slices_cover_every_row_once_in_input_order() {
        // 2 x 8 bytes + 16 per row, twice in flight: 64 bytes a row.
        let plan = |budget: u64, rows: u64| {
            Slicing::plan(MemoryLimit::Bytes(budget), &fields(), Some(rows))
        };
        let mib = 1u64 << 20;
        // 256 MiB: 128 MiB above the baseline, 2,097,152 rows a slice.
        assert_eq!(plan(256 * mib, 0), Slicing::Whole);
        assert_eq!(plan(256 * mib, 2_097_152), Slicing::Whole);
        assert_eq!(
            plan(256 * mib, 2_097_153),
            Slicing::Replay(vec![(0, 2_097_152), (2_097_152, 1)])
        );
        assert_eq!(
            plan(256 * mib, 5_000_000),
            Slicing::Replay(vec![
                (0, 2_097_152),
                (2_097_152, 2_097_152),
                (4_194_304, 805_696)
            ])
        );
        // Below the baseline a quarter of the budget counts; never fewer than 10,000 rows.
        assert_eq!(
            plan(128 * mib, 600_000),
            Slicing::Replay(vec![(0, 524_288), (524_288, 75_712)])
        );
        assert_eq!(
            plan(0, 25_000),
            Slicing::Replay(vec![(0, 10_000), (10_000, 10_000), (20_000, 5_000)])
        );
        assert_eq!(plan(u64::MAX, u64::MAX >> 8), Slicing::Whole);
    }

    #[test]
    fn inputs_without_a_row_count_stream_once_and_only_under_an_asked_for_budget() {
        let f = fields();
        assert_eq!(
            Slicing::plan(MemoryLimit::Bytes(256 << 20), &f, None),
            Slicing::Stream(1_048_576)
        );
        assert_eq!(Slicing::plan(MemoryLimit::Auto, &f, None), Slicing::Whole);
        assert_eq!(
            Slicing::plan(MemoryLimit::Off, &f, Some(u64::MAX)),
            Slicing::Whole
        );
    }

    /// Stages `frame` under `slicing`, returning each slice's `a` values.
    fn staged(frame: &LazyFrame, slicing: &Slicing) -> Vec<Vec<i64>> {
        let mut out = vec![];
        let n = slicing
            .stage(frame, |part, index| {
                assert_eq!(index.is_some(), *slicing != Slicing::Whole);
                let df = part.collect().unwrap();
                out.push(
                    df.column("a")
                        .unwrap()
                        .i64()
                        .unwrap()
                        .into_no_null_iter()
                        .collect(),
                );
                Ok(())
            })
            .unwrap();
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn a_streamed_input_is_staged_in_order_in_slices_of_at_least_the_rows_asked() {
        let a: Vec<i64> = (0..25_000).collect();
        let frame = df!("a" => &a, "b" => vec![1.0f64; 25_000]).unwrap().lazy();
        let slices = staged(&frame, &Slicing::Stream(10_000));
        assert!(slices.len() >= 2 && slices.len() <= 3, "{}", slices.len());
        assert!(slices[..slices.len() - 1].iter().all(|s| s.len() >= 10_000));
        assert_eq!(slices.concat(), a);
        // An empty input still stages once (its schema), as a whole one does.
        let empty = frame.clone().limit(0);
        assert_eq!(
            staged(&empty, &Slicing::Stream(10_000)),
            vec![Vec::<i64>::new()]
        );
        assert_eq!(staged(&frame, &Slicing::Whole).concat(), a);
        assert_eq!(
            staged(&frame, &Slicing::Replay(vec![(0, 20_000), (20_000, 5_000)])),
            vec![a[..20_000].to_vec(), a[20_000..].to_vec()]
        );
    }
}
