//! pqdm's errors as the Python exceptions of `pqdm.errors` (defined in Python, so that they can
//! also derive from `ValueError` and `FileNotFoundError`), with pqdm's own messages.

use pyo3::prelude::*;

/// The exception class of `pqdm.errors` an error becomes.
fn class_of(e: &pqdm::Error) -> &'static str {
    use pqdm::Error::*;
    match e {
        Cast { .. }
        | TimestampRange { .. }
        | PartitionValue { .. }
        | PartitionTooLong { .. }
        | Schema(_)
        | Options(_)
        | Input { .. }
        | MissingValue { .. }
        | KindNeeded { .. } => "InvalidInputError",
        Conflict { .. } | PartitionExists { .. } => "ConflictError",
        Dataset { message, .. }
            if message.starts_with("no such folder")
                || message.starts_with("not a pqdm dataset") =>
        {
            "NotFoundError"
        }
        Dataset { message, .. } if message.starts_with("a dataset already exists") => {
            "ConflictError"
        }
        Dataset { message, .. } if message.starts_with("holds kind") => "InvalidInputError",
        Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "NotFoundError",
        _ => "PqdmError",
    }
}

/// `e` as an exception of `pqdm.errors` carrying pqdm's message, and what to do about it in
/// Python's terms where pqdm knows (the parameter that does it).
pub fn to_py(e: pqdm::Error) -> PyErr {
    let hint = match e.hint() {
        Some(pqdm::error::Hint::LenientNulls) => {
            " (pass lenient=True to turn such values into nulls)"
        }
        Some(pqdm::error::Hint::LenientKeepsRows) => "; pass lenient=True to keep such rows",
        Some(pqdm::error::Hint::NameTheKind) => " (pass kind=...)",
        Some(pqdm::error::Hint::TryAgain) => "; call it again",
        _ => "",
    };
    raise(
        class_of(&e),
        format!("{}{hint}", pqdm::error::clip_lines(&e.to_string())),
    )
}

/// An exception of class `name` (of `pqdm.errors`) with `message`.
pub fn raise(name: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let made = py
            .import("pqdm.errors")
            .and_then(|m| m.getattr(name))
            .and_then(|class| class.call1((message.clone(),)));
        match made {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    })
}

/// Bad input from Python (an option, a filter, a frame): `pqdm.InvalidInputError`.
pub fn invalid(message: impl Into<String>) -> PyErr {
    raise("InvalidInputError", message.into())
}

/// A result of the library as a Python result.
pub trait IntoPy<T> {
    /// Maps the error to its exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for pqdm::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
