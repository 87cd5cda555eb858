//! What `verify --repair` can explain. It repairs the aftermath of crashes, lost or damaged
//! files and a stale `_manifest.json`; a state those cannot account for (a history that lost
//! versions, a damaged version file, a tree that holds none of the current version's files but
//! others) is reported, and a repair refuses it rather than commit a "fix" that loses data.

use std::collections::BTreeSet;

use crate::dataset::Dataset;
use crate::manifest::Manifest;

/// At most this many file names are quoted in one finding.
const EXAMPLES: usize = 3;

fn examples(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(EXAMPLES)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > EXAMPLES {
        text.push_str(&format!(" and {} more", names.len() - EXAMPLES));
    }
    text
}

impl Dataset {
    /// What `verify` saw that a repair cannot explain, each a sentence naming it: `current` is
    /// the version checked, `gone` how many of its files are in neither the tree nor
    /// `_pqdm/files/`, `orphans` the tree's data files it does not name.
    pub(crate) fn unexplained(
        &self,
        current: &Manifest,
        gone: usize,
        orphans: &[String],
    ) -> Vec<String> {
        let mut found = vec![];
        if let Some(copy) = self.store().manifest_copy_version()
            && copy > current.version
        {
            found.push(format!(
                "_manifest.json holds version {copy}, newer than the newest version in \
                 the history ({}): the history lost versions (a restored or partial copy?), \
                 and rewriting the copy from it would drop what they added",
                current.version
            ));
        }
        let mut kept = vec![];
        match self.store().versions(current) {
            Ok(versions) => {
                for v in versions.into_iter().filter(|v| *v != current.version) {
                    match self.store().load_version(v) {
                        Ok(m) => kept.push(m),
                        Err(crate::error::Error::Dataset { message, .. }) => found.push(message),
                        Err(e) => found.push(format!("version {v} of the history: {e}")),
                    }
                }
            }
            Err(e) => found.push(format!("the history cannot be listed: {e}")),
        }
        if gone > 0 && gone == current.files.len() && !orphans.is_empty() {
            let named: BTreeSet<u64> = kept
                .iter()
                .filter(|m| m.files.iter().any(|f| orphans.contains(&f.path)))
                .map(|m| m.version)
                .collect();
            let whose = match named.is_empty() {
                true => "no kept version names them".to_string(),
                false => format!(
                    "version(s) {} name some of them (the tree restored from an older state?)",
                    named
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            found.push(format!(
                "none of the {gone} file(s) of version {} is in place, yet the tree holds {} \
                 other data file(s) ({}); {whose}: dropping the one and moving the other aside \
                 would empty the dataset",
                current.version,
                orphans.len(),
                examples(orphans)
            ));
        }
        found
    }
}
