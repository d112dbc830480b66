//! The pages a reader has read, kept compactly and bounded, so that none of them is
//! recommended to them again.
//!
//! A page is kept as a 32-bit FNV-1a hash of its id (4 bytes, however long the id), the
//! newest reads first, each page once. With `n` pages held, a page the reader has not
//! read is taken for read with probability about `n / 2³²` (2.3·10⁻⁷ at 1,000 pages):
//! it is left out of their list, nothing worse. Past the cap the oldest reads go first.

use serde::{Deserialize, Serialize};

use crate::ids::PageId;

/// Default cap of a reader's read set: more than any G1 reader reads of one serving
/// pool.
pub const DEFAULT_READ_SET_MAX: usize = 1_000;

/// A reader's read pages, newest first, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReadSet(Vec<u32>);

/// The hash a page is kept as: FNV-1a over its id's bytes (stable across builds and
/// processes, unlike the standard library's hasher).
pub fn page_hash(page: &PageId) -> u32 {
    page.as_str().bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl ReadSet {
    /// The set of `pages` (newest first), capped at `cap`.
    pub fn of<'a>(pages: impl IntoIterator<Item = &'a PageId>, cap: usize) -> Self {
        let mut s = ReadSet::default();
        s.put_newest_first(pages.into_iter().map(page_hash), cap);
        s
    }

    /// Pages held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Puts `newer` (newest first) in front of what is held, each page once (a page read
    /// again moves to the front), and keeps the `cap` newest. Adding two runs of reads
    /// one after the other gives the same set as adding them as one run.
    pub fn put_newest_first(&mut self, newer: impl IntoIterator<Item = u32>, cap: usize) {
        // A batch brings a reader a few pages: those are deduplicated by a scan, and the
        // held set is filtered in place rather than rebuilt through a hash set.
        const SCAN_MAX: usize = 16;
        let mut front: Vec<u32> = Vec::new();
        // Only built once `front` outgrows a scan (a long run: a replay, a merge).
        let mut fresh: Option<std::collections::HashSet<u32>> = None;
        for h in newer {
            if front.len() >= cap {
                break;
            }
            let new = match &mut fresh {
                Some(set) => set.insert(h),
                None => !front.contains(&h),
            };
            if new {
                front.push(h);
                if fresh.is_none() && front.len() > SCAN_MAX {
                    fresh = Some(front.iter().copied().collect());
                }
            }
        }
        match &fresh {
            Some(set) => self.0.retain(|h| !set.contains(h)),
            None => self.0.retain(|h| !front.contains(h)),
        }
        self.0.truncate(cap - front.len());
        front.append(&mut self.0);
        self.0 = front;
    }

    /// Merges `other` (another partition's reads of the same reader) into this one:
    /// the union, this set's pages first, capped at `cap`.
    pub fn union(&mut self, other: &ReadSet, cap: usize) {
        let mine = std::mem::take(&mut self.0);
        self.put_newest_first(mine.into_iter().chain(other.0.iter().copied()), cap);
    }

    /// The hashes, newest first.
    pub fn hashes(&self) -> &[u32] {
        &self.0
    }

    /// A lookup table for many `contains` checks (one request's candidates).
    pub fn lookup(&self) -> ReadLookup {
        let mut v = self.0.clone();
        v.sort_unstable();
        ReadLookup(v)
    }
}

/// A [`ReadSet`] sorted for lookups.
#[derive(Debug, Clone, Default)]
pub struct ReadLookup(Vec<u32>);

impl ReadLookup {
    /// Whether `page` was read (up to the hash's false positives, see the module doc).
    pub fn contains(&self, page: &PageId) -> bool {
        self.0.binary_search(&page_hash(page)).is_ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> PageId {
        PageId::parse(s).unwrap()
    }

    #[test]
    fn rereads_move_to_the_front_and_the_oldest_go_past_the_cap() {
        let mut s = ReadSet::of([&p("c"), &p("b"), &p("a")], 3);
        s.put_newest_first([page_hash(&p("a")), page_hash(&p("d"))], 3);
        assert_eq!(
            s.hashes(),
            &[page_hash(&p("a")), page_hash(&p("d")), page_hash(&p("c"))]
        );
        let l = s.lookup();
        assert!(l.contains(&p("a")) && l.contains(&p("c")) && !l.contains(&p("b")));
    }

    proptest! {
        #[test]
        fn split_runs_equal_one_run(pages in proptest::collection::vec(0u32..40, 0..200), cut in 0usize..200, cap in 1usize..50) {
            let cut = cut.min(pages.len());
            // `pages` oldest first; each run is put newest first.
            let mut whole = ReadSet::default();
            whole.put_newest_first(pages.iter().rev().copied(), cap);
            let mut parts = ReadSet::default();
            parts.put_newest_first(pages[..cut].iter().rev().copied(), cap);
            parts.put_newest_first(pages[cut..].iter().rev().copied(), cap);
            prop_assert_eq!(whole, parts);
        }
    }
}
