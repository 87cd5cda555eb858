//! Output for people and for scripts (`--json`), and the hint an error's flag gives.

use super::*;

/// Prints a command's JSON report, with the process's wall time and peak memory added.
pub(super) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(value)?;
    if let Some(obj) = v.as_object_mut() {
        obj.entry("wall_ms")
            .or_insert_with(|| (START.elapsed().as_millis() as u64).into());
        obj.entry("peak_rss_bytes")
            .or_insert_with(|| pqdm::metrics::peak_rss_bytes().into());
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub(super) fn key_text(key: &BTreeMap<String, Option<String>>) -> String {
    key.iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the user can do about an error, as the flag that does it.
pub(super) fn flag_hint(hint: pqdm::error::Hint) -> &'static str {
    use pqdm::error::Hint;
    match hint {
        Hint::LenientNulls => " (use --lenient to turn such values into nulls)",
        Hint::LenientKeepsRows => "; use --lenient to keep such rows",
        Hint::NameTheKind => " (pass --kind)",
        Hint::TryAgain => "; run the command again",
        _ => "",
    }
}
