// SPDX-License-Identifier: MIT
//! Id tables that hand out the lowest free id, as i915 does.
//!
//! i915 allocates GEM context ids with `xa_alloc(.., xa_limit_32b, ..)` on an
//! `XA_FLAGS_ALLOC` xarray (id 0 is the default context, so user contexts get the
//! lowest free id from 1), VM ids with `xa_alloc(.., xa_limit_32b, ..)` on an
//! `XA_FLAGS_ALLOC1` xarray (lowest free from 1), and the DRM core allocates GEM
//! handles with `idr_alloc(.., 1, 0, ..)` (lowest free in `1..=INT_MAX`). None of
//! them is cyclic: a freed id is the next one handed out. Guests can see this, and
//! the host's `banned_ctx_mask` depends on it, since it only has bits for ids below 64.
//!
//! [`IdTable`] keeps the entries in a map and the free ids in an ordered set, so both
//! allocation and release cost `O(log n)` however many ids were used before.

use std::collections::{BTreeSet, HashMap};

/// A map from ids to entries whose ids are allocated lowest-free in `min..=max`.
///
/// Ids outside that range can be placed with [`IdTable::insert_reserved`] (i915's
/// default context 0); they are never handed out.
pub(crate) struct IdTable<T> {
    entries: HashMap<u32, T>,
    min: u32,
    max: u32,
    /// Every id in `min..next` is in use or in `free`; no id at or above `next` is used.
    next: u64,
    /// Released ids below `next`.
    free: BTreeSet<u32>,
}

impl<T> IdTable<T> {
    /// An empty table allocating from `min..=max` (`min <= max`).
    pub(crate) fn new(min: u32, max: u32) -> IdTable<T> {
        IdTable { entries: HashMap::new(), min, max: max.max(min), next: u64::from(min), free: BTreeSet::new() }
    }

    /// Stores `value` under the lowest free id and returns the id, or `None` when every
    /// id of the range is in use.
    pub(crate) fn insert(&mut self, value: T) -> Option<u32> {
        let id = match self.free.pop_first() {
            Some(id) => id,
            None if self.next <= u64::from(self.max) => {
                // `next <= max <= u32::MAX`, so the conversion cannot fail.
                let id = u32::try_from(self.next).ok()?;
                self.next += 1;
                id
            }
            None => return None,
        };
        self.entries.insert(id, value);
        Some(id)
    }

    /// Stores `value` under `id`, an id outside the allocation range (e.g. i915's
    /// default context 0). Returns `false`, storing nothing, for an id of the range.
    pub(crate) fn insert_reserved(&mut self, id: u32, value: T) -> bool {
        if (self.min..=self.max).contains(&id) {
            return false;
        }
        self.entries.insert(id, value);
        true
    }

    /// Removes the entry of `id` and frees the id for the next [`IdTable::insert`].
    pub(crate) fn remove(&mut self, id: u32) -> Option<T> {
        let value = self.entries.remove(&id)?;
        if (self.min..=self.max).contains(&id) {
            self.release(id);
        }
        Some(value)
    }

    /// Takes the entry of `id` out while keeping the id allocated; put it back with
    /// [`IdTable::restore`].
    pub(crate) fn take(&mut self, id: u32) -> Option<T> {
        self.entries.remove(&id)
    }

    /// Puts back an entry taken with [`IdTable::take`].
    pub(crate) fn restore(&mut self, id: u32, value: T) {
        self.entries.insert(id, value);
    }

    fn release(&mut self, id: u32) {
        if u64::from(id) + 1 == self.next {
            // The highest id goes: shrink `next` over it and over freed ids below it,
            // so that `free` only holds ids that sit below a used one.
            self.next -= 1;
            while let Some(&last) = self.free.last() {
                if u64::from(last) + 1 != self.next {
                    break;
                }
                self.free.pop_last();
                self.next -= 1;
            }
        } else {
            self.free.insert(id);
        }
    }

    /// The entry of `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.entries.get(&id)
    }

    /// Every entry with its id, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.entries.iter().map(|(id, v)| (*id, v))
    }

    /// Every entry, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.values()
    }

    /// How many entries are stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_id_first() {
        let mut t = IdTable::new(1, u32::MAX);
        assert_eq!((t.insert('a'), t.insert('b'), t.insert('c')), (Some(1), Some(2), Some(3)));
        assert_eq!(t.remove(2), Some('b'));
        assert_eq!(t.remove(2), None);
        assert_eq!(t.insert('d'), Some(2));
        assert_eq!(t.remove(1), Some('a'));
        assert_eq!(t.remove(3), Some('c'));
        assert_eq!(t.insert('e'), Some(1));
        assert_eq!(t.insert('f'), Some(3));
        assert_eq!(t.get(2), Some(&'d'));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn ids_are_reused_after_many_create_destroy_cycles() {
        let mut t = IdTable::new(1, u32::MAX);
        let keep = t.insert(0u32);
        for i in 0..100_000 {
            let id = t.insert(i).expect("id");
            assert_eq!(id, 2);
            assert_eq!(t.remove(id), Some(i));
        }
        assert_eq!(keep, Some(1));
        // Free everything in an odd order: the table shrinks back to its start.
        let ids: Vec<u32> = (0..1000).map(|i| t.insert(i).expect("id")).collect();
        for id in ids.iter().rev().step_by(2).chain(ids.iter().step_by(2)) {
            t.remove(*id);
        }
        t.remove(1);
        assert_eq!(t.len(), 0);
        assert!(t.free.is_empty());
        assert_eq!(t.next, 1);
        assert_eq!(t.insert(7), Some(1));
    }

    #[test]
    fn range_is_bounded_and_reserved_ids_stay_outside() {
        let mut t = IdTable::new(1, 3);
        assert!(t.insert_reserved(0, 'z'));
        assert!(!t.insert_reserved(2, 'y'));
        assert_eq!((t.insert('a'), t.insert('b'), t.insert('c'), t.insert('d')), (Some(1), Some(2), Some(3), None));
        assert_eq!(t.remove(0), Some('z'));
        assert_eq!(t.insert('d'), None, "id 0 is not in the range");
        assert_eq!(t.remove(2), Some('b'));
        assert_eq!(t.insert('e'), Some(2));
        // Taking an entry out keeps its id.
        assert_eq!(t.take(1), Some('a'));
        assert_eq!(t.insert('f'), None);
        t.restore(1, 'a');
        assert_eq!(t.get(1), Some(&'a'));
        let mut t = IdTable::new(u32::MAX, u32::MAX);
        assert_eq!((t.insert(()), t.insert(())), (Some(u32::MAX), None));
        assert_eq!(t.remove(u32::MAX), Some(()));
        assert_eq!(t.insert(()), Some(u32::MAX));
    }
}
