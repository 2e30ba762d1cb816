//! How pagetable code reaches physical memory.
//!
//! In the kernel a frame is reached through the direct map (`PAGE_OFFSET +
//! pa`), which only covers what the boot environment mapped until the
//! kernel's own map is built. In host tests a frame is a page of a `Vec`.
//! Pagetable code only ever goes through these traits, so the same code
//! builds real pagetables at boot and simulated ones under `cargo test`.

use arch_i386::{Pfn, PhysAddr, VirtAddr};

/// Frame access for pagetable code.
///
/// # Safety
/// For every `pfn` with `reachable(pfn)`, `page(pfn)` must point at the 4096
/// bytes of that frame, aligned to 4096 (entries are read at their width),
/// readable for as long as the `PhysMem` lives, and
/// writable unless the frame is a pagetable page the backend made
/// read-only (writes to those go through the backend's hooks). Pagetable
/// code relies on this to build `EntryRef`s and to zero pages. Likewise
/// `mapped_at(va, pfn)`, right after the kernel mapped `pfn` at `va`, must
/// point at that frame's 4096 aligned bytes until the mapping goes.
pub unsafe trait PhysMem {
    /// A pointer to the first byte of frame `pfn`; meaningful only if
    /// `reachable(pfn)`.
    fn page(&self, pfn: Pfn) -> *mut u8;

    /// Can `page(pfn)` be used at all? Only frames that are really mapped
    /// answer yes: a walk that meets an entry naming a frame beyond reach
    /// (a foreign, bogus or high one) stops there instead of faulting.
    fn reachable(&self, pfn: Pfn) -> bool;

    /// A pointer to frame `pfn`, which the kernel has just mapped at `va`
    /// (a temporary mapping of a frame beyond the direct map: a fixmap or
    /// pkmap slot). In the kernel that is `va` itself; a simulation, which
    /// never loads its tables, answers with its own storage of the frame.
    fn mapped_at(&self, va: VirtAddr, _pfn: Pfn) -> *mut u8 {
        va.0 as usize as *mut u8
    }
}

/// Read-only access to boot-time structures at physical addresses, with a
/// bound: boot information can point anywhere, and a bad pointer must be an
/// error, not a fault.
pub trait PhysRead {
    /// Copies `buf.len()` bytes from `pa`, or fails if any of them is not
    /// accessible.
    fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), PhysAddr>;

    fn read_u32(&self, pa: PhysAddr) -> Result<u32, PhysAddr> {
        let mut b = [0; 4];
        self.read(pa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn read_u64(&self, pa: PhysAddr) -> Result<u64, PhysAddr> {
        let mut b = [0; 8];
        self.read(pa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// The boot page allocator as pagetable code sees it.
pub trait PageAlloc {
    /// A zeroed frame that is reachable through [`PhysMem`], or `None`.
    fn alloc_page(&mut self) -> Option<Pfn>;

    /// A frame whose old contents do not matter, because the caller will
    /// overwrite all of it (a pte page filled entry by entry): zeroing it
    /// first would cost as much as filling it.
    fn alloc_page_uninit(&mut self) -> Option<Pfn> {
        self.alloc_page()
    }
}

/// A byte slice standing in for physical memory from address 0 (tests,
/// and the loaders that build boot structures in a buffer).
pub struct Bytes<'a>(pub &'a [u8]);

impl PhysRead for Bytes<'_> {
    fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), PhysAddr> {
        let start = usize::try_from(pa.0).map_err(|_| pa)?;
        let end = start.checked_add(buf.len()).ok_or(pa)?;
        buf.copy_from_slice(self.0.get(start..end).ok_or(pa)?);
        Ok(())
    }
}
