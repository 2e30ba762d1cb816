//! `pagetable_init`: the kernel's own pagetable, built idempotently.
//!
//! Follows Linux 2.6.21 arch/i386/mm/init.c after the seed patch, function
//! for function: `one_md_table_init` (a pmd page under a PAE pgd entry),
//! `one_page_table_init` (a pte page under a pmd entry),
//! `kernel_physical_mapping_init` (the direct map), `page_table_range_init`
//! (pte pages for a range, no entries) and `permanent_kmaps_init`. Each
//! allocates only where the entry it would fill is empty.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, PagingMode, Pfn, PteFlags};
use paravirt::pfnset::PfnRuns;
pub use paravirt::Caps;
use paravirt::{EntryRef, Mmu, PageAlloc, PagetableBuild, PhysMem, Pinning};

use crate::layout::{Layout, Section};
use crate::ptdump::Kept;
use crate::walk::{Tables, Walker};
use crate::MmError;

/// What the build did, for the boot log and the benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// New pagetable pages by level.
    pub pgd_pages: u32,
    pub pmd_pages: u32,
    pub pte_pages: u32,
    /// Entries written: 4 KiB ptes and large-page pmds.
    pub ptes_written: u32,
    pub large_written: u32,
    /// Entries found present and kept.
    pub ptes_kept: u32,
    pub large_kept: u32,
    /// pte pages found present and used in place (shared).
    pub pte_pages_kept: u32,
    /// Backend calls that wrote entries (a range call counts once).
    pub write_calls: u32,
    /// Every page the build allocated as a pagetable page, those the
    /// backend allocated in `pagetable_setup_start` included.
    pub fresh_pages: u32,
    /// Which direct-map entries were kept, for the ptdump.
    pub kept: Kept,
}

impl BuildStats {
    pub fn table_pages(&self) -> u32 {
        self.pgd_pages + self.pmd_pages + self.pte_pages
    }
}

/// The kernel's pagetable, once built and live: what the build phase
/// turns into when `pagetable_setup_done` succeeds.
#[derive(Clone, Copy, Debug)]
pub struct Pagetable {
    pub mode: PagingMode,
    pub root: Pfn,
    /// The persistent-kmap pte page (Linux's pkmap_page_table).
    pub pkmap_table: Pfn,
    /// The fixmap's pte pages, one per pmd the fixmap spans (first, last).
    pub fixmap_tables: (Pfn, Pfn),
    pub stats: BuildStats,
    /// The pagetable pages the build made (the rest it kept), for the
    /// ptdump.
    pub fresh: PfnRuns,
}

/// Points of the build a caller can measure (instructions, hypercalls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `pagetable_setup_start` returned.
    SetupStart,
    /// The direct map is built.
    DirectMap,
    /// The fixmap and pkmap pte pages exist.
    FixmapPkmap,
    /// `pagetable_setup_done` returned: the new pagetable is live.
    SetupDone,
    /// Around each bulk fill of a fresh pte page (one `set_pte_range`
    /// call): the bulk path, measured on its own.
    BulkStart,
    /// The bulk fill wrote this many ptes.
    BulkEnd(u32),
}

