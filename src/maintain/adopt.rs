//! `adopt`: give a hive dataset written by another tool (pyarrow, DuckDB, Spark) a manifest,
//! without rewriting or moving its files.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::DataType;
use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::footer::{FooterInfo, footer_of};
use crate::manifest::{FORMAT_VERSION, Manifest, Operation};
use crate::metrics::new_op_id;
use crate::schema::{ColType, Kind};
use crate::txn::Store;

/// Adopts the dataset at `base` as `kind` (or as an `adopted` kind with the files' own schema),
/// committing version 1 with every file's rows, bytes, time range and checksum.
///
/// Refused, with nothing written, when `base` lies inside another dataset or holds one, when
/// `kind`'s required or key columns are neither in the files nor partition folders, or when a
/// file's timestamp column is not what pqdm stores, Int64 milliseconds: a date-time type, or
/// micro- or nanoseconds (`pqdm migrate` rewrites such files, converting them).
pub fn adopt(
    base: &Path,
    kind: Option<&Kind>,
    hive_types: &BTreeMap<String, ColType>,
) -> Result<Dataset> {
    let location = crate::location::Location::parse(base)?;
    let store = Store::at(&location);
    if store.try_exists()? {
        return Err(Error::Dataset {
            path: base.to_path_buf(),
            message: "already has a pqdm manifest".into(),
        });
    }
    crate::foreign::check_not_nested(&location)?;
    store.refuse_foreign_delta()?;
    // Folder values are typed as the kind types its columns (unless named otherwise), so that
    // later writes of that kind fit the partitions adopted.
    let mut types: BTreeMap<String, ColType> = kind
        .map(|k| {
            k.columns
                .iter()
                .map(|c| (c.name.clone(), c.dtype))
                .collect()
        })
        .unwrap_or_default();
    types.extend(hive_types.iter().map(|(k, v)| (k.clone(), *v)));
    let mut m = crate::foreign::describe(&location, &types)?.manifest;
    check_partition_values(base, &m)?;
    let names: Vec<String> = m.partition_columns.iter().map(|f| f.name.clone()).collect();
    let mut spec = match kind {
        Some(k) => k.clone(),
        None => Kind {
            name: "adopted".into(),
            ..m.kind_spec.clone()
        },
    };
    spec.partition_by = names;
    if kind.is_some() {
        check_kind_columns(base, &m, &spec)?;
        m.timestamp_column = spec.timestamp_column.clone();
    }
    let ts = m.timestamp_column.clone();
    // What later writes of the kind store, where the kind has the column; else the first
    // file's type, as pqdm types it.
    let recorded: BTreeMap<&str, ColType> = m
        .schema
        .iter()
        .map(|f| {
            let kind_type = kind.and_then(|k| k.column(&f.name)).map(|c| c.dtype);
            (f.name.as_str(), kind_type.unwrap_or(f.dtype))
        })
        .collect();
    let partition: Vec<&str> = m
        .partition_columns
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    m.files.par_iter_mut().try_for_each(|f| -> Result<()> {
        let bytes = store.read_data(&f.path)?;
        let path = store.data_path(&f.path);
        let stat = (!ts.is_empty()).then_some(ts.as_str());
        let footer = footer_of(&mut std::io::Cursor::new(&bytes), &path, stat)?;
        if !ts.is_empty() {
            check_millis(&footer, &ts).map_err(|message| Error::Input {
                path: path.clone(),
                message,
            })?;
        }
        check_stored_types(&footer, &recorded, &partition)
            .map_err(|message| Error::Input { path, message })?;
        f.checksum = blake3::hash(&bytes).to_hex().to_string();
        f.added_in = 1;
        Ok(())
    })?;
    let lock = store.lock()?;
    if store.try_exists()? {
        return Err(Error::Dataset {
            path: base.to_path_buf(),
            message: "already has a pqdm manifest".into(),
        });
    }
    m.kind = spec.name.clone();
    m.key = spec.key.clone();
    m.kind_spec = spec;
    m.format_version = FORMAT_VERSION;
    m.table_id = Some(crate::delta::new_table_id());
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
    store.commit_version(&lock, None, &mut m, &[], &[])?;
    drop(lock);
    Dataset::open(base)
}

/// Refuses a file column stored in another type than the one the dataset records for it (the
/// kind's, else the first file's, as pqdm types it; an all-null column fits any): adopted
/// files are read in place, as stored, and Polars does not cast a scanned column (`u32`, `f32`,
/// a date-time or a list would fail every scan).
fn check_stored_types(
    footer: &FooterInfo,
    recorded: &BTreeMap<&str, ColType>,
    partition: &[&str],
) -> std::result::Result<(), String> {
    for (name, stored) in &footer.dtypes {
        if partition.contains(&name.as_str()) {
            continue;
        }
        let dictionary = footer.dictionary_columns.contains(name);
        let what = match stored {
            Ok(t) if dictionary => format!("a dictionary of {t} (a categorical)"),
            Ok(t) => format!("{t}"),
            Err(arrow) => arrow.clone(),
        };
        let fits = match (stored, recorded.get(name.as_str())) {
            // An all-null column (pandas' empty object column) reads as any type.
            (Ok(DataType::Null), _) => true,
            (Ok(t), Some(want)) => *t == want.dtype() && !dictionary,
            _ => false,
        };
        if !fits {
            let wanted = match recorded.get(name.as_str()) {
                Some(want) => format!("the dataset would record it as {}", want.name()),
                None => "pqdm has no type for it".to_string(),
            };
            return Err(format!(
                "column `{name}` is stored as {what} and {wanted}; adopted files are read in \
                 place, as stored, so scans would fail: write the files with the types pqdm \
                 stores (i8-i64, f64, bool, str, date; the same in every file) and adopt again"
            ));
        }
    }
    Ok(())
}

