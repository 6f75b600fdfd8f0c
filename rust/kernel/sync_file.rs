// SPDX-License-Identifier: GPL-2.0

//! Sync files: a DMA fence as a file descriptor, which userspace can poll, merge and pass to
//! other drivers.
//!
//! C header: [`include/linux/sync_file.h`](srctree/include/linux/sync_file.h).
//!
//! A driver that hands out a fence as an fd (i915's `I915_EXEC_FENCE_OUT`, say) reserves the
//! fd first, creates the [`SyncFile`] once the fence exists, and installs it only when
//! nothing can fail any more; one that takes an fd from userspace gets its fence with
//! [`fence_of_fd`].

use crate::{
    bindings,
    dma_fence::Fence,
    fs::{
        file::FileDescriptorReservation,
        File, //
    },
    prelude::*,
    sync::aref::ARef,
};
use core::ptr::NonNull;

/// A sync file not installed in any process's file table yet.
///
/// # Invariants
///
/// `file` is the file of the `struct sync_file` at `sync_file`, and this value holds the
/// only reference to it that `sync_file_create()` returned.
pub struct SyncFile {
    file: ARef<File>,
    sync_file: NonNull<bindings::sync_file>,
}

// SAFETY: The file is reference counted and its sync file is immutable but for the fence
// callback, which the core guards.
unsafe impl Send for SyncFile {}
// SAFETY: See `Send`; `&SyncFile` only reads.
unsafe impl Sync for SyncFile {}

impl SyncFile {
    /// Creates a sync file for `fence` (`sync_file_create()`), which keeps its own reference.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn new(fence: &Fence) -> Result<Self> {
        // SAFETY: `fence` is a live fence; the sync file takes its own reference.
        let sync_file =
            NonNull::new(unsafe { bindings::sync_file_create(fence.as_ptr()) }).ok_or(ENOMEM)?;
        // SAFETY: A new sync file has a file, whose one reference the caller owns.
        let file = unsafe {
            ARef::from_raw(NonNull::new_unchecked(
                (*sync_file.as_ptr()).file.cast::<File>(),
            ))
        };
        // INVARIANT: `file` holds the reference `sync_file_create()` returned.
        Ok(Self { file, sync_file })
    }

    /// The fence the sync file stands for.
    pub fn fence(&self) -> Fence {
        // SAFETY: The sync file is alive while its file is (invariant); its fence pointer is
        // set at creation, and a reference to it is taken for the returned value.
        unsafe {
            let f = (*self.sync_file.as_ptr()).fence;
            bindings::dma_fence_get(f);
            Fence::from_raw(NonNull::new_unchecked(f))
        }
    }

    /// Installs the sync file at the reserved fd, which the caller's process sees from now
    /// on; the file table owns the file.
    pub fn install(self, fd: FileDescriptorReservation) {
        fd.fd_install(self.file);
    }
}

/// The fence of sync file `fd` of the current process (`sync_file_get_fence()`), or `None`
/// when `fd` is not an open sync file.
pub fn fence_of_fd(fd: u32) -> Option<Fence> {
    let fd = i32::try_from(fd).ok()?;
    // SAFETY: Looks `fd` up in the current file table and returns a new fence reference or
    // NULL.
    let f = unsafe { bindings::sync_file_get_fence(fd) };
    // SAFETY: A non-NULL result carries a reference for the caller.
    NonNull::new(f).map(|f| unsafe { Fence::from_raw(f) })
}

#[kunit_tests(rust_sync_file)]
mod tests {
    use super::*;
    use crate::dma_fence::FenceContext;

    #[test]
    fn sync_file_holds_its_fence() -> Result {
        let ctx = FenceContext::new(c"kunit", c"sync-file")?;
        let sf = ctx.new_fence(3)?;
        let f = sf.fence();
        let file = SyncFile::new(&f)?;
        let g = file.fence();
        assert_eq!(g.as_ptr(), f.as_ptr());
        drop(f);
        drop(g);
        // The sync file keeps the fence alive.
        assert_eq!(file.fence().seqno(), 3);
        sf.signal(Ok(()));
        assert!(file.fence().is_signaled());
        drop(file);
        Ok(())
    }

    #[test]
    fn bad_fds_have_no_fence() {
        assert!(fence_of_fd(u32::MAX).is_none());
        assert!(fence_of_fd(1 << 30).is_none());
    }
}
