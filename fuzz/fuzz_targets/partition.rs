//! Hive path segments: `escape`/`unescape` round trips, `segment` + `parse_path` give back the
//! values written, every path written is a plain relative path, and flat staged names
//! (`Staging::name_for`) read back as the path they stand for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdm::manifest::Staging;
use pqdm::partition::{
    dir_of, escape, parse_path, reads_as_null, segment, unescape, unescape_bytes,
};
use pqdm::relpath;

const PART: &str = "part-0-abc.parquet";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = unescape(&text);

    let e = escape(&text);
    assert_eq!(unescape(&e), text);
    assert_eq!(unescape_bytes(&e), text.as_bytes());
    assert!(e != "." && e != "..");
    assert!(!e.contains('/') && !e.contains('\0') && !e.contains("%%"));
    assert!(
        e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~+,@%".contains(&b)),
        "{e:?}"
    );

    // Lines alternate name, value: one partition folder per pair.
    let lines: Vec<&str> = text.split('\n').collect();
    let pairs: Vec<(&str, &str)> = lines
        .chunks(2)
        .map(|c| (c[0], c.get(1).copied().unwrap_or("")))
        .collect();
    let dir = pairs
        .iter()
        .map(|(k, v)| segment(k, Some(*v)))
        .collect::<Vec<_>>()
        .join("/");
    let rel = format!("{dir}/{PART}");
    assert_eq!(relpath::problem(&rel), None, "{rel:?}");
    assert_eq!(dir_of(&rel), dir);
    let expected: Vec<(String, Option<String>)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), (!reads_as_null(v)).then(|| v.to_string())))
        .collect();
    assert_eq!(parse_path(&rel), expected);

    let flat = Staging::name_for(&dir, PART);
    assert_eq!(flat.replace("%%", "/"), rel);
    assert_eq!(relpath::problem(&flat), None);
    assert!(flat.len() <= 240 || flat == rel);
});
