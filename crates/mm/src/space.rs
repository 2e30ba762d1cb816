//! Address spaces: a pagetable of its own for user memory, the kernel's
//! half shared, every pagetable page announced to the backend for its
//! whole life.
//!
//! - `new` is Linux's `pgd_alloc`: a root (and with PAE its pmd pages),
//!   announced with `alloc_pd`, the kernel half copied from the kernel's
//!   root. With PAE the kernel's pmd page is shared by every root, unless
//!   the platform forbids it (Xen: the L2 under slot 3 also holds Xen's own
//!   mappings and may belong to one L3 only); then each root gets its own
//!   copy of the kernel's pmd entries.
//! - Until its first activation the space is *unpinned*: the hypervisor
//!   has never seen it, and its tables are written with plain stores.
//!   `activate` pins it (Xen validates the whole tree) and loads it
//!   (`write_cr3`); from then on every change goes through the backend.
//! - `map` makes pte pages on demand (`alloc_pt`, told whether the space is
//!   pinned), `unmap` clears an entry and flushes its TLB entry when the
//!   space is live.
//! - `destroy` is exit: unpin (so teardown is plain stores again, as
//!   Linux's `xen_exit_mmap` does), hand every user frame back, release
//!   every pagetable page (`release_pt`/`release_pd`) and free it.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, PagingMode, Pfn, PteFlags, VirtAddr};
use paravirt::{EntryRef, Mmu, PhysMem, Pinning};

use crate::frames::{FrameAllocator, Zone};
use crate::highmem::{HighMem, Pkmap, PteSlot};
use crate::walk::{PtePage, Tables, Walker};
use crate::MmError;

/// What every operation on an address space needs.
pub struct Ctx<'a, 'f, M: Mmu + ?Sized> {
    pub mmu: &'a M,
    pub mem: &'a dyn PhysMem,
    pub frames: &'a mut FrameAllocator<'f>,
    pub mode: PagingMode,
    /// The kernel's own root (swapper_pg_dir), whose kernel half every
    /// address space shares.
    pub kernel_root: Pfn,
    /// With PAE, may roots share the kernel's pmd page?
    pub shared_kernel_pmd: bool,
    /// The first address the kernel may not copy into a root's kernel pmd
    /// (the hypervisor's hole: it fills those entries itself).
    pub kernel_top: u64,
    /// HIGHPTE: user pte pages come from high memory when there is any,
    /// reached through kmap_atomic_pte (None: all from low memory).
    pub high: Option<HighMem>,
    /// The persistent kmap pool, whose unused entries may still map a free
    /// high frame writable: such an entry goes before the frame becomes a
    /// pte page.
    pub pkmap: Option<&'a mut Pkmap<'f>>,
}

/// Runtime pagetable-page traffic, so the kernel can prove every
/// allocation was released.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub alloc_pt: u32,
    pub alloc_pd: u32,
    pub release_pt: u32,
    pub release_pd: u32,
    pub pins: u32,
    pub unpins: u32,
    /// Of the `alloc_pt`, pte pages in high memory (HIGHPTE).
    pub high_pt: u32,
}

pub struct AddressSpace {
    root: Pfn,
    mode: PagingMode,
    pinned: bool,
    /// PAE without a shared kernel pmd: this root's own copy.
    kernel_pmd: Option<Pfn>,
    /// How its pte pages in high memory are reached.
    high: Option<HighMem>,
    pub counts: TableCounts,
}

/// Flags of a pmd entry pointing at a user pte page: the pte decides.
const USER_TABLE: PteFlags = PteFlags::PRESENT
    .union(PteFlags::RW)
    .union(PteFlags::USER)
    .union(PteFlags::ACCESSED)
    .union(PteFlags::DIRTY);

impl AddressSpace {
    /// Linux's `pgd_alloc`.
    pub fn new<M: Mmu + ?Sized>(ctx: &mut Ctx<M>) -> Result<AddressSpace, MmError> {
        let mode = ctx.mode;
        let root = table_page(ctx, "pgd")?;
        let mut s = AddressSpace {
            root,
            mode,
            pinned: false,
            kernel_pmd: None,
            high: ctx.high,
            counts: TableCounts::default(),
        };
        ctx.mmu.alloc_pd(root, Pinning::Unpinned)?;
        s.counts.alloc_pd += 1;
        let kernel = Walker::live(ctx.mmu, ctx.mem, mode, ctx.kernel_root);
        let w = s.walker(ctx.mmu, ctx.mem);
        let first_kernel = mode.pgd_index(PAGE_OFFSET);
        match mode {
            PagingMode::TwoLevel => {
                // The kernel half's pgd entries, pointing at the kernel's
                // shared pte pages.
                for i in first_kernel..mode.ptrs_per_pgd() {
                    let v = kernel.pgd(i << mode.pgd_shift()).read();
                    if present(v) {
                        ctx.mmu.set_pgd(&w.entry(root, Level::Pgd, i, 0), v)?;
                    }
                }
            }
            PagingMode::Pae => {
                // User pmd pages are preallocated: a PDPT entry only takes
                // effect at the next CR3 load.
                for i in 0..first_kernel {
                    let pmd = table_page(ctx, "pmd")?;
                    ctx.mmu.alloc_pd(pmd, Pinning::Unpinned)?;
                    s.counts.alloc_pd += 1;
                    ctx.mmu.set_pgd(
                        &w.entry(root, Level::Pgd, i, 0),
                        ctx.mmu.make_pte(pmd, PteFlags::PDPT_ENTRY),
                    )?;
                }
                let kv = kernel.pgd(PAGE_OFFSET).read();
                if ctx.shared_kernel_pmd {
                    ctx.mmu.set_pgd(&w.entry(root, Level::Pgd, first_kernel, 0), kv)?;
                } else {
                    let pmd = table_page(ctx, "kernel pmd")?;
                    ctx.mmu.alloc_pd(pmd, Pinning::Unpinned)?;
                    s.counts.alloc_pd += 1;
                    s.kernel_pmd = Some(pmd);
                    let entry = ctx.mmu.make_pte(pmd, PteFlags::PDPT_ENTRY);
                    ctx.mmu.set_pgd(&w.entry(root, Level::Pgd, first_kernel, 0), entry)?;
                    s.sync_kernel_pmd(ctx)?;
                }
            }
        }
        Ok(s)
    }