/// Builds the kernel pagetable in a fresh root and makes it live; `probe`
/// is called at each [`Phase`].
pub fn pagetable_init<M: Mmu + ?Sized>(
    mmu: &M,
    mem: &dyn PhysMem,
    alloc: &mut dyn PageAlloc,
    layout: &Layout,
    caps: Caps,
    probe: &mut dyn FnMut(Phase),
) -> Result<Pagetable, MmError> {
    let mode = layout.mode;
    let mut build = PagetableBuild::new(mode, mem, alloc, caps, layout.direct_map_end())
        .map_err(|e| MmError::table_alloc(e, "pgd", 0))?;
    mmu.alloc_pd(build.root, Pinning::Unpinned)?;
    mmu.pagetable_setup_start(&mut build)?;
    probe(Phase::SetupStart);

    let mut b = Builder {
        mmu,
        b: build,
        layout,
        stats: BuildStats { pgd_pages: 1, ..Default::default() },
        probe: &mut *probe,
    };
    mmu.enter_lazy_mmu();
    let built = b.kernel_physical_mapping_init().and_then(|_| {
        (b.probe)(Phase::DirectMap);
        // Fixed mappings: only the pagetable structure has to be created;
        // the mappings are set one by one later (set_fixmap).
        let (start, end) = layout.fixmap_range();
        let first = b.page_table_range_init(start, start as u64 + 1)?;
        let last = b.page_table_range_init(start, end)?;
        let pkmap = b.permanent_kmaps_init()?;
        Ok((first, last, pkmap))
    });
    // Flush what was batched even if building failed: a hypervisor's own
    // error is the more telling one, so it is reported first.
    let flushed = mmu.leave_lazy_mmu();
    flushed?;
    let (first, last, pkmap_table) = built?;
    let fixmap_tables = match (first, last) {
        (Some(f), Some(l)) => (f, l),
        _ => {
            return Err(MmError::LargePage { va: arch_i386::VirtAddr(layout.fixaddr_start), what: "fixmap" })
        }
    };
    let mut stats = b.stats;
    stats.fresh_pages = b.b.fresh().count();
    let fresh = *b.b.fresh();
    let root = b.b.root;
    (b.probe)(Phase::FixmapPkmap);

    mmu.pagetable_setup_done(b.b)?;
    probe(Phase::SetupDone);
    Ok(Pagetable { mode, root, pkmap_table, fixmap_tables, stats, fresh })
}

/// Kernel mapping permissions for a section of the direct map.
pub fn prot(caps: &Caps, section: Section) -> PteFlags {
    let mut f = PteFlags::PRESENT | PteFlags::ACCESSED | PteFlags::DIRTY;
    if caps.global_pages {
        f |= PteFlags::GLOBAL;
    }
    let nx = if caps.nx { PteFlags::NX } else { PteFlags::empty() };
    match section {
        Section::Text => f,
        Section::Rodata => f | nx,
        Section::Data => f | PteFlags::RW | nx,
    }
}

/// The build in progress: the backend, the build's value (which owns its
/// new pages), and what was done so far.
struct Builder<'a, 'b, M: Mmu + ?Sized> {
    mmu: &'a M,
    b: PagetableBuild<'a>,
    layout: &'a Layout,
    stats: BuildStats,
    probe: &'b mut dyn FnMut(Phase),
}

