//! Small text parsers reached from user input and file names: the CSV first-line sniffer,
//! Binance file-name hints, durations, byte sizes, timestamps, timeframes, compression and
//! write-mode names, relative-path checks and kind TOML files. Never a panic; invariants
//! asserted where the functions promise them.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use pqdm::schema::{ColType, KindRegistry};
use pqdm::source::{NameHints, sniff};
use pqdm::timestamp::{self, MAX_MS, Unit};
use pqdm::{Compression, WriteMode, options, relpath};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    let s = sniff(text);
    assert!(b",\t;|".contains(&s.separator));
    assert!(s.fields >= 1);

    let hints = NameHints::from_path(Path::new(text));
    if hints.symbol.is_some() {
        assert!(hints.exchange().is_some());
        assert!(hints.period.is_some());
        assert!(hints.data_type.is_some());
    }
    let _ = hints.constants();

    let _ = options::parse_duration(text);
    let _ = options::parse_bytes(text);
    if let Some(ms) = timestamp::parse_timestamp(text) {
        let _ = timestamp::format_millis(ms);
    }
    if let Ok(Some(ms)) = timestamp::timeframe_cadence(text) {
        assert!((1_000..=MAX_MS).contains(&ms));
    }
    let _ = pqdm::maintain::verify::cadence_ms(text);
    let _ = Unit::parse(text);
    let _ = ColType::parse(text);
    if let Ok(c) = text.parse::<Compression>() {
        let _ = c.to_polars();
    }
    let _ = text.parse::<WriteMode>();

    if relpath::problem(text).is_none() {
        let p = Path::new(text);
        assert!(!p.is_absolute());
        assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
    }

    let mut kinds = KindRegistry::default();
    let _ = kinds.add_toml(text, "fuzz");
});
