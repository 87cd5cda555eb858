//! `materialize`: a scan written out as a new partitioned pqdm dataset whose manifest records
//! where it came from.

use std::path::Path;

use crate::dataset::{CreateOptions, Dataset};
use crate::error::{Error, Result};
use crate::partition;
use crate::scan::ScanOptions;
use crate::schema::{ColumnSpec, Kind};
use crate::txn::Store;
use crate::write::{WriteOptions, WriteReport};

/// The kind of a projection of `source`: the selected columns, the key if it survives, and
/// the partition columns that can still be made.
fn projection_kind(source: &Kind, columns: &[String], partition_by: &[String]) -> Kind {
    let full = source.columns.iter().all(|c| columns.contains(&c.name));
    let cols: Vec<ColumnSpec> = columns
        .iter()
        .filter_map(|c| source.column(c).cloned())
        .map(|c| ColumnSpec {
            required: c.required && full,
            ..c
        })
        .collect();
    let key = if source.key.iter().all(|k| columns.contains(k)) {
        source.key.clone()
    } else {
        vec![]
    };
    Kind {
        name: if full {
            source.name.clone()
        } else {
            format!("{}-projection", source.name)
        },
        columns: cols,
        key,
        timestamp_column: source.timestamp_column.clone(),
        partition_by: partition_by.to_vec(),
        keep_extra: true,
        positional: vec![],
    }
}

impl Dataset {
    /// Writes the scan `opts` of this dataset as a new dataset at `dest`, partitioned by
    /// `partition_by` (default: the source's partition columns the projection keeps, plus the
    /// derived time columns when the timestamp is kept). An empty result is an error and
    /// creates nothing.
    pub fn materialize(
        &self,
        opts: &ScanOptions,
        dest: &Path,
        partition_by: Option<Vec<String>>,
    ) -> Result<(Dataset, WriteReport)> {
        if Store::new(dest)?.try_exists()? {
            return Err(Error::Dataset {
                path: dest.to_path_buf(),
                message: "a dataset already exists here".into(),
            });
        }
        let m = self.manifest_at(self.version_to_read(opts)?)?;
        let all: Vec<String> = m
            .schema
            .iter()
            .chain(&m.partition_columns)
            .map(|f| f.name.clone())
            .collect();
        let columns = opts.columns.clone().unwrap_or_else(|| all.clone());
        let keeps_ts = columns.contains(&m.timestamp_column);
        let partition_by = partition_by.unwrap_or_else(|| {
            m.partition_columns
                .iter()
                .map(|p| p.name.clone())
                .filter(|p| columns.contains(p) || (keeps_ts && partition::is_derived(p)))
                .collect()
        });
        let kind = projection_kind(&m.kind_spec, &columns, &partition_by);
        let source = serde_json::json!({
            "path": std::fs::canonicalize(self.base()).unwrap_or_else(|_| self.base().to_path_buf()),
            "version": m.version,
            "kind": m.kind,
            "columns": opts.columns,
            "filters": opts.filters.iter().map(|f| f.text.clone()).collect::<Vec<_>>(),
        });
        let create = CreateOptions {
            partition_by: Some(partition_by),
            compression: m.settings.compression()?,
            max_rows_per_file: Some(m.settings.max_rows_per_file as usize),
            auto_compact: m.settings.auto_compact,
            checkpoint_interval: m.settings.checkpoint_interval,
            manifest_max_files: m.settings.manifest_max_files,
            metadata: m.metadata.clone(),
            source: Some(source),
        };
        let out = Dataset::create(dest, &kind, &create)?;
        let write = WriteOptions {
            mode: Some(crate::WriteMode::Append),
            source_name: Some(self.base().display().to_string()),
            ..Default::default()
        };
        let result = self.scan(opts).and_then(|lf| out.write(lf, &write));
        match result {
            Ok(report) if report.rows_written > 0 => Ok((out, report)),
            other => {
                Store::new(dest)?.remove_if_empty()?;
                match other {
                    Err(e) => Err(e),
                    Ok(_) => Err(Error::Options(format!(
                        "materialize: the scan of {} selects no rows; {} was not created",
                        self.base().display(),
                        dest.display()
                    ))),
                }
            }
        }
    }
}
