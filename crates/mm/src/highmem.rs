//! High memory in use: frames beyond the direct map, reached through
//! temporary kernel mappings.
//!
//! - **kmap_atomic_pte** (Linux's, under CONFIG_HIGHPTE): a user pte page
//!   may come from high memory; every access maps it at a fixmap slot of
//!   its own and unmaps it after. Two slots (KM_PTE0/KM_PTE1), because fork
//!   walks the parent's and the child's pte pages at once. A pte page of a
//!   pinned table is mapped read-only where the platform keeps pagetable
//!   pages read-only (the paging policy says so; Xen PV, as Linux's
//!   `xen_kmap_atomic_pte`): its writes go through the backend's `set_pte`,
//!   which there names the entry by frame, not by this mapping.
//! - **pkmap** (Linux's persistent kmap): `LAST_PKMAP` slots in the pkmap
//!   pte page the boot created, for a mapping held longer than one access.
//!   Each slot has a use count (Linux's `pkmap_count`: 0 free, 1 mapped but
//!   unused, n > 1 in use n - 1 times); `kunmap` leaves the entry in place,
//!   and only when the search for a free slot wraps are all unused entries
//!   cleared, with one TLB flush (`flush_all_zero_pkmaps`).

use arch_i386::{Pfn, PteFlags, VirtAddr};
use paravirt::{Mmu, PhysMem, Pinning};

use crate::fixmap::{self, FixSlot};
use crate::walk::Walker;
use crate::{Layout, MmError};

/// One of the two kmap_atomic_pte slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteSlot {
    /// The pte page being walked (fork: the parent's).
    Pte0,
    /// fork: the child's.
    Pte1,
}

impl PteSlot {
    fn fix(self) -> FixSlot {
        match self {
            PteSlot::Pte0 => FixSlot::KmapPte0,
            PteSlot::Pte1 => FixSlot::KmapPte1,
        }
    }
}

/// What mm needs to reach frames beyond the direct map.
#[derive(Clone, Copy, Debug)]
pub struct HighMem {
    pub layout: Layout,
    /// The kernel's root, whose fixmap and pkmap pte pages every root
    /// shares.
    pub kernel_root: Pfn,
    pub nx: bool,
    /// Must a pagetable page be mapped read-only while its table is pinned
    /// (the paging policy's `pagetable_pages_readonly`)?
    pub readonly_tables: bool,
}

impl HighMem {
    /// Is `pfn` RAM beyond the direct map?
    pub fn holds(&self, pfn: Pfn) -> bool {
        let low = self.layout.max_low_pfn.0;
        pfn.0 >= low && pfn.0 - low < self.layout.highmem_pages
    }

    fn kernel<'a, M: Mmu + ?Sized>(&self, mmu: &'a M, mem: &'a dyn PhysMem) -> Walker<'a, M> {
        Walker::live(mmu, mem, self.layout.mode, self.kernel_root)
    }

    /// Linux's `kmap_atomic_pte`: maps high pte page `pt` at `slot` and
    /// returns where its bytes are. `pinning` is its table's: a pinned
    /// table's page is mapped read-only when the platform wants that.
    pub fn kmap_atomic_pte<M: Mmu + ?Sized>(
        &self,
        mmu: &M,
        mem: &dyn PhysMem,
        pt: Pfn,
        slot: PteSlot,
        pinning: Pinning,
    ) -> Result<*mut u8, MmError> {
        let mut flags = fixmap::kernel_data(self.nx);
        if pinning == Pinning::Pinned && self.readonly_tables {
            flags.remove(PteFlags::RW | PteFlags::DIRTY);
        }
        let va = fixmap::set_fixmap(&self.kernel(mmu, mem), &self.layout, slot.fix(), pt, flags)?;
        // Inside a lazy batch (fork) the entry may still be queued: it must
        // be in place before the kernel reads through it.
        mmu.flush_lazy_mmu()?;
        Ok(mem.mapped_at(va, pt))
    }

    /// Linux's `kunmap_atomic` of a pte page: clears `slot` and its TLB
    /// entry.
    pub fn kunmap_atomic_pte<M: Mmu + ?Sized>(
        &self,
        mmu: &M,
        mem: &dyn PhysMem,
        slot: PteSlot,
    ) -> Result<(), MmError> {
        fixmap::clear_fixmap(&self.kernel(mmu, mem), &self.layout, slot.fix())
    }

