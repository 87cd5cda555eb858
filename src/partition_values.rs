//! A data file's partition values, compact and shared: one allocation per file, its column
//! names and values interned (100,000 files of a daily dataset hold a few hundred distinct
//! strings, not a million), and the whole shared between versions (a version's next version
//! copies its file list).
//!
//! As a map of 6 strings per file (a `BTreeMap` node and 12 strings), the values were a third of
//! a 100,000-file version's memory, and building them a third of reading it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One column's value: `None` is the null partition.
type Pair = (Arc<str>, Option<Arc<str>>);

/// A file's partition values (unescaped; `None` is the null partition), sorted by column, one
/// value per column. Reads and serialises as the map `{column: value}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionValues(Arc<[Pair]>);

impl Default for PartitionValues {
    fn default() -> Self {
        PartitionValues(Arc::from(Vec::new()))
    }
}

impl PartitionValues {
    /// The values of `pairs` (the last value of a repeated column wins, as in a map), with
    /// fresh strings; [`Interner::values`] shares them.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, Option<V>)>,
    ) -> Self {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| (Arc::from(k.as_ref()), v.map(|v| Arc::from(v.as_ref()))));
        Self::sorted(pairs.collect())
    }

    /// `pairs` sorted by column, the last value of a repeated column kept.
    fn sorted(mut pairs: Vec<Pair>) -> Self {
        crate::sorted::sort_keep_last(&mut pairs, |p| &*p.0);
        PartitionValues(Arc::from(pairs))
    }

    /// The value of `column`: `None` when the file has no such column, `Some(None)` for the null
    /// partition.
    pub fn get(&self, column: &str) -> Option<Option<&str>> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(column))
            .ok()
            .map(|i| self.0[i].1.as_deref())
    }

    /// The value of `column`, `None` for the null partition and for a column the file does not
    /// have.
    pub fn value(&self, column: &str) -> Option<&str> {
        self.get(column).flatten()
    }

    /// The (column, value) pairs, sorted by column.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, Option<&str>)> + '_ {
        self.0.iter().map(|(k, v)| (&**k, v.as_deref()))
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the file has no partition column.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values as a map of owned strings.
    pub fn to_map(&self) -> BTreeMap<String, Option<String>> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.map(String::from)))
            .collect()
    }
}

impl From<BTreeMap<String, Option<String>>> for PartitionValues {
    fn from(map: BTreeMap<String, Option<String>>) -> Self {
        PartitionValues::new(map)
    }
}

impl fmt::Debug for PartitionValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for PartitionValues {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, &v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for PartitionValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = PartitionValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of partition columns to text or null")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(
                    std::borrow::Cow<'de, str>,
                    Option<std::borrow::Cow<'de, str>>,
                )> = Vec::with_capacity(access.size_hint().unwrap_or(0));
                while let Some(pair) = access.next_entry::<CowStr<'de>, Option<CowStr<'de>>>()? {
                    pairs.push((pair.0.0, pair.1.map(|v| v.0)));
                }
                Ok(SHARED.with(|i| {
                    i.borrow_mut()
                        .values(pairs.iter().map(|(k, v)| (&**k, v.as_deref())))
                }))
            }
        }
        d.deserialize_map(Pairs)
    }
}

/// A string borrowed from the input where it can be (no escapes), copied where not.
struct CowStr<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(std::borrow::Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(Text)
    }
}

thread_local! {
    /// The interner manifests read on this thread share.
    static SHARED: RefCell<Interner> = RefCell::new(Interner::default());
}

/// Distinct strings kept before an interner starts afresh (interning only saves memory: a
/// long-lived process reading many datasets must not keep every string it ever saw).
const MAX_INTERNED: usize = 1 << 16;

/// Shares the strings of many files' partition values. Files listed in path order repeat their
/// neighbours' values column by column, so each position first compares with the value it last
/// gave; only a change is looked up in the set.
#[derive(Default)]
pub struct Interner {
    set: HashSet<Arc<str>>,
    /// The strings last given at each position: `[column, value]` per column.
    last: Vec<[Option<Arc<str>>; 2]>,
}

