// SPDX-License-Identifier: GPL-2.0

//! Kernel mappings of a virtio shared memory region.
//!
//! A virtio device can expose memory that both the host and the guest access, through a
//! shared memory region ([`super::ShmRegion`]), reserved by the driver bound to the device.
//! [`ShmMapping`] maps a window of such a region into the kernel for as long as the binding
//! lasts. The host writes the memory concurrently, so every access is a
//! bounds-checked volatile load or store; [`ShmMapping::load_acquire_u32`] and
//! [`ShmMapping::load_acquire_u64`] read a value the host publishes in one single-copy-atomic
//! load and order every later read after it.

use crate::{
    bindings,
    prelude::*,
    sync::atomic::{
        Acquire,
        Atomic,
        AtomicType, //
    }, //
};

use super::ShmRegion;
use crate::mm::virt::PfnCache;
use core::marker::PhantomData;

/// A kernel mapping of `len` bytes at `offset` of a shared memory region, valid
/// while the driver is bound to the device (`'bound`).
///
/// # Invariants
///
/// `ptr` is the start of a live `memremap` mapping of exactly `len` bytes (`len > 0`) of a
/// shared memory region of a device bound for `'bound`, unmapped only in `Drop`.
pub struct ShmMapping<'bound> {
    ptr: *mut u8,
    len: usize,
    _bound: PhantomData<&'bound ()>,
}

// SAFETY: The mapping is plain memory accessed only through volatile, bounds-checked
// operations; it can be used from any thread.
unsafe impl Send for ShmMapping<'_> {}
// SAFETY: See `Send`: shared access is part of the model (the host writes concurrently).
unsafe impl Sync for ShmMapping<'_> {}

impl<'bound> ShmMapping<'bound> {
    /// Maps `len` bytes at `offset` of `region` (write-back caching), for as long as the
    /// binding lasts.
    ///
    /// The caller must know that the host has memory behind that window (for virtio-gpu:
    /// after a successful `RESOURCE_MAP_BLOB`); reading an unbacked window is not unsafe but
    /// yields whatever the device returns.
    ///
    /// # Errors
    ///
    /// `EINVAL` when the window is empty or not inside the region, `ENOMEM` when the
    /// mapping fails.
    pub fn new(region: &ShmRegion<'bound>, offset: u64, len: usize) -> Result<Self> {
        Self::with_cache(region, offset, len, PfnCache::WriteBack)
    }

    /// Maps `len` bytes at `offset` of `region` with the caching `cache`, which must be the
    /// caching the host maps that memory with: a kernel alias with another caching (a
    /// write-back view of a write-combined range, say) is not coherent with it.
    ///
    /// # Errors
    ///
    /// As [`ShmMapping::new`]; `ENODEV` for [`PfnCache::Uncached`], which `memremap` cannot
    /// map.
    pub fn with_cache(
        region: &ShmRegion<'bound>,
        offset: u64,
        len: usize,
        cache: PfnCache,
    ) -> Result<Self> {
        let flags = match cache {
            PfnCache::WriteBack => bindings::MEMREMAP_WB,
            PfnCache::WriteCombine => bindings::MEMREMAP_WC,
            PfnCache::Uncached => return Err(ENODEV),
        };
        let len64 = u64::try_from(len).map_err(|_| EINVAL)?;
        let end = offset.checked_add(len64).ok_or(EINVAL)?;
        if len == 0 || end > region.len() {
            return Err(EINVAL);
        }
        let phys = region.addr().checked_add(offset).ok_or(EINVAL)?;
        // SAFETY: `phys..phys + len` lies inside a shared memory region a device exposes
        // (`ShmRegion` invariant; checked above), not in RAM the kernel owns; `memremap`
        // validates the rest.
        let p = unsafe { bindings::memremap(phys, len, flags as crate::ffi::c_ulong) };
        if p.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `p` maps `len` bytes of the region of a device bound for `'bound`.
        Ok(Self {
            ptr: p.cast(),
            len,
            _bound: PhantomData,
        })
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never true; see the invariant).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, n: usize) -> Result {
        match offset.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(EINVAL),
        }
    }

    /// Copies bytes at `offset` into `out`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is outside the mapping.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        self.check(offset, out.len())?;
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `offset + i < len` (checked); the mapping is live (invariant).
            *b = unsafe { core::ptr::read_volatile(self.ptr.add(offset + i)) };
        }
        Ok(())
    }

    /// Copies `data` to `offset`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is outside the mapping.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        self.check(offset, data.len())?;
        for (i, b) in data.iter().enumerate() {
            // SAFETY: `offset + i < len` (checked); the mapping is live (invariant).
            unsafe { core::ptr::write_volatile(self.ptr.add(offset + i), *b) };
        }
        Ok(())
    }

    /// Reads a little-endian `u32` at `offset`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is outside the mapping.
    pub fn read_u32(&self, offset: usize) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64` at `offset`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is outside the mapping.
    pub fn read_u64(&self, offset: usize) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian `u32` at `offset`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is outside the mapping.
    pub fn write_u32(&self, offset: usize, v: u32) -> Result {
        self.write(offset, &v.to_le_bytes())
    }

    /// A naturally aligned `T` at `offset`, as an atomic.
    fn atomic<T: AtomicType>(&self, offset: usize) -> Result<&Atomic<T>> {
        self.check(offset, size_of::<T>())?;
        // SAFETY: `offset + size_of::<T>() <= len` (checked), so this stays in the mapping.
        let p = unsafe { self.ptr.add(offset) };
        // The mapping keeps the offset of its physical start within a page: check the address,
        // not only `offset`.
        if !(p as usize).is_multiple_of(align_of::<T>()) {
            return Err(EINVAL);
        }
        // SAFETY: `p..p + size_of::<T>()` is inside the live mapping and aligned for `T`
        // (both checked). The memory lives as long as `self`. The device writes it
        // concurrently, which the atomic accesses of `Atomic` are for; this type never makes
        // a non-volatile access.
        Ok(unsafe { Atomic::from_ptr(p.cast::<T>()) })
    }

    /// Reads the little-endian `u32` the host publishes at `offset` (4-byte aligned in
    /// memory) in one single-copy-atomic load with acquire ordering: every later read of the
    /// mapping sees at least what the host wrote before publishing that value.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is outside the mapping or not aligned.
    pub fn load_acquire_u32(&self, offset: usize) -> Result<u32> {
        Ok(u32::from_le(self.atomic::<u32>(offset)?.load(Acquire)))
    }

    /// Like [`Self::load_acquire_u32`], for an 8-byte aligned `u64`. Only where 64-bit
    /// atomics are native: the lock-based `atomic64` emulation is not single-copy atomic
    /// against the device's writes.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is outside the mapping or not aligned.
    #[cfg(not(CONFIG_GENERIC_ATOMIC64))]
    pub fn load_acquire_u64(&self, offset: usize) -> Result<u64> {
        Ok(u64::from_le(self.atomic::<u64>(offset)?.load(Acquire)))
    }
}

impl Drop for ShmMapping<'_> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `memremap` (invariant) and is not used after this.
        unsafe { bindings::memunmap(self.ptr.cast()) };
    }
}
