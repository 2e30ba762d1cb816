//! Physical memory as the running kernel reaches it: through the direct
//! map, `PAGE_OFFSET + pa`.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{Pfn, PhysAddr};
use paravirt::{PhysMem, PhysRead};

/// Frames reached through the direct map. Before the kernel's own map is
/// live only the boot environment's mapping exists; callers (the boot
/// allocator, the walker) only ask for frames that are mapped.
pub struct DirectMap;

impl PhysMem for DirectMap {
    fn page(&self, pfn: Pfn) -> *mut u8 {
        (PAGE_OFFSET + (pfn.0 << 12)) as *mut u8
    }

    fn reachable(&self, pfn: Pfn) -> bool {
        pfn.0 < (0u32.wrapping_sub(PAGE_OFFSET) >> 12)
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
