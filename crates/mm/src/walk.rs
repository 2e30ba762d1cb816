//! Reading a pagetable: locating entries and visiting mappings.
//!
//! Entries are found through `PhysMem` and decoded through the backend
//! (`pte_pfn`), so the same walk reads a native table, a Xen table full of
//! machine frames, or a simulated one in a test. Every entry the walker
//! hands out says whether the hypervisor has seen its table yet
//! ([`Pinning`]): during the boot build that is "not one of the build's
//! fresh pages", afterwards it is a property of the whole pagetable.

use arch_i386::paging::{flags, present};
use arch_i386::{Level, PagingMode, Pfn, PteFlags, VirtAddr};
use paravirt::pfnset::PfnRuns;
use paravirt::{EntryRef, Mmu, PhysMem, Pinning};

use crate::highmem::{HighMem, PteSlot};
use crate::MmError;

/// How the tables of the walked pagetable are pinned.
#[derive(Clone, Copy, Debug)]
pub enum Tables<'a> {
    /// Every table the same (a live pagetable, an address space).
    All(Pinning),
    /// The boot build: its fresh pages are unpinned, the pages it adopted
    /// from the pagetable it booted on are pinned.
    Build(&'a PfnRuns),
}

/// Walks one pagetable. Generic over the MMU type so that the build can
/// run with static dispatch (a concrete backend) as well as through
/// `&dyn Mmu`, the default; the dispatch benchmark compares them.
pub struct Walker<'a, M: Mmu + ?Sized = dyn Mmu> {
    pub mmu: &'a M,
    pub mem: &'a dyn PhysMem,
    pub mode: PagingMode,
    pub root: Pfn,
    pub tables: Tables<'a>,
    /// HIGHPTE: how to reach pte pages beyond the direct map (None: every
    /// pagetable page is low, as the kernel's own are).
    pub high: Option<HighMem>,
}

impl<M: Mmu + ?Sized> Clone for Walker<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Mmu + ?Sized> Copy for Walker<'_, M> {}

/// The entries of one reachable pagetable page, read directly: for loops
/// that read every entry of a page (a walk, a scan for empty entries).
#[derive(Clone, Copy)]
pub struct RawEntries {
    page: *const u8,
    mode: PagingMode,
}

impl RawEntries {
    /// Entry `i` (panics beyond the page).
    pub fn get(&self, i: u32) -> u64 {
        assert!(i < self.mode.entries_per_page());
        // SAFETY: the page is reachable (checked when the value was made),
        // so its 4096 bytes are mapped; i is inside it; entries are
        // aligned at their width.
        unsafe {
            match self.mode {
                PagingMode::TwoLevel => (self.page as *const u32).add(i as usize).read_volatile() as u64,
                PagingMode::Pae => (self.page as *const u64).add(i as usize).read_volatile(),
            }
        }
    }
}

impl RawEntries {
    /// How many consecutive entries from `from` on (before `end`) are
    /// present (`want`: true) or not present (false). One tight loop per
    /// format: the scan of a kept pte page, where every entry is looked
    /// at (lguest keeps the Launcher's whole map: 229 376 entries at
    /// 896 MiB).
    pub fn run_len(&self, from: u32, end: u32, want: bool) -> u32 {
        assert!(from <= end && end <= self.mode.entries_per_page());
        let want = want as u32;
        let mut i = from;
        // SAFETY: `from..end` lies inside the page (asserted), which is
        // mapped for reading (the value's invariant); entries are aligned
        // at their width. PAE's present bit is in the low half.
        unsafe {
            match self.mode {
                PagingMode::TwoLevel => {
                    let p = self.page as *const u32;
                    while i < end && p.add(i as usize).read_volatile() & 1 == want {
                        i += 1;
                    }
                }
                PagingMode::Pae => {
                    let p = self.page as *const u32;
                    while i < end && p.add(2 * i as usize).read_volatile() & 1 == want {
                        i += 1;
                    }
                }
            }
        }
        i - from
    }

