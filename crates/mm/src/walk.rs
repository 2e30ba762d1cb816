//! Reading a pagetable: locating entries and visiting mappings.
//!
//! Entries are found through `PhysMem` and decoded through the backend
//! (`pte_pfn`), so the same walk reads a native table, a Xen table full of
//! machine frames, or a simulated one in a test.

use arch_i386::paging::{flags, present};
use arch_i386::{Level, PagingMode, Pfn, PteFlags, VirtAddr};
use paravirt::{EntryRef, Hypervisor, PhysMem};

/// Walks one pagetable. Generic over the backend type so that the build
/// can run with static dispatch (a concrete backend) as well as through
/// `&dyn Hypervisor`, the default; the dispatch benchmark compares them.
pub struct Walker<'a, H: Hypervisor + ?Sized = dyn Hypervisor> {
    pub hv: &'a H,
    pub mem: &'a dyn PhysMem,
    pub mode: PagingMode,
    pub root: Pfn,
}

impl<H: Hypervisor + ?Sized> Clone for Walker<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H: Hypervisor + ?Sized> Copy for Walker<'_, H> {}

/// One leaf mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub va: u32,
    pub pfn: Pfn,
    pub flags: PteFlags,
    /// 4096, or the large-page size.
    pub size: u32,
    /// The entry as stored (under Xen: with a machine frame).
    pub raw: u64,
}

impl<'a, H: Hypervisor + ?Sized> Walker<'a, H> {
    /// The `index`th entry of `table`, which sits at `level` and whose
    /// first entry maps `base`.
    pub fn entry(&self, table: Pfn, level: Level, index: u32, base: u32) -> EntryRef {
        let e = EntryRef {
            mode: self.mode,
            level,
            table,
            index: 0,
            ptr: self.mem.page(table),
            vaddr: VirtAddr(base),
            root: self.root,
        };
        e.add(index)
    }

    pub fn pgd(&self, va: u32) -> EntryRef {
        let i = self.mode.pgd_index(va);
        self.entry(self.root, Level::Pgd, i, 0)
    }

    /// The pmd entry covering `va`. In 2-level the pmd is folded into the
    /// pgd: the same slot, seen as a pmd. In PAE, None if the pgd entry is
    /// empty.
    pub fn pmd(&self, va: u32) -> Option<EntryRef> {
        let pgd = self.pgd(va);
        match self.mode {
            PagingMode::TwoLevel => Some(EntryRef { level: Level::Pmd, ..pgd }),
            PagingMode::Pae => {
                let v = pgd.read();
                if !present(v) {
                    return None;
                }
                let table = self.hv.pte_pfn(self.mode, v);
                if !self.mem.reachable(table) {
                    return None;
                }
                let base = va & !((1u64 << self.mode.pgd_shift()) - 1) as u32;
                Some(self.entry(table, Level::Pmd, self.mode.pmd_index(va), base))
            }
        }
    }

    /// Is this pmd entry a large-page mapping?
    pub fn is_large(&self, pmd: u64) -> bool {
        pmd & PteFlags::PSE.bits() != 0
    }

    /// The pte page a present, non-large pmd entry points at.
    pub fn pte_table(&self, pmd: u64) -> Pfn {
        self.hv.pte_pfn(self.mode, pmd)
    }

    /// The pte entry for `va`, if a pte page covers it.
    pub fn pte(&self, va: u32) -> Option<EntryRef> {
        let pmd = self.pmd(va)?;
        let v = pmd.read();
        if !present(v) || self.is_large(v) {
            return None;
        }
        let base = va & !(self.mode.pmd_size() - 1);
        let table = self.pte_table(v);
        self.mem.reachable(table).then(|| self.entry(table, Level::Pte, self.mode.pte_index(va), base))
    }

    /// The frame a large-page pmd entry maps at its start.
    fn large_pfn(&self, v: u64) -> Pfn {
        // Bit 12 of a large entry is PAT, not address: clear it before
        // translating.
        let masked = v & (self.mode.large_addr_mask() | self.mode.flag_mask());
        self.hv.pte_pfn(self.mode, masked)
    }

    /// Calls `f` for every leaf mapping in `[start, end)`, in address order,
    /// skipping empty pgd/pmd entries without visiting their range.
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
            let table = self.pte_table(v);
            if !self.mem.reachable(table) {
                // A pte page we cannot read (a foreign frame): its range
                // shows up as unmapped.
                va = pmd_end;
                continue;
            }
            let base = (va & !(pmd_size - 1)) as u32;

            let first = self.mode.pte_index(va as u32);
            let last = (end.min(pmd_end) - base as u64).div_ceil(4096) as u32;
            // The leaf loop of every walk: read the page directly rather
            // than through an EntryRef per entry.
            let page = self.mem.page(table);
            for i in first..last {
                // SAFETY: `page` is a reachable pte page and i < entries
                // per page; entries are aligned at their width.
                let pv = unsafe {
                    match self.mode {
                        PagingMode::TwoLevel => (page as *const u32).add(i as usize).read_volatile() as u64,
                        PagingMode::Pae => (page as *const u64).add(i as usize).read_volatile(),
                    }
                };
                if present(pv) {
                    f(Mapping {
                        va: base + (i << 12),
                        pfn: self.hv.pte_pfn(self.mode, pv),
                        flags: flags(self.mode, pv),
                        size: 4096,
                        raw: pv,
                    });
                }
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
                let pgd = self.pgd(va as u32);
                let v = pgd.read();
                if !present(v) {
                    va = (va / pgd_span + 1) * pgd_span;
                    continue;
                }
                if va.is_multiple_of(pgd_span) || va == start as u64 {
                    f(self.hv.pte_pfn(self.mode, v), Level::Pmd);
                }
            }
            if let Some(pmd) = self.pmd(va as u32) {
                let v = pmd.read();
                if present(v) && !self.is_large(v) {
                    f(self.pte_table(v), Level::Pte);
                }
            }
            va = (va / pmd_size + 1) * pmd_size;
        }
    }
}
