//! Physical memory as the running kernel reaches it: through the direct
//! map, `PAGE_OFFSET + pa`.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{Pfn, PhysAddr};
use paravirt::{PhysMem, PhysRead};

/// Frames reached through the direct map, below `end`: before the
/// kernel's own map is live, what the boot environment mapped; after, the
/// end of low memory (`max_low_pfn`). Frames above are not mapped there
/// (their direct-map addresses would land in vmalloc, pkmap or fixmap).
#[derive(Clone, Copy, Debug)]
pub struct DirectMap {
    end: Pfn,
}

impl DirectMap {
    /// # Safety
    /// Every frame below `end` must be mapped, readable, at
    /// `PAGE_OFFSET + pfn * 4096` for as long as the value is used.
    pub const unsafe fn new(end: Pfn) -> DirectMap {
        DirectMap { end }
    }
}

// SAFETY: `reachable` answers yes only below `end`, which the constructor's
// contract says is mapped at PAGE_OFFSET + pa.
unsafe impl PhysMem for DirectMap {
    fn page(&self, pfn: Pfn) -> *mut u8 {
        (PAGE_OFFSET + (pfn.0 << 12)) as *mut u8
    }

    fn reachable(&self, pfn: Pfn) -> bool {
        pfn < self.end
    }
}

/// Boot structures below `limit`, read through the direct map. A pointer
/// beyond it is an error value, not a page fault.
pub struct BootRead {
    pub limit: u64,
}

impl PhysRead for BootRead {
    fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), PhysAddr> {
        let end = pa.0.checked_add(buf.len() as u64).ok_or(pa)?;
        if end > self.limit {
            return Err(PhysAddr(pa.0.max(self.limit)));
        }
        let src = (PAGE_OFFSET as u64 + pa.0) as usize as *const u8;
        // SAFETY: [pa, end) lies below `limit`, which the boot environment
        // mapped at PAGE_OFFSET; the source and `buf` do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}
