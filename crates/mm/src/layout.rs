//! The kernel's virtual address layout (Linux i386's, with its names).
//!
//! ```text
//!  4 GiB ┌──────────────────────────┐
//!        │ reserved by hypervisor   │ Xen's hole, lguest's Switcher
//!        ├──────────────────────────┤ FIXADDR_TOP
//!        │ fixmap                   │ NR_FIX pages, set one by one later
//!        ├──────────────────────────┤ FIXADDR_START
//!        │ persistent kmap          │ one pte page (PKMAP_BASE, pmd aligned)
//!        ├──────────────────────────┤
//!        │ vmalloc                  │ at least VMALLOC_RESERVE
//!        ├──────────────────────────┤ PAGE_OFFSET + max_low_pfn * 4K
//!        │ direct map of low memory │ pfn n at PAGE_OFFSET + n * 4K
//!  3 GiB └──────────────────────────┘ PAGE_OFFSET
//! ```
//!
//! "Low memory" is what fits in the direct map: about 888 MiB natively,
//! less under Xen whose hole starts at 0xF5800000. RAM above it is highmem:
//! user pages and user pte pages come from there first, reached through
//! the fixmap's kmap_atomic slots and the pkmap area (`highmem.rs`).

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{PagingMode, Pfn, VirtAddr, PAGE_SIZE};

/// Fixmap slots.
pub const NR_FIX: u32 = 32;
/// The vmalloc area is at least this big (Linux's __VMALLOC_RESERVE).
pub const VMALLOC_RESERVE: u32 = 128 << 20;

/// Where the kernel image's sections are (virtual, page aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelImage {
    /// Start of the image (its head and text).
    pub text: VirtAddr,
    pub text_end: VirtAddr,
    pub rodata: VirtAddr,
    pub rodata_end: VirtAddr,
}

/// What a page of the direct map holds, which decides its permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Text,
    Rodata,
    /// Data, bss, and every other page of memory.
    Data,
}

impl KernelImage {
    pub fn section(&self, va: u32) -> Section {
        if va >= self.text.0 && va < self.text_end.0 {
            Section::Text
        } else if va >= self.rodata.0 && va < self.rodata_end.0 {
            Section::Rodata
        } else {
            Section::Data
        }
    }
    /// Does `[va, va + len)` touch text or rodata (pages that need other
    /// permissions than plain data)?
    pub fn overlaps_protected(&self, va: u32, len: u32) -> bool {
        let end = va as u64 + len as u64;
        (va as u64) < self.rodata_end.0 as u64 && end > self.text.0 as u64
    }
    /// The next address after `va` where the section changes.
    pub fn next_boundary(&self, va: u32) -> u64 {
        [self.text.0, self.text_end.0, self.rodata.0, self.rodata_end.0]
            .into_iter()
            .filter(|&b| b > va)
            .min()
            .map(|b| b as u64)
            .unwrap_or(1 << 32)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub mode: PagingMode,
    pub fixaddr_top: u32,
    pub fixaddr_start: u32,
    pub pkmap_base: u32,
    /// Entries in the persistent-kmap area (one pte page).
    pub last_pkmap: u32,
    pub vmalloc_end: u32,
    /// Frames below this are directly mapped.
    pub max_low_pfn: Pfn,
    /// Frames of RAM below 4 GiB that did not fit (highmem).
    pub highmem_pages: u32,
    pub image: KernelImage,
}

impl Layout {
    /// `ram_end`: end of RAM below 4 GiB; `reserved_top`: what the
    /// hypervisor keeps at the top of the address space.
    pub fn new(mode: PagingMode, ram_end: u64, reserved_top: u32, image: KernelImage) -> Layout {
        let fixaddr_top = 0u32.wrapping_sub(PAGE_SIZE).wrapping_sub(reserved_top) & !(PAGE_SIZE - 1);
        let fixaddr_start = fixaddr_top - NR_FIX * PAGE_SIZE;
        let last_pkmap = mode.ptrs_per_pte();
        let pmd_mask = !(mode.pmd_size() - 1);
        let pkmap_base = (fixaddr_start - PAGE_SIZE * (last_pkmap + 1)) & pmd_mask;
        let vmalloc_end = pkmap_base - 2 * PAGE_SIZE;
        let maxmem = (vmalloc_end - PAGE_OFFSET - VMALLOC_RESERVE) as u64;
        let low_end = ram_end.min(maxmem);
        Layout {
            mode,
            fixaddr_top,
            fixaddr_start,
            pkmap_base,
            last_pkmap,
            vmalloc_end,
            max_low_pfn: Pfn((low_end >> 12) as u32),
            highmem_pages: ((ram_end - low_end) >> 12) as u32,
            image,
        }
    }