    /// Zeroes a new high pte page (not a pagetable page yet, so mapped
    /// writable on any platform) through `slot`.
    pub fn zero_pte_page<M: Mmu + ?Sized>(
        &self,
        mmu: &M,
        mem: &dyn PhysMem,
        pt: Pfn,
        slot: PteSlot,
    ) -> Result<(), MmError> {
        let p = self.kmap_atomic_pte(mmu, mem, pt, slot, Pinning::Unpinned)?;
        // SAFETY: the slot maps the frame's 4096 bytes writable until the
        // kunmap below; the frame is free, so nothing else uses it.
        unsafe { core::ptr::write_bytes(p, 0, 4096) };
        self.kunmap_atomic_pte(mmu, mem, slot)
    }
}

/// One pkmap slot: its use count and the frame it maps (meaningful while
/// the count is not 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct PkmapSlot {
    count: u16,
    pfn: u32,
}

impl PkmapSlot {
    /// Free (for a static pool).
    pub const ZERO: PkmapSlot = PkmapSlot { count: 0, pfn: 0 };
}

/// What the pkmap did, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PkmapStats {
    /// kmaps of high frames.
    pub kmaps: u32,
    /// Entries written: kmaps that found their frame unmapped.
    pub entries: u32,
    /// Lazy flushes (the search wrapped).
    pub flushes: u32,
}

/// The persistent kmap pool.
pub struct Pkmap<'a> {
    slots: &'a mut [PkmapSlot],
    /// Linux's `last_pkmap_nr`: where the search for a free slot resumes.
    last: usize,
    pub stats: PkmapStats,
}

/// The flags of a pkmap entry: a kernel data mapping, not global (so a
/// user TLB flush would drop it too; the lazy flush drops all anyway).
fn pkmap_flags(hm: &HighMem) -> PteFlags {
    PteFlags::PRESENT | fixmap::kernel_data(hm.nx)
}

impl<'a> Pkmap<'a> {
    /// A pool of `slots.len()` slots (at most the pkmap pte page's
    /// `last_pkmap` entries), all free.
    pub fn new(slots: &'a mut [PkmapSlot]) -> Pkmap<'a> {
        slots.fill(PkmapSlot::default());
        Pkmap { slots, last: 0, stats: PkmapStats::default() }
    }

    fn va(hm: &HighMem, i: usize) -> VirtAddr {
        VirtAddr(hm.layout.pkmap_base + ((i as u32) << 12))
    }

    /// Slot `i`'s entry in the pkmap pte page, and its address.
    fn entry<'w, M: Mmu + ?Sized>(
        hm: &HighMem,
        w: &'w Walker<'w, M>,
        i: usize,
    ) -> Result<(paravirt::EntryRef, VirtAddr), MmError> {
        let va = Self::va(hm, i);
        let e = w.pte(va.0).ok_or(MmError::LargePage { va, what: "pkmap area" })?;
        Ok((e, va))
    }

    fn slot_of(&self, pfn: Pfn) -> Option<usize> {
        self.slots.iter().position(|s| s.count > 0 && s.pfn == pfn.0)
    }

    /// Linux's `kmap`: where frame `pfn`'s bytes are until the matching
    /// `kunmap`. A low frame is in the direct map already; a high one
    /// takes a slot (the one already mapping it, if any).
    pub fn kmap<M: Mmu + ?Sized>(
        &mut self,
        hm: &HighMem,
        mmu: &M,
        mem: &dyn PhysMem,
        pfn: Pfn,
    ) -> Result<*mut u8, MmError> {
        if !hm.holds(pfn) {
            return Ok(mem.page(pfn));
        }
        assert!(self.slots.len() as u32 <= hm.layout.last_pkmap, "more pkmap slots than the pkmap pte page");
        let i = match self.slot_of(pfn) {
            Some(i) => i,
            None => self.map_new_virtual(hm, mmu, mem, pfn)?,
        };
        self.slots[i].count += 1;
        self.stats.kmaps += 1;
        Ok(mem.mapped_at(Self::va(hm, i), pfn))
    }

