//! The two i386 pagetable formats, as values.
//!
//! 2-level: a 1024-entry pgd of 32-bit entries, each mapping 4 MiB either
//! through a 1024-entry pte page or as one large page (PSE). The pmd level
//! is folded into the pgd, as in Linux: a "pmd entry" *is* the pgd entry.
//!
//! PAE: a 4-entry pgd (the PDPT) of 64-bit entries, each pointing at a
//! 512-entry pmd page; a pmd entry maps 2 MiB through a 512-entry pte page or
//! as one large page. Entries are 64 bits, so physical addresses can exceed
//! 4 GiB and bit 63 can forbid execution (NX).
//!
//! One image carries both formats; the kernel picks one at boot. Entries are
//! passed around as `u64` whatever the format, and written at their real
//! width by whoever owns the memory.

use bitflags::bitflags;

bitflags! {
    /// Flag bits of an entry at any level (Linux's `_PAGE_*`).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct PteFlags: u64 {
        const PRESENT = 1 << 0;
        const RW = 1 << 1;
        const USER = 1 << 2;
        const PWT = 1 << 3;
        const PCD = 1 << 4;
        const ACCESSED = 1 << 5;
        const DIRTY = 1 << 6;
        /// In a pmd entry: this entry maps a large page (4 MiB or 2 MiB).
        const PSE = 1 << 7;
        const GLOBAL = 1 << 8;
        /// PAE only, and only once EFER.NXE is set; reserved otherwise.
        const NX = 1 << 63;
    }
}

impl PteFlags {
    /// A pmd/pgd entry that points at a kernel pagetable page.
    pub const KERNPG_TABLE: PteFlags =
        PteFlags::PRESENT.union(PteFlags::RW).union(PteFlags::ACCESSED).union(PteFlags::DIRTY);
    /// A PAE PDPT entry: only P, PWT and PCD are allowed there, RW and USER
    /// are reserved bits and loading CR3 would fault.
    pub const PDPT_ENTRY: PteFlags = PteFlags::PRESENT;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    Pgd,
    Pmd,
    Pte,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PagingMode {
    TwoLevel,
    Pae,
}

impl PagingMode {
    pub const fn name(self) -> &'static str {
        match self {
            PagingMode::TwoLevel => "2-level",
            PagingMode::Pae => "PAE",
        }
    }
    /// Bytes per entry.
    pub const fn entry_size(self) -> u32 {
        match self {
            PagingMode::TwoLevel => 4,
            PagingMode::Pae => 8,
        }
    }
    pub const fn ptrs_per_pte(self) -> u32 {
        4096 / self.entry_size()
    }
    /// Entries that fit in one 4 KiB pagetable page, whatever its level.
    pub const fn entries_per_page(self) -> u32 {
        4096 / self.entry_size()
    }
    /// Entries in a pmd page; 2-level has no pmd page of its own.
    pub const fn ptrs_per_pmd(self) -> u32 {
        match self {
            PagingMode::TwoLevel => 1,
            PagingMode::Pae => 512,
        }
    }
    pub const fn ptrs_per_pgd(self) -> u32 {
        match self {
            PagingMode::TwoLevel => 1024,
            PagingMode::Pae => 4,
        }
    }
    /// log2 of the span of one pmd entry, which is also the large-page size.
    pub const fn pmd_shift(self) -> u32 {
        match self {
            PagingMode::TwoLevel => 22,
            PagingMode::Pae => 21,
        }
    }
    /// log2 of the span of one pgd entry.
    pub const fn pgd_shift(self) -> u32 {
        match self {
            PagingMode::TwoLevel => 22,
            PagingMode::Pae => 30,
        }
    }
    pub const fn pmd_size(self) -> u32 {
        1 << self.pmd_shift()
    }
    /// Address bits of an entry pointing at a 4 KiB frame.
    pub const fn addr_mask(self) -> u64 {
        match self {
            PagingMode::TwoLevel => 0xFFFF_F000,
            PagingMode::Pae => 0x000F_FFFF_FFFF_F000,
        }
    }
    /// Address bits of a large-page pmd entry (bit 12 is PAT there).
    pub const fn large_addr_mask(self) -> u64 {
        let large = !((1u64 << self.pmd_shift()) - 1);
        self.addr_mask() & large
    }
    /// Which flag bits exist in this format.
    pub const fn flag_mask(self) -> u64 {
        match self {
            PagingMode::TwoLevel => 0xFFF,
            PagingMode::Pae => 0xFFF | PteFlags::NX.bits(),
        }
    }

    pub const fn pgd_index(self, va: u32) -> u32 {
        va >> self.pgd_shift()
    }
    /// Index within the pmd page (always 0 in 2-level: folded).
    pub const fn pmd_index(self, va: u32) -> u32 {
        match self {
            PagingMode::TwoLevel => 0,
            PagingMode::Pae => (va >> 21) & 511,
        }
    }
    pub const fn pte_index(self, va: u32) -> u32 {
        (va >> 12) & (self.ptrs_per_pte() - 1)
    }
}

/// Does this raw entry map or point at anything?
pub const fn present(raw: u64) -> bool {
    raw & PteFlags::PRESENT.bits() != 0
}

/// The flag bits of a raw entry in the given format.
pub fn flags(mode: PagingMode, raw: u64) -> PteFlags {
    PteFlags::from_bits_truncate(raw & mode.flag_mask())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let two = PagingMode::TwoLevel;
        let pae = PagingMode::Pae;
        assert_eq!(two.ptrs_per_pte() as u64 * 4096, 1 << two.pmd_shift());
        assert_eq!(pae.ptrs_per_pte() as u64 * 4096, 1 << pae.pmd_shift());
        assert_eq!(pae.ptrs_per_pmd() as u64 * (1 << pae.pmd_shift()), 1 << pae.pgd_shift());
        assert_eq!(two.pgd_index(0xC000_0000), 768);
        assert_eq!(pae.pgd_index(0xC000_0000), 3);
        assert_eq!(pae.pmd_index(0xC020_0000), 1);
        assert_eq!(two.pte_index(0xC000_5000), 5);
        assert_eq!(pae.large_addr_mask(), 0x000F_FFFF_FFE0_0000);
        assert_eq!(two.large_addr_mask(), 0xFFC0_0000);
    }

    #[test]
    fn nx_only_exists_in_pae() {
        let raw = 0x1000 | PteFlags::PRESENT.bits() | PteFlags::NX.bits();
        assert!(flags(PagingMode::Pae, raw).contains(PteFlags::NX));
        assert!(!flags(PagingMode::TwoLevel, raw).contains(PteFlags::NX));
    }
}
