//! MMU ops: everything that changes what the MMU sees.
//!
//! Natively a pagetable entry is a store, a CR3 switch is `mov cr3`, a TLB
//! flush is `invlpg`. A Xen PV guest may do none of these: pagetable pages
//! are read-only, entries hold machine frames and change through
//! `mmu_update`, and the hypervisor must have validated (pinned) a table
//! before it can become CR3. An lguest guest's tables are never loaded at
//! all: the host shadows them and must be told of every change.
//!
//! # Two phases
//!
//! The seed patch's build runs on somebody else's pagetable and creates
//! pages the hypervisor has never seen. That phase is a value,
//! [`PagetableBuild`]: it owns the build's new pages (the *fresh* set) and
//! is handed to [`Mmu::pagetable_setup_start`], to every write of the build
//! (through the [`Pinning`] of each [`EntryRef`]), and finally, by value,
//! to [`Mmu::pagetable_setup_done`], which makes the new table live and
//! consumes the build. After that, the same hooks serve the running
//! kernel: `alloc_pt`/`alloc_pd` and `release_pt`/`release_pd` announce
//! every pagetable page the kernel creates or frees, told whether the
//! table it belongs to is already pinned.

use arch_i386::{Level, PagingMode, Pfn, PteFlags, VirtAddr};

use crate::pfnset::PfnRuns;
use crate::{native, Caps, EntryRef, HvError, HvResult, PageAlloc, PhysMem, Pinning};

/// Why the build could not get a new table page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableAllocError {
    /// The boot allocator is empty.
    OutOfMemory,
    /// The fresh set has no room for another run (the allocator handed out
    /// pages scattered over more runs than it holds).
    TooScattered,
}

/// Why a bulk call of the build ([`Mmu::map_pte_pages`]) stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The build could not get another pte page.
    NoTable(TableAllocError),
    /// A hook failed.
    Hv(HvError),
}

impl From<TableAllocError> for BuildError {
    fn from(e: TableAllocError) -> Self {
        BuildError::NoTable(e)
    }
}

impl From<HvError> for BuildError {
    fn from(e: HvError) -> Self {
        BuildError::Hv(e)
    }
}

/// Around each bulk fill inside [`Mmu::map_pte_pages`], so a caller can
/// measure the fill on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkFill {
    Start,
    /// The fill wrote this many ptes.
    Done(u32),
}

/// The seed's build, as a value of its phase.
pub struct PagetableBuild<'a> {
    pub mode: PagingMode,
    /// The kernel's new top-level page (Linux's swapper_pg_dir).
    pub root: Pfn,
    pub mem: &'a dyn PhysMem,
    pub caps: Caps,
    /// Where the kernel's direct map of low memory ends (a virtual
    /// address). Above it lies the vmalloc area, which must start empty: a
    /// backend adopting a map that covers more memory than that (lguest's
    /// Launcher maps all guest memory) keeps only what is below.
    pub direct_map_end: u32,
    alloc: &'a mut dyn PageAlloc,
    /// Every page this build allocated as a pagetable page: the hypervisor
    /// has not seen them; they become part of the live table at
    /// `pagetable_setup_done`.
    fresh: PfnRuns,
}