    /// Linux's `map_new_virtual`: the next free slot after the last one
    /// taken, flushing the unused ones when the search wraps.
    fn map_new_virtual<M: Mmu + ?Sized>(
        &mut self,
        hm: &HighMem,
        mmu: &M,
        mem: &dyn PhysMem,
        pfn: Pfn,
    ) -> Result<usize, MmError> {
        let n = self.slots.len();
        for _ in 0..n {
            self.last = (self.last + 1) % n;
            if self.last == 0 {
                self.flush_all_zero(hm, mmu, mem)?;
            }
            if self.slots[self.last].count == 0 {
                let i = self.last;
                let w = hm.kernel(mmu, mem);
                let (e, _) = Self::entry(hm, &w, i)?;
                mmu.set_pte(&e, mmu.make_pte(pfn, pkmap_flags(hm)))?;
                mmu.flush_lazy_mmu()?;
                self.slots[i] = PkmapSlot { count: 1, pfn: pfn.0 };
                self.stats.entries += 1;
                return Ok(i);
            }
        }
        Err(MmError::PkmapFull { slots: n as u32 })
    }

    /// Linux's `flush_all_zero_pkmaps`: every mapped but unused slot
    /// cleared, then one TLB flush for them all.
    fn flush_all_zero<M: Mmu + ?Sized>(
        &mut self,
        hm: &HighMem,
        mmu: &M,
        mem: &dyn PhysMem,
    ) -> Result<(), MmError> {
        let w = hm.kernel(mmu, mem);
        let mut cleared = false;
        for i in 0..self.slots.len() {
            if self.slots[i].count == 1 {
                let (e, _) = Self::entry(hm, &w, i)?;
                mmu.set_pte(&e, 0)?;
                self.slots[i].count = 0;
                cleared = true;
            }
        }
        if cleared {
            mmu.flush_tlb_kernel()?;
            self.stats.flushes += 1;
        }
        Ok(())
    }

    /// Linux's `kunmap`: one use fewer. The entry stays until a flush.
    pub fn kunmap(&mut self, hm: &HighMem, pfn: Pfn) -> Result<(), MmError> {
        if !hm.holds(pfn) {
            return Ok(());
        }
        match self.slot_of(pfn) {
            Some(i) if self.slots[i].count >= 2 => {
                self.slots[i].count -= 1;
                Ok(())
            }
            _ => Err(MmError::PkmapCount { pfn }),
        }
    }

    /// Frame `pfn` is about to become a pagetable page: an unused pkmap
    /// entry still mapping it writable goes now (a platform that keeps
    /// pagetable pages read-only refuses a page with a writable alias;
    /// Linux's Xen code calls `kmap_flush_unused` for the same reason). A
    /// frame still kmapped is a bug.
    pub fn forget<M: Mmu + ?Sized>(
        &mut self,
        hm: &HighMem,
        mmu: &M,
        mem: &dyn PhysMem,
        pfn: Pfn,
    ) -> Result<(), MmError> {
        let Some(i) = self.slot_of(pfn) else { return Ok(()) };
        if self.slots[i].count != 1 {
            return Err(MmError::PkmapCount { pfn });
        }
        let w = hm.kernel(mmu, mem);
        let (e, va) = Self::entry(hm, &w, i)?;
        mmu.set_pte(&e, 0)?;
        mmu.flush_tlb_single(va)?;
        self.slots[i].count = 0;
        Ok(())
    }

    /// Distinct slots ever used. The search takes slots in cyclic order
    /// and skips only one in use (so used before): the first `entries`
    /// slots of that order, at most all of them.
    pub fn slots_used(&self) -> u32 {
        self.stats.entries.min(self.slots.len() as u32)
    }