    pub fn root(&self) -> Pfn {
        self.root
    }

    pub fn pinned(&self) -> bool {
        self.pinned
    }

    fn pinning(&self) -> Pinning {
        if self.pinned {
            Pinning::Pinned
        } else {
            Pinning::Unpinned
        }
    }

    pub fn walker<'a, M: Mmu + ?Sized>(&self, mmu: &'a M, mem: &'a dyn PhysMem) -> Walker<'a, M> {
        Walker {
            mmu,
            mem,
            mode: self.mode,
            root: self.root,
            tables: Tables::All(self.pinning()),
            high: self.high,
        }
    }

    /// With an unshared kernel pmd: copies the kernel's pmd entries (below
    /// the hypervisor's hole) that this root's copy lacks or differs in.
    /// Linux keeps such copies in sync through its pgd_list; the kernel
    /// calls this for every root when it changes a kernel pmd entry.
    pub fn sync_kernel_pmd<M: Mmu + ?Sized>(&self, ctx: &mut Ctx<M>) -> Result<u32, MmError> {
        let Some(copy) = self.kernel_pmd else { return Ok(0) };
        let kernel = Walker::live(ctx.mmu, ctx.mem, self.mode, ctx.kernel_root);
        let w = self.walker(ctx.mmu, ctx.mem);
        let kpmd = kernel.pmd(PAGE_OFFSET).ok_or(MmError::Foreign { va: VirtAddr(PAGE_OFFSET), raw: 0 })?;
        let span = self.mode.pmd_size() as u64;
        let mut changed = 0;
        for i in 0..self.mode.ptrs_per_pmd() {
            if PAGE_OFFSET as u64 + (i as u64 + 1) * span > ctx.kernel_top {
                break;
            }
            let v = kpmd.add(i).read();
            let mine = w.entry(copy, Level::Pmd, i, PAGE_OFFSET);
            if mine.read() != v {
                ctx.mmu.set_pmd(&mine, v)?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Maps user page `va` to `pfn` with `flags` (USER and PRESENT added),
    /// creating the pte page if needed.
    pub fn map<M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<M>,
        va: u32,
        pfn: Pfn,
        flags: PteFlags,
    ) -> Result<(), MmError> {
        assert!(va < PAGE_OFFSET && va.is_multiple_of(4096), "not a user page: {va:#x}");
        self.ensure_pte_page(ctx, va, PteSlot::Pte0)?;
        let val = ctx.mmu.make_pte(pfn, flags | PteFlags::PRESENT | PteFlags::USER);
        let mmu = ctx.mmu;
        self.walker(ctx.mmu, ctx.mem)
            .with_pte(va, PteSlot::Pte0, |e| mmu.set_pte(e, val))?
            .ok_or(MmError::LargePage { va: VirtAddr(va), what: "a user mapping" })?
            .map_err(MmError::from)
    }

    /// Makes the pte page covering `va` if there is none (Linux's
    /// `pte_alloc`): from high memory when there is any, zeroed through
    /// kmap_atomic_pte at `slot`, announced (`alloc_pt`) and linked.
    fn ensure_pte_page<M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<M>,
        va: u32,
        slot: PteSlot,
    ) -> Result<(), MmError> {
        let w = self.walker(ctx.mmu, ctx.mem);
        let pmd = w.pmd(va).ok_or(MmError::Foreign { va: VirtAddr(va), raw: 0 })?;
        if !present(pmd.read()) {
            let (pt, high) = pte_alloc_one(ctx, slot)?;
            ctx.mmu.alloc_pt(pt, self.pinning())?;
            self.counts.alloc_pt += 1;
            self.counts.high_pt += high as u32;
            ctx.mmu.set_pmd(&pmd, ctx.mmu.make_pte(pt, USER_TABLE))?;
        }
        Ok(())
    }

    /// Replaces the mapping of user page `va` (a copy-on-write break: the
    /// same frame made writable, or a private copy), flushing the old
    /// entry from the TLB if this space is live.
    pub fn remap<M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<M>,
        va: u32,
        pfn: Pfn,
        flags: PteFlags,
        live: bool,
    ) -> Result<(), MmError> {
        self.map(ctx, va, pfn, flags)?;
        if live {
            ctx.mmu.flush_tlb_single(VirtAddr(va))?;
        }
        Ok(())
    }