    /// End of the direct map.
    pub fn direct_map_end(&self) -> u32 {
        PAGE_OFFSET + (self.max_low_pfn.0 << 12)
    }

    /// `[start, end)` of the pmd-aligned region whose pte pages the fixmap
    /// needs.
    pub fn fixmap_range(&self) -> (u32, u64) {
        let pmd = self.mode.pmd_size();
        let start = self.fixaddr_start & !(pmd - 1);
        let end = (self.fixaddr_top as u64 + pmd as u64 - 1) & !(pmd as u64 - 1);
        (start, end)
    }
}

impl Layout {
    /// The fewest pagetable pages any builder could use for this map: one
    /// pte page per pmd of the direct map that cannot be a large page
    /// (all of them without large pages; otherwise those holding kernel
    /// text/rodata and a partial last one), the fixmap's and pkmap's pte
    /// pages, the pgd, and with PAE the kernel half's pmd page.
    pub fn min_table_pages(&self, caps: &crate::Caps) -> u32 {
        let per = self.mode.ptrs_per_pte();
        let low = self.max_low_pfn.0;
        let chunks = low.div_ceil(per);
        let pte = if caps.large_pages {
            (0..chunks)
                .filter(|&c| {
                    let va = PAGE_OFFSET + c * self.mode.pmd_size();
                    let partial = (c + 1) * per > low;
                    partial || self.image.overlaps_protected(va, self.mode.pmd_size())
                })
                .count() as u32
        } else {
            chunks
        };
        let (fs, fe) = self.fixmap_range();
        let fixmap = ((fe - fs as u64) / self.mode.pmd_size() as u64) as u32;
        let pmd = if self.mode == PagingMode::Pae { 1 } else { 0 };
        pte + fixmap + 1 + 1 + pmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sim::image;

    #[test]
    fn native_lowmem_is_linuxs() {
        // Linux 2.6 on a 1 GiB box: "887MB LOWMEM available".
        let l = Layout::new(PagingMode::TwoLevel, 1 << 30, 0, image());
        assert_eq!(l.fixaddr_top, 0xFFFF_F000);
        assert_eq!(l.pkmap_base, 0xFF80_0000);
        assert_eq!(l.max_low_pfn, Pfn(0x377FE));
        assert_eq!(l.highmem_pages, 0x40000 - 0x377FE);
        let p = Layout::new(PagingMode::Pae, 1 << 30, 0, image());
        assert_eq!(p.pkmap_base, 0xFFC0_0000);
        assert!(p.max_low_pfn.0 > l.max_low_pfn.0);
    }

    #[test]
    fn small_memory_is_all_low() {
        let l = Layout::new(PagingMode::Pae, 16 << 20, 0, image());
        assert_eq!(l.max_low_pfn, Pfn(4096));
        assert_eq!(l.highmem_pages, 0);
    }

    #[test]
    fn reserved_top_moves_the_fixmap_down() {
        // Xen's compat hole starts at 0xF5800000.
        let l = Layout::new(PagingMode::Pae, 1 << 30, 0x0A80_0000, image());
        assert_eq!(l.fixaddr_top, 0xF57F_F000);
        assert!(l.direct_map_end() < l.vmalloc_end - VMALLOC_RESERVE + 1);
        let (s, e) = l.fixmap_range();
        assert!(s <= l.fixaddr_start && e >= l.fixaddr_top as u64);
    }

    #[test]
    fn sections() {
        let i = image();
        assert_eq!(i.section(0xC010_0000), Section::Text);
        assert_eq!(i.section(0xC014_1000), Section::Rodata);
        assert_eq!(i.section(0xC016_0000), Section::Data);
        assert_eq!(i.section(0xC000_0000), Section::Data);
        assert!(i.overlaps_protected(0xC000_0000, 0x20_0000));
        assert!(!i.overlaps_protected(0xC020_0000, 0x20_0000));
        assert_eq!(i.next_boundary(0xC000_0000), 0xC010_0000);
        assert_eq!(i.next_boundary(0xC016_0000), 1 << 32);
    }
}
