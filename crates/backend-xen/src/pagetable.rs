//! The MMU ops, the Xen PV way.
//!
//! Xen only runs on pagetables it has validated: every page used as a
//! pagetable must be mapped read-only everywhere (otherwise the guest could
//! rewrite its own mappings behind Xen's back), entries hold machine
//! frames, and a validated pagetable is changed only through `mmu_update`,
//! which checks each new entry. "Pinning" a top-level table makes Xen
//! validate the whole tree once and keep it validated until it is unpinned.
//!
//! So every write asks one question, which the [`EntryRef`] answers: has
//! Xen seen this table yet ([`Pinning`])? If not, the page is the kernel's
//! alone and a plain store does; if so, the write is an `mmu_update`,
//! queued in lazy-MMU mode.
//!
//! The seed's build:
//! - `pagetable_setup_start`: copy the L3 Xen booted us on (Linux's
//!   swapper_pg_dir takes over from `start_info.pt_base`), except slot 3:
//!   its L2 also holds Xen's own mappings (0xF5800000 up) and may belong to
//!   only one L3, so we copy that L2 into a new page of the build. The L1
//!   pages under it are shared, not copied: kernel mappings share their pte
//!   pages among all pagetables. Those L1s stay Xen's, pinned: entries the
//!   build adds there go through `mmu_update`.
//! - During the build, the build's own pages (its fresh set) are written
//!   with plain stores, which costs nothing. The bulk path fills pte pages
//!   from the machine-contiguous runs of low memory found once, at
//!   `pagetable_setup_start` (`p2m::Runs`), with native's store loop.
//! - `pagetable_setup_done` is one multicall, one trap at any memory size:
//!   an `mmu_update` making every fresh page read-only (the entries that
//!   map them in the direct map, found by walking the new table), an
//!   `mmuext_op` that pins the new L3 (Xen validates the whole tree),
//!   switches to it and unpins Xen's, and an `mmu_update` making Xen's old
//!   L3 and slot-3 L2 writable again: they are plain RAM now. Xen runs
//!   the three in order; no TLB flush is asked for, as Xen flushes stale
//!   entries itself when a page becomes a pagetable. If the first fails,
//!   the pin fails too (a page is still writable): nothing is switched.
//!
//! New pages therefore become read-only before they are reachable from any
//! pagetable Xen uses, which is the rule that matters. (`strategy.rs`: the
//! same build the way Mini-OS and Linux talk to Xen, for the benchmark.)
//! After the build the
//! same rule holds for every table: a page joining a pinned pagetable is
//! made read-only at `alloc_pt` (before it is linked), an address space is
//! remapped and pinned as a whole at its first activation (`pin`), and
//! `release_pt`/`unpin` make pages writable again once nothing links them.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, PagingMode, Pfn, PteFlags, VirtAddr};
use paravirt::native::{self, root_entry};
use paravirt::{EntryRef, HvError, HvResult, Mmu, PagetableBuild, Pinning};
use spin::{Mutex, Once};

use crate::abi::{mmuext, MmuUpdate, MmuextOp, UVMF_INVLPG};
use crate::batch::{self, Queue, MULTICALL_MAX};
use crate::p2m::{P2m, Runs};
use crate::strategy::{LinuxMc, Strategy, MINIOS_L1_BATCH};
use crate::transport::{Hypercalls, SubCall, SubResult};

/// Entries of `pagetable_setup_done`'s remap array: more new table pages
/// than this (a direct map beyond 1 GiB) are remapped in more than one
/// trap. A 32-bit PV kernel's direct map ends below 720 MiB here: at most
/// 362 pages, at 3 GiB.
pub const BUILD_REMAPS: usize = 512;

/// What the MMU ops need of the platform, known once `init` ran.
#[derive(Clone, Copy, Debug)]
pub struct Machine {
    pub p2m: P2m,
    /// First L2 slot of the hypervisor's area in the kernel's pmd page
    /// (0xF5800000 -> 428): Xen fills those slots itself.
    pub hv_l2_slot: u32,
}

pub struct XenMmu<T> {
    pub hc: T,
    machine: Once<Machine>,
    queue: Mutex<Queue>,
    /// The live top-level page (pfn): Linux's `xen_cr3`. A ring-1 kernel
    /// cannot read CR3, so the backend remembers what it loaded.
    cr3: AtomicU32,
    /// Kernel mappings of pagetable pages carry NX (once the kernel's own
    /// table is live and NX is on).
    nx: AtomicBool,
    /// Frames below this are in the kernel's direct map (max_low_pfn, from
    /// the build). A pagetable page above it (a HIGHPTE pte page) has no
    /// kernel mapping to make read-only: the kernel reaches it only through
    /// kmap_atomic_pte, read-only while pinned, unmapped after each use
    /// (Linux's xen_alloc_ptpage checks PageHighMem the same way).
    /// u32::MAX until `pagetable_setup_done`: the kernel's table not live.
    low_end: AtomicU32,
    /// The machine-contiguous runs of low memory, for the bulk path.
    runs: Mutex<Runs>,
    /// How the kernel's pagetable build talks to Xen (`xen_pt_strategy=`);
    /// back to ours once the build is done.
    strategy: AtomicU8,
    /// The build's array of mmu_update entries: `pagetable_setup_done`'s
    /// remaps (pvops), a pte page's entries (minios).
    build: Mutex<[MmuUpdate; BUILD_REMAPS]>,
    /// Linux's multicall buffer (linux).
    linux: Mutex<LinuxMc>,
}

impl<T: Hypercalls> XenMmu<T> {
    pub const fn new(hc: T) -> XenMmu<T> {
        XenMmu {
            hc,
            machine: Once::new(),
            queue: Mutex::new(Queue::new()),
            cr3: AtomicU32::new(0),
            nx: AtomicBool::new(false),
            low_end: AtomicU32::new(u32::MAX),
            runs: Mutex::new(Runs::new()),
            strategy: AtomicU8::new(Strategy::Pvops as u8),
            build: Mutex::new([MmuUpdate { ptr: 0, val: 0 }; BUILD_REMAPS]),
            linux: Mutex::new(LinuxMc::new()),
        }
    }

