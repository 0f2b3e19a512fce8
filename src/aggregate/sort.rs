//! Sorting a flush's series by name, fast at a million names. Comparing
//! boxed strings chases a pointer and calls memcmp per comparison; here
//! each name is read twice in all (its shared prefix, its key), the sort
//! runs on 16-byte `(key, index)` pairs, and only names whose keys tie are
//! compared in full. The order is exactly `str`'s (byte-wise).

/// Sorts `entries` by name, as `sort_unstable_by(|a, b| a.0.cmp(&b.0))`.
pub fn sort_by_name<K: AsRef<str> + Ord, T>(entries: &mut [(K, T)]) {
    if entries.len() < 64 || u32::try_from(entries.len()).is_err() {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        return;
    }
    let common = common_prefix(entries);
    let mut order: Vec<(u64, u32)> = entries
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (key_after(name.as_ref().as_bytes(), common), i as u32))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| entries[a.1 as usize].0.cmp(&entries[b.1 as usize].0))
    });
    permute(entries, &mut order);
}

/// Length of the prefix every name shares.
fn common_prefix<K: AsRef<str>, T>(entries: &[(K, T)]) -> usize {
    let first = entries
        .first()
        .map_or(&b""[..], |e| e.0.as_ref().as_bytes());
    let mut common = first.len();
    for (name, _) in entries {
        let name = name.as_ref().as_bytes();
        common = common.min(name.len());
        common = first[..common]
            .iter()
            .zip(name)
            .position(|(a, b)| a != b)
            .unwrap_or(common);
        if common == 0 {
            break;
        }
    }
    common
}

/// Eight bytes from `at`, big-endian, zero-padded: two names whose keys
/// differ compare as their keys do (a name that ends first pads with 0,
/// below any byte the other has, or ties with a 0 byte and is compared in
/// full). Names that share the first `at` bytes compare as their keys.
fn key_after(name: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    let rest = name.get(at..).unwrap_or_default();
    let n = rest.len().min(8);
    bytes[..n].copy_from_slice(&rest[..n]);
    u64::from_be_bytes(bytes)
}

/// Reorders in place so that position k holds what was at `order[k].1`
/// (a permutation; it is used up as the visited marks).
fn permute<T>(entries: &mut [T], order: &mut [(u64, u32)]) {
    for start in 0..entries.len() {
        let mut current = start;
        loop {
            let next = order[current].1 as usize;
            order[current].1 = current as u32;
            if next == start || next == current {
                break;
            }
            entries.swap(current, next);
            current = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: Vec<String>) {
        let mut ours: Vec<(Box<str>, usize)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str().into(), i))
            .collect();
        let mut want = ours.clone();
        want.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sort_by_name(&mut ours);
        assert_eq!(ours, want);
    }

    #[test]
    fn same_order_as_str() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..50 {
            let alphabet: &[char] = if round % 2 == 0 {
                &['a', 'b', '.', '\0', 'é']
            } else {
                &['x', 'y']
            };
            let prefix = ["", "bench.c.", "servers.web01.cpu."][round % 3];
            let mut names: Vec<String> = (0..rng.usize(60..400))
                .map(|_| {
                    let len = rng.usize(0..14);
                    let tail: String = (0..len)
                        .map(|_| alphabet[rng.usize(..alphabet.len())])
                        .collect();
                    format!("{prefix}{tail}")
                })
                .collect();
            names.sort();
            names.dedup();
            rng.shuffle(&mut names);
            check(names);
        }
    }

    #[test]
    fn numbered_names() {
        let mut names: Vec<String> = (0..10_000).map(|i| format!("bench.c.{i}")).collect();
        fastrand::Rng::with_seed(1).shuffle(&mut names);
        check(names);
    }
}
