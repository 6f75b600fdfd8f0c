// SPDX-License-Identifier: GPL-2.0

//! i915's extension chains (`struct i915_user_extension`), walked as upstream
//! `i915_user_extensions.c` walks them, with the same errors in the same order.
//!
//! An extension is a user struct that starts with `{ next_extension: u64, name: u32,
//! flags: u32, rsvd: [u32; 4] }` (32 bytes); `next_extension` 0 ends the chain. For each
//! one, in this order: `flags`, then each `rsvd` word must read as zero (`EFAULT` when it
//! cannot be read, `EINVAL` when it is not zero); `name` is read (`EFAULT`); a name the
//! ioctl does not know is `EINVAL`; the ioctl's handler runs (its error ends the walk);
//! then `next_extension` is read (`EFAULT`). A chain longer than 512 links is `E2BIG`.

use core::mem::size_of;
use kernel::{
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};
use zerocopy::FromBytes;

/// Most links i915 follows before it gives up on a chain (`E2BIG`).
const MAX_LINKS: usize = 512;

/// Offsets in `struct i915_user_extension`.
const NEXT: u64 = 0;
const NAME: u64 = 8;
const FLAGS: u64 = 12;
const RSVD: u64 = 16;

/// Reads a `T` at user address `base + off`.
pub(crate) fn read_user<T: FromBytes + IntoBytes>(base: u64, off: u64) -> Result<T> {
    let addr = base.checked_add(off).ok_or(EFAULT)?;
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    let mut v = T::new_zeroed();
    UserSlice::new(UserPtr::from_addr(addr), size_of::<T>())
        .reader()
        .read_slice(v.as_mut_bytes())?;
    Ok(v)
}

/// `check_user_mbz`: the `u32` at `addr` reads as zero.
fn must_be_zero(base: u64, off: u64) -> Result {
    match read_user::<u32>(base, off)? {
        0 => Ok(()),
        _ => Err(EINVAL),
    }
}

/// Walks the chain that starts at user address `first` (0: none), calling `handler` with
/// the `name` and the user address of each extension.
///
/// The handler returns `EINVAL` for names the ioctl does not take.
///
/// # Errors
///
/// The first error of the walk (see the module documentation) or of `handler`.
pub(crate) fn walk(first: u64, mut handler: impl FnMut(u32, u64) -> Result) -> Result {
    let mut at = first;
    let mut links = 0;
    while at != 0 {
        if links == MAX_LINKS {
            return Err(E2BIG);
        }
        links += 1;
        must_be_zero(at, FLAGS)?;
        for i in 0..4 {
            must_be_zero(at, RSVD + 4 * i)?;
        }
        let name: u32 = read_user(at, NAME)?;
        handler(name, at)?;
        at = read_user(at, NEXT)?;
    }
    Ok(())
}