    /// The pool's size.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Slots in use (count > 1), for the leak check.
    pub fn in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.count > 1).count()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use arch_i386::paging::present;
    use arch_i386::{Level, PagingMode};

    use super::*;
    use crate::fixmap::fix_to_virt;
    use crate::frames::{FrameAllocator, Zone};
    use crate::sim::{Event, Recorder, SimMem};
    use crate::space::{AddressSpace, Ctx};
    use crate::tests::built;

    /// 16 MiB of direct-mapped memory (the built kernel table's), and 16
    /// MiB of high memory above it that only a temporary mapping reaches.
    const LOW: u32 = 4096;
    const END: u32 = 8192;

    fn setup(mode: PagingMode, readonly_tables: bool) -> (SimMem, Recorder, HighMem) {
        let sim = SimMem::with_highmem(END as usize, LOW as usize);
        let rec = Recorder::new(None);
        let (pt, layout) = built(&sim, &rec, mode);
        assert_eq!(layout.max_low_pfn, Pfn(LOW));
        let layout = Layout { highmem_pages: END - LOW, ..layout };
        rec.cr3.set(pt.root);
        rec.events.borrow_mut().clear();
        (sim, rec, HighMem { layout, kernel_root: pt.root, nx: false, readonly_tables })
    }

    /// The kernel's entry for a fixmap or pkmap address: (its pte page,
    /// index).
    fn kernel_pte(sim: &SimMem, rec: &Recorder, hm: &HighMem, va: VirtAddr) -> (Pfn, u32, u64) {
        let w = Walker::live(rec, sim, hm.layout.mode, hm.kernel_root);
        let e = w.pte(va.0).unwrap();
        (e.table(), e.index(), e.read())
    }

    /// The values written into a fixmap slot's entry since the last clear
    /// of the event log (0s, the unmaps, left out).
    fn slot_writes(sim: &SimMem, rec: &Recorder, hm: &HighMem, slot: FixSlot) -> Vec<u64> {
        let (table, index, _) = kernel_pte(sim, rec, hm, fix_to_virt(&hm.layout, slot));
        rec.events
            .borrow()
            .iter()
            .filter_map(|e| match *e {
                Event::Set(Level::Pte, t, i, v, _) if t == table && i == index && v != 0 => Some(v),
                _ => None,
            })
            .collect()
    }

    fn high_tables(s: &AddressSpace, rec: &Recorder, sim: &SimMem, hm: &HighMem) -> Vec<Pfn> {
        s.tables(rec, sim).filter(|&t| hm.holds(t)).collect()
    }

    /// A space whose pte pages are high: made, written, forked, unmapped
    /// and destroyed with every access through the two kmap_atomic_pte
    /// slots, read-only while pinned (as under Xen), both slots clear after
    /// every operation, every page accounted for.
    fn high_ptes(mode: PagingMode) {
        let (sim, rec, hm) = setup(mode, true);
        let mut bits = vec![0u32; FrameAllocator::words_for(Pfn(END))];
        let mut frames = FrameAllocator::new(&mut bits, Pfn(LOW), Pfn(END));
        frames.add_free(Pfn(LOW - 512), Pfn(END));
        let before = frames.free_count();
        let mut ctx = Ctx {
            mmu: &rec,
            mem: &sim,
            frames: &mut frames,
            mode,
            kernel_root: hm.kernel_root,
            shared_kernel_pmd: true,
            kernel_top: hm.layout.fixaddr_top as u64 + 4096,
            high: Some(hm),
            pkmap: None,
        };
        let clear = |rec: &Recorder| {
            for slot in [FixSlot::KmapPte0, FixSlot::KmapPte1] {
                assert_eq!(
                    kernel_pte(&sim, rec, &hm, fix_to_virt(&hm.layout, slot)).2,
                    0,
                    "{slot:?} left mapped"
                );
            }
        };
        let mut parent = AddressSpace::new(&mut ctx).unwrap();
        let pages: Vec<(u32, Pfn, PteFlags)> = vec![
            (0x0804_8000, ctx.frames.alloc(Zone::High).unwrap(), PteFlags::empty()),
            (0x0804_9000, ctx.frames.alloc(Zone::High).unwrap(), PteFlags::RW),
            (0x4000_0000, ctx.frames.alloc(Zone::High).unwrap(), PteFlags::RW),
        ];
        for &(va, pfn, f) in &pages {
            parent.map(&mut ctx, va, pfn, f).unwrap();
        }
        clear(&rec);
        let high = high_tables(&parent, &rec, &sim, &hm);
        assert_eq!(high.len(), 2, "both pte pages high");
        assert_eq!(parent.counts.high_pt, 2);
        // Unpinned: the pte pages were zeroed and filled through writable
        // mappings.
        let writes = slot_writes(&sim, &rec, &hm, FixSlot::KmapPte0);
        assert!(!writes.is_empty() && writes.iter().all(|v| v & PteFlags::RW.bits() != 0));
        // SAFETY: the recorder loads nothing.
        unsafe { parent.activate(&mut ctx).unwrap() };
        rec.events.borrow_mut().clear();
        // Pinned: a new entry goes through the backend into the high page,
        // whose temporary mapping is read-only.
        let extra = ctx.frames.alloc(Zone::High).unwrap();
        parent.map(&mut ctx, 0x0804_A000, extra, PteFlags::RW).unwrap();
        let writes = slot_writes(&sim, &rec, &hm, FixSlot::KmapPte0);
        assert!(!writes.is_empty() && writes.iter().all(|v| v & PteFlags::RW.bits() == 0), "{writes:x?}");
        assert!(rec
            .events
            .borrow()
            .iter()
            .any(|e| matches!(*e, Event::Set(Level::Pte, t, _, _, Pinning::Pinned) if high.contains(&t))));
        assert_eq!(rec.pte_pfn(mode, parent.pte_value(&ctx, 0x0804_A000).unwrap()), Some(extra));
        assert_eq!(parent.unmap(&mut ctx, 0x0804_A000, true).unwrap(), Some(extra));
        ctx.frames.free(extra).unwrap();
        clear(&rec);
        // fork: the parent's pages at KM_PTE0 (read-only, pinned), the
        // child's at KM_PTE1 (writable, unpinned).
        rec.events.borrow_mut().clear();
        let mut child = AddressSpace::new(&mut ctx).unwrap();
        assert_eq!(parent.fork_into(&mut ctx, &mut child, true, |_| Ok(())).unwrap(), 3);
        clear(&rec);
        let w0 = slot_writes(&sim, &rec, &hm, FixSlot::KmapPte0);
        let w1 = slot_writes(&sim, &rec, &hm, FixSlot::KmapPte1);
        assert!(w0.iter().all(|v| v & PteFlags::RW.bits() == 0) && w0.len() == 2, "{w0:x?}");
        assert!(w1.iter().all(|v| v & PteFlags::RW.bits() != 0) && !w1.is_empty(), "{w1:x?}");
        assert_eq!(high_tables(&child, &rec, &sim, &hm).len(), 2);
        for &(va, pfn, _) in &pages {
            for s in [&parent, &child] {
                let v = s.pte_value(&ctx, va).unwrap();
                assert!(present(v) && v & PteFlags::RW.bits() == 0, "{va:#x} read-only in both");
                assert_eq!(rec.pte_pfn(mode, v), Some(pfn));
            }
        }
        // A walk sees through the high pages.
        let mut seen = Vec::new();
        child.walker(&rec, &sim).for_each_mapping(0, 0xC000_0000, |m| seen.push((m.va, m.pfn.unwrap())));
        assert_eq!(seen, pages.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
        // munmap of a whole pte page's range frees it while pinned.
        let mut freed = Vec::new();
        let pmd = mode.pmd_size();
        let n = parent.unmap_range(&mut ctx, 0x4000_0000, pmd / 4096, true, |_, p| freed.push(p)).unwrap();
        assert_eq!((n, freed.as_slice()), (1, &[pages[2].1][..]));
        assert_eq!(high_tables(&parent, &rec, &sim, &hm).len(), 1);
        clear(&rec);
        // SAFETY: as above.
        unsafe { ctx.mmu.write_cr3(hm.kernel_root).unwrap() };
        let c = child.destroy(&mut ctx, |_, p| freed.push(p)).unwrap();
        let p = parent.destroy(&mut ctx, |_, p| freed.push(p)).unwrap();
        clear(&rec);
        assert_eq!((c.alloc_pt, c.release_pt, c.high_pt), (2, 2, 2));
        assert_eq!((p.alloc_pt, p.release_pt, p.high_pt), (2, 2, 2));
        assert_eq!(freed.len(), 1 + 3 + 2, "munmap's, the child's three, the parent's two left");
        for &(_, pfn, _) in &pages {
            ctx.frames.free(pfn).unwrap();
        }
        assert_eq!(ctx.frames.free_count(), before, "every frame came back");
    }

    #[test]
    fn a_space_with_high_pte_pages_2level() {
        high_ptes(PagingMode::TwoLevel);
    }

    #[test]
    fn a_space_with_high_pte_pages_pae() {
        high_ptes(PagingMode::Pae);
    }

    /// Without high memory nothing is mapped: pte pages are low.
    #[test]
    fn no_high_memory_no_kmaps() {
        let (sim, rec, hm) = setup(PagingMode::Pae, true);
        let hm = HighMem { layout: Layout { highmem_pages: 0, ..hm.layout }, ..hm };
        let mut bits = vec![0u32; FrameAllocator::words_for(Pfn(END))];
        let mut frames = FrameAllocator::new(&mut bits, Pfn(LOW), Pfn(LOW));
        frames.add_free(Pfn(LOW - 512), Pfn(LOW));
        let mut ctx = Ctx {
            mmu: &rec,
            mem: &sim,
            frames: &mut frames,
            mode: PagingMode::Pae,
            kernel_root: hm.kernel_root,
            shared_kernel_pmd: true,
            kernel_top: hm.layout.fixaddr_top as u64 + 4096,
            high: Some(hm),
            pkmap: None,
        };
        let mut s = AddressSpace::new(&mut ctx).unwrap();
        let f = ctx.frames.alloc(Zone::High).unwrap();
        s.map(&mut ctx, 0x0800_0000, f, PteFlags::RW).unwrap();
        assert_eq!(s.counts.high_pt, 0);
        assert!(slot_writes(&sim, &rec, &hm, FixSlot::KmapPte0).is_empty());
        s.destroy(&mut ctx, |_, _| {}).unwrap();
    }

    /// The pkmap pool: use counts, reuse of a frame's slot, the lazy flush
    /// when the search wraps, a full pool, and `forget`.
    #[test]
    fn pkmap_counts_wraps_and_flushes_lazily() {
        let (sim, rec, hm) = setup(PagingMode::TwoLevel, false);
        let mut slots = vec![PkmapSlot::default(); 4];
        let mut pk = Pkmap::new(&mut slots);
        let va = |i: usize| Pkmap::va(&hm, i);
        let entry = |i: usize| kernel_pte(&sim, &rec, &hm, va(i)).2;
        let (a, b, c, d) = (Pfn(LOW), Pfn(LOW + 1), Pfn(LOW + 2), Pfn(LOW + 3));
        // A low frame is in the direct map: no slot.
        assert_eq!(pk.kmap(&hm, &rec, &sim, Pfn(LOW - 1)).unwrap(), sim.page(Pfn(LOW - 1)));
        assert_eq!(pk.stats, PkmapStats::default());
        // The search starts after slot 0.
        let p = pk.kmap(&hm, &rec, &sim, a).unwrap();
        assert_eq!(p, sim.page(a));
        assert_eq!(rec.pte_pfn(PagingMode::TwoLevel, entry(1)), Some(a));
        assert_eq!(pk.kmap(&hm, &rec, &sim, a).unwrap(), p, "the same frame, the same slot");
        assert_eq!(pk.in_use(), 1);
        pk.kunmap(&hm, a).unwrap();
        pk.kunmap(&hm, a).unwrap();
        assert_eq!(pk.kunmap(&hm, a), Err(MmError::PkmapCount { pfn: a }), "one kunmap too many");
        assert_eq!(pk.in_use(), 0);
        assert_ne!(entry(1), 0, "kunmap leaves the entry for the lazy flush");
        // Unused but mapped: a kmap takes the slot back without a new entry.
        rec.events.borrow_mut().clear();
        pk.kmap(&hm, &rec, &sim, a).unwrap();
        assert!(rec.events.borrow().is_empty());
        pk.kunmap(&hm, a).unwrap();
        for f in [b, c] {
            pk.kmap(&hm, &rec, &sim, f).unwrap();
            pk.kunmap(&hm, f).unwrap();
        }
        assert_eq!(pk.stats.flushes, 0);
        // The fourth frame: the search wraps to slot 0, clearing the three
        // unused entries with one flush.
        rec.events.borrow_mut().clear();
        pk.kmap(&hm, &rec, &sim, d).unwrap();
        assert_eq!(pk.stats.flushes, 1);
        assert_eq!(rec.events.borrow().iter().filter(|e| **e == Event::Flush).count(), 1);
        assert_eq!((entry(1), entry(2), entry(3)), (0, 0, 0));
        assert_eq!(rec.pte_pfn(PagingMode::TwoLevel, entry(0)), Some(d));
        // Four held at once fill the pool; a fifth has nowhere to go.
        for f in [a, b, c] {
            pk.kmap(&hm, &rec, &sim, f).unwrap();
        }
        assert_eq!(pk.kmap(&hm, &rec, &sim, Pfn(LOW + 4)), Err(MmError::PkmapFull { slots: 4 }));
        // A frame about to become a pagetable page: still in use is a bug,
        // mapped but unused loses its entry at once.
        assert_eq!(pk.forget(&hm, &rec, &sim, a), Err(MmError::PkmapCount { pfn: a }));
        pk.kunmap(&hm, a).unwrap();
        let i = (0..4).find(|&i| rec.pte_pfn(PagingMode::TwoLevel, entry(i)) == Some(a)).unwrap();
        pk.forget(&hm, &rec, &sim, a).unwrap();
        assert_eq!(entry(i), 0);
        for f in [b, c, d] {
            pk.kunmap(&hm, f).unwrap();
        }
        assert_eq!(pk.in_use(), 0);
        assert_eq!(pk.stats, PkmapStats { kmaps: 9, entries: 7, flushes: 1 });
        assert_eq!(pk.slots_used(), 4);
    }
}