    /// Calls `f(index, entry)` for every present entry in `from..end`, in
    /// order, stopping at its first error: one bounds check for the range,
    /// not one per entry.
    pub fn try_for_each_present<E>(
        &self,
        from: u32,
        end: u32,
        mut f: impl FnMut(u32, u64) -> Result<(), E>,
    ) -> Result<(), E> {
        assert!(from <= end && end <= self.mode.entries_per_page());
        for i in from..end {
            // SAFETY: i < end <= entries per page (asserted): inside the
            // page, which is mapped for reading; entries are aligned at
            // their width.
            let v = unsafe {
                match self.mode {
                    PagingMode::TwoLevel => (self.page as *const u32).add(i as usize).read_volatile() as u64,
                    PagingMode::Pae => (self.page as *const u64).add(i as usize).read_volatile(),
                }
            };
            if present(v) {
                f(i, v)?;
            }
        }
        Ok(())
    }
}

/// One pte page, reachable for a while: in the direct map, or (high)
/// mapped through kmap_atomic_pte until [`Walker::unmap_pte_page`].
pub struct PtePage {
    pub pfn: Pfn,
    page: *mut u8,
    mode: PagingMode,
    /// The address its first entry maps.
    base: u32,
    root: Pfn,
    pinning: Pinning,
    slot: Option<PteSlot>,
}

impl PtePage {
    /// Entry `i` as stored.
    pub fn get(&self, i: u32) -> u64 {
        RawEntries { page: self.page, mode: self.mode }.get(i)
    }

    /// Entry `i`, for a write through the backend.
    pub fn entry(&self, i: u32) -> EntryRef {
        assert!(i < self.mode.entries_per_page());
        // SAFETY: the page's 4096 bytes are reachable at `page` (the direct
        // map, or a kmap_atomic_pte slot until unmap_pte_page consumes this
        // value); the index is inside it and entries are aligned at their
        // width.
        unsafe {
            EntryRef::new(
                self.mode,
                Level::Pte,
                self.pfn,
                i,
                self.page.add((i * self.mode.entry_size()) as usize),
                VirtAddr(self.base + (i << 12)),
                self.root,
                self.pinning,
            )
        }
    }

    /// Is it mapped through kmap_atomic_pte (a high page)?
    pub fn is_high(&self) -> bool {
        self.slot.is_some()
    }
}

/// One leaf mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub va: u32,
    /// The frame mapped, or None if it is not ours (Xen: a foreign or
    /// hypervisor frame).
    pub pfn: Option<Pfn>,
    pub flags: PteFlags,
    /// 4096, or the large-page size.
    pub size: u32,
    /// The entry as stored (under Xen: with a machine frame).
    pub raw: u64,
}

impl<'a, M: Mmu + ?Sized> Walker<'a, M> {
    /// A walker of the live pagetable `root`, whose tables are all pinned.
    pub fn live(mmu: &'a M, mem: &'a dyn PhysMem, mode: PagingMode, root: Pfn) -> Self {
        Walker { mmu, mem, mode, root, tables: Tables::All(Pinning::Pinned), high: None }
    }

    pub fn pinning(&self, table: Pfn) -> Pinning {
        match self.tables {
            Tables::All(p) => p,
            Tables::Build(fresh) if fresh.contains(table) => Pinning::Unpinned,
            Tables::Build(_) => Pinning::Pinned,
        }
    }

    /// The `index`th entry of `table`, which sits at `level` and whose
    /// first entry maps `base`. Panics if the frame is not reachable or
    /// the index is beyond the page: callers reach tables through entries
    /// they checked.
    pub fn entry(&self, table: Pfn, level: Level, index: u32, base: u32) -> EntryRef {
        assert!(self.mem.reachable(table), "pagetable page {table:?} is not reachable");
        assert!(index < self.mode.entries_per_page());
        let span: u64 = match level {
            Level::Pte => 1 << 12,
            Level::Pmd => 1 << self.mode.pmd_shift(),
            Level::Pgd => 1 << self.mode.pgd_shift(),
        };
        // SAFETY: `table` is reachable, so PhysMem maps its 4096 bytes;
        // the index is inside the page and entries are aligned at their
        // width.
        unsafe {
            EntryRef::new(
                self.mode,
                level,
                table,
                index,
                self.mem.page(table).add((index * self.mode.entry_size()) as usize),
                VirtAddr((base as u64 + index as u64 * span) as u32),
                self.root,
                self.pinning(table),
            )
        }
    }

    /// The entries of pagetable page `table`, for reading in a loop.
    pub fn raw_ptes(&self, table: Pfn) -> RawEntries {
        assert!(self.mem.reachable(table), "pagetable page {table:?} is not reachable");
        RawEntries { page: self.mem.page(table), mode: self.mode }
    }

