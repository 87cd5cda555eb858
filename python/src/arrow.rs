//! Frames across the boundary through the Arrow C stream interface: Python Polars, pyarrow and
//! pandas (through pyarrow) all read and write it, and no buffer is copied on either side.
//!
//! A frame goes out as a stream of struct arrays (one per record batch, the columns as its
//! fields), wrapped in an [`ArrowStream`] whose `__arrow_c_stream__` hands it to the consumer;
//! a frame comes in from any object with `__arrow_c_stream__`.

use std::ffi::CStr;
use std::sync::Mutex;

use polars::prelude::*;
use polars_arrow::array::{Array, StructArray};
use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
use polars_arrow::ffi::{ArrowArrayStream, ArrowArrayStreamReader, export_iterator};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};

use crate::errors::invalid;

/// The capsule name the Arrow PyCapsule interface gives a C stream.
const STREAM: &CStr = c"arrow_array_stream";

/// A frame to be read once through the Arrow C stream interface (`pl.DataFrame(s)`,
/// `pa.table(s)`, `pa.RecordBatchReader.from_stream(s)`).
#[pyclass(module = "pqdm._pqdm")]
pub struct ArrowStream {
    frame: Mutex<Option<DataFrame>>,
}

impl ArrowStream {
    /// A stream of `frame`'s rows.
    pub fn new(frame: DataFrame) -> ArrowStream {
        ArrowStream {
            frame: Mutex::new(Some(frame)),
        }
    }
}

#[pymethods]
impl ArrowStream {
    /// The Arrow PyCapsule protocol: a capsule holding an `ArrowArrayStream` of the frame's
    /// record batches. A stream is read once; `requested_schema` is not supported (the
    /// consumer casts).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let frame = self
            .frame
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| invalid("this pqdm result was already read (a stream is read once)"))?;
        PyCapsule::new_with_value(py, export(frame), STREAM)
    }

    /// Rows in the frame (`None` once it was read).
    fn __len__(&self) -> usize {
        self.frame
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, DataFrame::height)
    }
}

/// `frame` as a C stream of struct arrays, one per record batch.
pub fn export(mut frame: DataFrame) -> ArrowArrayStream {
    frame.align_chunks_par();
    let fields: Vec<ArrowField> = frame
        .columns()
        .iter()
        .map(|c| c.field().to_arrow(CompatLevel::newest()))
        .collect();
    let dtype = ArrowDataType::Struct(fields);
    let batches: Vec<PolarsResult<Box<dyn Array>>> = frame
        .iter_chunks(CompatLevel::newest(), false)
        .map(|batch| {
            let height = batch.height();
            StructArray::try_new(dtype.clone(), height, batch.into_arrays(), None)
                .map(|a| a.boxed())
        })
        .collect();
    export_iterator(
        Box::new(batches.into_iter()),
        ArrowField::new("".into(), dtype, false),
    )
}

/// The frame an object with `__arrow_c_stream__` holds (a Polars or pyarrow frame, or anything
/// speaking the Arrow PyCapsule interface).
pub fn import(data: &Bound<'_, PyAny>) -> PyResult<DataFrame> {
    if !data.hasattr("__arrow_c_stream__")? {
        return Err(invalid(format!(
            "expected a Polars, pandas or pyarrow frame (or an object with __arrow_c_stream__), got {}",
            data.get_type().name()?
        )));
    }
    let capsule = data.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let pointer = capsule.pointer_checked(Some(STREAM))?;
    // SAFETY: a capsule named `arrow_array_stream` holds an `ArrowArrayStream` (the PyCapsule
    // interface); the stream is moved out and the capsule's copy marked released, as the
    // interface asks of a consumer.
    let stream = unsafe {
        std::ptr::replace(
            pointer.as_ptr().cast::<ArrowArrayStream>(),
            ArrowArrayStream::empty(),
        )
    };
    read_stream(stream).map_err(|e| invalid(format!("reading the frame: {e}")))
}

fn read_stream(stream: ArrowArrayStream) -> PolarsResult<DataFrame> {
    // SAFETY: `stream` comes from a producer of the C stream interface.
    let mut reader = unsafe { ArrowArrayStreamReader::try_new(Box::new(stream))? };
    let ArrowDataType::Struct(fields) = reader.field().dtype().to_storage().clone() else {
        polars_bail!(ComputeError: "the stream holds no record batches (not a struct type)");
    };
    let mut chunks: Vec<Vec<Box<dyn Array>>> = vec![vec![]; fields.len()];
    let mut height = 0usize;
    // SAFETY: as above.
    while let Some(array) = unsafe { reader.next() } {
        let array = array?;
        let Some(batch) = array.as_any().downcast_ref::<StructArray>() else {
            polars_bail!(ComputeError: "a batch of the stream is not a struct array");
        };
        height = height.saturating_add(batch.len());
        for (i, values) in batch.values().iter().enumerate() {
            chunks[i].push(values.clone());
        }
    }
    let columns = fields
        .iter()
        .zip(chunks)
        .map(|(field, arrays)| {
            let series = match arrays.is_empty() {
                true => Series::new_empty(field.name.clone(), &DataType::from_arrow_field(field)),
                false => Series::try_from((field, arrays))?,
            };
            Ok(Column::from(series))
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}
