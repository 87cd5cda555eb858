//! Integration tests: one binary (Polars links once), one module per capability.

mod cache;
mod common;
mod fidelity;
mod foundation;
mod hostile;
mod interop;
mod maintenance;
mod memory;
mod object_storage;
mod properties;
mod reliability;
mod scans;
mod writes;
