//! `adopt`: give a hive dataset written by another tool (pyarrow, DuckDB, Spark) a manifest,
//! without rewriting or moving its files.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::manifest::{FORMAT_VERSION, Operation, Store};
use crate::metrics::new_op_id;
use crate::schema::{ColType, Kind};

/// Adopts the dataset at `base` as `kind` (or as an `adopted` kind with the files' own schema),
/// committing version 1 with every file's rows, bytes, time range and checksum.
pub fn adopt(
    base: &Path,
    kind: Option<&Kind>,
    hive_types: &BTreeMap<String, ColType>,
) -> Result<Dataset> {
    let store = Store::new(base)?;
    let lock = store.lock()?;
    if store.try_exists()? {
        return Err(Error::Dataset {
            path: base.to_path_buf(),
            message: "already has a pqdm manifest".into(),
        });
    }
    let mut m = crate::foreign::describe(base, hive_types)?;
    m.files.par_iter_mut().try_for_each(|f| -> Result<()> {
        let bytes = store.read_data(&f.path)?;
        f.checksum = blake3::hash(&bytes).to_hex().to_string();
        f.added_in = 1;
        Ok(())
    })?;
    let names: Vec<String> = m.partition_columns.iter().map(|f| f.name.clone()).collect();
    let mut spec = match kind {
        Some(k) => k.clone(),
        None => Kind {
            name: "adopted".into(),
            ..m.kind_spec.clone()
        },
    };
    spec.partition_by = names;
    m.kind = spec.name.clone();
    m.key = spec.key.clone();
    if kind.is_some() {
        m.timestamp_column = spec.timestamp_column.clone();
    }
    m.kind_spec = spec;
    m.format_version = FORMAT_VERSION;
    m.version = 1;
    m.updated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    m.operation = Operation {
        name: "adopt".into(),
        op_id: new_op_id(),
        rows_added: m.files.iter().map(|f| f.rows).sum(),
        files_added: m.files.len() as u64,
        ..Default::default()
    };
    m.refresh_summary();
    store.commit(&lock, &m, &[], &[])?;
    drop(lock);
    Dataset::open(base)
}
