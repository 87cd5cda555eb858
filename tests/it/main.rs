//! Integration tests: one binary (Polars links once), one module per capability.

mod cache;
mod common;
mod corruption;
mod coverage;
mod errors;
mod fidelity;
mod flags;
mod foundation;
mod hermetic;
mod hostile;
mod incremental;
mod interop;
mod maintenance;
mod memory;
mod model;
mod object_storage;
mod properties;
mod pruning;
mod regressions_commit;
mod regressions_maintenance;
mod regressions_values;
mod reliability;
mod s3_races;
mod scans;
mod upsert_scope;
mod writes;