impl<'a> PagetableBuild<'a> {
    /// Starts a build: allocates the zeroed root, which is fresh.
    pub fn new(
        mode: PagingMode,
        mem: &'a dyn PhysMem,
        alloc: &'a mut dyn PageAlloc,
        caps: Caps,
        direct_map_end: u32,
    ) -> Result<PagetableBuild<'a>, TableAllocError> {
        let mut fresh = PfnRuns::new();
        let root = alloc.alloc_page().ok_or(TableAllocError::OutOfMemory)?;
        fresh.insert(root).map_err(|_| TableAllocError::TooScattered)?;
        Ok(PagetableBuild { mode, root, mem, caps, direct_map_end, alloc, fresh })
    }

    /// A new pagetable page for this build: zeroed, or (`zeroed: false`)
    /// with old contents the caller overwrites entirely. It is fresh until
    /// the build is done.
    pub fn new_table(&mut self, zeroed: bool) -> Result<Pfn, TableAllocError> {
        let pfn = if zeroed { self.alloc.alloc_page() } else { self.alloc.alloc_page_uninit() };
        let pfn = pfn.ok_or(TableAllocError::OutOfMemory)?;
        self.fresh.insert(pfn).map_err(|_| TableAllocError::TooScattered)?;
        Ok(pfn)
    }

    /// Is `pfn` one of this build's new pages?
    pub fn is_fresh(&self, pfn: Pfn) -> bool {
        self.fresh.contains(pfn)
    }

    /// How a write into table `pfn` must be made during the build: plain
    /// for the build's own pages, through the hypervisor for tables it
    /// already validates (those the build adopted).
    pub fn pinning_of(&self, pfn: Pfn) -> Pinning {
        if self.is_fresh(pfn) {
            Pinning::Unpinned
        } else {
            Pinning::Pinned
        }
    }

    /// The build's new pages.
    pub fn fresh(&self) -> &PfnRuns {
        &self.fresh
    }

    /// Entry `index` of the pagetable page `table` (reachable through
    /// `mem`: checked), at `level`, whose first entry maps `base`; pinned
    /// unless the page is one of the build's.
    pub fn entry(&self, table: Pfn, level: Level, index: u32, base: VirtAddr) -> EntryRef {
        let mode = self.mode;
        assert!(index < mode.entries_per_page() && self.mem.reachable(table), "entry {index} of {table:?}");
        let span: u64 = match level {
            Level::Pte => 1 << 12,
            Level::Pmd => 1 << mode.pmd_shift(),
            Level::Pgd => 1 << mode.pgd_shift(),
        };
        // SAFETY: `table` is reachable (PhysMem's contract: its 4096 bytes
        // are mapped) and the index is inside the page.
        unsafe {
            EntryRef::new(
                mode,
                level,
                table,
                index,
                self.mem.page(table).add((index * mode.entry_size()) as usize),
                VirtAddr((base.0 as u64 + index as u64 * span) as u32),
                self.root,
                self.pinning_of(table),
            )
        }
    }
}

pub trait Mmu: Sync + core::any::Any {
    // ---- Entry values -----------------------------------------------------

    /// The raw entry mapping `pfn` with `flags` (Xen: the machine frame).
    fn make_pte(&self, pfn: Pfn, flags: PteFlags) -> u64 {
        pfn.addr().0 | flags.bits()
    }

    /// The frame a raw entry points at (Xen: machine frame -> pfn), or None
    /// if it is not one of ours (Xen: a foreign or hypervisor frame).
    fn pte_pfn(&self, mode: PagingMode, raw: u64) -> Option<Pfn> {
        Some(Pfn(((raw & mode.addr_mask()) >> 12) as u32))
    }

    // ---- Entry writes -----------------------------------------------------

    fn set_pte(&self, at: &EntryRef, val: u64) -> HvResult {
        native::write_entry(at, val);
        Ok(())
    }

    /// Writes `count` ptes from `first` on, mapping `pfn`, `pfn + 1`, ...
    /// The direct map's bulk path: one call per run, not per entry.
    fn set_pte_range(&self, first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        native::write_pte_range(first, count, pfn, flags);
        Ok(())
    }

    /// Writes scattered entries of one pte page: `(index, value)` pairs,
    /// in any order; `page` is the page's entry 0 (its table, root,
    /// pinning, and the address the page starts mapping). For passes that
    /// change some entries of many (`mark_rodata_ro`): one call per page
    /// (or per chunk of one) instead of one per entry, so a backend can
    /// queue them without finding the page's machine frame each time.
    fn set_ptes(&self, page: &EntryRef, updates: &[(u32, u64)]) -> HvResult {
        for &(i, val) in updates {
            self.set_pte(&page.add(i), val)?;
        }
        Ok(())
    }

