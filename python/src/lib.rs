//! `pqdm._pqdm`: the native core of the `pqdm` Python package, a thin layer over the `pqdm`
//! crate. Frames cross the boundary through the Arrow C stream interface (PyCapsules), reports
//! as the JSON the command line prints with `--json`, errors as `pqdm`'s exceptions.
//!
//! Every call that reads or writes data runs with the GIL released ([`blocking::run`]), and a
//! Ctrl-C while it runs stops it at its next step before a commit point.

use pqdm::allocator::MiMalloc;
use pyo3::prelude::*;

mod arrow;
mod blocking;
mod dataset;
mod errors;
mod filters;
mod logs;
mod misc;

/// The allocator the command line uses: Polars allocates heavily across threads.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[pymodule]
fn _pqdm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", pqdm::VERSION)?;
    pqdm::allocator::return_freed_memory_promptly();
    logs::install();
    m.add_class::<dataset::NativeDataset>()?;
    m.add_class::<arrow::ArrowStream>()?;
    m.add_class::<dataset::Batches>()?;
    m.add_function(wrap_pyfunction!(misc::set_storage_options, m)?)?;
    m.add_function(wrap_pyfunction!(misc::kinds, m)?)?;
    m.add_function(wrap_pyfunction!(misc::kind_columns, m)?)?;
    m.add_function(wrap_pyfunction!(misc::enforce_schema, m)?)?;
    m.add_function(wrap_pyfunction!(misc::cache_entries, m)?)?;
    m.add_function(wrap_pyfunction!(misc::cache_clear, m)?)?;
    m.add_function(wrap_pyfunction!(misc::cache_gc, m)?)?;
    m.add_function(wrap_pyfunction!(misc::scan_batch_size, m)?)?;
    m.add_function(wrap_pyfunction!(misc::write_parquet_file, m)?)?;
    m.add_function(wrap_pyfunction!(misc::adopt, m)?)?;
    Ok(())
}
