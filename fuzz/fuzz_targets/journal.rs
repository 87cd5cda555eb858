//! The journal loader and crash recovery: fuzzed bytes as the journal a dead writer left in a
//! real dataset, then the commit lock (which rolls it back or forward). Errors are fine; a
//! panic is a bug, and so is a dataset that no longer opens at its version afterwards.
#![no_main]

mod common;

use std::fs;

use libfuzzer_sys::fuzz_target;
use pqdm::Dataset;
use pqdm::manifest::Store;

fuzz_target!(|data: &[u8]| {
    let (_tmp, dir) = common::copy_template();
    fs::create_dir_all(dir.join("_pqdm/journal")).unwrap();
    fs::write(dir.join("_pqdm/journal/00000000000000000002.json"), data).unwrap();
    let store = Store::new(&dir).unwrap();
    let _ = store.lock();
    drop(store);
    let ds = Dataset::open(&dir).expect("the dataset opens after recovery");
    assert_eq!(ds.manifest().version, 1);
});