impl Interner {
    /// The values of `pairs`, their strings shared with the files before (see
    /// [`PartitionValues::new`] for repeated columns).
    pub fn values<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> PartitionValues {
        let mut out = Vec::new();
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            if self.last.len() <= i {
                self.last.push([None, None]);
            }
            let k = self.intern(i, false, k);
            let v = v.map(|v| self.intern(i, true, v));
            out.push((k, v));
        }
        PartitionValues::sorted(out)
    }

    fn intern(&mut self, position: usize, is_value: bool, s: &str) -> Arc<str> {
        let slot = &mut self.last[position][usize::from(is_value)];
        if let Some(last) = slot
            && **last == *s
        {
            return last.clone();
        }
        let shared = match self.set.get(s) {
            Some(shared) => shared.clone(),
            None => {
                if self.set.len() >= MAX_INTERNED {
                    self.set.clear();
                }
                let fresh: Arc<str> = Arc::from(s);
                self.set.insert(fresh.clone());
                fresh
            }
        };
        self.last[position][usize::from(is_value)] = Some(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_a_sorted_map_with_the_last_repeat_winning() {
        let v = PartitionValues::new([
            ("year", Some("2024")),
            ("symbol", None),
            ("year", Some("2025")),
        ]);
        assert_eq!(
            v.iter().collect::<Vec<_>>(),
            [("symbol", None), ("year", Some("2025"))]
        );
        assert_eq!(v.get("year"), Some(Some("2025")));
        assert_eq!(v.get("symbol"), Some(None));
        assert_eq!(v.get("month"), None);
        assert_eq!(v.value("symbol"), None);
        assert_eq!(v.len(), 2);
        assert!(PartitionValues::default().is_empty());
        let map = v.to_map();
        assert_eq!(PartitionValues::from(map.clone()), v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(format!("{v:?}"), format!("{map:?}"));
    }

    #[test]
    fn json_round_trips_with_escapes_nulls_and_empty_maps() {
        for text in [
            r#"{}"#,
            r#"{"a":null}"#,
            r#"{"day":"5","symbol":"BTC\"/%..[ü"}"#,
            r#"{"z":"1","a":"2","z":"3"}"#,
        ] {
            let v: PartitionValues = serde_json::from_str(text).unwrap();
            let map: BTreeMap<String, Option<String>> = serde_json::from_str(text).unwrap();
            assert_eq!(v.to_map(), map, "{text}");
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                serde_json::to_string(&map).unwrap()
            );
        }
        assert!(serde_json::from_str::<PartitionValues>(r#"{"a":1}"#).is_err());
        assert!(serde_json::from_str::<PartitionValues>(r#"["a"]"#).is_err());
    }

    #[test]
    fn an_interner_that_starts_afresh_gives_the_same_values() {
        let mut interner = Interner::default();
        let long = "é/%..[".repeat(50);
        for i in 0..MAX_INTERNED + 10 {
            let day = i.to_string();
            let v = interner.values([("day", Some(day.as_str())), ("symbol", Some(long.as_str()))]);
            assert_eq!(v.value("day"), Some(day.as_str()));
            assert_eq!(v.value("symbol"), Some(long.as_str()));
        }
        assert!(interner.set.len() <= MAX_INTERNED, "the set starts afresh");
        let again = interner.values([("day", Some("0")), ("symbol", None)]);
        assert_eq!(
            again.iter().collect::<Vec<_>>(),
            [("day", Some("0")), ("symbol", None)]
        );
    }

    #[test]
    fn interned_values_share_their_strings() {
        let mut interner = Interner::default();
        let a = interner.values([("symbol", Some("BTC")), ("day", Some("1"))]);
        let b = interner.values([("symbol", Some("ETH")), ("day", Some("1"))]);
        let c = interner.values([("symbol", Some("BTC")), ("day", None)]);
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [("day", None), ("symbol", Some("BTC"))]
        );
        let strings = |v: &PartitionValues| {
            v.0.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        let (a, b, c) = (strings(&a), strings(&b), strings(&c));
        assert!(Arc::ptr_eq(&a[0].0, &b[0].0), "column names are shared");
        assert!(
            Arc::ptr_eq(a[0].1.as_ref().unwrap(), b[0].1.as_ref().unwrap()),
            "a repeated value is shared"
        );
        assert!(
            Arc::ptr_eq(a[1].1.as_ref().unwrap(), c[1].1.as_ref().unwrap()),
            "a value seen before is shared"
        );
    }
}
