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
use paravirt::{BuildError, BulkFill, EntryRef, Mmu, PageAlloc, PagetableBuild, PhysMem, Pinning};

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
    /// Hook calls that wrote entries (a `set_pte_range` counts once; a
    /// bulk call, as many as the hooks its default body makes: two per pte
    /// page, one per large page).
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
    let mut build = new_build(mmu, mem, alloc, layout, caps)?;
    mmu.pagetable_setup_start(&mut build)?;
    probe(Phase::SetupStart);
    let (stats, pkmap_table, fixmap_tables) = build_kernel_half(mmu, &mut build, layout, probe)?;
    let (root, fresh) = (build.root, *build.fresh());
    probe(Phase::FixmapPkmap);
    mmu.pagetable_setup_done(build)?;
    probe(Phase::SetupDone);
    Ok(Pagetable { mode, root, pkmap_table, fixmap_tables, stats, fresh })
}

/// A build that never becomes live: the same direct map and fixmap/pkmap
/// structure as [`pagetable_init`]'s, in a fresh root from `alloc`, but
/// with nothing adopted (no `pagetable_setup_start`) and nothing switched
/// to (no `pagetable_setup_done`). The pages stay plain memory the
/// hypervisor has never seen, so the caller may simply reuse them.
///
/// What it is for: timing the build itself in a running kernel, once
/// through `&dyn Mmu` and once monomorphized for the chosen backend's
/// concrete type (`perf: dispatch.*`), over the same frames.
pub fn build_detached<M: Mmu + ?Sized>(
    mmu: &M,
    mem: &dyn PhysMem,
    alloc: &mut dyn PageAlloc,
    layout: &Layout,
    caps: Caps,
    probe: &mut dyn FnMut(Phase),
) -> Result<(Pfn, BuildStats), MmError> {
    let mut build = new_build(mmu, mem, alloc, layout, caps)?;
    let (stats, _, _) = build_kernel_half(mmu, &mut build, layout, probe)?;
    Ok((build.root, stats))
}

/// A build in a fresh root, announced to the backend (`alloc_pd`).
fn new_build<'a, M: Mmu + ?Sized>(
    mmu: &M,
    mem: &'a dyn PhysMem,
    alloc: &'a mut dyn PageAlloc,
    layout: &Layout,
    caps: Caps,
) -> Result<PagetableBuild<'a>, MmError> {
    let build = PagetableBuild::new(layout.mode, mem, alloc, caps, layout.direct_map_end())
        .map_err(|e| MmError::table_alloc(e, "pgd", 0))?;
    mmu.alloc_pd(build.root, Pinning::Unpinned)?;
    Ok(build)
}

/// The direct map, then the fixmap's and pkmap's pte pages, in lazy-MMU
/// mode: the part of the build between `pagetable_setup_start` and
/// `pagetable_setup_done`. Returns what it did, the pkmap's pte page and
/// the fixmap's first and last. The build is borrowed, not moved in and
/// out: it is a few hundred bytes, which a call the compiler does not
/// inline would copy.
fn build_kernel_half<M: Mmu + ?Sized>(
    mmu: &M,
    build: &mut PagetableBuild,
    layout: &Layout,
    probe: &mut dyn FnMut(Phase),
) -> Result<(BuildStats, Pfn, (Pfn, Pfn)), MmError> {
    let mut b =
        Builder { mmu, b: build, layout, stats: BuildStats { pgd_pages: 1, ..Default::default() }, probe };
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
    Ok((stats, pkmap_table, fixmap_tables))
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
struct Builder<'a, 'b, 'm, M: Mmu + ?Sized> {
    mmu: &'a M,
    b: &'b mut PagetableBuild<'m>,
    layout: &'a Layout,
    stats: BuildStats,
    probe: &'b mut dyn FnMut(Phase),
}