    /// How the next pagetable build talks to Xen.
    pub fn set_strategy(&self, s: Strategy) {
        self.strategy.store(s as u8, Ordering::Relaxed);
    }

    pub fn strategy(&self) -> Strategy {
        Strategy::from_u8(self.strategy.load(Ordering::Relaxed))
    }

    /// What `init` learned: the frame tables, Xen's area, and the L3 Xen
    /// started us on.
    pub fn init(&self, machine: Machine, boot_root: Pfn) {
        self.machine.call_once(|| machine);
        self.cr3.store(boot_root.0, Ordering::Relaxed);
    }

    fn machine(&self) -> &Machine {
        self.machine.get().expect("xen: MMU op before init")
    }

    /// Whether kernel mappings carry NX.
    pub fn nx(&self) -> bool {
        self.nx.load(Ordering::Relaxed)
    }

    pub fn p2m(&self) -> &P2m {
        &self.machine().p2m
    }

    /// The machine frame behind one of our pfns. Asking for a frame we do
    /// not own is a kernel bug.
    fn mfn(&self, pfn: Pfn) -> u32 {
        match self.p2m().mfn(pfn) {
            Some(m) => m,
            None => panic!("xen: pfn {:#x} is beyond this domain's {} pages", pfn.0, self.p2m().nr_pages()),
        }
    }

    fn machine_addr(&self, at: &EntryRef) -> u64 {
        ((self.mfn(at.table()) as u64) << 12) | at.offset() as u64
    }

    fn write(&self, at: &EntryRef, val: u64) -> HvResult {
        match (self.strategy(), at.pinning()) {
            (Strategy::Pvops, Pinning::Unpinned) => {
                native::write_entry(at, val);
                Ok(())
            }
            (Strategy::Pvops, Pinning::Pinned) => {
                self.queue.lock().push(&self.hc, self.machine_addr(at), val)
            }
            // The anchors' builds write every table entry through Xen.
            (Strategy::MiniOs, _) => {
                batch::mmu_update(&self.hc, &mut [MmuUpdate { ptr: self.machine_addr(at), val }])
            }
            (Strategy::Linux, _) => {
                let mut mc = self.linux.lock();
                mc.mmu_update(&self.hc, MmuUpdate { ptr: self.machine_addr(at), val })?;
                if at.level() != Level::Pte {
                    // A pmd or pgd entry: the build reads those back.
                    mc.flush(&self.hc)?;
                }
                Ok(())
            }
        }
    }

    /// Drains queued updates: before anything that depends on them.
    fn flush(&self) -> HvResult {
        self.queue.lock().flush(&self.hc)?;
        self.linux.lock().flush(&self.hc)
    }

    /// A new table page of the build, as the anchors announce it: made
    /// read-only at once (Mini-OS: one hypercall; Linux: queued).
    fn readonly_at_alloc(&self, pfn: Pfn) -> HvResult {
        let va = PAGE_OFFSET + (pfn.0 << 12);
        let val = self.make_pte(pfn, PteFlags::PRESENT | PteFlags::ACCESSED);
        match self.strategy() {
            Strategy::Pvops => Ok(()),
            Strategy::MiniOs => batch::update_va_mapping(&self.hc, va, val, 0),
            Strategy::Linux => self.linux.lock().update_va_mapping(&self.hc, va, val),
        }
    }

    /// Remaps the direct-map pages of `pfns` read-only (or writable), one
    /// multicall of update_va_mapping per MULTICALL_MAX pages. Frames
    /// beyond the direct map have no such page and are skipped. Returns the
    /// number of pages remapped.
    fn remap(&self, pfns: &mut dyn Iterator<Item = Pfn>, writable: bool) -> Result<u32, HvError> {
        self.flush()?;
        let mut flags = PteFlags::PRESENT | PteFlags::ACCESSED;
        if writable {
            flags |= PteFlags::RW | PteFlags::DIRTY;
        }
        if self.nx.load(Ordering::Relaxed) {
            flags |= PteFlags::NX;
        }
        let mut total = 0;
        let low_end = self.low_end.load(Ordering::Relaxed);
        let mut low = pfns.filter(|p| p.0 < low_end);
        loop {
            let mut mc: [SubCall; MULTICALL_MAX] =
                core::array::from_fn(|_| SubCall::UpdateVaMapping { va: 0, val: 0, flags: 0 });
            let mut n = 0;
            for pfn in (&mut low).take(MULTICALL_MAX) {
                let va = PAGE_OFFSET + (pfn.0 << 12);
                mc[n] = SubCall::UpdateVaMapping { va, val: self.make_pte(pfn, flags), flags: UVMF_INVLPG };
                n += 1;
            }
            if n == 0 {
                return Ok(total);
            }
            let mut results = [SubResult::default(); MULTICALL_MAX];
            batch::multicall(&self.hc, &mut mc[..n], &mut results[..n])?;
            total += n as u32;
        }
    }

    /// The machine address of the pte that maps `pfn` in the direct map
    /// of the table whose kernel L2 (slot 3) is `l2`. `cache` keeps the
    /// last pmd index and its pte page's machine address: the build's
    /// pages come in runs, so the L2 is read once per 512 of them.
    fn direct_map_pte(
        &self,
        b: &PagetableBuild,
        l2: Pfn,
        pfn: Pfn,
        cache: &mut (u32, u64),
    ) -> Result<u64, HvError> {
        let va = PAGE_OFFSET + (pfn.0 << 12);
        let mode = PagingMode::Pae;
        let i = mode.pmd_index(va);
        if cache.0 != i {
            let pmd = self.kernel_pmd(b, l2, i).read();
            if !present(pmd) {
                return Err(HvError::local("xen: a pagetable page outside the direct map", &[pfn.0 as u64]));
            }
            *cache = (i, (self.mfn(self.frame_of(pmd)?) as u64) << 12);
        }
        Ok(cache.1 + 8 * mode.pte_index(va) as u64)
    }

