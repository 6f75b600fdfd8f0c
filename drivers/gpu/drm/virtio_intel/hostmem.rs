// SPDX-License-Identifier: GPL-2.0

//! Allocation of ranges of the host-visible window (virtio shm region 1).

use kernel::prelude::*;

/// First-fit allocator of aligned ranges in `[0, size)`.
///
/// # Invariants
///
/// `used` is sorted by start and its ranges do not overlap and lie inside `[0, size)`.
pub(crate) struct RangeAllocator {
    size: u64,
    align: u64,
    used: KVec<(u64, u64)>,
}

impl RangeAllocator {
    /// An allocator over `size` bytes whose ranges are aligned to `align` (a power of two).
    pub(crate) fn new(size: u64, align: u64) -> Self {
        Self {
            size,
            align: align.max(1),
            used: KVec::new(),
        }
    }

    /// Allocates `len` bytes (rounded up to the alignment); returns the offset and the
    /// rounded length.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an empty or overflowing request, `ENOSPC` when no hole fits.
    pub(crate) fn alloc(&mut self, len: u64) -> Result<(u64, u64)> {
        if len == 0 {
            return Err(EINVAL);
        }
        let len = len.checked_add(self.align - 1).ok_or(EINVAL)? & !(self.align - 1);
        let mut cursor = 0u64;
        let mut at = self.used.len();
        for (i, &(start, l)) in self.used.iter().enumerate() {
            if cursor.checked_add(len).is_some_and(|end| end <= start) {
                at = i;
                break;
            }
            cursor = start + l;
        }
        if cursor.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(ENOSPC);
        }
        self.used.reserve(1, GFP_KERNEL)?;
        self.used
            .insert_within_capacity(at, (cursor, len))
            .map_err(|_| ENOMEM)?;
        Ok((cursor, len))
    }

    /// Frees the range starting at `offset` and returns its length; unknown offsets are
    /// ignored.
    pub(crate) fn free(&mut self, offset: u64) -> Option<u64> {
        let i = self.used.iter().position(|&(s, _)| s == offset)?;
        self.used.remove(i).ok().map(|(_, l)| l)
    }
}

#[kunit_tests(virtio_intel_hostmem)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_with_alignment() -> Result {
        let mut a = RangeAllocator::new(0x10000, 0x1000);
        assert_eq!(a.alloc(1)?, (0, 0x1000));
        assert_eq!(a.alloc(0x1001)?, (0x1000, 0x2000));
        assert_eq!(a.alloc(0x1000)?.0, 0x3000);
        assert_eq!(a.free(0x1000), Some(0x2000));
        assert_eq!(a.free(0x1000), None);
        assert_eq!(a.alloc(0x1000)?.0, 0x1000);
        assert_eq!(a.alloc(0x2000)?.0, 0x4000);
        assert_eq!(a.alloc(0x10000), Err(ENOSPC));
        assert_eq!(a.alloc(0), Err(EINVAL));
        assert_eq!(a.alloc(u64::MAX), Err(EINVAL));
        Ok(())
    }
}
