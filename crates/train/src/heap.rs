//! Heap-size estimates of a loaded model's containers, for the memory it reports.

use std::collections::HashMap;
use std::hash::BuildHasher;

/// Bytes of a vector's buffer (its capacity, not its length).
pub(crate) fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * size_of::<T>()
}

/// Bytes of a hash map's table: its buckets (a power of two holding the capacity at
/// 7/8 load) of one entry and one control byte each. The keys' and values' own heap is
/// not included.
pub(crate) fn map_bytes<K, V, S: BuildHasher>(m: &HashMap<K, V, S>) -> usize {
    if m.capacity() == 0 {
        return 0;
    }
    let buckets = (m.capacity() * 8 / 7).next_power_of_two();
    buckets * (size_of::<(K, V)>() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_capacity() {
        let v: Vec<u64> = Vec::with_capacity(10);
        assert_eq!(vec_bytes(&v), 80);
        let mut m: HashMap<u32, u32> = HashMap::new();
        assert_eq!(map_bytes(&m), 0);
        m.insert(1, 2);
        let b = map_bytes(&m);
        assert!(b >= m.capacity() * 9, "{b}");
    }
}