    /// The entry of user page `va` as it is now (0: no pte page, or not
    /// present).
    pub fn pte_value<M: Mmu + ?Sized>(&self, ctx: &Ctx<M>, va: u32) -> Result<u64, MmError> {
        Ok(self.walker(ctx.mmu, ctx.mem).with_pte(va, PteSlot::Pte0, |e| e.read())?.unwrap_or(0))
    }

    /// fork: maps every user page of `self` into `child` (a fresh space,
    /// not yet activated, so these are plain stores) read-only in both;
    /// a writable page becomes copy-on-write. The parent's entries change
    /// in one lazy-MMU batch (the reason lazy mode exists: under Xen one
    /// `mmu_update` carries them all), then one flush of its user TLB
    /// entries if it is live. `share` counts each new mapping and may
    /// refuse it; the copy then stops with what it did in place (a
    /// consistent state: the caller destroys the child). Returns the pages
    /// shared.
    pub fn fork_into<M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<M>,
        child: &mut AddressSpace,
        live: bool,
        mut share: impl FnMut(Pfn) -> Result<(), MmError>,
    ) -> Result<u32, MmError> {
        ctx.mmu.enter_lazy_mmu();
        let copied = self.fork_pages(ctx, child, &mut share);
        let flushed = ctx.mmu.leave_lazy_mmu();
        let (n, protected) = copied?;
        flushed?;
        if live && protected > 0 {
            ctx.mmu.flush_tlb_user()?;
        }
        Ok(n)
    }

    fn fork_pages<M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<M>,
        child: &mut AddressSpace,
        share: &mut impl FnMut(Pfn) -> Result<(), MmError>,
    ) -> Result<(u32, u32), MmError> {
        let (mut n, mut protected) = (0, 0);
        let pmd_size = self.mode.pmd_size() as u64;
        let mut base = 0u64;
        while base < PAGE_OFFSET as u64 {
            let w = self.walker(ctx.mmu, ctx.mem);
            // The parent's pte page at KM_PTE0, the child's (made on the
            // first present entry) at KM_PTE1, both for the whole page.
            if let Some(src) = w.pte_page(base as u32, PteSlot::Pte0)? {
                let mut dst = None;
                let r = self.fork_pte_page(ctx, child, &src, &mut dst, share, (&mut n, &mut protected));
                let d = match dst {
                    Some(d) => child.walker(ctx.mmu, ctx.mem).unmap_pte_page(d),
                    None => Ok(()),
                };
                let s = w.unmap_pte_page(src);
                r?;
                d?;
                s?;
            }
            base += pmd_size;
        }
        Ok((n, protected))
    }

    /// fork of one pte page `src` of the parent into the child's (`dst`,
    /// made and mapped on the first present entry).
    fn fork_pte_page<M: Mmu + ?Sized>(
        &self,
        ctx: &mut Ctx<M>,
        child: &mut AddressSpace,
        src: &PtePage,
        dst: &mut Option<PtePage>,
        share: &mut impl FnMut(Pfn) -> Result<(), MmError>,
        (n, protected): (&mut u32, &mut u32),
    ) -> Result<(), MmError> {
        for i in 0..self.mode.ptrs_per_pte() {
            let v = src.get(i);
            if !present(v) {
                continue;
            }
            let va = src.entry(i).vaddr().0;
            let pfn = ctx.mmu.pte_pfn(self.mode, v).ok_or(MmError::Foreign { va: VirtAddr(va), raw: v })?;
            share(pfn)?;
            if dst.is_none() {
                child.ensure_pte_page(ctx, va, PteSlot::Pte1)?;
                *dst = child.walker(ctx.mmu, ctx.mem).pte_page(va, PteSlot::Pte1)?;
            }
            let d = dst.as_ref().ok_or(MmError::LargePage { va: VirtAddr(va), what: "a user mapping" })?;
            let flags = PteFlags::from_bits_truncate(v) - PteFlags::RW - PteFlags::DIRTY;
            ctx.mmu
                .set_pte(&d.entry(i), ctx.mmu.make_pte(pfn, flags | PteFlags::PRESENT | PteFlags::USER))?;
            *n += 1;
            if v & PteFlags::RW.bits() != 0 {
                ctx.mmu.set_pte(&src.entry(i), v & !PteFlags::RW.bits())?;
                *protected += 1;
            }
        }
        Ok(())
    }

    /// Removes the mapping of `va`; returns the frame it mapped. The TLB
    /// entry is flushed if this space is the live one (`live`).
    pub fn unmap<M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<M>,
        va: u32,
        live: bool,
    ) -> Result<Option<Pfn>, MmError> {
        let mmu = ctx.mmu;
        let cleared = self.walker(ctx.mmu, ctx.mem).with_pte(va, PteSlot::Pte0, |e| {
            let v = e.read();
            if present(v) {
                mmu.set_pte(e, 0).map(|_| Some(v))
            } else {
                Ok(None)
            }
        })?;
        let Some(v) = cleared.transpose()?.flatten() else { return Ok(None) };
        if live {
            ctx.mmu.flush_tlb_single(VirtAddr(va))?;
        }
        Ok(ctx.mmu.pte_pfn(self.mode, v))
    }

    /// munmap: removes the mappings of `count` pages from `va` on, with one
    /// TLB flush of the user half at the end if the space is live (Linux's
    /// `flush_tlb_range` for more than a page), then frees the pte pages
    /// the range emptied (`free_pgd_range`). Returns how many pages were
    /// mapped.
    pub fn unmap_range<'f, M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, 'f, M>,
        va: u32,
        count: u32,
        live: bool,
        mut free_user: impl FnMut(&mut FrameAllocator<'f>, Pfn),
    ) -> Result<u32, MmError> {
        let mut n = 0;
        ctx.mmu.enter_lazy_mmu();
        // A pte page at a time: one kmap_atomic_pte each if it is high.
        let pmd_size = self.mode.pmd_size() as u64;
        let end = va as u64 + count as u64 * 4096;
        let w = self.walker(ctx.mmu, ctx.mem);
        let result = (|| {
            let mut at = va as u64;
            while at < end {
                let stop = end.min((at / pmd_size + 1) * pmd_size);
                if let Some(page) = w.pte_page(at as u32, PteSlot::Pte0)? {
                    let first = self.mode.pte_index(at as u32);
                    let cleared = (first..first + ((stop - at) / 4096) as u32).try_for_each(|i| {
                        let v = page.get(i);
                        if present(v) {
                            ctx.mmu.set_pte(&page.entry(i), 0)?;
                            if let Some(p) = ctx.mmu.pte_pfn(self.mode, v) {
                                free_user(ctx.frames, p);
                                n += 1;
                            }
                        }
                        Ok::<(), MmError>(())
                    });
                    let unmapped = w.unmap_pte_page(page);
                    cleared?;
                    unmapped?;
                }
                at = stop;
            }
            Ok::<(), MmError>(())
        })();
        let flushed = ctx.mmu.leave_lazy_mmu();
        flushed?;
        result?;
        if live && n > 0 {
            ctx.mmu.flush_tlb_user()?;
        }
        self.free_empty_tables(ctx, va, count, live)?;
        Ok(n)
    }

    /// Frees every pte page wholly inside `[va, va + count pages)` that
    /// maps nothing: unlinked, flushed (the MMU may cache the link), then
    /// released, while the space may be live and pinned.
    fn free_empty_tables<M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<M>,
        va: u32,
        count: u32,
        live: bool,
    ) -> Result<(), MmError> {
        let pmd_size = self.mode.pmd_size() as u64;
        let end = va as u64 + count as u64 * 4096;
        let mut at = (va as u64).div_ceil(pmd_size) * pmd_size;
        while at + pmd_size <= end {
            let w = self.walker(ctx.mmu, ctx.mem);
            if let Some(pmd) = w.pmd(at as u32) {
                let v = pmd.read();
                if let Some(pt) = (present(v) && !w.is_large(v)).then(|| w.pte_table(v)).flatten() {
                    let empty = {
                        let raw = w.map_pte_page(pt, at as u32, PteSlot::Pte0)?;
                        let empty = (0..self.mode.ptrs_per_pte()).all(|i| !present(raw.get(i)));
                        w.unmap_pte_page(raw)?;
                        empty
                    };
                    if empty {
                        ctx.mmu.set_pmd(&pmd, 0)?;
                        if live {
                            ctx.mmu.flush_tlb_user()?;
                        }
                        ctx.mmu.release_pt(pt, self.pinning())?;
                        self.counts.release_pt += 1;
                        ctx.frames.free(pt).map_err(|e| MmError::DoubleFree { pfn: e.0 })?;
                    }
                }
            }
            at += pmd_size;
        }
        Ok(())
    }

    /// The pte pages (and with PAE, the pmd pages) of the user half and of
    /// this root's own kernel pmd: what the hypervisor validates below the
    /// root.
    pub fn tables<'a, M: Mmu + ?Sized>(
        &self,
        mmu: &'a M,
        mem: &'a dyn PhysMem,
    ) -> impl Iterator<Item = Pfn> + 'a {
        TableIter::new(self, mmu, mem)
    }

    /// Linux's `switch_mm`: pins the space on its first activation, then
    /// loads it.
    ///
    /// # Safety
    /// The space's kernel half must be the kernel's (it is, by
    /// construction), and nothing may still use the previous space's user
    /// mappings.
    pub unsafe fn activate<M: Mmu + ?Sized>(&mut self, ctx: &mut Ctx<M>) -> Result<(), MmError> {
        if !self.pinned {
            ctx.mmu.pin(self.root, &mut self.tables(ctx.mmu, ctx.mem))?;
            self.pinned = true;
            self.counts.pins += 1;
        }
        // SAFETY: the root is complete and pinned, and maps the kernel as
        // every other root does (its kernel half is the kernel's).
        unsafe { ctx.mmu.write_cr3(self.root)? };
        Ok(())
    }

    /// Exit: every user frame goes to `free_user` (with the allocator, to
    /// give it back when its last mapping goes), every pagetable page is
    /// released and freed. The space must not be live.
    pub fn destroy<'f, M: Mmu + ?Sized>(
        mut self,
        ctx: &mut Ctx<'_, 'f, M>,
        mut free_user: impl FnMut(&mut FrameAllocator<'f>, Pfn),
    ) -> Result<TableCounts, MmError> {
        assert_ne!(ctx.mmu.read_cr3(), self.root, "destroying the live address space");
        if self.pinned {
            ctx.mmu.unpin(self.root, &mut self.tables(ctx.mmu, ctx.mem))?;
            self.pinned = false;
            self.counts.unpins += 1;
        }
        // Unpinned now: what follows is plain memory work, one pass over
        // the user half's pmd entries.
        let pmd_size = self.mode.pmd_size() as u64;
        let pgd_span = 1u64 << self.mode.pgd_shift();
        let mut va = 0u64;
        while va < PAGE_OFFSET as u64 {
            let found = {
                let w = self.walker(ctx.mmu, ctx.mem);
                match w.pmd(va as u32) {
                    None => None,
                    Some(pmd) => {
                        let v = pmd.read();
                        Some(present(v).then(|| w.pte_table(v)).flatten().map(|pt| (pmd, pt)))
                    }
                }
            };
            match found {
                // PAE: no pmd page here; skip its whole span.
                None => va = (va / pgd_span + 1) * pgd_span,
                Some(None) => va += pmd_size,
                Some(Some((pmd, pt))) => {
                    self.free_pte_page(ctx, pt, &pmd, &mut free_user)?;
                    va += pmd_size;
                }
            }
        }
        if self.mode == PagingMode::Pae {
            let w = self.walker(ctx.mmu, ctx.mem);
            for i in 0..self.mode.pgd_index(PAGE_OFFSET) {
                let e = w.pgd(i << self.mode.pgd_shift());
                let v = e.read();
                if let Some(pmd) = present(v).then(|| w.table_of(v)).flatten() {
                    ctx.mmu.set_pgd(&e, 0)?;
                    self.release(ctx, pmd, Level::Pmd)?;
                }
            }
            if let Some(k) = self.kernel_pmd.take() {
                self.release(ctx, k, Level::Pmd)?;
            }
        }
        let root = self.root;
        self.release(ctx, root, Level::Pgd)?;
        Ok(self.counts)
    }

    /// Unlinks (through `pmd`, the entry that links it) and frees one user
    /// pte page and the frames it maps.
    fn free_pte_page<'f, M: Mmu + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, 'f, M>,
        pt: Pfn,
        pmd: &EntryRef,
        free_user: &mut impl FnMut(&mut FrameAllocator<'f>, Pfn),
    ) -> Result<(), MmError> {
        let w = self.walker(ctx.mmu, ctx.mem);
        let raw = w.map_pte_page(pt, pmd.vaddr().0, PteSlot::Pte0)?;
        for i in 0..self.mode.ptrs_per_pte() {
            let v = raw.get(i);
            if present(v) {
                if let Some(p) = ctx.mmu.pte_pfn(self.mode, v) {
                    free_user(ctx.frames, p);
                }
            }
        }
        w.unmap_pte_page(raw)?;
        ctx.mmu.set_pmd(pmd, 0)?;
        self.release(ctx, pt, Level::Pte)
    }

    fn release<M: Mmu + ?Sized>(&mut self, ctx: &mut Ctx<M>, pfn: Pfn, level: Level) -> Result<(), MmError> {
        match level {
            Level::Pte => {
                ctx.mmu.release_pt(pfn, Pinning::Unpinned)?;
                self.counts.release_pt += 1;
            }
            _ => {
                ctx.mmu.release_pd(pfn, Pinning::Unpinned)?;
                self.counts.release_pd += 1;
            }
        }
        ctx.frames.free(pfn).map_err(|e| MmError::DoubleFree { pfn: e.0 })
    }
}

