//! The seed patch's pagetable hooks, the Xen way.
//!
//! Xen only runs on pagetables it has validated: every page used as a
//! pagetable must be mapped read-only everywhere (otherwise the guest could
//! rewrite its own mappings behind Xen's back), entries hold machine
//! frames, and a live pagetable is changed only through `mmu_update`,
//! which checks each new entry. "Pinning" a top-level table makes Xen
//! validate the whole tree once and keep it validated.
//!
//! So the kernel's build goes like this:
//! - `pagetable_setup_start`: copy the L3 Xen booted us on (Linux's
//!   swapper_pg_dir takes over from `start_info.pt_base`), except slot 3:
//!   its L2 also holds Xen's own mappings (0xF5800000 up) and may belong to
//!   only one L3, so we copy that L2 into a page of our own. The L1 pages
//!   under it are shared, not copied: kernel mappings share their pte
//!   pages among all pagetables.
//! - During the build, pages announced with `alloc_pt`/`alloc_pd` are not
//!   pagetables yet as far as Xen knows: they are written with plain
//!   stores, which costs nothing. Xen's own pages (live, read-only) are
//!   changed with batched `mmu_update`s.
//! - `pagetable_setup_done`: remap every new pagetable page read-only in
//!   multicalls of `update_va_mapping` (one hypercall per 64 pages), pin
//!   the new L3, switch to it and unpin Xen's, all in one `mmuext_op`, then
//!   make Xen's old L3 and slot-3 L2 writable again: they are plain RAM now.
//!
//! New pages therefore become read-only before they are reachable from any
//! pagetable Xen uses, which is the rule that matters; and after the build,
//! `alloc_pt` remaps a page at once, before it can be linked.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{PagingMode, Pfn, PteFlags};
use paravirt::{HvError, HvResult, PagetableSetup};
use spin::Mutex;

use crate::abi::{mmuext, nr, MmuextOp, MulticallEntry, UVMF_INVLPG};
use crate::batch::{self, MULTICALL_MAX};
use crate::p2m;

/// Pfns the pending bitmap covers: 1 GiB, more than the direct map.
const BITMAP_PFNS: usize = 1 << 18;

static PENDING: Mutex<[u32; BITMAP_PFNS / 32]> = Mutex::new([0; BITMAP_PFNS / 32]);
/// Until the kernel's own pagetable is live, new pagetable pages are only
/// marked (and made read-only together at the end); after, at once.
static BUILDING: AtomicBool = AtomicBool::new(true);
static NX: AtomicBool = AtomicBool::new(false);
/// The live top-level page (pfn).
static ROOT: AtomicU32 = AtomicU32::new(0);
/// Xen's boot L3 and its slot-3 L2, released after the switch.
static OLD_L3: AtomicU32 = AtomicU32::new(0);
static OLD_L2: AtomicU32 = AtomicU32::new(0);
/// First L2 slot of the hypervisor's area (0xF5800000 -> 428).
static HV_L2_SLOT: AtomicU32 = AtomicU32::new(512);

pub fn set_root(pfn: Pfn) {
    ROOT.store(pfn.0, Ordering::Relaxed);
}

pub fn root() -> Pfn {
    Pfn(ROOT.load(Ordering::Relaxed))
}

pub fn set_hv_start(va: u32) {
    HV_L2_SLOT.store((va - 0xC000_0000) >> 21, Ordering::Relaxed);
}

/// Is `pfn` a new pagetable page that Xen does not know about yet?
pub fn is_pending(pfn: Pfn) -> bool {
    let i = pfn.0 as usize;
    i < BITMAP_PFNS && PENDING.lock()[i / 32] & (1 << (i % 32)) != 0
}

/// `alloc_pt`/`alloc_pd`.
pub fn new_table(pfn: Pfn) -> HvResult {
    if BUILDING.load(Ordering::Relaxed) {
        let i = pfn.0 as usize;
        if i >= BITMAP_PFNS {
            return Err(HvError::new("xen: pagetable page beyond the pending bitmap", &[pfn.0 as u64], -22));
        }
        PENDING.lock()[i / 32] |= 1 << (i % 32);
        Ok(())
    } else {
        remap(&mut [pfn].into_iter(), false)
    }
}

/// The raw entry at `index` of frame `pfn`.
fn read(mem: &dyn paravirt::PhysMem, pfn: Pfn, index: u32) -> u64 {
    // SAFETY: the frame is reachable (PhysMem) and index < 512.
    unsafe { (mem.page(pfn) as *const u64).add(index as usize).read_volatile() }
}

/// Writes a raw entry into a pending (still writable, not yet validated)
/// page.
fn write(mem: &dyn paravirt::PhysMem, pfn: Pfn, index: u32, val: u64) {
    debug_assert!(is_pending(pfn));
    // SAFETY: pending pages are ours, mapped writable, 512 entries.
    unsafe { (mem.page(pfn) as *mut u64).add(index as usize).write_volatile(val) }
}

