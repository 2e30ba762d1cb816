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
        let mut flags = PteFlags::ACCESSED;
        if !(pinning == Pinning::Pinned && self.readonly_tables) {
            flags |= PteFlags::RW | PteFlags::DIRTY;
        }
        if self.nx {
            flags |= PteFlags::NX;
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
    /// Slots ever used (the search goes in order, so: the highest + 1).
    pub slots_used: u32,
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
    let mut f = PteFlags::PRESENT | PteFlags::RW | PteFlags::ACCESSED | PteFlags::DIRTY;
    if hm.nx {
        f |= PteFlags::NX;
    }
    f
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
                let va = Self::va(hm, i);
                let e = w.pte(va.0).ok_or(MmError::LargePage { va, what: "pkmap area" })?;
                mmu.set_pte(&e, mmu.make_pte(pfn, pkmap_flags(hm)))?;
                mmu.flush_lazy_mmu()?;
                self.slots[i] = PkmapSlot { count: 1, pfn: pfn.0 };
                self.stats.slots_used = self.stats.slots_used.max(i as u32 + 1);
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
                let va = Self::va(hm, i);
                let e = w.pte(va.0).ok_or(MmError::LargePage { va, what: "pkmap area" })?;
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
        let va = Self::va(hm, i);
        let w = hm.kernel(mmu, mem);
        let e = w.pte(va.0).ok_or(MmError::LargePage { va, what: "pkmap area" })?;
        mmu.set_pte(&e, 0)?;
        mmu.flush_tlb_single(va)?;
        self.slots[i].count = 0;
        Ok(())
    }

    /// Slots in use (count > 1), for the leak check.
    pub fn in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.count > 1).count()
    }
}