/// Refuses partition values that do not fit their column's dtype (`year=99999` typed as i16,
/// `flag=0` as bool, `d=20240105` as a date): pqdm's scans and every Delta reader would fail on
/// the adopted dataset.
fn check_partition_values(base: &Path, m: &Manifest) -> Result<()> {
    for f in &m.files {
        for column in &m.partition_columns {
            let Some(Some(text)) = f.partition.get(&column.name) else {
                continue;
            };
            if !crate::filter::partition_text_fits(text, column.dtype) {
                return Err(Error::Input {
                    path: base.join(&f.path),
                    message: format!(
                        "its folder's value {} of partition column `{}` is no {}: type the column as text, or rename the folder",
                        crate::error::clip(text),
                        column.name,
                        column.dtype.name()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Refuses a kind whose required or key columns the files (data columns or partition folders)
/// do not have: every later write of that kind would fail.
fn check_kind_columns(base: &Path, m: &Manifest, kind: &Kind) -> Result<()> {
    let has = |c: &str| {
        m.schema
            .iter()
            .chain(&m.partition_columns)
            .any(|f| f.name == c)
    };
    let mut missing: Vec<&str> = kind
        .columns
        .iter()
        .filter(|c| c.required)
        .map(|c| c.name.as_str())
        .chain(kind.key.iter().map(String::as_str))
        .chain(std::iter::once(kind.timestamp_column.as_str()).filter(|t| !t.is_empty()))
        .filter(|c| !has(c))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Dataset {
        path: base.to_path_buf(),
        message: format!(
            "cannot be adopted as kind `{}`: it lacks {} (neither a column of its files nor a partition folder)",
            kind.name,
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The unit a timestamp of this magnitude is in (SPEC: below 1e11 seconds, below 1e14
/// milliseconds, below 1e17 microseconds, otherwise nanoseconds).
fn unit_of(v: i64) -> &'static str {
    match v.unsigned_abs() {
        n if n < 100_000_000_000 => "seconds",
        n if n < 100_000_000_000_000 => "milliseconds",
        n if n < 100_000_000_000_000_000 => "microseconds",
        _ => "nanoseconds",
    }
}

/// Whether a file's timestamp column `ts` is what pqdm stores: Int64 milliseconds. Values past
/// the millisecond range (microseconds, nanoseconds) cannot be milliseconds and are refused;
/// small values are taken as milliseconds (near the epoch they cannot be told from seconds).
fn check_millis(footer: &FooterInfo, ts: &str) -> std::result::Result<(), String> {
    let migrate =
        "pqdm stores Int64 milliseconds; `pqdm migrate` rewrites such files, converting them";
    if footer.stat_is_temporal {
        return Err(format!(
            "column `{ts}` is a date or datetime type; {migrate}"
        ));
    }
    for v in [footer.min, footer.max].into_iter().flatten() {
        let unit = unit_of(v);
        if matches!(unit, "microseconds" | "nanoseconds") {
            return Err(format!("column `{ts}` holds {unit} (e.g. {v}); {migrate}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_units_by_magnitude() {
        assert_eq!(unit_of(1_704_412_800), "seconds");
        assert_eq!(unit_of(1_704_412_800_000), "milliseconds");
        assert_eq!(unit_of(1_704_412_800_000_000), "microseconds");
        assert_eq!(unit_of(1_704_412_800_000_000_000), "nanoseconds");
    }

    #[test]
    fn only_integer_milliseconds_pass() {
        let ms = FooterInfo {
            min: Some(1_704_412_800_000),
            max: Some(1_704_412_860_000),
            ..Default::default()
        };
        assert_eq!(check_millis(&ms, "timestamp"), Ok(()));
        let small = FooterInfo {
            min: Some(1),
            max: Some(5),
            ..Default::default()
        };
        assert_eq!(check_millis(&small, "timestamp"), Ok(()));
        let us = FooterInfo {
            max: Some(1_704_412_800_000_000),
            ..ms.clone()
        };
        assert!(
            check_millis(&us, "timestamp")
                .unwrap_err()
                .contains("microseconds")
        );
        let typed = FooterInfo {
            stat_is_temporal: true,
            ..ms
        };
        assert!(
            check_millis(&typed, "timestamp")
                .unwrap_err()
                .contains("datetime")
        );
    }
}