fn frame_of(raw: u64) -> Result<Pfn, HvError> {
    let mfn = ((raw & PagingMode::Pae.addr_mask()) >> 12) as u32;
    p2m::pfn(mfn).ok_or(HvError::new("xen: boot pagetable entry names a foreign frame", &[raw], -22))
}

pub fn setup_start(pt: &mut PagetableSetup) -> HvResult {
    if pt.mode != PagingMode::Pae {
        return Err(HvError::new("xen: 32-bit PV needs PAE paging", &[], -22));
    }
    NX.store(pt.nx, Ordering::Relaxed);
    if !is_pending(pt.base) {
        return Err(HvError::new(
            "xen: the new root was not announced with alloc_pd",
            &[pt.base.0 as u64],
            -22,
        ));
    }
    let old = root();

    OLD_L3.store(old.0, Ordering::Relaxed);
    // Slots 0-2 (user space): share Xen's L2s.
    for i in 0..3 {
        let e = read(pt.mem, old, i);
        if present(e) {
            write(pt.mem, pt.base, i, e);
        }
    }
    // Slot 3: our own copy of the L2, without Xen's private slots (Xen
    // fills those in itself when it validates the page).
    let old_l2 = frame_of(read(pt.mem, old, 3))?;
    OLD_L2.store(old_l2.0, Ordering::Relaxed);
    let l2 = pt.alloc.alloc_page().ok_or(HvError::new("xen: no page for the slot-3 L2", &[], -12))?;
    new_table(l2)?;
    for i in 0..HV_L2_SLOT.load(Ordering::Relaxed) {
        let e = read(pt.mem, old_l2, i);
        if present(e) {
            write(pt.mem, l2, i, e);
        }
    }
    write(pt.mem, pt.base, 3, make(l2, PteFlags::PDPT_ENTRY));
    Ok(())
}

pub fn setup_done(pt: &mut PagetableSetup) -> HvResult {
    BUILDING.store(false, Ordering::Relaxed);
    // Every pending page read-only, in batches, straight from the bitmap.
    let pending = {
        let mut bits = PENDING.lock();
        let mut pfns = bits.iter().enumerate().flat_map(|(w, &word)| {
            (0..32).filter(move |b| word & (1 << b) != 0).map(move |b| Pfn((w * 32) as u32 + b))
        });
        let mut n = 0;
        remap(&mut pfns.by_ref().inspect(|_| n += 1), false)?;
        bits.fill(0);
        n
    };
    // Validate and pin our L3, switch to it, drop Xen's.
    let base = p2m::mfn(pt.base);
    let old = Pfn(OLD_L3.load(Ordering::Relaxed));
    let mut ops = [
        MmuextOp { cmd: mmuext::PIN_L3_TABLE, arg1: base, arg2: 0 },
        MmuextOp { cmd: mmuext::NEW_BASEPTR, arg1: base, arg2: 0 },
        MmuextOp { cmd: mmuext::UNPIN_TABLE, arg1: p2m::mfn(old), arg2: 0 },
    ];
    batch::mmuext(&mut ops)?;
    set_root(pt.base);
    // Xen's L3 and slot-3 L2 are plain pages again.
    let old_l2 = Pfn(OLD_L2.load(Ordering::Relaxed));
    remap(&mut [old, old_l2].into_iter(), true)?;
    log::info!(
        "xen: {} new pagetable pages made read-only, L3 pfn {:#x} (mfn {:#x}) pinned and live, Xen's boot L3 and L2 released",
        pending,
        pt.base.0,
        base
    );
    Ok(())
}

/// The entry value for `pfn` (machine frame + flags).
pub fn make(pfn: Pfn, flags: PteFlags) -> u64 {
    ((p2m::mfn(pfn) as u64) << 12) | flags.bits()
}

/// Remaps the direct-map pages of `pfns` read-only (or writable), one
/// multicall of update_va_mapping per MULTICALL_MAX pages.
fn remap(pfns: &mut dyn Iterator<Item = Pfn>, writable: bool) -> HvResult {
    let mut flags = PteFlags::PRESENT | PteFlags::ACCESSED;
    if writable {
        flags |= PteFlags::RW | PteFlags::DIRTY;
    }
    if NX.load(Ordering::Relaxed) {
        flags |= PteFlags::NX;
    }
    let mut mc = [MulticallEntry::default(); MULTICALL_MAX];
    loop {
        let mut n = 0;
        for pfn in (&mut *pfns).take(MULTICALL_MAX) {
            let val = make(pfn, flags);
            mc[n] = MulticallEntry {
                op: nr::UPDATE_VA_MAPPING,
                result: 0,
                args: [PAGE_OFFSET + (pfn.0 << 12), val as u32, (val >> 32) as u32, UVMF_INVLPG, 0, 0],
            };
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        batch::multicall(&mut mc[..n], "update_va_mapping")?;
    }
}
