//! A query's rows as an iterator of batches that ends with the query's own outcome.
//!
//! Polars' `collect_batches` runs the query on a thread of its own and hands batches over a
//! channel; when the query panics (a plan the streaming engine cannot run yet), that thread dies
//! with the channel and the iterator simply ends: a reader takes the rows so far for all of
//! them. [`Batches`] runs the query on a thread it joins, so an error or a panic arrives as the
//! last item instead.

use std::num::NonZeroUsize;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use polars::prelude::*;

/// The batches of one streaming query, in order; its error or panic is the last item.
pub struct Batches {
    recv: Receiver<DataFrame>,
    runner: Option<JoinHandle<PolarsResult<()>>>,
}

impl Batches {
    /// Starts `lf` on the streaming engine, in batches of exactly `size` rows when given (the
    /// last may be smaller). The query waits for each batch to be taken before making the next.
    pub fn start(lf: LazyFrame, size: Option<NonZeroUsize>) -> PolarsResult<Batches> {
        let (send, recv) = sync_channel(1);
        let query = lf.sink_batches(
            // `true` stops the query: nobody reads on.
            PlanCallback::new(move |df| Ok(send.send(df).is_err())),
            true,
            size,
        )?;
        let runner = std::thread::Builder::new()
            .name("pqdm-batches".into())
            .spawn(move || query.collect_with_engine(Engine::Streaming).map(|_| ()))
            .map_err(|e| polars_err!(ComputeError: "start a query thread: {e}"))?;
        Ok(Batches {
            recv,
            runner: Some(runner),
        })
    }
}

impl Iterator for Batches {
    type Item = PolarsResult<DataFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Ok(df) = self.recv.recv() {
            return Some(Ok(df));
        }
        // The query dropped its end of the channel: it finished, failed or panicked.
        match self.runner.take()?.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(e)),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                Some(Err(
                    polars_err!(ComputeError: "the query stopped before its last row: {what}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_arrives_in_order_then_the_end() {
        let df = df!("a" => (0..25_000i64).collect::<Vec<_>>()).unwrap();
        let size = NonZeroUsize::new(10_000);
        let got: Vec<DataFrame> = Batches::start(df.clone().lazy(), size)
            .unwrap()
            .collect::<PolarsResult<_>>()
            .unwrap();
        let heights: Vec<usize> = got.iter().map(|b| b.height()).collect();
        assert_eq!(heights, [10_000, 10_000, 5_000]);
        let mut all = got[0].clone();
        for b in &got[1..] {
            all.vstack_mut(b).unwrap();
        }
        assert!(all.equals(&df));
    }

    #[test]
    fn a_failing_query_ends_with_its_error_not_a_quiet_end() {
        let df = df!("a" => ["1", "2", "x"]).unwrap();
        let lf = df.lazy().select([col("a").strict_cast(DataType::Int64)]);
        let items: Vec<PolarsResult<DataFrame>> = Batches::start(lf, None).unwrap().collect();
        assert!(items.last().is_some_and(|i| i.is_err()), "{items:?}");
    }

    #[test]
    fn a_query_that_panics_ends_with_an_error_not_a_quiet_end() {
        let df = df!("a" => [1i64, 2, 3]).unwrap();
        let lf = df.lazy().map(
            |_| panic!("a user function gave up"),
            AllowedOptimizations::default(),
            None,
            Some("gives up"),
        );
        let items: Vec<PolarsResult<DataFrame>> = Batches::start(lf, None).unwrap().collect();
        let last = items.last().expect("an item");
        let err = last.as_ref().expect_err("an error").to_string();
        assert!(err.contains("a user function gave up"), "{err}");
    }
}
