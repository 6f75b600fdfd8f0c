// SPDX-License-Identifier: MIT
//! Memory shared with the guest: a sealed-size memfd mapped into this process.
//!
//! Every GEM object and the response page ("shmem") is one [`SharedMem`]. QEMU maps
//! the same memfd into the guest's host-visible window (`resource_map_fixed`), so the
//! guest may write it at any time while the host reads it. All accesses therefore go
//! through volatile loads and stores on a raw mapping, and every access is
//! bounds-checked here; nothing outside this module touches the pointer.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Errors of the memory layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemError {
    /// The kernel refused the allocation or mapping (errno).
    Os(i32),
    /// An access outside the object.
    OutOfBounds,
}

/// A memfd of fixed size, mapped read/write into this process.
///
/// # Invariants
/// `ptr` is the start of a live `MAP_SHARED` mapping of `fd` of exactly `len` bytes
/// (`len > 0`), unmapped only in `Drop`. The memfd is sealed against shrinking, so the
/// mapping can never fault with SIGBUS.
#[derive(Debug)]
pub(crate) struct SharedMem {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all accesses are volatile and
// bounds-checked, and concurrent access is part of the device model (a GPU and a CPU
// share memory without locks), so sharing the handle between threads is sound.
unsafe impl Send for SharedMem {}
// SAFETY: see `Send`; `&SharedMem` only allows volatile, bounds-checked access.
unsafe impl Sync for SharedMem {}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

impl SharedMem {
    /// Allocates `len` zeroed bytes (rounded up to a page) in a new memfd named `name`.
    pub(crate) fn new(name: &str, len: u64) -> Result<SharedMem, MemError> {
        if len == 0 {
            return Err(MemError::Os(libc::EINVAL));
        }
        let len = usize::try_from(len).map_err(|_| MemError::Os(libc::E2BIG))?;
        let cname = CString::new(name).map_err(|_| MemError::Os(libc::EINVAL))?;
        // SAFETY: `cname` is a valid NUL-terminated string; the flags are constants.
        let raw = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if raw < 0 {
            return Err(MemError::Os(errno()));
        }
        // SAFETY: `raw` is a fresh file descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let off = libc::off_t::try_from(len).map_err(|_| MemError::Os(libc::E2BIG))?;
        // SAFETY: plain syscalls on a descriptor we own.
        unsafe {
            if libc::ftruncate(fd.as_raw_fd(), off) != 0 {
                return Err(MemError::Os(errno()));
            }
            if libc::fcntl(
                fd.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
            ) != 0
            {
                return Err(MemError::Os(errno()));
            }
        }
        // SAFETY: mapping a descriptor we own with a length equal to its size.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemError::Os(errno()));
        }
        Ok(SharedMem { fd, ptr: p.cast(), len })
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len as u64
    }