/// A zeroed pte page for a user table (Linux's `pte_alloc_one`): with
/// HIGHPTE and high memory, a high frame (low if high memory ran out),
/// zeroed through kmap_atomic_pte at `slot`. Says whether it is high.
fn pte_alloc_one<M: Mmu + ?Sized>(ctx: &mut Ctx<M>, slot: PteSlot) -> Result<(Pfn, bool), MmError> {
    let Some(h) = ctx.high.filter(|h| h.layout.highmem_pages > 0) else {
        return table_page(ctx, "pte").map(|pt| (pt, false));
    };
    let pt = ctx.frames.alloc(Zone::High).ok_or(MmError::OutOfMemory { what: "pte", allocated: 0 })?;
    if ctx.mem.reachable(pt) {
        // SAFETY: a free frame in the direct map, writable; nothing links
        // it yet.
        unsafe { core::ptr::write_bytes(ctx.mem.page(pt), 0, 4096) };
        return Ok((pt, false));
    }
    let zeroed = match ctx.pkmap.as_deref_mut() {
        Some(pk) => pk.forget(&h, ctx.mmu, ctx.mem, pt),
        None => Ok(()),
    }
    .and_then(|_| h.zero_pte_page(ctx.mmu, ctx.mem, pt, slot));
    if let Err(e) = zeroed {
        ctx.frames.free(pt).map_err(|e| MmError::DoubleFree { pfn: e.0 })?;
        return Err(e);
    }
    Ok((pt, true))
}

