//! Maintenance operations over a dataset, one module each: compact, adopt, verify, vacuum, latest,
//! coverage.
//! Each takes an options struct and returns a report (delta-rs' `operations/` shape).

pub mod adopt;
pub mod compact;
pub mod coverage;
mod explain;
pub mod latest;
pub mod vacuum;
pub mod verify;