    /// A pmd entry (in 2-level: a pgd entry, the pmd being folded).
    fn set_pmd(&self, at: &EntryRef, val: u64) -> HvResult {
        native::write_entry(at, val);
        Ok(())
    }

    // ---- The build's bulk calls -------------------------------------------
    //
    // The direct map is hundreds of pmds mapped alike. Through `&dyn Mmu`
    // every hook call is an indirect call whose body cannot be inlined, and
    // per pmd the build makes four (`alloc_pt`, `set_pte_range`, `make_pte`,
    // `set_pmd`). These calls take a whole run of pmds instead: their
    // default bodies are instantiated for each backend's own type, so the
    // hooks they call are direct calls there (`Self::set_pmd`), and the
    // trait object is crossed once per run. A backend overriding a hook
    // gets its own version called; it may also override the run itself.

    /// Maps `count` consecutive empty pmd entries from `pmd` on, each to a
    /// new pte page of the build `b` filled entirely with frames `pfn`,
    /// `pfn + 1`, ... and `flags`: per pmd, a page from the build (not
    /// zeroed: the fill covers it), `alloc_pt` (unpinned), `set_pte_range`
    /// bracketed by `bulk`, then the page linked with `set_pmd`. `pmd` must
    /// be an entry of one of the build's own tables, and the run must stay
    /// inside its page.
    fn map_pte_pages(
        &self,
        b: &mut PagetableBuild,
        pmd: &EntryRef,
        count: u32,
        pfn: Pfn,
        flags: PteFlags,
        bulk: &mut dyn FnMut(BulkFill),
    ) -> Result<(), BuildError> {
        let per = b.mode.ptrs_per_pte();
        for i in 0..count {
            let at = pmd.add(i);
            let table = b.new_table(false)?;
            self.alloc_pt(table, Pinning::Unpinned)?;
            let first = b.entry(table, Level::Pte, 0, at.vaddr());
            bulk(BulkFill::Start);
            self.set_pte_range(&first, per, Pfn(pfn.0 + i * per), flags)?;
            bulk(BulkFill::Done(per));
            self.set_pmd(&at, self.make_pte(table, PteFlags::KERNPG_TABLE))?;
        }
        Ok(())
    }

    /// Maps `count` consecutive empty pmd entries from `pmd` on as large
    /// pages of frames `pfn`, `pfn + ptrs_per_pte`, ... with `flags` (which
    /// include PSE), one `set_pmd` each.
    fn map_large_pages(&self, pmd: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        let per = pmd.mode().ptrs_per_pte();
        for i in 0..count {
            self.set_pmd(&pmd.add(i), self.make_pte(Pfn(pfn.0 + i * per), flags))?;
        }
        Ok(())
    }

    /// A PAE pgd (PDPT) entry.
    fn set_pgd(&self, at: &EntryRef, val: u64) -> HvResult {
        native::write_entry(at, val);
        Ok(())
    }

    // ---- The lives of pagetable pages ------------------------------------

    /// `pfn` is about to become a pte page of a pagetable that is
    /// `pinning` (Xen: a pinned table's new page must be read-only before
    /// it is linked).
    fn alloc_pt(&self, _pfn: Pfn, _pinning: Pinning) -> HvResult {
        Ok(())
    }

    /// `pfn` is about to become a pmd page (PAE) or a pgd.
    fn alloc_pd(&self, _pfn: Pfn, _pinning: Pinning) -> HvResult {
        Ok(())
    }

    /// `pfn`, no longer linked anywhere, stops being a pte page.
    fn release_pt(&self, _pfn: Pfn, _pinning: Pinning) -> HvResult {
        Ok(())
    }

    /// `pfn`, no longer linked anywhere, stops being a pmd page or pgd.
    fn release_pd(&self, _pfn: Pfn, _pinning: Pinning) -> HvResult {
        Ok(())
    }

    // ---- The seed patch's hooks -------------------------------------------

