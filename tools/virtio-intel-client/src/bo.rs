//! Buffer objects: GEM_CREATE / GEM_CREATE_EXT ccmd carried inside
//! RESOURCE_CREATE_BLOB (HOST3D, MAPPABLE|SHAREABLE), mapped with
//! VIRTGPU_MAP + mmap.

use crate::proto::{GemCreateExtReq, GemCreateReq, Request};
use crate::uapi::{VIRTGPU_BLOB_FLAG_USE_MAPPABLE, VIRTGPU_BLOB_FLAG_USE_SHAREABLE, VIRTGPU_BLOB_MEM_HOST3D};
use crate::vdrm::{Connection, Error, Result};

/// Guest page size (blob sizes must be page aligned, identical in the ccmd
/// and in RESOURCE_CREATE_BLOB).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p <= 0 {
        4096
    } else {
        p as u64
    }
}

pub fn page_align(size: u64) -> u64 {
    let p = page_size();
    size.div_ceil(p).max(1) * p
}

pub struct Bo {
    /// virtio-gpu GEM handle (guest).
    pub handle: u32,
    /// virtio resource id (what ccmds carry).
    pub res_id: u32,
    pub blob_id: u32,
    pub size: u64,
    /// seqno of the creating ccmd.
    pub create_seqno: u32,
    map: *mut u8,
}

impl Bo {
    /// GEM_CREATE (ccmd 4).
    pub fn create(conn: &mut Connection, size: u64) -> Result<Bo> {
        let size = page_align(size);
        let blob_id = conn.alloc_blob_id();
        let req = GemCreateReq { size, blob_id };
        Self::create_with(conn, &req, size, blob_id)
    }

    /// GEM_CREATE_EXT (ccmd 5) with a serialized extension chain.
    pub fn create_ext(conn: &mut Connection, size: u64, gem_flags: u32, ext: Vec<u8>) -> Result<Bo> {
        let size = page_align(size);
        let blob_id = conn.alloc_blob_id();
        let req = GemCreateExtReq { size, blob_id, gem_flags, ext };
        req.validate().map_err(Error::Invalid)?;
        Self::create_with(conn, &req, size, blob_id)
    }

    fn create_with<R: Request>(conn: &mut Connection, req: &R, size: u64, blob_id: u32) -> Result<Bo> {
        let (cmd, seqno) = conn.encode_noresp(req)?;
        let (handle, res_id) = conn.create_blob(
            VIRTGPU_BLOB_MEM_HOST3D,
            VIRTGPU_BLOB_FLAG_USE_MAPPABLE | VIRTGPU_BLOB_FLAG_USE_SHAREABLE,
            size,
            blob_id,
            &cmd,
        )?;
        let mut bo = Bo { handle, res_id, blob_id, size, create_seqno: seqno, map: std::ptr::null_mut() };
        // The mmap waits for the host's MAP_BLOB answer, which comes after
        // the SUBMIT_3D with our ccmd: afterwards the seqno must be there.
        if let Err(e) = bo.map(conn) {
            let published = conn.seqno_reached(seqno);
            let _ = conn.gem_close(handle);
            return Err(if published {
                e
            } else {
                Error::Invalid(format!(
                    "{} (blob_id {}, {} bytes) failed: seqno {} never published (shmem seqno {}); mapping: {}",
                    R::NAME,
                    blob_id,
                    size,
                    seqno,
                    conn.shmem_seqno(),
                    e
                ))
            });
        }
        if !conn.seqno_reached(seqno) {
            let s = conn.shmem_seqno();
            bo.close(conn).ok();
            return Err(Error::Rejected { what: R::NAME, seqno, shmem_seqno: s, sentinel_intact: None });
        }
        Ok(bo)
    }

    pub fn map(&mut self, conn: &Connection) -> Result<()> {
        if self.map.is_null() {
            self.map = conn.map(self.handle, self.size)?;
        }
        Ok(())
    }

    fn check(&self, off: u64, n: u64) -> Result<()> {
        if self.map.is_null() {
            return Err(Error::Invalid(format!("BO res_id {} is not mapped", self.res_id)));
        }
        if !off.is_multiple_of(4) || off + n > self.size {
            return Err(Error::Invalid(format!("BO access {}+{} outside {} bytes", off, n, self.size)));
        }
        Ok(())
    }

    pub fn write_u32(&self, off: u64, v: u32) -> Result<()> {
        self.check(off, 4)?;
        // SAFETY: bounds and alignment checked; the mapping lives with self.
        unsafe { std::ptr::write_volatile(self.map.add(off as usize) as *mut u32, v) };
        Ok(())
    }

    pub fn read_u32(&self, off: u64) -> Result<u32> {
        self.check(off, 4)?;
        // SAFETY: bounds and alignment checked.
        Ok(unsafe { std::ptr::read_volatile(self.map.add(off as usize) as *const u32) })
    }

    pub fn read_u64(&self, off: u64) -> Result<u64> {
        Ok(self.read_u32(off)? as u64 | (self.read_u32(off + 4)? as u64) << 32)
    }

    /// Copy bytes (length a multiple of 4) into the mapping.
    pub fn write_bytes(&self, off: u64, data: &[u8]) -> Result<()> {
        if !data.len().is_multiple_of(4) {
            return Err(Error::Invalid("write_bytes: length not a multiple of 4".into()));
        }
        self.check(off, data.len() as u64)?;
        for (i, c) in data.chunks(4).enumerate() {
            self.write_u32(off + 4 * i as u64, u32::from_le_bytes([c[0], c[1], c[2], c[3]]))?;
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Fill the whole BO with a dword value.
    pub fn fill(&self, v: u32) -> Result<()> {
        for off in (0..self.size).step_by(4) {
            self.write_u32(off, v)?;
        }
        Ok(())
    }

    fn unmap(&mut self) {
        if !self.map.is_null() {
            // SAFETY: map/size came from a successful mmap.
            unsafe { libc::munmap(self.map as *mut libc::c_void, self.size as usize) };
            self.map = std::ptr::null_mut();
        }
    }

    /// munmap + GEM_CLOSE (the kernel then detaches/unrefs the resource).
    pub fn close(mut self, conn: &Connection) -> Result<()> {
        self.unmap();
        conn.gem_close(self.handle)
    }
}

impl Drop for Bo {
    fn drop(&mut self) {
        // The GEM handle goes away with the fd; only the mapping is ours.
        self.unmap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment() {
        let p = page_size();
        assert_eq!(page_align(1), p);
        assert_eq!(page_align(p), p);
        assert_eq!(page_align(p + 1), 2 * p);
        assert_eq!(page_align(0), p);
    }
}