    /// `pagetable_setup_done`, ours: one multicall (see the module's
    /// documentation). Returns the pages made read-only.
    fn make_live(&self, b: &PagetableBuild, old: Pfn, old_l2: Pfn) -> Result<u32, HvError> {
        self.flush()?;
        let mut ro = PteFlags::PRESENT | PteFlags::ACCESSED;
        if self.nx.load(Ordering::Relaxed) {
            ro |= PteFlags::NX;
        }
        let rw = ro | PteFlags::RW | PteFlags::DIRTY;
        let l2 = self.frame_of(root_entry(b, b.root, 3).read())?;
        let mut cache = (u32::MAX, 0);
        let mut buf = self.build.lock();
        let (mut n, mut total) = (0, 0);
        for pfn in b.fresh().iter() {
            if n == BUILD_REMAPS {
                // More new pages than one array holds: this part alone.
                batch::mmu_update(&self.hc, &mut buf[..n])?;
                (total, n) = (total + n, 0);
            }
            buf[n] =
                MmuUpdate { ptr: self.direct_map_pte(b, l2, pfn, &mut cache)?, val: self.make_pte(pfn, ro) };
            n += 1;
        }
        // Xen's old tables are mapped by the same pte pages (Xen's own,
        // shared by both tables).
        let mut release = [MmuUpdate::default(); 2];
        for (r, p) in release.iter_mut().zip([old, old_l2]) {
            *r = MmuUpdate { ptr: self.direct_map_pte(b, l2, p, &mut cache)?, val: self.make_pte(p, rw) };
        }
        let root = self.mfn(b.root);
        let mut ops = [
            MmuextOp { cmd: mmuext::PIN_L3_TABLE, arg1: root, arg2: 0 },
            MmuextOp { cmd: mmuext::NEW_BASEPTR, arg1: root, arg2: 0 },
            MmuextOp { cmd: mmuext::UNPIN_TABLE, arg1: self.mfn(old), arg2: 0 },
        ];
        let mut calls =
            [SubCall::MmuUpdate(&mut buf[..n]), SubCall::Mmuext(&mut ops), SubCall::MmuUpdate(&mut release)];
        let mut results = [SubResult::default(); 3];
        let sent = batch::multicall(&self.hc, &mut calls, &mut results);
        // Xen runs every sub-call whatever the others answered: whether
        // the switch went through is the mmuext_op's own answer (its pin
        // and switch done), even if a sub-call failed.
        if results[1].done >= 2 {
            self.cr3.store(b.root.0, Ordering::Relaxed);
        }
        sent.map(|()| (total + n) as u32)
    }

    fn mmuext(&self, ops: &mut [MmuextOp]) -> HvResult {
        self.flush()?;
        batch::mmuext(&self.hc, ops)
    }

    /// Entry `index` of the kernel's pmd page `table` (slot 3: mapping
    /// from PAGE_OFFSET on).
    fn kernel_pmd(&self, b: &PagetableBuild, table: Pfn, index: u32) -> EntryRef {
        b.entry(table, Level::Pmd, index, VirtAddr(PAGE_OFFSET))
    }

    fn frame_of(&self, raw: u64) -> Result<Pfn, HvError> {
        let mfn = ((raw & PagingMode::Pae.addr_mask()) >> 12) as u32;
        self.p2m().pfn(mfn).ok_or(HvError::local("xen: a boot pagetable entry names a foreign frame", &[raw]))
    }
}

impl<T: Hypercalls> Mmu for XenMmu<T> {
    fn fail_next_update(&self) -> bool {
        self.hc.sabotage_following()
    }

    fn make_pte(&self, pfn: Pfn, flags: PteFlags) -> u64 {
        ((self.mfn(pfn) as u64) << 12) | flags.bits()
    }

    fn pte_pfn(&self, mode: PagingMode, raw: u64) -> Option<Pfn> {
        self.p2m().pfn(((raw & mode.addr_mask()) >> 12) as u32)
    }

    fn set_pte(&self, at: &EntryRef, val: u64) -> HvResult {
        self.write(at, val)
    }

    fn set_pte_range(&self, first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        match (self.strategy(), first.pinning()) {
            (Strategy::Pvops, Pinning::Unpinned) => {
                // A page Xen has not seen: fill it like native memory, one
                // machine-contiguous run at a time (dom0's memory comes in
                // long runs, so this is usually one call), from the runs
                // found at the start of the build.
                let runs = self.runs.lock();
                let mut i = 0;
                while i < count {
                    let at = pfn.add(i);
                    let (mfn, n) = match runs.lookup(at) {
                        Some((mfn, left)) => (mfn, left.min(count - i)),
                        // Beyond the table: read the p2m (panics with the
                        // reason if the frame is not ours).
                        None => (self.mfn(at), self.p2m().contiguous(at, count - i)),
                    };
                    native::write_pte_range(&first.add(i), n, Pfn(mfn), flags);
                    i += n;
                }
                Ok(())
            }
            (Strategy::Pvops, Pinning::Pinned) => {
                let mut q = self.queue.lock();
                for i in 0..count {
                    let at = first.add(i);
                    q.push(&self.hc, self.machine_addr(&at), self.make_pte(pfn.add(i), flags))?;
                }
                Ok(())
            }
            (Strategy::MiniOs, _) => {
                // One mmu_update per pte page's worth, each entry's machine
                // frame looked up (Mini-OS's pfn_to_mfn).
                let base = self.machine_addr(first);
                let mut buf = self.build.lock();
                let mut i = 0;
                while i < count {
                    let n = (count - i).min(MINIOS_L1_BATCH as u32);
                    for k in 0..n {
                        let e = i + k;
                        buf[k as usize] =
                            MmuUpdate { ptr: base + 8 * e as u64, val: self.make_pte(pfn.add(e), flags) };
                    }
                    batch::mmu_update(&self.hc, &mut buf[..n as usize])?;
                    i += n;
                }
                Ok(())
            }
            (Strategy::Linux, _) => {
                let base = self.machine_addr(first);
                let mut mc = self.linux.lock();
                for i in 0..count {
                    let u = MmuUpdate { ptr: base + 8 * i as u64, val: self.make_pte(pfn.add(i), flags) };
                    mc.mmu_update(&self.hc, u)?;
                }
                Ok(())
            }
        }
    }

