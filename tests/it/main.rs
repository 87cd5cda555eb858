//! Integration tests: one binary (Polars links once), one module per capability.

mod cache;
mod common;
mod foundation;
mod hostile;
mod interop;
mod maintenance;
mod memory;
mod object_storage;
mod properties;
mod regressions_maintenance;
mod reliability;
mod scans;
mod writes;
