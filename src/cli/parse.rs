//! Flag values the library takes typed: metadata pairs, filters, units, hive schemas.

use super::*;

pub(super) fn parse_meta(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--meta {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

pub(super) fn timestamp_unit(
    text: &Option<String>,
) -> anyhow::Result<Option<pqdm::timestamp::Unit>> {
    Ok(text
        .as_deref()
        .map(pqdm::timestamp::Unit::parse)
        .transpose()?)
}

pub(super) fn parse_hive_schema(items: &[String]) -> anyhow::Result<BTreeMap<String, ColType>> {
    items
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv
                .split_once(['=', ':'])
                .ok_or_else(|| anyhow::anyhow!("--hive-schema {kv:?}: expected NAME=DTYPE"))?;
            Ok((k.trim().to_string(), ColType::parse(v)?))
        })
        .collect()
}

pub(super) fn parse_filters(items: &[String]) -> anyhow::Result<Vec<pqdm::Filter>> {
    Ok(items
        .iter()
        .map(|f| pqdm::Filter::parse(f))
        .collect::<pqdm::Result<_>>()?)
}

/// `--as-of TIME` in ms since the epoch: a number is ms (as in Python), a text a time.
pub(super) fn parse_as_of(text: Option<&str>) -> anyhow::Result<Option<i64>> {
    text.map(|t| {
        if let Ok(ms) = t.trim().parse::<i64>() {
            return Ok(ms);
        }
        pqdm::timestamp::parse_timestamp(t).ok_or_else(|| {
            anyhow::anyhow!(
                "--as-of {t:?}: expected a time (2024-01-05T10:00:00Z, 2024-01-05) or ms since the epoch"
            )
        })
    })
    .transpose()
}
