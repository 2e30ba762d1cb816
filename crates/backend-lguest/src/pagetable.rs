//! The seed patch's pagetable hooks, the lguest way.
//!
//! The guest boots on the Launcher's linear map. `pagetable_setup_start`
//! adopts its kernel half into the kernel's root: the pgd entries are
//! copied, the pte pages under them shared, exactly as natively with the
//! head code's boot pagetable. One thing differs: the Launcher maps
//! everything user-accessible (0x7), and the kernel's pages must not be.
//! The guest runs in ring 1, which the MMU counts as supervisor, so it does
//! not need `_PAGE_USER` either: the backend clears it in every adopted
//! pte with plain stores, and since those entries are live (shadowed), it
//! then tells the host with one FLUSH_TLB(1) instead of thousands of
//! SET_PTEs (lguest's own answer for "entries changed behind your back").
//!
//! That is the only time the backend writes entries without announcing
//! them. Everything else goes through SET_PTE/SET_PMD, which the host
//! applies to its shadows at once, so a TLB flush has nothing left to do
//! and `flush_tlb_user`/`flush_tlb_kernel` send one only while such
//! unannounced writes are outstanding.
//!
//! `pagetable_setup_done` is the guest's write_cr3: NEW_PGTABLE.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{PagingMode, Pfn, PteFlags};
use paravirt::{HvError, HvResult, PagetableSetup, PhysMem};

use crate::abi::nr;
use crate::hypercall;

/// The pgdir the guest runs on (a guest pfn).
static ROOT: AtomicU32 = AtomicU32::new(0);
/// Entries were written that the host has not been told about.
static UNANNOUNCED: AtomicBool = AtomicBool::new(false);

pub fn root() -> Pfn {
    Pfn(ROOT.load(Ordering::Relaxed))
}

pub fn set_root(pfn: Pfn) {
    ROOT.store(pfn.0, Ordering::Relaxed);
}

/// The guest's write_cr3.
pub fn switch_to(pfn: Pfn) {
    hypercall::call(nr::NEW_PGTABLE, pfn.addr().0 as u32, 0, 0);
    set_root(pfn);
}

/// A TLB flush: only needed if something was written behind the host's
/// back. `kernel`: also kernel mappings (FLUSH_TLB(1)), else user only.
pub fn flush(kernel: bool) {
    if UNANNOUNCED.swap(false, Ordering::Relaxed) {
        hypercall::call(nr::FLUSH_TLB, kernel as u32, 0, 0);
    }
}

fn entry(mem: &dyn PhysMem, pfn: Pfn, i: u32) -> *mut u32 {
    // SAFETY: i < 1024 entries of 4 bytes: inside the frame, which PhysMem
    // makes reachable.
    unsafe { (mem.page(pfn) as *mut u32).add(i as usize) }
}

pub fn setup_start(pt: &mut PagetableSetup) -> HvResult {
    if pt.mode != PagingMode::TwoLevel {
        return Err(HvError::new("lguest: only 2-level paging is shadowed", &[], -22));
    }
    let boot = root();
    let user = PteFlags::USER.bits() as u32;
    let first = pt.mode.pgd_index(PAGE_OFFSET);
    let mut cleared = 0u32;
    for i in first..pt.mode.ptrs_per_pgd() {
        let src = entry(pt.mem, boot, i);
        let dst = entry(pt.mem, pt.base, i);
        // SAFETY: both point at pgd entries (see `entry`); `base` is not
        // live yet and the host has no shadow of it: plain stores.
        let (v, mine) = unsafe { (src.read_volatile(), dst.read_volatile()) };
        if !present(v as u64) || present(mine as u64) {
            continue;
        }
        // SAFETY: as above.
        unsafe { dst.write_volatile(v & !user) };
        let table = Pfn(v >> 12);
        for j in 0..pt.mode.ptrs_per_pte() {
            let e = entry(pt.mem, table, j);
            // SAFETY: an entry of a Launcher pte page, mapped writable by
            // the Launcher's own map.
            unsafe {
                let pte = e.read_volatile();
                if pte & user != 0 {
                    UNANNOUNCED.store(true, Ordering::Relaxed);
                    e.write_volatile(pte & !user);
                    cleared += 1;
                }
            }
        }
    }
    let flushed = UNANNOUNCED.load(Ordering::Relaxed);
    flush(true);
    log::info!(
        "lguest: adopted the Launcher's map from pgdir pfn {:#x}: {} entries made kernel-only{}",
        boot.0,
        cleared,
        if flushed { ", then one FLUSH_TLB" } else { "" }
    );
    Ok(())
}

pub fn setup_done(pt: &mut PagetableSetup) -> HvResult {
    switch_to(pt.base);
    Ok(())
}
