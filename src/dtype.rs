//! [`ColType`]: the column dtypes pqdm records in manifests and kind files, and their Polars
//! dtypes. A leaf module: schemas, partitions, casts and manifests all name columns' types.

use polars::prelude::DataType;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A column dtype as pqdm records it in manifests and kind files (`i64`, `f64`, `str`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColType {
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// 16-bit signed integer.
    I16,
    /// 8-bit signed integer.
    I8,
    /// 64-bit float.
    F64,
    /// Boolean.
    Bool,
    /// UTF-8 string.
    Str,
    /// Calendar date.
    Date,
}

impl ColType {
    /// The Polars dtype.
    pub fn dtype(self) -> DataType {
        match self {
            ColType::I64 => DataType::Int64,
            ColType::I32 => DataType::Int32,
            ColType::I16 => DataType::Int16,
            ColType::I8 => DataType::Int8,
            ColType::F64 => DataType::Float64,
            ColType::Bool => DataType::Boolean,
            ColType::Str => DataType::String,
            ColType::Date => DataType::Date,
        }
    }

    /// The pqdm dtype of a Polars dtype, if pqdm can record it.
    pub fn from_dtype(dtype: &DataType) -> Option<ColType> {
        Some(match dtype {
            DataType::Int64 | DataType::UInt64 | DataType::UInt32 => ColType::I64,
            DataType::Int32 | DataType::UInt16 => ColType::I32,
            DataType::Int16 | DataType::UInt8 => ColType::I16,
            DataType::Int8 => ColType::I8,
            DataType::Float64 | DataType::Float32 => ColType::F64,
            DataType::Boolean => ColType::Bool,
            DataType::String => ColType::Str,
            DataType::Date => ColType::Date,
            DataType::Datetime(_, _) => ColType::I64,
            _ => return None,
        })
    }

    /// The name used in manifests and kind files.
    pub fn name(self) -> &'static str {
        match self {
            ColType::I64 => "i64",
            ColType::I32 => "i32",
            ColType::I16 => "i16",
            ColType::I8 => "i8",
            ColType::F64 => "f64",
            ColType::Bool => "bool",
            ColType::Str => "str",
            ColType::Date => "date",
        }
    }

    /// Parses a dtype name (`i64`, `int64`, `f64`, `float`, `str`, `string`, `bool`, ...).
    pub fn parse(name: &str) -> Result<ColType> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "i64" | "int64" | "long" | "bigint" => ColType::I64,
            "i32" | "int32" | "int" => ColType::I32,
            "i16" | "int16" => ColType::I16,
            "i8" | "int8" => ColType::I8,
            "f64" | "float64" | "float" | "double" | "f32" => ColType::F64,
            "bool" | "boolean" => ColType::Bool,
            "str" | "string" | "utf8" => ColType::Str,
            "date" => ColType::Date,
            other => {
                return Err(Error::Schema(format!(
                    "unknown dtype `{other}` (expected one of i64, i32, i16, i8, f64, bool, str, date)"
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_parses_back_from_its_name_and_maps_to_polars_and_back() {
        use ColType::*;
        for t in [I64, I32, I16, I8, F64, Bool, Str, Date] {
            assert_eq!(ColType::parse(t.name()).unwrap(), t);
            assert_eq!(ColType::from_dtype(&t.dtype()), Some(t));
        }
        assert_eq!(ColType::parse(" BigInt ").unwrap(), I64);
        assert_eq!(ColType::parse("float").unwrap(), F64);
        let err = ColType::parse("decimal").unwrap_err().to_string();
        assert!(err.contains("unknown dtype `decimal`"), "{err}");
        // Unsigned and 32-bit floats widen; nested types have no pqdm dtype.
        assert_eq!(ColType::from_dtype(&DataType::UInt32), Some(I64));
        assert_eq!(ColType::from_dtype(&DataType::Float32), Some(F64));
        assert_eq!(
            ColType::from_dtype(&DataType::List(Box::new(DataType::Int64))),
            None
        );
    }
}
