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
//!   with plain stores, which costs nothing.
//! - `pagetable_setup_done`: remap every fresh page read-only, multicalls
//!   of `update_va_mapping` (one hypercall per 64 pages), pin the new L3,
//!   switch to it and unpin Xen's, all in one `mmuext_op`, then make Xen's
//!   old L3 and slot-3 L2 writable again: they are plain RAM now.
//!
//! New pages therefore become read-only before they are reachable from any
//! pagetable Xen uses, which is the rule that matters. After the build the
//! same rule holds for every table: a page joining a pinned pagetable is
//! made read-only at `alloc_pt` (before it is linked), an address space is
//! remapped and pinned as a whole at its first activation (`pin`), and
//! `release_pt`/`unpin` make pages writable again once nothing links them.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, PagingMode, Pfn, PteFlags, VirtAddr};
use paravirt::native::{self, root_entry};
use paravirt::{EntryRef, HvError, HvResult, Mmu, PagetableBuild, Pinning};
use spin::{Mutex, Once};

use crate::abi::{mmuext, nr, MmuextOp, MulticallEntry, UVMF_INVLPG};
use crate::batch::{self, Queue, MULTICALL_MAX};
use crate::p2m::P2m;
use crate::transport::Hypercalls;

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
    low_end: AtomicU32,
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
        }
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
        match at.pinning() {
            Pinning::Unpinned => {
                native::write_entry(at, val);
                Ok(())
            }
            Pinning::Pinned => self.queue.lock().push(&self.hc, self.machine_addr(at), val),
        }
    }

    /// Drains queued updates: before anything that depends on them.
    fn flush(&self) -> HvResult {
        self.queue.lock().flush(&self.hc)
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
        let mut mc = [MulticallEntry::default(); MULTICALL_MAX];
        let mut total = 0;
        let low_end = self.low_end.load(Ordering::Relaxed);
        let mut low = pfns.filter(|p| p.0 < low_end);
        loop {
            let mut n = 0;
            for pfn in (&mut low).take(MULTICALL_MAX) {
                let val = self.make_pte(pfn, flags);
                mc[n] = MulticallEntry {
                    op: nr::UPDATE_VA_MAPPING,
                    result: 0,
                    args: [PAGE_OFFSET + (pfn.0 << 12), val as u32, (val >> 32) as u32, UVMF_INVLPG, 0, 0],
                };
                n += 1;
            }
            if n == 0 {
                return Ok(total);
            }
            batch::multicall(&self.hc, &mut mc[..n], "update_va_mapping")?;
            total += n as u32;
        }
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
        match first.pinning() {
            Pinning::Unpinned => {
                // A page Xen has not seen: fill it like native memory, one
                // run of machine-contiguous frames at a time (dom0's memory
                // comes in long runs, so this is usually one call).
                let mut i = 0;
                while i < count {
                    let run = self.p2m().contiguous(pfn.add(i), count - i);
                    if run == 0 {
                        self.mfn(pfn.add(i)); // panics with the reason
                    }
                    native::write_pte_range(&first.add(i), run, Pfn(self.mfn(pfn.add(i))), flags);
                    i += run;
                }
                Ok(())
            }
            Pinning::Pinned => {
                let mut q = self.queue.lock();
                for i in 0..count {
                    let at = first.add(i);
                    q.push(&self.hc, self.machine_addr(&at), self.make_pte(pfn.add(i), flags))?;
                }
                Ok(())
            }
        }
    }

    fn set_ptes(&self, page: &EntryRef, updates: &[(u32, u64)]) -> HvResult {
        if page.pinning() == Pinning::Unpinned {
            for &(i, val) in updates {
                native::write_entry(&page.add(i), val);
            }
            return Ok(());
        }
        // One machine frame lookup and one lock for the page's entries.
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
            // Made read-only with the rest of its table, when that is
            // pinned (`pagetable_setup_done`, `pin`).
            Pinning::Unpinned => Ok(()),
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
        let old = self.read_cr3();
        // Slots 0-2 (user space): share Xen's L2s.
        for i in 0..3 {
            let e = root_entry(b, old, i).read();
            if present(e) {
                native::write_entry(&root_entry(b, b.root, i), e);
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
                native::write_entry(&self.kernel_pmd(b, l2, i), e);
            }
        }
        native::write_entry(&root_entry(b, b.root, 3), self.make_pte(l2, PteFlags::PDPT_ENTRY));
        Ok(())
    }

    fn pagetable_setup_done(&self, b: PagetableBuild) -> HvResult {
        self.nx.store(b.caps.nx, Ordering::Relaxed);
        self.low_end.store((b.direct_map_end.wrapping_sub(PAGE_OFFSET)) >> 12, Ordering::Relaxed);
        let old = self.read_cr3();
        let old_l2 = self.frame_of(root_entry(&b, old, 3).read())?;
        // Every fresh page read-only, straight from the build's set.
        let remapped = self.remap(&mut b.fresh().iter(), false)?;
        // Validate and pin our L3, switch to it, drop Xen's.
        let (root, old_mfn) = (self.mfn(b.root), self.mfn(old));
        self.mmuext(&mut [
            MmuextOp { cmd: mmuext::PIN_L3_TABLE, arg1: root, arg2: 0 },
            MmuextOp { cmd: mmuext::NEW_BASEPTR, arg1: root, arg2: 0 },
            MmuextOp { cmd: mmuext::UNPIN_TABLE, arg1: old_mfn, arg2: 0 },
        ])?;
        self.cr3.store(b.root.0, Ordering::Relaxed);
        // Xen's L3 and slot-3 L2 are plain pages again.
        self.remap(&mut [old, old_l2].into_iter(), true)?;
        log::info!(
            "xen: {} new pagetable pages made read-only, L3 pfn {:#x} (mfn {:#x}) pinned and live, Xen's boot L3 and L2 released",
            remapped,
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
    use crate::fake::{table, Call, FakeXen, Pages};
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

    struct Bump(u32);
    impl PageAlloc for Bump {
        fn alloc_page(&mut self) -> Option<Pfn> {
            self.0 += 1;
            (self.0 < PAGES).then_some(Pfn(self.0))
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
        let mut alloc = Bump(100);
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

    #[test]
    fn setup_done_remaps_exactly_the_fresh_pages_then_pins_switches_and_releases() {
        let (mmu, mem) = setup();
        let mut alloc = Bump(100);
        let caps = Caps { large_pages: false, global_pages: false, nx: true };
        let mut b = PagetableBuild::new(PagingMode::Pae, &mem, &mut alloc, caps, 0xC800_0000).unwrap();
        mmu.pagetable_setup_start(&mut b).unwrap();
        for _ in 0..100 {
            b.new_table(true).unwrap();
        }
        let fresh: BTreeSet<u32> = b.fresh().iter().map(|p| p.0).collect();
        let root = b.root;
        mmu.pagetable_setup_done(b).unwrap();
        let calls = mmu.hc.calls();
        // 102 fresh pages: multicalls of 64 and 38 making them read-only.
        let mut remapped = BTreeSet::new();
        for c in &calls[..2] {
            let Call::Multicall(mc) = c else { panic!("{c:?}") };
            for e in mc {
                assert_eq!(e.op, nr::UPDATE_VA_MAPPING);
                let pte = e.args[1] as u64 | (e.args[2] as u64) << 32;
                assert_eq!(pte & PteFlags::RW.bits(), 0, "read-only");
                assert_ne!(pte & PteFlags::NX.bits(), 0, "NX kept");
                remapped.insert((e.args[0] - PAGE_OFFSET) >> 12);
            }
        }
        assert_eq!(remapped, fresh);
        // One mmuext: pin, switch, unpin Xen's.
        let Call::Mmuext(ops) = &calls[2] else { panic!("{:?}", calls[2]) };
        let r = root.0 + MFN_BASE;
        assert_eq!(
            ops.iter().map(|o| (o.cmd, o.arg1)).collect::<Vec<_>>(),
            [(mmuext::PIN_L3_TABLE, r), (mmuext::NEW_BASEPTR, r), (mmuext::UNPIN_TABLE, OLD_L3.0 + MFN_BASE)]
        );
        // Xen's L3 and L2 writable again.
        let Call::Multicall(mc) = &calls[3] else { panic!("{:?}", calls[3]) };
        let released: Vec<u32> = mc.iter().map(|e| (e.args[0] - PAGE_OFFSET) >> 12).collect();
        assert_eq!(released, [OLD_L3.0, OLD_L2.0]);
        assert!(mc.iter().all(|e| e.args[1] as u64 & PteFlags::RW.bits() != 0));
        assert_eq!(mmu.read_cr3(), root);
        assert_eq!(calls.len(), 4);
    }

    #[test]
    fn a_refused_remap_names_the_page() {
        let (mmu, mem) = setup();
        mmu.hc.refuse_entry(1, 3, -22);
        let mut alloc = Bump(100);
        let caps = Caps { large_pages: false, global_pages: false, nx: false };
        let mut b = PagetableBuild::new(PagingMode::Pae, &mem, &mut alloc, caps, 0xC800_0000).unwrap();
        mmu.pagetable_setup_start(&mut b).unwrap();
        for _ in 0..5 {
            b.new_table(true).unwrap();
        }
        let fourth = b.fresh().iter().nth(3).unwrap();
        let e = mmu.pagetable_setup_done(b).unwrap_err();
        let va = PAGE_OFFSET + (fourth.0 << 12);
        assert!(format!("{e}").starts_with(&format!("update_va_mapping entry 3 of 7 ({va:#x}, ")), "{e}");
        assert_eq!(mmu.read_cr3(), OLD_L3, "no switch after a failed remap");
    }

    #[test]
    fn writes_go_plain_to_unpinned_tables_and_through_xen_to_pinned_ones() {
        let (mmu, mem) = setup();
        let mk = |table: Pfn, pinning: Pinning| {
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
        };
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
        let mut alloc = Bump(100);
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
        let remapped: std::vec::Vec<u32> = mc.iter().map(|e| (e.args[0] - PAGE_OFFSET) >> 12).collect();
        assert_eq!(remapped, [81, 299, 80]);
        assert!(matches!(&calls[before + 1], Call::Mmuext(o) if o[0].cmd == mmuext::PIN_L3_TABLE));
    }

    #[test]
    fn runtime_tables_of_pinned_pagetables_are_read_only_while_linked() {
        let (mmu, _mem) = setup();
        mmu.alloc_pt(Pfn(70), Pinning::Unpinned).unwrap();
        assert!(mmu.hc.calls().is_empty());
        mmu.alloc_pt(Pfn(71), Pinning::Pinned).unwrap();
        mmu.release_pt(Pfn(71), Pinning::Pinned).unwrap();
        let calls = mmu.hc.calls();
        let ro = |c: &Call| match c {
            Call::Multicall(mc) => (mc[0].args[0], mc[0].args[1] as u64 & PteFlags::RW.bits() == 0),
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
    }
}