    /// The pte page a present pmd entry names, if it is ours: in the
    /// direct map, or (HIGHPTE) in high memory.
    pub fn pte_table(&self, pmd: u64) -> Option<Pfn> {
        self.mmu
            .pte_pfn(self.mode, pmd)
            .filter(|&t| self.mem.reachable(t) || self.high.is_some_and(|h| h.holds(t)))
    }

    /// Makes pte page `pt` (whose first entry maps `base`) reachable: a low
    /// page where it is, a high one through kmap_atomic_pte at `slot`.
    /// Hand it back to `unmap_pte_page`.
    pub fn map_pte_page(&self, pt: Pfn, base: u32, slot: PteSlot) -> Result<PtePage, MmError> {
        let pinning = self.pinning(pt);
        let (page, slot) = if self.mem.reachable(pt) {
            (self.mem.page(pt), None)
        } else {
            let h = self
                .high
                .as_ref()
                .filter(|h| h.holds(pt))
                .ok_or(MmError::Foreign { va: VirtAddr(base), raw: pt.addr().0 })?;
            (h.kmap_atomic_pte(self.mmu, self.mem, pt, slot, pinning)?, Some(slot))
        };
        Ok(PtePage { pfn: pt, page, mode: self.mode, base, root: self.root, pinning, slot })
    }

    pub fn unmap_pte_page(&self, p: PtePage) -> Result<(), MmError> {
        match (p.slot, self.high.as_ref()) {
            (Some(s), Some(h)) => h.kunmap_atomic_pte(self.mmu, self.mem, s),
            _ => Ok(()),
        }
    }

    /// The pte page covering user address `va`, if there is one, made
    /// reachable at `slot`.
    pub fn pte_page(&self, va: u32, slot: PteSlot) -> Result<Option<PtePage>, MmError> {
        let Some(pmd) = self.pmd(va) else { return Ok(None) };
        let v = pmd.read();
        if !present(v) || self.is_large(v) {
            return Ok(None);
        }
        let Some(pt) = self.pte_table(v) else { return Ok(None) };
        self.map_pte_page(pt, va & !(self.mode.pmd_size() - 1), slot).map(Some)
    }

    /// Runs `f` on the pte entry of `va` (None: no pte page covers it),
    /// the pte page mapped at `slot` for the call if it is high.
    pub fn with_pte<R>(
        &self,
        va: u32,
        slot: PteSlot,
        f: impl FnOnce(&EntryRef) -> R,
    ) -> Result<Option<R>, MmError> {
        let Some(page) = self.pte_page(va, slot)? else { return Ok(None) };
        let r = f(&page.entry(self.mode.pte_index(va)));
        self.unmap_pte_page(page)?;
        Ok(Some(r))
    }

    pub fn pgd(&self, va: u32) -> EntryRef {
        let i = self.mode.pgd_index(va);
        self.entry(self.root, Level::Pgd, i, 0)
    }

    /// The page a present table-pointing entry names, if it is ours and
    /// reachable.
    pub fn table_of(&self, raw: u64) -> Option<Pfn> {
        self.mmu.pte_pfn(self.mode, raw).filter(|&t| self.mem.reachable(t))
    }

    /// The pmd entry covering `va`. In 2-level the pmd is folded into the
    /// pgd: the same slot, seen as a pmd. In PAE, None if the pgd entry is
    /// empty or names a page beyond reach.
    pub fn pmd(&self, va: u32) -> Option<EntryRef> {
        match self.mode {
            PagingMode::TwoLevel => {
                let i = self.mode.pgd_index(va);
                Some(self.entry(self.root, Level::Pmd, i, 0))
            }
            PagingMode::Pae => {
                let v = self.pgd(va).read();
                if !present(v) {
                    return None;
                }
                let table = self.table_of(v)?;
                let base = va & !((1u64 << self.mode.pgd_shift()) - 1) as u32;
                Some(self.entry(table, Level::Pmd, self.mode.pmd_index(va), base))
            }
        }
    }

    /// Is this pmd entry a large-page mapping?
    pub fn is_large(&self, pmd: u64) -> bool {
        pmd & PteFlags::PSE.bits() != 0
    }