/// A zeroed low-memory page for a pagetable.
fn table_page<M: Mmu + ?Sized>(ctx: &mut Ctx<M>, what: &'static str) -> Result<Pfn, MmError> {
    let pfn = ctx.frames.alloc(Zone::Low).ok_or(MmError::OutOfMemory { what, allocated: 0 })?;
    assert!(ctx.mem.reachable(pfn), "a low-memory frame outside the direct map");
    // SAFETY: a free low-memory frame, reachable (checked), so mapped
    // writable in the direct map; no pagetable links it yet.
    unsafe { core::ptr::write_bytes(ctx.mem.page(pfn), 0, 4096) };
    Ok(pfn)
}

/// The pagetable pages of a space below its root, walked lazily (for
/// spaces with more tables than fit a small array).
struct TableIter<'a, M: Mmu + ?Sized> {
    w: Walker<'a, M>,
    va: u64,
    kernel_pmd: Option<Pfn>,
    pmd_pending: Option<Pfn>,
}

impl<'a, M: Mmu + ?Sized> TableIter<'a, M> {
    fn new(s: &AddressSpace, mmu: &'a M, mem: &'a dyn PhysMem) -> Self {
        TableIter { w: s.walker(mmu, mem), va: 0, kernel_pmd: s.kernel_pmd, pmd_pending: None }
    }
}