    /// Before the kernel builds its pagetable in `b.root`: the backend may
    /// fill the root from the pagetable it booted on.
    fn pagetable_setup_start(&self, b: &mut PagetableBuild) -> HvResult {
        native::pagetable_setup_start(b)
    }

    /// After it: make `b.root` the live pagetable. The build ends here.
    fn pagetable_setup_done(&self, b: PagetableBuild) -> HvResult {
        native::pagetable_setup_done(b)
    }

    // ---- Address spaces ---------------------------------------------------

    /// The kernel is about to run on the pagetable `root` for the first
    /// time (Xen: validate and pin it; lguest: nothing, the host shadows
    /// on demand). `tables` are its pagetable pages below the root. From
    /// then on the table's writes are told ([`Pinning::Pinned`]).
    fn pin(&self, _root: Pfn, _tables: &mut dyn Iterator<Item = Pfn>) -> HvResult {
        Ok(())
    }

    /// `root` (not live) will not be used again: after this its tables are
    /// plain memory again, written without telling anyone (Xen: unpin and
    /// make them writable; lguest: make the host drop its shadow of the
    /// user half, which it would otherwise reuse if the page came back as
    /// another root).
    fn unpin(&self, _root: Pfn, _tables: &mut dyn Iterator<Item = Pfn>) -> HvResult {
        Ok(())
    }

    /// Clears a kernel pte and drops its TLB entry: Linux's
    /// `kpte_clear_flush`, the end of every `kmap_atomic`. Natively two
    /// steps; a backend that can do both in one call (Xen's
    /// `update_va_mapping` with `UVMF_INVLPG`) overrides it.
    fn pte_clear_flush(&self, at: &EntryRef) -> HvResult {
        self.set_pte(at, 0)?;
        self.flush_tlb_single(at.vaddr())
    }

    // ---- TLB and CR3 ------------------------------------------------------

    fn flush_tlb_single(&self, va: VirtAddr) -> HvResult {
        arch_i386::cr::invlpg(va);
        Ok(())
    }

    /// Drops non-global TLB entries.
    fn flush_tlb_user(&self) -> HvResult {
        native::flush_tlb_user();
        Ok(())
    }

    /// Drops every TLB entry, global ones too.
    fn flush_tlb_kernel(&self) -> HvResult {
        native::flush_tlb_kernel();
        Ok(())
    }

    /// The frame of the live top-level pagetable (a pfn, not a machine
    /// frame, whatever the platform).
    fn read_cr3(&self) -> Pfn {
        arch_i386::cr::Cr3::read().pfn()
    }

    /// Switches to the pagetable `root`.
    ///
    /// # Safety
    /// `root` must be a complete, pinned pagetable that maps the kernel as
    /// the current one does.
    unsafe fn write_cr3(&self, root: Pfn) -> HvResult {
        // SAFETY: forwarded to the caller.
        unsafe { arch_i386::cr::Cr3::write(root.addr()) };
        Ok(())
    }

    // ---- Batching ---------------------------------------------------------

    /// From here until `leave_lazy_mmu`, updates may be queued.
    fn enter_lazy_mmu(&self) {}

    /// Issue everything queued; errors of queued updates surface here.
    fn leave_lazy_mmu(&self) -> HvResult {
        Ok(())
    }

    /// Issue everything queued so far and stay lazy (Linux's
    /// `arch_flush_lazy_mmu_mode`): a temporary kernel mapping made inside
    /// a batch (kmap_atomic_pte during fork) must be in place before the
    /// kernel reads through it.
    fn flush_lazy_mmu(&self) -> HvResult {
        Ok(())
    }

    // ---- Fault injection --------------------------------------------------

    /// Test hook: make the next pagetable update the hypervisor is sent
    /// fail (the `fail_fork=` switch uses it to break a fork in the
    /// middle). `false`: this backend has no hypervisor to refuse anything
    /// (native), so the caller injects its own failure.
    fn fail_next_update(&self) -> bool {
        false
    }
}