    fn set_ptes(&self, page: &EntryRef, updates: &[(u32, u64)]) -> HvResult {
        if page.pinning() == Pinning::Unpinned || self.strategy() != Strategy::Pvops {
            for &(i, val) in updates {
                self.write(&page.add(i), val)?;
            }
            return Ok(());
        }
        // A pinned table's entries, queued: one machine frame lookup and
        // one lock for the page's.
        let base = self.machine_addr(page) - page.offset() as u64;
        let size = page.mode().entry_size() as u64;
        let mut q = self.queue.lock();
        for &(i, val) in updates {
            q.push(&self.hc, base + i as u64 * size, val)?;
        }
        Ok(())
    }

    fn set_pmd(&self, at: &EntryRef, val: u64) -> HvResult {
        self.write(at, val)
    }

    fn set_pgd(&self, at: &EntryRef, val: u64) -> HvResult {
        self.write(at, val)
    }

    fn alloc_pt(&self, pfn: Pfn, pinning: Pinning) -> HvResult {
        match pinning {
            // Ours: made read-only with the rest of its table, when that is
            // pinned (`pagetable_setup_done`, `pin`). The anchors' builds:
            // at once.
            Pinning::Unpinned => self.readonly_at_alloc(pfn),
            // Joins a validated table: read-only before it can be linked.
            Pinning::Pinned => self.remap(&mut core::iter::once(pfn), false).map(|_| ()),
        }
    }

    fn alloc_pd(&self, pfn: Pfn, pinning: Pinning) -> HvResult {
        self.alloc_pt(pfn, pinning)
    }

    fn release_pt(&self, pfn: Pfn, pinning: Pinning) -> HvResult {
        match pinning {
            Pinning::Unpinned => Ok(()),
            // Unlinked, so no longer typed as a pagetable: writable again.
            Pinning::Pinned => self.remap(&mut core::iter::once(pfn), true).map(|_| ()),
        }
    }

    fn release_pd(&self, pfn: Pfn, pinning: Pinning) -> HvResult {
        self.release_pt(pfn, pinning)
    }

    fn pagetable_setup_start(&self, b: &mut PagetableBuild) -> HvResult {
        if b.mode != PagingMode::Pae {
            return Err(HvError::local("xen: a 32-bit PV guest pages with PAE only", &[]));
        }
        let strategy = self.strategy();
        if strategy == Strategy::Pvops {
            // The bulk path's runs: every frame of low memory looked at
            // once, here, rather than once per pte page filled.
            let lowmem = (b.direct_map_end - PAGE_OFFSET) >> 12;
            *self.runs.lock() = Runs::scan(self.p2m(), lowmem);
        }
        let old = self.read_cr3();
        // Slots 0-2 (user space): share Xen's L2s.
        for i in 0..3 {
            let e = root_entry(b, old, i).read();
            if present(e) {
                self.write(&root_entry(b, b.root, i), e)?;
            }
        }
        // Slot 3: our own copy of the L2, without Xen's private slots (Xen
        // fills those in itself when it validates the page).
        let old_l2 = self.frame_of(root_entry(b, old, 3).read())?;
        let l2 = b
            .new_table(true)
            .map_err(|_| HvError::local("xen: no page for the kernel's L2 (slot 3)", &[]))?;
        self.alloc_pd(l2, Pinning::Unpinned)?;
        for i in 0..self.machine().hv_l2_slot {
            let e = self.kernel_pmd(b, old_l2, i).read();
            if present(e) {
                self.write(&self.kernel_pmd(b, l2, i), e)?;
            }
        }
        self.write(&root_entry(b, b.root, 3), self.make_pte(l2, PteFlags::PDPT_ENTRY))?;
        // (Linux: what the copy queued goes before the build reads it.)
        self.flush()
    }

    fn pagetable_setup_done(&self, b: PagetableBuild) -> HvResult {
        self.nx.store(b.caps.nx, Ordering::Relaxed);
        self.low_end.store((b.direct_map_end.wrapping_sub(PAGE_OFFSET)) >> 12, Ordering::Relaxed);
        let old = self.read_cr3();
        let old_l2 = self.frame_of(root_entry(&b, old, 3).read())?;
        let (root, old_mfn) = (self.mfn(b.root), self.mfn(old));
        let strategy = self.strategy();
        // From here on every hook works this backend's way.
        self.set_strategy(Strategy::Pvops);
        let remapped = match strategy {
            Strategy::Pvops => self.make_live(&b, old, old_l2)?,
            Strategy::MiniOs => {
                // Every page is read-only already; then as ours, in two.
                self.mmuext(&mut [
                    MmuextOp { cmd: mmuext::PIN_L3_TABLE, arg1: root, arg2: 0 },
                    MmuextOp { cmd: mmuext::NEW_BASEPTR, arg1: root, arg2: 0 },
                    MmuextOp { cmd: mmuext::UNPIN_TABLE, arg1: old_mfn, arg2: 0 },
                ])?;
                self.cr3.store(b.root.0, Ordering::Relaxed);
                self.remap(&mut [old, old_l2].into_iter(), true)?;
                0
            }
            Strategy::Linux => {
                // xen_pgd_pin, xen_write_cr3, xen_pgd_unpin: one mmuext_op
                // each, queued; then the old tables writable, queued.
                let mut mc = self.linux.lock();
                for (cmd, arg1) in [
                    (mmuext::PIN_L3_TABLE, root),
                    (mmuext::NEW_BASEPTR, root),
                    (mmuext::UNPIN_TABLE, old_mfn),
                ] {
                    mc.mmuext(&self.hc, MmuextOp { cmd, arg1, arg2: 0 })?;
                }
                let rw = PteFlags::PRESENT | PteFlags::ACCESSED | PteFlags::RW | PteFlags::DIRTY;
                for p in [old, old_l2] {
                    mc.update_va_mapping(&self.hc, PAGE_OFFSET + (p.0 << 12), self.make_pte(p, rw))?;
                }
                mc.flush(&self.hc)?;
                self.cr3.store(b.root.0, Ordering::Relaxed);
                0
            }
        };
        let made = if strategy == Strategy::Pvops { remapped } else { b.fresh().count() };
        log::info!(
            "xen: {} new pagetable pages made read-only ({} strategy), L3 pfn {:#x} (mfn {:#x}) pinned and live, Xen's boot L3 and L2 released",
            made,
            strategy.name(),
            b.root.0,
            root
        );
        Ok(())
    }