    /// The pte entry for `va`, if a pte page in the direct map covers it
    /// (the kernel's; a user pte page may be high: `with_pte`).
    pub fn pte(&self, va: u32) -> Option<EntryRef> {
        let pmd = self.pmd(va)?;
        let v = pmd.read();
        if !present(v) || self.is_large(v) {
            return None;
        }
        let base = va & !(self.mode.pmd_size() - 1);
        let table = self.table_of(v)?;
        Some(self.entry(table, Level::Pte, self.mode.pte_index(va), base))
    }

    /// The frame a large-page pmd entry maps at its start.
    fn large_pfn(&self, v: u64) -> Option<Pfn> {
        // Bit 12 of a large entry is PAT, not address: clear it before
        // translating.
        let masked = v & (self.mode.large_addr_mask() | self.mode.flag_mask());
        self.mmu.pte_pfn(self.mode, masked)
    }

    /// Calls `f` for every leaf mapping in `[start, end)`, in address order,
    /// skipping empty pgd/pmd entries without visiting their range. A pte
    /// page that cannot be reached (a foreign frame) is reported once as a
    /// mapping with `pfn: None` and size 0.
    pub fn for_each_mapping(&self, start: u32, end: u64, mut f: impl FnMut(Mapping)) {
        let pmd_size = self.mode.pmd_size() as u64;
        let mut va = start as u64;
        while va < end {
            let pmd_end = ((va / pmd_size) + 1) * pmd_size;
            let Some(pmd) = self.pmd(va as u32) else {
                // PAE: empty pgd entry, skip its whole 1 GiB.
                let span = 1u64 << self.mode.pgd_shift();
                va = (va / span + 1) * span;
                continue;
            };
            let v = pmd.read();
            if !present(v) {
                va = pmd_end;
                continue;
            }
            if self.is_large(v) {
                let base = va & !(pmd_size - 1);
                f(Mapping {
                    va: base as u32,
                    pfn: self.large_pfn(v),
                    flags: flags(self.mode, v),
                    size: pmd_size as u32,
                    raw: v,
                });
                va = pmd_end;
                continue;
            }
            let base = (va & !(pmd_size - 1)) as u32;
            // A pte page that is not ours, or a high one that could not be
            // mapped, is reported as unreachable.
            let page = self.pte_table(v).map(|t| self.map_pte_page(t, base, PteSlot::Pte0));
            let Some(Ok(raw)) = page else {
                f(Mapping { va: base, pfn: None, flags: flags(self.mode, v), size: 0, raw: v });
                va = pmd_end;
                continue;
            };
            let first = self.mode.pte_index(va as u32);
            let last = (end.min(pmd_end) - base as u64).div_ceil(4096) as u32;
            // The leaf loop of every walk: read the page directly rather
            // than through an EntryRef per entry.
            for i in first..last {
                let pv = raw.get(i);
                if present(pv) {
                    f(Mapping {
                        va: base + (i << 12),
                        pfn: self.mmu.pte_pfn(self.mode, pv),
                        flags: flags(self.mode, pv),
                        size: 4096,
                        raw: pv,
                    });
                }
            }
            if self.unmap_pte_page(raw).is_err() {
                // The slot stays mapped; say so as an unreachable table.
                f(Mapping { va: base, pfn: None, flags: flags(self.mode, v), size: 0, raw: v });
            }
            va = pmd_end;
        }
    }

    /// Calls `f(pfn, level)` for the root and every pmd and pte page
    /// reachable from the pgd entries covering `[start, end)`.
    pub fn for_each_table(&self, start: u32, end: u64, mut f: impl FnMut(Pfn, Level)) {
        f(self.root, Level::Pgd);
        let pmd_size = self.mode.pmd_size() as u64;
        let pgd_span = 1u64 << self.mode.pgd_shift();
        let mut va = start as u64;
        while va < end {
            if self.mode == PagingMode::Pae {
                let v = self.pgd(va as u32).read();
                let Some(pmd_page) = present(v).then(|| self.table_of(v)).flatten() else {
                    va = (va / pgd_span + 1) * pgd_span;
                    continue;
                };
                if va.is_multiple_of(pgd_span) || va == start as u64 {
                    f(pmd_page, Level::Pmd);
                }
            }
            if let Some(pmd) = self.pmd(va as u32) {
                let v = pmd.read();
                if present(v) && !self.is_large(v) {
                    if let Some(t) = self.pte_table(v) {
                        f(t, Level::Pte);
                    }
                }
            }
            va = (va / pmd_size + 1) * pmd_size;
        }
    }
}
