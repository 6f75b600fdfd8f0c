// SPDX-License-Identifier: GPL-2.0

//! Allocation of aligned ranges: of the host-visible window (virtio shm region 1), and of
//! the response area of a context's shared page.
//!
//! A [`RangeAllocator`] is a [`MapleTreeAlloc`] whose entries hold their own length. Every
//! length is rounded up to the alignment and the space starts at 0, so every gap, and so
//! every range the tree hands out, starts at a multiple of the alignment.

use kernel::{
    maple_tree::{
        AllocErrorKind,
        MapleTreeAlloc, //
    },
    prelude::*,
};

/// Where a range starts and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    start: u64,
    len: u64,
}

/// First-fit allocator of `align`-aligned ranges in `[0, size)`.
///
/// # Invariants
///
/// `align` is a power of two; every entry of `tree` covers exactly the [`Extent`] it holds,
/// which starts at a multiple of `align` and has a non-zero length that is one too.
#[pin_data]
pub(crate) struct RangeAllocator {
    #[pin]
    tree: MapleTreeAlloc<KBox<Extent>>,
    size: u64,
    align: u64,
}

impl RangeAllocator {
    /// An allocator over `size` bytes whose ranges are aligned to `align` (a power of two).
    pub(crate) fn new(size: u64, align: u64) -> impl PinInit<Self> {
        let align = align.max(1);
        pin_init!(Self {
            tree <- MapleTreeAlloc::new(),
            size,
            align: if align.is_power_of_two() { align } else { align.next_power_of_two() },
        })
    }

    /// Allocates `len` bytes (rounded up to the alignment); returns the offset and the
    /// rounded length.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an empty or overflowing request, `ENOSPC` when no hole fits, `ENOMEM`.
    pub(crate) fn alloc(&self, len: u64) -> Result<(u64, u64)> {
        if len == 0 {
            return Err(EINVAL);
        }
        let len = len.checked_add(self.align - 1).ok_or(EINVAL)? & !(self.align - 1);
        if len > self.size {
            return Err(ENOSPC);
        }
        let size = usize::try_from(self.size).map_err(|_| EINVAL)?;
        let l = usize::try_from(len).map_err(|_| EINVAL)?;
        // The start is known only once the tree placed the range: record it right after. Until
        // then the entry matches no offset a caller could free.
        let extent = KBox::new(
            Extent {
                start: u64::MAX,
                len,
            },
            GFP_KERNEL,
        )?;
        let off = self
            .tree
            .alloc_range(l, extent, 0..size, GFP_KERNEL)
            .map_err(|e| match e.cause {
                AllocErrorKind::Busy => ENOSPC,
                cause => Error::from(cause),
            })?;
        let mut guard = self.tree.lock();
        if let Some(e) = guard.load(off) {
            e.start = off as u64;
        }
        Ok((off as u64, len))
    }

    /// Frees the range starting at `offset` and returns its length; an offset that is not
    /// the start of a range is ignored.
    ///
    /// Callers serialise the frees of one range (each range has one owner): the check and
    /// the erase below are two steps.
    pub(crate) fn free(&self, offset: u64) -> Option<u64> {
        let index = usize::try_from(offset).ok()?;
        let mut guard = self.tree.lock();
        let extent = *guard.load(index)?;
        if extent.start != offset {
            return None;
        }
        drop(guard);
        self.tree.erase(index).map(|e| e.len)
    }
}

#[kunit_tests(virtio_intel_hostmem)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_with_alignment() -> Result {
        let a = KBox::pin_init(RangeAllocator::new(0x10000, 0x1000), GFP_KERNEL)?;
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

    #[test]
    fn frees_only_at_a_range_start() -> Result {
        let a = KBox::pin_init(RangeAllocator::new(0x4000, 0x1000), GFP_KERNEL)?;
        assert_eq!(a.alloc(0x2000)?, (0, 0x2000));
        assert_eq!(a.free(0x1000), None);
        assert_eq!(a.alloc(0x3000), Err(ENOSPC));
        assert_eq!(a.free(0), Some(0x2000));
        assert_eq!(a.alloc(0x3000)?, (0, 0x3000));
        Ok(())
    }
}