    fn pin(&self, root: Pfn, tables: &mut dyn Iterator<Item = Pfn>) -> HvResult {
        self.remap(&mut tables.chain(core::iter::once(root)), false)?;
        self.mmuext(&mut [MmuextOp { cmd: mmuext::PIN_L3_TABLE, arg1: self.mfn(root), arg2: 0 }])
    }

    fn unpin(&self, root: Pfn, tables: &mut dyn Iterator<Item = Pfn>) -> HvResult {
        self.mmuext(&mut [MmuextOp { cmd: mmuext::UNPIN_TABLE, arg1: self.mfn(root), arg2: 0 }])?;
        self.remap(&mut tables.chain(core::iter::once(root)), true).map(|_| ())
    }

    fn pte_clear_flush(&self, at: &EntryRef) -> HvResult {
        let va = at.vaddr();
        // A kernel mapping once the kernel's table is live (the fixmap
        // slots of kmap_atomic and kmap_atomic_pte): every root shares the
        // kernel's pte pages, so update_va_mapping, which walks whichever
        // root is loaded, reaches this very entry, clears it and drops its
        // TLB entry in one call instead of an mmu_update and an invlpg.
        // What a lazy batch queued goes first, in the same multicall.
        let live = self.low_end.load(Ordering::Relaxed) != u32::MAX;
        if live
            && at.level() == Level::Pte
            && at.pinning() == Pinning::Pinned
            && va.0 >= PAGE_OFFSET
            && self.strategy() == Strategy::Pvops
        {
            return self.queue.lock().flush_then_va_mapping(&self.hc, va.0, 0, UVMF_INVLPG);
        }
        self.set_pte(at, 0)?;
        self.flush_tlb_single(va)
    }

    fn flush_tlb_single(&self, va: VirtAddr) -> HvResult {
        self.mmuext(&mut [MmuextOp { cmd: mmuext::INVLPG_LOCAL, arg1: va.0, arg2: 0 }])
    }

    fn flush_tlb_user(&self) -> HvResult {
        self.mmuext(&mut [MmuextOp { cmd: mmuext::TLB_FLUSH_LOCAL, arg1: 0, arg2: 0 }])
    }

    fn flush_tlb_kernel(&self) -> HvResult {
        // No global pages under PV: a local flush drops everything.
        self.flush_tlb_user()
    }

    fn read_cr3(&self) -> Pfn {
        Pfn(self.cr3.load(Ordering::Relaxed))
    }

    unsafe fn write_cr3(&self, root: Pfn) -> HvResult {
        self.mmuext(&mut [MmuextOp { cmd: mmuext::NEW_BASEPTR, arg1: self.mfn(root), arg2: 0 }])?;
        self.cr3.store(root.0, Ordering::Relaxed);
        Ok(())
    }

    fn enter_lazy_mmu(&self) {
        self.queue.lock().enter_lazy();
    }

    fn leave_lazy_mmu(&self) -> HvResult {
        self.queue.lock().leave_lazy(&self.hc)
    }

