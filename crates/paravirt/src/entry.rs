//! A pagetable entry's address, in every form a backend may need.
//!
//! Native hardware needs only a pointer. Xen needs the machine address of
//! the entry (its page's frame, translated to a machine frame, plus the
//! index) because writes to validated pagetables go through `mmu_update`.
//! lguest needs the root and the virtual address an entry maps, because
//! the host keys its shadow pagetables by them. So every write carries all
//! of it, and whether the hypervisor has seen the table yet ([`Pinning`]).
//!
//! An `EntryRef` can only be made by code that knows where a pagetable
//! page is (`unsafe fn new`), so safe code can read and write through one
//! without further checks: it always names a real entry.

use arch_i386::{Level, PagingMode, Pfn, VirtAddr};

/// Does the hypervisor already validate (Xen: pin; lguest: shadow) the
/// pagetable this page belongs to? Until it does, the page is the
/// kernel's alone and may be written with plain stores; after, every
/// change must be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// A table being built (the boot build's new pages, a new address
    /// space before its first activation).
    Unpinned,
    /// A table the hypervisor validates or shadows.
    Pinned,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef {
    mode: PagingMode,
    level: Level,
    table: Pfn,
    index: u32,
    ptr: *mut u8,
    vaddr: VirtAddr,
    root: Pfn,
    pinning: Pinning,
}

impl EntryRef {
    /// # Safety
    /// `ptr` must point at entry `index` (`index < mode.entries_per_page()`)
    /// of the pagetable page `table`, be aligned for the mode's entry width
    /// and readable for as long as the `EntryRef` (and its copies) are
    /// used. It is writable unless the hypervisor has made the page
    /// read-only, in which case writes go through the backend's hooks.
    // Each argument is one of the forms of the entry's address some backend
    // needs (see the module's documentation); grouping them would only
    // rename the list.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn new(
        mode: PagingMode,
        level: Level,
        table: Pfn,
        index: u32,
        ptr: *mut u8,
        vaddr: VirtAddr,
        root: Pfn,
        pinning: Pinning,
    ) -> EntryRef {
        debug_assert!(index < mode.entries_per_page());
        EntryRef { mode, level, table, index, ptr, vaddr, root, pinning }
    }

    pub const fn mode(&self) -> PagingMode {
        self.mode
    }
    pub const fn level(&self) -> Level {
        self.level
    }
    /// The pagetable page holding the entry.
    pub const fn table(&self) -> Pfn {
        self.table
    }
    /// The entry's index in that page.
    pub const fn index(&self) -> u32 {
        self.index
    }
    /// The first virtual address the entry maps.
    pub const fn vaddr(&self) -> VirtAddr {
        self.vaddr
    }
    /// The top-level page (pgd) of the pagetable the entry belongs to.
    pub const fn root(&self) -> Pfn {
        self.root
    }
    pub const fn pinning(&self) -> Pinning {
        self.pinning
    }

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

    /// The entry `n` places further on in the same page. Panics if that
    /// would leave the page.
    pub fn add(&self, n: u32) -> EntryRef {
        let index = self.index + n;
        assert!(index < self.mode.entries_per_page(), "entry {index} is beyond its pagetable page");
        EntryRef {
            index,
            // SAFETY: the new index is inside the same page (checked), so
            // the pointer stays inside the same allocation.
            ptr: unsafe { self.ptr.add((n * self.mode.entry_size()) as usize) },
            vaddr: VirtAddr((self.vaddr.0 as u64 + n as u64 * self.span()) as u32),
            ..*self
        }
    }

    /// The raw entry, read at its real width.
    pub fn read(&self) -> u64 {
        // SAFETY: `ptr` points at a readable, aligned entry of `mode`'s
        // width (the constructor's contract).
        unsafe {
            match self.mode {
                PagingMode::TwoLevel => (self.ptr as *const u32).read_volatile() as u64,
                PagingMode::Pae => (self.ptr as *const u64).read_volatile(),
            }
        }
    }

    /// The entry's address, for the one place that writes through it
    /// ([`crate::native::write_entry`]) and for backends that pass it on.
    pub(crate) const fn ptr(&self) -> *mut u8 {
        self.ptr
    }
}
