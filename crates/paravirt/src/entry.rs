//! A pagetable entry's address, in every form a backend may need.
//!
//! Native hardware needs only a pointer. Xen needs the machine address of
//! the entry (its page's frame, translated to a machine frame, plus the
//! index) because writes to live pagetables go through `mmu_update`.
//! lguest needs the root and the virtual address an entry maps, because the
//! host keys its shadow pagetables by them. So every write carries all of it.

use arch_i386::{Level, PagingMode, Pfn, VirtAddr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef {
    pub mode: PagingMode,
    pub level: Level,
    /// The pagetable page holding the entry.
    pub table: Pfn,
    /// The entry's index in that page.
    pub index: u32,
    /// Where the kernel can read the entry (read-only under Xen once the
    /// page is a pagetable page).
    pub ptr: *mut u8,
    /// The first virtual address the entry maps.
    pub vaddr: VirtAddr,
    /// The top-level page (pgd) of the pagetable this entry belongs to.
    pub root: Pfn,
}

impl EntryRef {
    /// Bytes of virtual address space one entry at this level maps.
    pub const fn span(&self) -> u64 {
        match self.level {
            Level::Pte => 1 << 12,
            Level::Pmd => 1 << self.mode.pmd_shift(),
            Level::Pgd => 1 << self.mode.pgd_shift(),
        }
    }

    /// Byte offset of the entry in its page.
    pub const fn offset(&self) -> u32 {
        self.index * self.mode.entry_size()
    }

    /// The entry `n` places further on in the same page.
    pub fn add(&self, n: u32) -> EntryRef {
        EntryRef {
            index: self.index + n,
            // SAFETY: callers stay within the page (index < entries/page),
            // so the pointer stays inside the same allocation.
            ptr: unsafe { self.ptr.add((n * self.mode.entry_size()) as usize) },
            vaddr: VirtAddr((self.vaddr.0 as u64 + n as u64 * self.span()) as u32),
            ..*self
        }
    }

    /// The raw entry, read at its real width.
    pub fn read(&self) -> u64 {
        // SAFETY: `ptr` points at a readable, aligned entry of `mode`'s
        // width inside a pagetable page (the invariant of EntryRef).
        unsafe {
            match self.mode {
                PagingMode::TwoLevel => (self.ptr as *const u32).read_volatile() as u64,
                PagingMode::Pae => (self.ptr as *const u64).read_volatile(),
            }
        }
    }
}