impl<M: Mmu + ?Sized> Iterator for TableIter<'_, M> {
    type Item = Pfn;

    fn next(&mut self) -> Option<Pfn> {
        if let Some(p) = self.pmd_pending.take() {
            return Some(p);
        }
        let mode = self.w.mode;
        let pmd_size = mode.pmd_size() as u64;
        let pgd_span = 1u64 << mode.pgd_shift();
        while self.va < PAGE_OFFSET as u64 {
            let va = self.va;
            self.va += pmd_size;
            let mut pmd_page = None;
            if mode == PagingMode::Pae && va.is_multiple_of(pgd_span) {
                let v = self.w.pgd(va as u32).read();
                pmd_page = present(v).then(|| self.w.table_of(v)).flatten();
                if pmd_page.is_none() {
                    self.va = va + pgd_span;
                    continue;
                }
            }
            let pte = self.w.pmd(va as u32).and_then(|e| {
                let v = e.read();
                (present(v) && !self.w.is_large(v)).then(|| self.w.pte_table(v)).flatten()
            });
            match (pmd_page, pte) {
                (Some(m), Some(t)) => {
                    self.pmd_pending = Some(t);
                    return Some(m);
                }
                (Some(m), None) => return Some(m),
                (None, Some(t)) => return Some(t),
                (None, None) => {}
            }
        }
        self.kernel_pmd.take()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::sim::{Event, Recorder, SimMem};
    use crate::tests::built;
    use crate::Layout;
    use std::vec;
    use std::vec::Vec;

    /// The context the tests run a space in: the kernel's table `kernel`
    /// (its root and layout) on `sim`, through the recorder.
    fn test_ctx<'a, 'f>(
        rec: &'a Recorder,
        sim: &'a SimMem,
        frames: &'a mut FrameAllocator<'f>,
        mode: PagingMode,
        kernel: (Pfn, &Layout),
        shared_kernel_pmd: bool,
    ) -> Ctx<'a, 'f, Recorder> {
        Ctx {
            mmu: rec,
            mem: sim,
            frames,
            mode,
            kernel_root: kernel.0,
            shared_kernel_pmd,
            kernel_top: kernel.1.fixaddr_top as u64 + 4096,
            high: None,
            pkmap: None,
        }
    }

    fn run(mode: PagingMode, shared_kernel_pmd: bool) {
        let sim = SimMem::new(8192);
        let rec = Recorder::new(None);
        let (pt, layout) = built(&sim, &rec, mode);
        let mut bits = vec![0u32; FrameAllocator::words_for(Pfn(8192))];
        let mut frames = FrameAllocator::new(&mut bits, Pfn(8192), Pfn(8192));
        frames.add_free(Pfn(4096), Pfn(8192));
        let before = frames.free_count();
        rec.cr3.set(pt.root);
        rec.events.borrow_mut().clear();
        let mut ctx = test_ctx(&rec, &sim, &mut frames, mode, (pt.root, &layout), shared_kernel_pmd);
        let mut s = AddressSpace::new(&mut ctx).unwrap();
        // The kernel half is the kernel's: a kernel address translates the
        // same through both roots.
        let kernel = Walker::live(&rec, &sim, mode, pt.root);
        let mine = s.walker(&rec, &sim);
        let kva = 0xC010_0000;
        assert_eq!(kernel.pte(kva).unwrap().read(), mine.pte(kva).unwrap().read());
        // Two user pages in different pte pages, while unpinned: plain.
        let user = ctx.frames.alloc(Zone::High).unwrap();
        s.map(&mut ctx, 0x0800_0000, user, PteFlags::RW).unwrap();
        s.map(&mut ctx, 0x4000_0000, user, PteFlags::empty()).unwrap();
        assert!(rec.events.borrow().iter().all(|e| !matches!(e, Event::Set(.., Pinning::Pinned))));
        // SAFETY: the recorder loads nothing: no CPU runs on this table.
        unsafe { s.activate(&mut ctx).unwrap() };
        assert_eq!(rec.read_cr3(), s.root());
        // Mapped now: pinned writes.
        let third = ctx.frames.alloc(Zone::Low).unwrap();
        s.map(&mut ctx, 0x0800_1000, third, PteFlags::RW).unwrap();
        assert!(matches!(rec.events.borrow().last(), Some(Event::Set(Level::Pte, .., Pinning::Pinned))));
        assert_eq!(s.unmap(&mut ctx, 0x0800_1000, true).unwrap(), Some(third));
        assert_eq!(*rec.events.borrow().last().unwrap(), Event::Flush);
        ctx.frames.free(third).unwrap();
        // SAFETY: as above.
        unsafe { ctx.mmu.write_cr3(pt.root).unwrap() };
        let mut freed = Vec::new();
        let counts = s.destroy(&mut ctx, |_, p| freed.push(p)).unwrap();
        // The same frame was mapped twice: handed back twice (the kernel
        // counts references; the space does not).
        assert_eq!(freed, [user, user]);
        ctx.frames.free(user).unwrap();
        assert_eq!(counts.alloc_pt, counts.release_pt);
        assert_eq!(counts.alloc_pd, counts.release_pd);
        assert_eq!((counts.pins, counts.unpins), (1, 1));
        assert_eq!(ctx.frames.free_count(), before, "every frame came back");
        let ev = rec.events.borrow();
        let pins: Vec<_> = ev.iter().filter(|e| matches!(e, Event::Pin(..) | Event::Unpin(..))).collect();
        let tables = if mode == PagingMode::Pae { 2 + 3 + !shared_kernel_pmd as u32 } else { 2 };
        assert_eq!(pins, [&Event::Pin(s_root(&ev), tables), &Event::Unpin(s_root(&ev), tables)]);
    }

    /// The ptdump of a user half: runs of pages alike in what they allow,
    /// whatever frames they map (a process's frames are scattered), and
    /// the space's own pagetable pages.
    #[test]
    fn a_user_half_dumps_in_runs_of_what_pages_allow() {
        let mode = PagingMode::Pae;
        let sim = SimMem::new(8192);
        let rec = Recorder::new(None);
        let (pt, layout) = built(&sim, &rec, mode);
        let mut bits = vec![0u32; FrameAllocator::words_for(Pfn(8192))];
        let mut frames = FrameAllocator::new(&mut bits, Pfn(8192), Pfn(8192));
        frames.add_free(Pfn(4096), Pfn(8192));
        let mut ctx = test_ctx(&rec, &sim, &mut frames, mode, (pt.root, &layout), true);
        let mut s = AddressSpace::new(&mut ctx).unwrap();
        let a = ctx.frames.alloc(Zone::Low).unwrap();
        let b = ctx.frames.alloc(Zone::Low).unwrap();
        let c = ctx.frames.alloc(Zone::Low).unwrap();
        // Text read-only; two data pages whose frames are not in order;
        // a stack page far away.
        s.map(&mut ctx, 0x0804_8000, a, PteFlags::empty()).unwrap();
        s.map(&mut ctx, 0x0804_9000, c, PteFlags::RW | PteFlags::NX).unwrap();
        s.map(&mut ctx, 0x0804_A000, b, PteFlags::RW | PteFlags::NX | PteFlags::ACCESSED).unwrap();
        s.map(&mut ctx, 0xBFFF_F000, a, PteFlags::RW | PteFlags::NX).unwrap();
        let w = s.walker(&rec, &sim);
        let mut runs = Vec::new();
        let more = crate::ptdump::user_ranges(&w, 2, |d| runs.push(std::string::ToString::to_string(d)));
        assert_eq!(
            runs,
            [
                std::format!("0x08048000-0x08049000     4K ro x  USR      4K -> pfn {:#x}", a.0),
                std::format!("0x08049000-0x0804b000     8K RW NX USR      4K -> pfn {:#x}", c.0),
            ]
        );
        assert_eq!(more, 1, "the stack's run is counted, not listed");
        let mut tables = Vec::new();
        crate::ptdump::user_table_runs(&w, &layout, |t| tables.push((t.level, t.end.0 - t.first.0)));
        let count = |l: Level| tables.iter().filter(|t| t.0 == l).map(|t| t.1).sum::<u32>();
        assert_eq!((count(Level::Pgd), count(Level::Pmd), count(Level::Pte)), (1, 3, 2));
    }

    fn s_root(ev: &[Event]) -> Pfn {
        ev.iter().find_map(|e| if let Event::Pin(r, _) = e { Some(*r) } else { None }).unwrap()
    }

    /// fork: the child maps the parent's frames read-only; the parent's
    /// writable entries become read-only in one lazy batch of pinned
    /// writes, then one user flush; a refusal stops the copy.
    fn fork(mode: PagingMode) {
        let sim = SimMem::new(8192);
        let rec = Recorder::new(None);
        let (pt, layout) = built(&sim, &rec, mode);
        let mut bits = vec![0u32; FrameAllocator::words_for(Pfn(8192))];
        let mut frames = FrameAllocator::new(&mut bits, Pfn(8192), Pfn(8192));
        frames.add_free(Pfn(4096), Pfn(8192));
        rec.cr3.set(pt.root);
        let mut ctx = test_ctx(&rec, &sim, &mut frames, mode, (pt.root, &layout), true);
        let mut parent = AddressSpace::new(&mut ctx).unwrap();
        let pages: Vec<(u32, Pfn, PteFlags)> = vec![
            (0x0804_8000, ctx.frames.alloc(Zone::Low).unwrap(), PteFlags::empty()),
            (0x0804_9000, ctx.frames.alloc(Zone::Low).unwrap(), PteFlags::RW),
            (0x4000_0000, ctx.frames.alloc(Zone::Low).unwrap(), PteFlags::RW),
        ];
        for &(va, pfn, f) in &pages {
            parent.map(&mut ctx, va, pfn, f).unwrap();
        }
        // SAFETY: the recorder loads nothing.
        unsafe { parent.activate(&mut ctx).unwrap() };
        rec.events.borrow_mut().clear();
        rec.pinned_pte_vaddrs.borrow_mut().clear();
        let mut child = AddressSpace::new(&mut ctx).unwrap();
        let mut shared = Vec::new();
        let n = parent
            .fork_into(&mut ctx, &mut child, true, |p| {
                shared.push(p);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(shared, pages.iter().map(|p| p.1).collect::<Vec<_>>());
        for &(va, pfn, _) in &pages {
            for s in [&parent, &child] {
                let v = s.pte_value(&ctx, va).unwrap();
                assert!(present(v) && v & PteFlags::RW.bits() == 0, "{va:#x} read-only in both");
                assert_eq!(rec.pte_pfn(mode, v), Some(pfn));
            }
        }
        let ev = rec.events.borrow();
        let (enter, leave) = (
            ev.iter().position(|e| *e == Event::EnterLazy).unwrap(),
            ev.iter().position(|e| *e == Event::LeaveLazy).unwrap(),
        );
        let pinned: Vec<usize> =
            (0..ev.len()).filter(|&i| matches!(ev[i], Event::Set(Level::Pte, .., Pinning::Pinned))).collect();
        assert_eq!(pinned.len(), 2, "the two writable parent pages, through the backend");
        assert!(pinned.iter().all(|&i| enter < i && i < leave), "inside one lazy batch");
        assert_eq!(
            *rec.pinned_pte_vaddrs.borrow(),
            [0x0804_9000, 0x4000_0000],
            "each write names the page it maps (lguest's SET_PTE goes by it)"
        );
        assert_eq!(ev[leave + 1..].iter().filter(|e| **e == Event::Flush).count(), 1);
        drop(ev);
        // A refusal at the second page: the copy stops, the error comes back.
        let mut second = AddressSpace::new(&mut ctx).unwrap();
        let mut k = 0;
        let r = parent.fork_into(&mut ctx, &mut second, true, |_| {
            k += 1;
            if k == 2 {
                Err(MmError::OutOfMemory { what: "share", allocated: 0 })
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        assert!(
            present(second.pte_value(&ctx, 0x0804_8000).unwrap())
                && !present(second.pte_value(&ctx, 0x0804_9000).unwrap())
        );
    }

    #[test]
    fn fork_shares_read_only_in_one_batch_2level() {
        fork(PagingMode::TwoLevel);
    }

    #[test]
    fn fork_shares_read_only_in_one_batch_pae() {
        fork(PagingMode::Pae);
    }

    #[test]
    fn a_space_lives_and_dies_through_the_hooks_2level() {
        run(PagingMode::TwoLevel, true);
    }

    #[test]
    fn a_space_lives_and_dies_through_the_hooks_pae_shared() {
        run(PagingMode::Pae, true);
    }

    #[test]
    fn a_space_lives_and_dies_through_the_hooks_pae_own_kernel_pmd() {
        run(PagingMode::Pae, false);
    }
}