    /// The memfd (still owned by `self`).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn range(&self, off: u64, n: usize) -> Result<usize, MemError> {
        let off = usize::try_from(off).map_err(|_| MemError::OutOfBounds)?;
        let end = off.checked_add(n).ok_or(MemError::OutOfBounds)?;
        if end > self.len {
            return Err(MemError::OutOfBounds);
        }
        Ok(off)
    }

    /// Copies `dst.len()` bytes starting at `off` out of the object.
    pub(crate) fn read(&self, off: u64, dst: &mut [u8]) -> Result<(), MemError> {
        let o = self.range(off, dst.len())?;
        for (i, b) in dst.iter_mut().enumerate() {
            // SAFETY: `o + i < len` was checked by `range`; the mapping is live (invariant).
            *b = unsafe { std::ptr::read_volatile(self.ptr.add(o + i)) };
        }
        Ok(())
    }

    /// Copies `src` into the object at `off`.
    pub(crate) fn write(&self, off: u64, src: &[u8]) -> Result<(), MemError> {
        let o = self.range(off, src.len())?;
        for (i, b) in src.iter().enumerate() {
            // SAFETY: `o + i < len` was checked by `range`; the mapping is live (invariant).
            unsafe { std::ptr::write_volatile(self.ptr.add(o + i), *b) };
        }
        Ok(())
    }

    /// Little-endian u32 at `off` (any alignment).
    pub(crate) fn read_u32(&self, off: u64) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        self.read(off, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Little-endian u64 at `off` (any alignment).
    pub(crate) fn read_u64(&self, off: u64) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read(off, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Stores a little-endian u32 at `off`.
    pub(crate) fn write_u32(&self, off: u64, v: u32) -> Result<(), MemError> {
        self.write(off, &v.to_le_bytes())
    }

    /// Stores a little-endian u64 at `off`.
    pub(crate) fn write_u64(&self, off: u64, v: u64) -> Result<(), MemError> {
        self.write(off, &v.to_le_bytes())
    }

    /// Atomically stores a u32 at a 4-aligned `off` with release ordering (a "publish").
    pub(crate) fn store_release_u32(&self, off: u64, v: u32) -> Result<(), MemError> {
        let o = self.range(off, 4)?;
        if o % 4 != 0 {
            return Err(MemError::OutOfBounds);
        }
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned), so the address
        // is a valid `AtomicU32` for the life of `self`.
        let a = unsafe { &*(self.ptr.add(o) as *const std::sync::atomic::AtomicU32) };
        a.swap(v, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Maps the whole object with `MAP_FIXED` at `addr` (for QEMU's host-visible window).
    ///
    /// # Safety
    /// `addr` must be the start of a `len()`-byte address range that the caller owns
    /// and allows to be replaced (QEMU passes a range of its own reservation).
    pub(crate) unsafe fn map_fixed_at(&self, addr: *mut libc::c_void) -> Result<(), MemError> {
        // SAFETY: the caller guarantees the range; the fd is ours and `len` its size.
        let p = unsafe {
            libc::mmap(
                addr,
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemError::Os(errno()));
        }
        Ok(())
    }

    /// Maps the whole object at a new address and returns it; the caller must
    /// release it with [`unmap_extra`].
    pub(crate) fn map_extra(&self) -> Result<*mut libc::c_void, MemError> {
        // SAFETY: a fresh mapping of our own fd at a kernel-chosen address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemError::Os(errno()));
        }
        Ok(p)
    }
}

/// Releases a mapping made by [`SharedMem::map_extra`].
///
/// # Safety
/// `(p, len)` must be exactly a mapping returned by `map_extra` that is no longer used.
pub(crate) unsafe fn unmap_extra(p: *mut libc::c_void, len: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        libc::munmap(p, len as usize);
    }
}

impl Drop for SharedMem {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` is our own live mapping (invariant); nothing else uses it
        // once the last reference is gone.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_and_bounds() {
        let m = SharedMem::new("t", 4096).expect("memfd");
        assert_eq!(m.len(), 4096);
        m.write_u32(8, 0xdead_beef).expect("w");
        assert_eq!(m.read_u32(8).expect("r"), 0xdead_beef);
        m.write_u64(4088, 7).expect("w64");
        assert_eq!(m.read_u64(4088).expect("r64"), 7);
        assert_eq!(m.read_u32(4094), Err(MemError::OutOfBounds));
        assert_eq!(m.write_u64(u64::MAX - 2, 1), Err(MemError::OutOfBounds));
        assert_eq!(SharedMem::new("z", 0).err(), Some(MemError::Os(libc::EINVAL)));
    }

    #[test]
    fn second_mapping_sees_the_same_bytes() {
        let m = SharedMem::new("t", 8192).expect("memfd");
        let p = m.map_extra().expect("map");
        // SAFETY: `p` maps 8192 bytes of the same memfd.
        unsafe { std::ptr::write_volatile((p as *mut u8).add(100), 0x5a) };
        let mut b = [0u8; 1];
        m.read(100, &mut b).expect("r");
        assert_eq!(b[0], 0x5a);
        // SAFETY: `p` came from `map_extra` on `m` and is no longer used.
        unsafe { unmap_extra(p, m.len()) };
    }
}