impl<'a, M: Mmu + ?Sized> Builder<'a, '_, M> {
    /// A walker of the table being built: the build's own pages are
    /// unpinned, what it adopted is pinned.
    fn w(&self) -> Walker<'_, M> {
        Walker {
            mmu: self.mmu,
            mem: self.b.mem,
            mode: self.b.mode,
            root: self.b.root,
            tables: Tables::Build(self.b.fresh()),
            high: None,
        }
    }

    fn new_page(&mut self, what: &'static str, zeroed: bool) -> Result<Pfn, MmError> {
        let allocated = self.stats.table_pages();
        self.b.new_table(zeroed).map_err(|e| MmError::table_alloc(e, what, allocated))
    }

    /// The pmd entry for `va`, creating the pmd page under a PAE pgd entry
    /// if there is none (`one_md_table_init`). 2-level has no pmd page.
    fn one_md_table_init(&mut self, va: u32) -> Result<EntryRef, MmError> {
        if self.b.mode == PagingMode::Pae {
            let pgd = self.w().pgd(va);
            if !present(pgd.read()) {
                let pmd = self.new_page("pmd", true)?;
                self.mmu.alloc_pd(pmd, Pinning::Unpinned)?;
                let val = self.mmu.make_pte(pmd, PteFlags::PDPT_ENTRY);
                self.mmu.set_pgd(&pgd, val)?;
                self.stats.pmd_pages += 1;
                self.stats.write_calls += 1;
            }
        }
        Ok(self.w().pmd(va).expect("pmd present after one_md_table_init"))
    }

    /// The pte page under `pmd`, creating an empty one if there is none
    /// (`one_page_table_init`). None if the pmd holds a large page.
    fn one_page_table_init(&mut self, pmd: &EntryRef) -> Result<Option<Pfn>, MmError> {
        let v = pmd.read();
        if present(v) {
            if self.w().is_large(v) {
                return Ok(None);
            }
            return self.w().table_of(v).map(Some).ok_or(MmError::Foreign { va: pmd.vaddr(), raw: v });
        }
        let pte = self.new_page("pte", true)?;
        self.mmu.alloc_pt(pte, Pinning::Unpinned)?;
        let val = self.mmu.make_pte(pte, PteFlags::KERNPG_TABLE);
        self.mmu.set_pmd(pmd, val)?;
        self.stats.pte_pages += 1;
        self.stats.write_calls += 1;
        Ok(Some(pte))
    }

    /// Maps every low frame at `PAGE_OFFSET + pfn * 4K`.
    fn kernel_physical_mapping_init(&mut self) -> Result<(), MmError> {
        let mode = self.b.mode;
        let per_pmd = mode.ptrs_per_pte();
        let max_low = self.layout.max_low_pfn.0;
        let mut pfn = 0;
        while pfn < max_low {
            // One pgd entry at a time; its pmd entries are consecutive, so
            // the walk from the root happens once per pgd entry (PAE: once
            // per GiB), not once per pmd.
            let va = PAGE_OFFSET + (pfn << 12);
            let mut pmd = self.one_md_table_init(va)?;
            for _ in mode.pmd_index(va)..mode.ptrs_per_pmd() {
                if pfn >= max_low {
                    break;
                }
                self.map_pmd(&pmd, pfn, (pfn + per_pmd).min(max_low))?;
                pfn += per_pmd;
                pmd = pmd.add(1);
            }
        }
        Ok(())
    }

    /// Maps frames `[pfn, end)` (one pmd's worth at most) under `pmd`.
    fn map_pmd(&mut self, pmd: &EntryRef, pfn: u32, end: u32) -> Result<(), MmError> {
        let mode = self.b.mode;
        let full = end == pfn + mode.ptrs_per_pte();
        let va = PAGE_OFFSET + (pfn << 12);
        let v = pmd.read();
        if present(v) {
            if self.w().is_large(v) {
                self.stats.large_kept += 1;
                self.stats.kept.add(Pfn(pfn), mode.ptrs_per_pte());
            } else {
                self.stats.pte_pages_kept += 1;
                let table = self.w().table_of(v).ok_or(MmError::Foreign { va: pmd.vaddr(), raw: v })?;
                self.fill_ptes(table, pfn, end, false)?;
            }
        } else if self.b.caps.large_pages
            && full
            && !self.layout.image.overlaps_protected(va, mode.pmd_size())
        {
            // A whole pmd of plain data: one large page.
            let flags = prot(&self.b.caps, Section::Data) | PteFlags::PSE;
            let val = self.mmu.make_pte(Pfn(pfn), flags);
            self.mmu.set_pmd(pmd, val)?;
            self.stats.large_written += 1;
            self.stats.write_calls += 1;
        } else {
            // Fill the fresh pte page before linking it: until then no
            // pagetable can reach it, so no hypervisor needs to see the
            // individual writes. A page that will be filled entirely need
            // not be zeroed first.
            let table = self.new_page("pte", !full)?;
            self.mmu.alloc_pt(table, Pinning::Unpinned)?;
            self.fill_ptes(table, pfn, end, true)?;
            let val = self.mmu.make_pte(table, PteFlags::KERNPG_TABLE);
            self.mmu.set_pmd(pmd, val)?;
            self.stats.pte_pages += 1;
            self.stats.write_calls += 1;
        }
        Ok(())
    }

    /// Maps frames `[pfn, end)` in pte page `table` (all under one pmd),
    /// in runs of equal permissions; on a page that already has entries,
    /// only the runs of empty ones.
    fn fill_ptes(&mut self, table: Pfn, mut pfn: u32, end: u32, fresh: bool) -> Result<(), MmError> {
        let mode = self.b.mode;
        let image = self.layout.image;
        let base = (PAGE_OFFSET + (pfn << 12)) & !(mode.pmd_size() - 1);
        if fresh && !image.overlaps_protected(PAGE_OFFSET + (pfn << 12), (end - pfn) << 12) {
            // The common case: plain memory, one run.
            let first = self.w().entry(table, Level::Pte, mode.pte_index(PAGE_OFFSET + (pfn << 12)), base);
            let flags = prot(&self.b.caps, Section::Data);
            (self.probe)(Phase::BulkStart);
            self.mmu.set_pte_range(&first, end - pfn, Pfn(pfn), flags)?;
            (self.probe)(Phase::BulkEnd(end - pfn));
            self.stats.ptes_written += end - pfn;
            self.stats.write_calls += 1;
            return Ok(());
        }
        while pfn < end {
            let va = PAGE_OFFSET + (pfn << 12);
            let boundary = ((image.next_boundary(va) - PAGE_OFFSET as u64) >> 12).min(end as u64) as u32;
            let flags = prot(&self.b.caps, image.section(va));
            let first = self.w().entry(table, Level::Pte, mode.pte_index(va), base);
            if fresh {
                self.mmu.set_pte_range(&first, boundary - pfn, Pfn(pfn), flags)?;
                self.stats.ptes_written += boundary - pfn;
                self.stats.write_calls += 1;
            } else {
                // A kept page: scan its entries directly (one EntryRef per
                // run written, not per entry read).
                let raw = self.w().raw_ptes(table);
                let at = first.index();
                let mut i = 0;
                while pfn + i < boundary {
                    if present(raw.get(at + i)) {
                        let mut n = 1;
                        while pfn + i + n < boundary && present(raw.get(at + i + n)) {
                            n += 1;
                        }
                        self.stats.ptes_kept += n;
                        self.stats.kept.add(Pfn(pfn + i), n);
                        i += n;
                        continue;
                    }
                    let mut n = 1;
                    while pfn + i + n < boundary && !present(raw.get(at + i + n)) {
                        n += 1;
                    }
                    self.mmu.set_pte_range(&first.add(i), n, Pfn(pfn + i), flags)?;
                    self.stats.ptes_written += n;
                    self.stats.write_calls += 1;
                    i += n;
                }
            }
            pfn = boundary;
        }
        Ok(())
    }

    /// Makes sure pte pages exist for `[start, end)`; writes no ptes.
    /// Returns the last pte page.
    fn page_table_range_init(&mut self, start: u32, end: u64) -> Result<Option<Pfn>, MmError> {
        let pmd_size = self.b.mode.pmd_size() as u64;
        let mut va = start as u64 & !(pmd_size - 1);
        let mut last = None;
        while va < end {
            let pmd = self.one_md_table_init(va as u32)?;
            if let Some(t) = self.one_page_table_init(&pmd)? {
                last = Some(t);
            }
            va += pmd_size;
        }
        Ok(last)
    }

    fn permanent_kmaps_init(&mut self) -> Result<Pfn, MmError> {
        let start = self.layout.pkmap_base;
        let end = start as u64 + self.layout.last_pkmap as u64 * 4096;
        self.page_table_range_init(start, end)?
            .ok_or(MmError::LargePage { va: arch_i386::VirtAddr(start), what: "persistent-kmap area" })
    }
}
