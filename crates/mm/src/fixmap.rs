//! Fixed mappings: a few virtual pages just below the top of the kernel's
//! address space whose pte pages the boot created (empty), set one by one
//! at run time (Linux's `set_fixmap`, and `kmap_atomic` on top of it).
//!
//! Because kernel mappings share their pte pages among all pagetables (the
//! seed's "subtle point"), a fixmap entry set while any pagetable is live
//! is seen at once through every other one: nothing enumerates pagetables.
//! Every write goes through the backend's `set_pte` and every removal is
//! followed by `flush_tlb_single`.

use arch_i386::{Pfn, PteFlags, VirtAddr};
use paravirt::Mmu;

use crate::layout::{Layout, NR_FIX};
use crate::walk::Walker;
use crate::MmError;

/// The fixmap slots, Linux's `enum fixed_addresses` for what this kernel
/// uses: one temporary mapping per purpose, so two can be live at once
/// (copying a page into a highmem page needs two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FixSlot {
    /// Linux's FIX_HOLE: slot 0 is the last page of the address space, and
    /// an object there would end at address 0 (a pointer range the
    /// compiler may assume never wraps). Never mapped.
    Hole = 0,
    /// kmap_atomic of a data page (zeroing or filling a highmem page).
    KmapUser0 = 1,
    /// The second page of a copy.
    KmapUser1 = 2,
    /// kmap_atomic_pte: a user pte page in highmem (HIGHPTE; Linux's
    /// KM_PTE0).
    KmapPte0 = 3,
    /// The runtime self-test's scratch slot.
    Probe = 4,
    /// The local APIC's registers (Linux's FIX_APIC_BASE).
    Lapic = 5,
    /// A hypervisor's console ring outside the direct map (a PVH guest's).
    Console = 6,
    /// The second pte page of fork, the child's (Linux's KM_PTE1).
    KmapPte1 = 7,
}

/// The virtual address of fixmap slot `idx` (Linux: `__fix_to_virt`).
pub fn fix_to_virt(layout: &Layout, slot: FixSlot) -> VirtAddr {
    let idx = slot as u32;
    assert!(idx > 0 && idx < NR_FIX, "fixmap slot {idx}");
    VirtAddr(layout.fixaddr_top - (idx << 12))
}

/// The rights of a kernel data mapping (Linux's `PAGE_KERNEL` without
/// the present bit, which [`set_fixmap`] adds): writable, accessed and
/// dirty, and not executable where NX exists.
pub fn kernel_data(nx: bool) -> PteFlags {
    let mut flags = PteFlags::RW | PteFlags::ACCESSED | PteFlags::DIRTY;
    if nx {
        flags |= PteFlags::NX;
    }
    flags
}

/// Maps `pfn` at `slot` with `flags` (kernel, present).
pub fn set_fixmap<M: Mmu + ?Sized>(
    w: &Walker<M>,
    layout: &Layout,
    slot: FixSlot,
    pfn: Pfn,
    flags: PteFlags,
) -> Result<VirtAddr, MmError> {
    let va = fix_to_virt(layout, slot);
    let e = w.pte(va.0).ok_or(MmError::LargePage { va, what: "fixmap" })?;
    w.mmu.set_pte(&e, w.mmu.make_pte(pfn, flags | PteFlags::PRESENT))?;
    Ok(va)
}

/// Unmaps `slot` and drops its TLB entry.
pub fn clear_fixmap<M: Mmu + ?Sized>(w: &Walker<M>, layout: &Layout, slot: FixSlot) -> Result<(), MmError> {
    let va = fix_to_virt(layout, slot);
    let e = w.pte(va.0).ok_or(MmError::LargePage { va, what: "fixmap" })?;
    w.mmu.pte_clear_flush(&e)?;
    Ok(())
}

/// A temporary kernel mapping of one frame (Linux's `kmap_atomic`): the
/// frame is reachable at `va` until `unmap`.
pub struct KmapAtomic {
    pub va: VirtAddr,
    slot: FixSlot,
}

impl KmapAtomic {
    /// Maps `pfn` read-write (and non-executable where NX exists).
    pub fn map<M: Mmu + ?Sized>(
        w: &Walker<M>,
        layout: &Layout,
        slot: FixSlot,
        pfn: Pfn,
        nx: bool,
    ) -> Result<KmapAtomic, MmError> {
        let va = set_fixmap(w, layout, slot, pfn, kernel_data(nx))?;
        Ok(KmapAtomic { va, slot })
    }

    pub fn ptr(&self) -> *mut u8 {
        self.va.0 as usize as *mut u8
    }

    pub fn unmap<M: Mmu + ?Sized>(self, w: &Walker<M>, layout: &Layout) -> Result<(), MmError> {
        clear_fixmap(w, layout, self.slot)
    }
}
