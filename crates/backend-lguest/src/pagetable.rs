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
//! The Launcher also maps all guest memory, which can be more than the
//! kernel's direct map (lowmem ends below 896 MiB, lower still with the
//! Switcher's 4 MiB reserved): pgd entries above the direct map are not
//! adopted, and ptes above it in the last adopted page are cleared, so the
//! vmalloc area starts empty; and the Launcher's pte pages sit at the top
//! of guest memory, so those above lowmem are copied, not shared: the
//! kernel could not reach them through its direct map.
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
    let mut dropped = 0u32;
    let end = pt.direct_map_end as u64;
    let max_low = ((end - PAGE_OFFSET as u64) >> 12) as u32;
    let mut copied = 0u32;
    for i in first..pt.mode.ptrs_per_pgd() {
        let pgd_va = (i as u64) << pt.mode.pgd_shift();
        if pgd_va >= end {
            break;
        }
        let src = entry(pt.mem, boot, i);
        let dst = entry(pt.mem, pt.base, i);
        // SAFETY: both point at pgd entries (see `entry`); `base` is not
        // live yet and the host has no shadow of it: plain stores.
        let (v, mine) = unsafe { (src.read_volatile(), dst.read_volatile()) };
        if !present(v as u64) || present(mine as u64) {
            continue;
        }
        let mut table = Pfn(v >> 12);
        if table.0 >= max_low {
            // The Launcher puts its tables at the top of guest memory,
            // which can be above lowmem: unreachable once the kernel's own
            // map is live. Such a pte page is copied into low memory
            // instead of shared.
            let copy = pt.alloc.alloc_page().ok_or(HvError::new(
                "lguest: no page to copy a pte page into",
                &[],
                -12,
            ))?;
            // SAFETY: both frames are reachable now (the Launcher maps all
            // guest memory) and distinct; one page each.
            unsafe { core::ptr::copy_nonoverlapping(pt.mem.page(table), pt.mem.page(copy), 4096) };
            table = copy;
            copied += 1;
        }
        // SAFETY: as above.
        unsafe { dst.write_volatile((table.0 << 12) | (v & 0xFFF & !user)) };
        for j in 0..pt.mode.ptrs_per_pte() {
            let e = entry(pt.mem, table, j);
            let beyond = pgd_va + ((j as u64) << 12) >= end;
            // SAFETY: an entry of a Launcher pte page, mapped writable by
            // the Launcher's own map.
            unsafe {
                let pte = e.read_volatile();
                if beyond && present(pte as u64) {
                    UNANNOUNCED.store(true, Ordering::Relaxed);
                    e.write_volatile(0);
                    dropped += 1;
                } else if pte & user != 0 {
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
        "lguest: adopted the Launcher's map from pgdir pfn {:#x}: {} entries made kernel-only, {} above the direct map dropped, {} pte pages above lowmem copied{}",
        boot.0,
        cleared,
        dropped,
        copied,
        if flushed { ", then one FLUSH_TLB" } else { "" }
    );
    Ok(())
}

pub fn setup_done(pt: &mut PagetableSetup) -> HvResult {
    switch_to(pt.base);
    Ok(())
}