impl<M: Mmu + ?Sized> Builder<'_, '_, '_, M> {
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
            // One page of pmd entries at a time: they are consecutive, so
            // the walk from the root happens once per page (PAE: a pmd page,
            // 1 GiB; 2-level, where the pmd is folded into the pgd: the root
            // itself), not once per pmd.
            let va = PAGE_OFFSET + (pfn << 12);
            let pmd = self.one_md_table_init(va)?;
            let mut i = 0;
            let left = mode.entries_per_page() - pmd.index();
            while i < left && pfn < max_low {
                let at = pmd.add(i);
                let n = self.plain_run(&at, pfn, left - i);
                if n > 0 {
                    self.map_run(&at, pfn, n)?;
                } else {
                    self.map_pmd(&at, pfn, (pfn + per_pmd).min(max_low))?;
                }
                let n = n.max(1);
                pfn += n * per_pmd;
                i += n;
            }
        }
        Ok(())
    }

    /// How many pmd entries from `pmd` on (at most `limit`) are empty and
    /// are to map a whole pmd of plain data (low memory all the way, no
    /// part of the kernel image that needs its own permissions): the
    /// common case, mapped in one bulk call.
    fn plain_run(&self, pmd: &EntryRef, pfn: u32, limit: u32) -> u32 {
        let mode = self.b.mode;
        let per = mode.ptrs_per_pte();
        let raw = self.w().raw_ptes(pmd.table());
        let mut n = 0;
        while n < limit {
            let first = pfn + n * per;
            let va = PAGE_OFFSET + (first << 12);
            if first + per > self.layout.max_low_pfn.0
                || present(raw.get(pmd.index() + n))
                || self.layout.image.overlaps_protected(va, mode.pmd_size())
            {
                break;
            }
            n += 1;
        }
        n
    }

    /// Maps the `n` pmds of a [`plain_run`](Self::plain_run) from `pmd`
    /// on: large pages where allowed, else full pte pages, in one call to
    /// the backend.
    fn map_run(&mut self, pmd: &EntryRef, pfn: u32, n: u32) -> Result<(), MmError> {
        let flags = prot(&self.b.caps, Section::Data);
        if self.b.caps.large_pages {
            self.mmu.map_large_pages(pmd, n, Pfn(pfn), flags | PteFlags::PSE)?;
            self.stats.large_written += n;
            self.stats.write_calls += n;
            return Ok(());
        }
        let before = self.b.fresh().count();
        let probe = &mut *self.probe;
        let r = self.mmu.map_pte_pages(self.b, pmd, n, Pfn(pfn), flags, &mut |e| match e {
            BulkFill::Start => probe(Phase::BulkStart),
            BulkFill::Done(n) => probe(Phase::BulkEnd(n)),
        });
        let made = self.b.fresh().count() - before;
        match r {
            Ok(()) => {
                self.stats.pte_pages += n;
                self.stats.ptes_written += n * self.b.mode.ptrs_per_pte();
                // A fill and a link per page.
                self.stats.write_calls += 2 * n;
                Ok(())
            }
            Err(BuildError::NoTable(e)) => {
                Err(MmError::table_alloc(e, "pte", self.stats.table_pages() + made))
            }
            Err(BuildError::Hv(e)) => Err(e.into()),
        }
    }

    /// Maps frames `[pfn, end)` (one pmd's worth at most) under `pmd`.
    fn map_pmd(&mut self, pmd: &EntryRef, pfn: u32, end: u32) -> Result<(), MmError> {
        let mode = self.b.mode;
        let full = end == pfn + mode.ptrs_per_pte();
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
        } else {
            // Not a plain run (the image's pmds, the last partial one): a
            // pte page with section runs. Filled before it is linked: until
            // then no pagetable can reach it, so no hypervisor needs to see
            // the individual writes. A page that will be filled entirely
            // need not be zeroed first.
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
                let stop = at + boundary - pfn;
                let mut i = 0;
                while pfn + i < boundary {
                    let n = raw.run_len(at + i, stop, true);
                    if n > 0 {
                        self.stats.ptes_kept += n;
                        self.stats.kept.add(Pfn(pfn + i), n);
                        i += n;
                        continue;
                    }
                    let n = raw.run_len(at + i, stop, false);
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