    fn flush_lazy_mmu(&self) -> HvResult {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fake::{table, Call, FakeXen, Pages, Sub};
    use paravirt::{Caps, PageAlloc, PhysMem};
    use std::collections::BTreeSet;
    use std::format;
    use std::vec::Vec;

    /// Machine frames are pfn + 0x10000: a wrong translation shows.
    const MFN_BASE: u32 = 0x10000;
    const PAGES: u32 = 512;
    /// Xen's boot L3, its slot-3 L2, and one L1 under it.
    const OLD_L3: Pfn = Pfn(10);
    const OLD_L2: Pfn = Pfn(11);
    const OLD_L1: Pfn = Pfn(12);

    /// Hands out pfns from .0 + 1 on, below .1.
    struct Bump(u32, u32);
    impl PageAlloc for Bump {
        fn alloc_page(&mut self) -> Option<Pfn> {
            self.0 += 1;
            (self.0 < self.1).then_some(Pfn(self.0))
        }
    }

    fn setup() -> (XenMmu<FakeXen>, Pages) {
        let mmu = XenMmu::new(FakeXen::new());
        mmu.init(Machine { p2m: table(PAGES, |p| p + MFN_BASE), hv_l2_slot: 428 }, OLD_L3);
        let mem = Pages::new(PAGES);
        let e = |p: Pfn, flags: u64| ((p.0 + MFN_BASE) as u64) << 12 | flags;
        // Xen's boot tables: L3[3] -> L2, L2[0] -> L1, L2[428] (Xen's own).
        mem.write_u64(OLD_L3, 3, e(OLD_L2, 1));
        mem.write_u64(OLD_L2, 0, e(OLD_L1, 0x67));
        mem.write_u64(OLD_L2, 428, 0xdead_0067);
        (mmu, mem)
    }

    #[test]
    fn the_build_copies_the_l3_and_its_slot3_l2_without_xens_slots() {
        let (mmu, mem) = setup();
        let mut alloc = Bump(100, PAGES);
        let caps = Caps { large_pages: false, global_pages: false, nx: true };
        let mut b = PagetableBuild::new(PagingMode::Pae, &mem, &mut alloc, caps, 0xC800_0000).unwrap();
        mmu.pagetable_setup_start(&mut b).unwrap();
        let root = b.root;
        let l2 = mmu.pte_pfn(PagingMode::Pae, mem.read_u64(root, 3)).unwrap();
        assert_ne!(l2, OLD_L2, "slot 3's L2 is a copy");
        assert!(b.is_fresh(l2) && b.is_fresh(root));
        assert_eq!(mem.read_u64(l2, 0), mem.read_u64(OLD_L2, 0), "L1s are shared");
        assert_eq!(mem.read_u64(l2, 428), 0, "Xen's own slots are left to Xen");
        assert!(mmu.hc.calls().is_empty(), "fresh pages are written with plain stores");
    }

    /// A build of `tables` table pages beyond the root and the L2 copy,
    /// over the boot tables of `setup`, with `xen` behind it.
    fn build_of(mmu: &XenMmu<FakeXen>, mem: &Pages, alloc: &mut Bump, tables: u32) -> (BTreeSet<u32>, Pfn) {
        let caps = Caps { large_pages: false, global_pages: false, nx: true };
        let mut b = PagetableBuild::new(PagingMode::Pae, mem, alloc, caps, 0xC800_0000).unwrap();
        mmu.pagetable_setup_start(&mut b).unwrap();
        for _ in 0..tables {
            b.new_table(true).unwrap();
        }
        let fresh: BTreeSet<u32> = b.fresh().iter().map(|p| p.0).collect();
        let root = b.root;
        mmu.pagetable_setup_done(b).unwrap();
        (fresh, root)
    }

    /// The machine address of the pte mapping `pfn` in the test's direct
    /// map (OLD_L1 maps pfn 0-511).
    fn pte_of(pfn: u32) -> u64 {
        (((OLD_L1.0 + MFN_BASE) as u64) << 12) + 8 * pfn as u64
    }

    #[test]
    fn setup_done_is_one_trap_remap_pin_switch_release() {
        let (mmu, mem) = setup();
        let (fresh, root) = build_of(&mmu, &mem, &mut Bump(100, PAGES), 100);
        // One multicall: the 102 fresh pages read-only (NX kept), then the
        // pin, the switch and Xen's L3 unpinned, then Xen's L3 and L2
        // writable again.
        let calls = mmu.hc.calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        let subs = calls[0].subs();
        let [Sub::MmuUpdate(remaps), Sub::Mmuext(ops), Sub::MmuUpdate(release)] = &subs[..] else {
            panic!("{subs:?}")
        };
        let mut remapped = BTreeSet::new();
        for u in remaps {
            let pfn = ((u.ptr - pte_of(0)) / 8) as u32;
            assert_eq!(u.val, mmu.make_pte(Pfn(pfn), PteFlags::PRESENT | PteFlags::ACCESSED | PteFlags::NX));
            remapped.insert(pfn);
        }
        assert_eq!(remapped, fresh);
        let r = root.0 + MFN_BASE;
        assert_eq!(
            ops.iter().map(|o| (o.cmd, o.arg1)).collect::<Vec<_>>(),
            [(mmuext::PIN_L3_TABLE, r), (mmuext::NEW_BASEPTR, r), (mmuext::UNPIN_TABLE, OLD_L3.0 + MFN_BASE)]
        );
        assert_eq!(release.iter().map(|u| u.ptr).collect::<Vec<_>>(), [pte_of(OLD_L3.0), pte_of(OLD_L2.0)]);
        assert!(release.iter().all(|u| u.val & PteFlags::RW.bits() != 0));
        assert_eq!(mmu.read_cr3(), root);
    }

    #[test]
    fn a_build_of_any_size_stays_within_three_traps() {
        // 2, 100, 500 and 700 table pages (the last more than one remap
        // array holds: its first 512 go on their own).
        for (tables, traps) in [(0, 1), (98, 1), (498, 1), (698, 2)] {
            let mmu = XenMmu::new(FakeXen::new());
            const BIG: u32 = 2048;
            mmu.init(Machine { p2m: table(BIG, |p| p + MFN_BASE), hv_l2_slot: 428 }, OLD_L3);
            let mem = Pages::new(BIG);
            let e = |p: Pfn, flags: u64| ((p.0 + MFN_BASE) as u64) << 12 | flags;
            mem.write_u64(OLD_L3, 3, e(OLD_L2, 1));
            for t in 0..4 {
                mem.write_u64(OLD_L2, t, e(Pfn(OLD_L1.0 + t), 0x67));
            }
            let mut alloc = Bump(100, BIG);
            let (fresh, _) = build_of(&mmu, &mem, &mut alloc, tables);
            let calls = mmu.hc.calls();
            assert_eq!(calls.len(), traps, "{} pages", fresh.len());
            assert!(calls.len() <= 3);
            let carried: usize = calls
                .iter()
                .flat_map(|c| c.subs())
                .map(|s| if let Sub::MmuUpdate(r) = s { r.len() } else { 0 })
                .sum();
            assert_eq!(carried, fresh.len() + 2, "every page once, and Xen's two");
        }
    }

    #[test]
    fn a_refused_remap_in_the_middle_is_the_one_named_and_nothing_is_switched() {
        let (mmu, mem) = setup();
        // The 4th of 7 remaps fails; Xen goes on with the multicall and, a
        // page being still writable, refuses the pin (entry 7, the first
        // of the mmuext_op), then the release (entry 10: still pinned).
        mmu.hc.refuse_entry(1, 3, -22);
        mmu.hc.refuse_entry(1, 7, -22);
        mmu.hc.refuse_entry(1, 10, -22);
        let mut alloc = Bump(100, PAGES);
        let caps = Caps { large_pages: false, global_pages: false, nx: false };
        let mut b = PagetableBuild::new(PagingMode::Pae, &mem, &mut alloc, caps, 0xC800_0000).unwrap();
        mmu.pagetable_setup_start(&mut b).unwrap();
        for _ in 0..5 {
            b.new_table(true).unwrap();
        }
        let fourth = b.fresh().iter().nth(3).unwrap();
        let e = mmu.pagetable_setup_done(b).unwrap_err();
        let want =
            format!("mmu_update entry 3 of 7 ({:#x}, {:#x}) failed: -22 (EINVAL)", pte_of(fourth.0), {
                mmu.make_pte(fourth, PteFlags::PRESENT | PteFlags::ACCESSED)
            });
        assert_eq!(format!("{e}"), want);
        assert_eq!(mmu.read_cr3(), OLD_L3, "no switch after a failed remap");
    }

    #[test]
    fn a_refused_release_after_the_switch_is_named_and_the_switch_is_known() {
        let (mmu, mem) = setup();
        // 3 remaps (root, L2, one more), 3 ops, then the release's first.
        mmu.hc.refuse_entry(1, 6, -1);
        let mut alloc = Bump(100, PAGES);
        let caps = Caps { large_pages: false, global_pages: false, nx: false };
        let mut b = PagetableBuild::new(PagingMode::Pae, &mem, &mut alloc, caps, 0xC800_0000).unwrap();
        mmu.pagetable_setup_start(&mut b).unwrap();
        b.new_table(true).unwrap();
        let root = b.root;
        let e = mmu.pagetable_setup_done(b).unwrap_err();
        assert!(
            format!("{e}").starts_with(&format!("mmu_update entry 0 of 2 ({:#x}, ", pte_of(OLD_L3.0))),
            "{e}"
        );
        assert_eq!(mmu.read_cr3(), root, "Xen did switch");
    }

    /// Entry 5 of pte page `table` of `mem`, mapping 0xC0005000.
    fn entry5(mem: &Pages, table: Pfn, pinning: Pinning) -> EntryRef {
        // SAFETY: `table` is a page of `mem`, index 5 is inside it.
        unsafe {
            EntryRef::new(
                PagingMode::Pae,
                arch_i386::Level::Pte,
                table,
                5,
                mem.page(table).add(40),
                VirtAddr(0xC000_5000),
                OLD_L3,
                pinning,
            )
        }
    }

    #[test]
    fn writes_go_plain_to_unpinned_tables_and_through_xen_to_pinned_ones() {
        let (mmu, mem) = setup();
        let mk = |table: Pfn, pinning: Pinning| entry5(&mem, table, pinning);
        let val = mmu.make_pte(Pfn(7), PteFlags::PRESENT);
        mmu.set_pte(&mk(Pfn(50), Pinning::Unpinned), val).unwrap();
        assert_eq!(mem.read_u64(Pfn(50), 5), val);
        assert!(mmu.hc.calls().is_empty());
        mmu.enter_lazy_mmu();
        mmu.set_pte(&mk(OLD_L1, Pinning::Pinned), val).unwrap();
        assert!(mmu.hc.calls().is_empty(), "queued");
        mmu.leave_lazy_mmu().unwrap();
        let ptr = ((OLD_L1.0 + MFN_BASE) as u64) << 12 | 40;
        assert_eq!(mmu.hc.calls(), [Call::MmuUpdate(std::vec![crate::abi::MmuUpdate { ptr, val }])]);
        assert_eq!(mem.read_u64(OLD_L1, 5), 0, "Xen writes pinned tables, not the guest");
    }

    /// kunmap_atomic's clear and invlpg: one update_va_mapping once the
    /// kernel's table is live, after what a lazy batch queued in the same
    /// multicall; the two steps during the build (the entry is not in the
    /// loaded table yet).
    #[test]
    fn a_kernel_pte_is_cleared_and_flushed_in_one_call_once_live() {
        let (mmu, mem) = setup();
        let slot = entry5(&mem, OLD_L1, Pinning::Pinned);
        let two_steps = |calls: &[Call]| {
            matches!(calls, [Call::MmuUpdate(u), Call::Mmuext(o)]
                if u[0].val == 0 && o[0].cmd == mmuext::INVLPG_LOCAL && o[0].arg1 == 0xC000_5000)
        };
        mmu.pte_clear_flush(&slot).unwrap();
        assert!(two_steps(&mmu.hc.calls()), "during the build: {:?}", mmu.hc.calls());
        let (mmu, mem) = setup();
        build_of(&mmu, &mem, &mut Bump(100, PAGES), 4);
        let before = mmu.hc.calls().len();
        mmu.pte_clear_flush(&slot).unwrap();
        assert_eq!(
            mmu.hc.calls()[before..],
            [Call::UpdateVaMapping { va: 0xC000_5000, val: 0, flags: UVMF_INVLPG }]
        );
        // In a batch: what was queued, then the clear, in one multicall.
        mmu.enter_lazy_mmu();
        let val = mmu.make_pte(Pfn(7), PteFlags::PRESENT);
        mmu.set_pte(&slot.add(1), val).unwrap();
        mmu.pte_clear_flush(&slot).unwrap();
        mmu.leave_lazy_mmu().unwrap();
        let ptr = ((OLD_L1.0 + MFN_BASE) as u64) << 12 | 48;
        assert_eq!(
            mmu.hc.calls()[before + 1..],
            [Call::Multicall(std::vec![
                Sub::MmuUpdate(std::vec![crate::abi::MmuUpdate { ptr, val }]),
                Sub::UpdateVaMapping { va: 0xC000_5000, val: 0, flags: UVMF_INVLPG }
            ])]
        );
    }

    #[test]
    fn the_bulk_path_fills_machine_contiguous_runs() {
        let mmu = XenMmu::new(FakeXen::new());
        // pfn 0-99 at 0x10000+, pfn 100+ elsewhere: two runs.
        mmu.init(
            Machine {
                p2m: table(PAGES, |p| if p < 100 { 0x10000 + p } else { 0x30000 + p }),
                hv_l2_slot: 428,
            },
            OLD_L3,
        );
        let mem = Pages::new(PAGES);
        // SAFETY: page 60 of `mem`, entry 0.
        let first = unsafe {
            EntryRef::new(
                PagingMode::Pae,
                arch_i386::Level::Pte,
                Pfn(60),
                0,
                mem.page(Pfn(60)),
                VirtAddr(0xC000_0000),
                OLD_L3,
                Pinning::Unpinned,
            )
        };
        mmu.set_pte_range(&first, 200, Pfn(0), PteFlags::PRESENT).unwrap();
        for i in 0..200u32 {
            assert_eq!(mem.read_u64(Pfn(60), i), mmu.make_pte(Pfn(i), PteFlags::PRESENT), "pte {i}");
        }
    }

    /// HIGHPTE: a pte page beyond the direct map has no kernel mapping to
    /// make read-only; only the low pages of a table are remapped.
    #[test]
    fn pagetable_pages_beyond_the_direct_map_are_not_remapped() {
        let (mmu, mem) = setup();
        let mut alloc = Bump(100, PAGES);
        let caps = Caps { large_pages: false, global_pages: false, nx: false };
        // The direct map ends at pfn 300: 300..512 are high.
        let mut b =
            PagetableBuild::new(PagingMode::Pae, &mem, &mut alloc, caps, PAGE_OFFSET + (300 << 12)).unwrap();
        mmu.pagetable_setup_start(&mut b).unwrap();
        mmu.pagetable_setup_done(b).unwrap();
        let before = mmu.hc.calls().len();
        mmu.alloc_pt(Pfn(400), Pinning::Pinned).unwrap();
        mmu.release_pt(Pfn(400), Pinning::Pinned).unwrap();
        assert_eq!(mmu.hc.calls().len(), before, "no update_va_mapping for a high page");
        mmu.pin(Pfn(80), &mut [Pfn(81), Pfn(400), Pfn(299)].into_iter()).unwrap();
        let calls = mmu.hc.calls();
        let Call::Multicall(mc) = &calls[before] else { panic!("{:?}", calls[before]) };
        let remapped: std::vec::Vec<u32> = mc
            .iter()
            .map(|e| match e {
                Sub::UpdateVaMapping { va, .. } => (va - PAGE_OFFSET) >> 12,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(remapped, [81, 299, 80]);
        assert!(matches!(&calls[before + 1], Call::Mmuext(o) if o[0].cmd == mmuext::PIN_L3_TABLE));
    }

    #[test]
    fn the_bulk_path_fills_from_the_runs_found_at_setup_start() {
        // pfn 0-299 at MFN_BASE + pfn, the rest elsewhere: two runs.
        let mmu = XenMmu::new(FakeXen::new());
        let mfn = |p: u32| if p < 300 { MFN_BASE + p } else { 0x30000 + p };
        mmu.init(Machine { p2m: table(PAGES, mfn), hv_l2_slot: 428 }, OLD_L3);
        let mem = Pages::new(PAGES);
        let e = |p: Pfn, flags: u64| (mfn(p.0) as u64) << 12 | flags;
        mem.write_u64(OLD_L3, 3, e(OLD_L2, 1));
        mem.write_u64(OLD_L2, 0, e(OLD_L1, 0x67));
        let mut alloc = Bump(100, PAGES);
        let caps = Caps { large_pages: false, global_pages: false, nx: false };
        let mut b = PagetableBuild::new(PagingMode::Pae, &mem, &mut alloc, caps, 0xC800_0000).unwrap();
        mmu.pagetable_setup_start(&mut b).unwrap();
        let page = b.new_table(false).unwrap();
        let first = b.entry(page, Level::Pte, 0, VirtAddr(0xC000_0000));
        // 250 ptes across the runs' border: two fills, plain stores.
        mmu.set_pte_range(&first, 250, Pfn(200), PteFlags::PRESENT).unwrap();
        for i in 0..250u32 {
            assert_eq!(mem.read_u64(page, i), e(Pfn(200 + i), 1), "pte {i}");
        }
        assert!(mmu.hc.calls().is_empty());
    }

    #[test]
    fn runtime_tables_of_pinned_pagetables_are_read_only_while_linked() {
        let (mmu, _mem) = setup();
        mmu.alloc_pt(Pfn(70), Pinning::Unpinned).unwrap();
        assert!(mmu.hc.calls().is_empty());
        mmu.alloc_pt(Pfn(71), Pinning::Pinned).unwrap();
        mmu.release_pt(Pfn(71), Pinning::Pinned).unwrap();
        let calls = mmu.hc.calls();
        let ro = |c: &Call| match &c.subs()[..] {
            [Sub::UpdateVaMapping { va, val, .. }] => (*va, val & PteFlags::RW.bits() == 0),
            other => panic!("{other:?}"),
        };
        assert_eq!(ro(&calls[0]), (PAGE_OFFSET + (71 << 12), true));
        assert_eq!(ro(&calls[1]), (PAGE_OFFSET + (71 << 12), false));
        // An address space: remapped and pinned as a whole, and back.
        mmu.pin(Pfn(80), &mut [Pfn(81), Pfn(82)].into_iter()).unwrap();
        mmu.unpin(Pfn(80), &mut [Pfn(81), Pfn(82)].into_iter()).unwrap();
        let calls = mmu.hc.calls();
        assert!(
            matches!(&calls[3], Call::Mmuext(o) if o[0].cmd == mmuext::PIN_L3_TABLE && o[0].arg1 == 80 + MFN_BASE)
        );
        assert!(matches!(&calls[4], Call::Mmuext(o) if o[0].cmd == mmuext::UNPIN_TABLE));
        assert!(matches!(&calls[5], Call::Multicall(mc) if mc.len() == 3));
        assert!(matches!(&calls[2], Call::Multicall(mc) if mc.len() == 3), "remapped as a whole");
    }
}
