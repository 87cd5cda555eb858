//! Polars panics, rather than erring, when it plans a scan of a Parquet file holding a column
//! type this build lacks (DECIMAL, an interval, an extension type): pqdm checks the files it
//! adopts and ingests first (see [`crate::footer::polars_reads`]), but a file rewritten in place
//! by another tool after its commit reaches Polars unchecked. [`caught`] turns such a panic into
//! an error; every other panic stays one (it is a bug). [`quietly`] is for a library that
//! panics on damaged input (the parquet crate's decoders, on a damaged Delta checkpoint).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::error::Error;
#[cfg(test)]
use crate::error::Result;

/// Whether a panic's message is Polars refusing a column type (`DataType::from_arrow`).
pub fn is_unsupported_type(message: &str) -> bool {
    message.contains("not supported by Polars")
        || message.contains("activate the '")
        // An Arrow time zone Polars cannot parse (`+05:30`), unwrapped while it plans.
        || message.contains("unable to parse time zone")
}

/// The text of a panic's payload.
pub fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("")
}

/// Runs `f`; Polars' panic on a column type it cannot read becomes [`Error::Polars`] with
/// `context` (so a caller that names damaged files on read errors names them), other panics
/// continue.
pub fn caught<T, E: From<Error>>(
    context: &str,
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) if is_unsupported_type(message(&*payload)) => {
            let why = format!(
                "a file holds a column type Polars cannot read: {}",
                message(&*payload)
            );
            Err(
                Error::polars(context.to_string())(polars::error::PolarsError::ComputeError(
                    why.into(),
                ))
                .into(),
            )
        }
        Err(payload) => resume_unwind(payload),
    }
}

thread_local! {
    /// Whether this thread runs inside [`quietly`].
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, returning any panic of it as `Err` with its message (the caller reports it as
/// an error); the command line's hook stays silent for it.
pub fn quietly<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let outer = QUIET.replace(true);
    let out = catch_unwind(AssertUnwindSafe(f));
    QUIET.set(outer);
    out.map_err(|payload| message(&*payload).to_string())
}

/// Installs a panic hook that stays silent for the panics [`caught`] turns into errors and
/// those inside [`quietly`] (the error is reported instead) and prints every other one as
/// before. For the command line.
pub fn quiet_for_caught() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_unsupported_type(message(info.payload())) && !QUIET.get() {
            default(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unsupported_type_panics_become_errors() {
        let err = caught("scan", || -> Result<()> {
            panic!("Arrow datatype Decimal(5, 2) not supported by Polars. You probably need to activate that data-type feature.")
        })
        .unwrap_err();
        assert!(matches!(err, Error::Polars { .. }), "{err}");
        assert!(err.to_string().contains("scan"), "{err}");
        let other =
            catch_unwind(|| caught("scan", || -> Result<()> { panic!("index out of bounds") }));
        assert_eq!(message(&*other.unwrap_err()), "index out of bounds");
        assert_eq!(caught("scan", || -> Result<i32> { Ok(7) }).unwrap(), 7);
    }

    #[test]
    fn quietly_returns_any_panic_as_its_message_and_nests() {
        assert_eq!(quietly(|| 7), Ok(7));
        assert_eq!(
            quietly(|| -> i32 { panic!("range end index 4 out of range") }),
            Err("range end index 4 out of range".to_string())
        );
        let nested = quietly(|| {
            let inner = quietly(|| -> () { panic!("inner") });
            assert!(QUIET.get(), "still quiet after the inner call");
            inner
        });
        assert_eq!(nested, Ok(Err("inner".to_string())));
        assert!(!QUIET.get());
    }
}
