//! Lists sorted by a key with one item per key, as a map would hold them.

/// Sorts `items` by `key`, keeping the last of items with equal keys (as inserting them into a
/// map in order would). A list already sorted with distinct keys is only checked.
pub(crate) fn sort_keep_last<T, K: Ord + ?Sized>(items: &mut Vec<T>, key: impl Fn(&T) -> &K) {
    if items.is_sorted_by(|a, b| key(a) < key(b)) {
        return;
    }
    // Stable: of equal keys, the last given stays last.
    items.sort_by(|a, b| key(a).cmp(key(b)));
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        match kept.last_mut() {
            Some(last) if key(last) == key(&item) => *last = item,
            _ => kept.push(item),
        }
    }
    *items = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_of_equal_keys_stays() {
        let mut v = vec![("b", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)];
        sort_keep_last(&mut v, |x| x.0);
        assert_eq!(v, [("a", 4), ("b", 3), ("c", 5)]);
        let mut sorted = vec![("a", 1), ("b", 2)];
        sort_keep_last(&mut sorted, |x| x.0);
        assert_eq!(sorted, [("a", 1), ("b", 2)]);
        let mut empty: Vec<(&str, i32)> = vec![];
        sort_keep_last(&mut empty, |x| x.0);
        assert!(empty.is_empty());
    }
}
