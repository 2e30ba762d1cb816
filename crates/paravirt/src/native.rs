//! Native behaviour: what the hardware does with no hypervisor in the way.
//!
//! These are the bodies of the [`Hypervisor`](crate::Hypervisor) trait's
//! default methods (Linux's `native_*` functions). A backend that needs the
//! native version of one operation next to its own calls them directly.

use core::sync::atomic::{AtomicBool, Ordering};

use arch_i386::paging::present;
use arch_i386::{cr, io, serial, Level, PagingMode, Pfn, PteFlags};

use crate::{EntryRef, ExitStatus, HvResult, PagetableSetup};

/// Writes one entry. A PAE entry is two 32-bit halves on i386; when it
/// becomes present the high half (address bits, NX) must land first, so the
/// MMU never sees a present entry with a stale high half (Linux's
/// `native_set_pte` for PAE). When it stops being present the low half
/// (with the present bit) goes first for the same reason.
pub fn write_entry(at: &EntryRef, val: u64) {
    // SAFETY: EntryRef's invariant: `ptr` is an aligned, writable entry of
    // the mode's width (native pagetables are never read-only).
    unsafe {
        match at.mode {
            PagingMode::TwoLevel => (at.ptr as *mut u32).write_volatile(val as u32),
            PagingMode::Pae => {
                let p = at.ptr as *mut u32;
                if present(val) {
                    p.add(1).write_volatile((val >> 32) as u32);
                    p.write_volatile(val as u32);
                } else {
                    p.write_volatile(val as u32);
                    p.add(1).write_volatile((val >> 32) as u32);
                }
            }
        }
    }
}

/// Fills `count` consecutive ptes starting at `first` with frames `pfn`,
/// `pfn + 1`, ... This is the bulk path of the direct map, so it is one
/// tight loop per format instead of a call per entry, unrolled by 32: per
/// entry one store (two for PAE's 64-bit entries) and one `lea` for the
/// next frame's value.
pub fn write_pte_range(first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) {
    let val = pfn.addr().0 | flags.bits();
    let lo = val as u32;
    let hi = (val >> 32) as u32;
    // Frames below 4 GiB (the direct map's): the high half never changes.
    let no_carry = lo as u64 + count as u64 * 4096 <= 1 << 32;
    match first.mode {
        PagingMode::TwoLevel => {
            // SAFETY: the caller keeps `first.index + count` within the
            // page, so every write stays inside one writable pte page.
            unsafe { fill32(first.ptr as *mut u32, count, lo) }
        }
        // SAFETY: as above. The pte page is not live yet or the entries
        // are not present, so the order of the two halves does not matter.
        PagingMode::Pae if no_carry => unsafe { fill64(first.ptr as *mut u32, count, lo, hi) },
        PagingMode::Pae => {
            let p = first.ptr as *mut u64;
            for i in 0..count as usize {
                // SAFETY: as above.
                unsafe { p.add(i).write_volatile(val + ((i as u64) << 12)) };
            }
        }
    }
}

/// # Safety
/// `p[0..count]` must be writable.
#[inline(always)]
unsafe fn fill32(p: *mut u32, count: u32, mut lo: u32) {
    let mut i = 0usize;
    let n = count as usize;
    // SAFETY: indices stay below `count` (the caller's contract).
    unsafe {
        while i + 32 <= n {
            for k in 0..32 {
                p.add(i + k).write_volatile(lo.wrapping_add(k as u32 * 4096));
            }
            lo = lo.wrapping_add(32 * 4096);
            i += 32;
        }
        while i < n {
            p.add(i).write_volatile(lo);
            lo = lo.wrapping_add(4096);
            i += 1;
        }
    }
}

/// PAE entries as two 32-bit halves, the high half constant.
///
/// # Safety
/// `p[0..2 * count]` must be writable.
#[inline(always)]
unsafe fn fill64(p: *mut u32, count: u32, mut lo: u32, hi: u32) {
    let mut i = 0usize;
    let n = count as usize;
    // SAFETY: indices stay below `2 * count` (the caller's contract).
    unsafe {
        while i + 32 <= n {
            for k in 0..32 {
                p.add(2 * (i + k)).write_volatile(lo.wrapping_add(k as u32 * 4096));
                p.add(2 * (i + k) + 1).write_volatile(hi);
            }
            lo = lo.wrapping_add(32 * 4096);
            i += 32;
        }
        while i < n {
            p.add(2 * i).write_volatile(lo);
            p.add(2 * i + 1).write_volatile(hi);
            lo = lo.wrapping_add(4096);
            i += 1;
        }
    }
}

/// The native `pagetable_setup_start`: turn on the paging features the
/// build will use, and on a 2-level boot adopt the boot pagetable's kernel
/// half so its pte pages are kept (shared), as the seed patch requires.
pub fn pagetable_setup_start(pt: &mut PagetableSetup) -> HvResult {
    let mut cr4 = cr::read_cr4();
    if pt.large_pages && pt.mode == PagingMode::TwoLevel {
        cr4 |= cr::CR4_PSE;
    }
    if pt.global_pages {
        cr4 |= cr::CR4_PGE;
    }
    cr::write_cr4(cr4);
    if pt.nx {
        cr::write_efer(cr::read_efer() | cr::EFER_NXE);
    }
    if pt.mode == PagingMode::TwoLevel && cr4 & cr::CR4_PAE == 0 {
        // We run on the head code's 2-level pagetable: copy its kernel-half
        // pgd entries, so pagetable_init keeps every pte page it has.
        let boot = Pfn(cr::read_cr3() >> 12);
        copy_kernel_pgd(pt, boot);
    }
    // PAE from a 2-level boot: nothing to keep, the formats differ (the
    // seed's "clobbering" case). `base` is empty and gets built from scratch.
    Ok(())
}

/// Copies the present kernel-half pgd entries of `from` into `pt.base`.
/// Used when adopting a pagetable someone else built in the same format.
pub fn copy_kernel_pgd(pt: &mut PagetableSetup, from: Pfn) {
    let mode = pt.mode;
    let first = mode.pgd_index(arch_i386::layout::PAGE_OFFSET);
    let src = pt.mem.page(from);
    let dst = pt.mem.page(pt.base);
    for i in first..mode.ptrs_per_pgd() {
        let off = (i * mode.entry_size()) as usize;
        // SAFETY: both pages are reachable frames (PhysMem's contract) and
        // `off` is inside them.
        let (dst_entry, src_entry) = unsafe { (dst.add(off), src.add(off)) };
        let e = EntryRef {
            mode,
            level: Level::Pgd,
            table: pt.base,
            index: i,
            ptr: dst_entry,
            vaddr: arch_i386::VirtAddr(i << mode.pgd_shift()),
            root: pt.base,
        };
        let old = EntryRef { ptr: src_entry, table: from, ..e };
        let v = old.read();
        if present(v) && !present(e.read()) {
            write_entry(&e, v);
        }
    }
}

/// The native `pagetable_setup_done`: make `base` the live pagetable.
pub fn pagetable_setup_done(pt: &mut PagetableSetup) -> HvResult {
    let cr3 = pt.base.addr().0 as u32;
    if pt.mode == PagingMode::Pae {
        // The seed: "Add low memory identity-mappings - SMP needs it when
        // starting up on an AP from real-mode." It is also what lets the
        // switch below run: with paging off for a moment, we execute at our
        // physical address, and the first fetch after paging is back on
        // must find that address mapped.
        let kernel = crate::native::pgd_entry(pt, pt.mode.pgd_index(arch_i386::layout::PAGE_OFFSET));
        let zero = crate::native::pgd_entry(pt, 0);
        write_entry(&zero, kernel.read());
        if cr::read_cr4() & cr::CR4_PAE == 0 {
            // SAFETY: `base` is a complete PAE pagetable mapping the kernel
            // at PAGE_OFFSET and, through pgd[0], at its physical address.
            unsafe { arch_i386::trampoline::enable_pae(cr3) };
            return Ok(());
        }
    }
    cr::write_cr3(cr3);
    Ok(())
}

/// The `index`th entry of `pt.base`.
pub fn pgd_entry(pt: &PagetableSetup, index: u32) -> EntryRef {
    let mode = pt.mode;
    EntryRef {
        mode,
        level: Level::Pgd,
        table: pt.base,
        index,
        // SAFETY: index < ptrs_per_pgd, inside the root page.
        ptr: unsafe { pt.mem.page(pt.base).add((index * mode.entry_size()) as usize) },
        vaddr: arch_i386::VirtAddr(((index as u64) << mode.pgd_shift()) as u32),
        root: pt.base,
    }
}

pub fn flush_tlb_single(va: arch_i386::VirtAddr) {
    cr::invlpg(va.0);
}

/// Drops non-global TLB entries: reload CR3.
pub fn flush_tlb_user() {
    cr::write_cr3(cr::read_cr3());
}

/// Drops every TLB entry, global ones too: toggle CR4.PGE.
pub fn flush_tlb_kernel() {
    let cr4 = cr::read_cr4();
    if cr4 & cr::CR4_PGE != 0 {
        cr::write_cr4(cr4 & !cr::CR4_PGE);
        cr::write_cr4(cr4);
    } else {
        flush_tlb_user();
    }
}

static SERIAL_READY: AtomicBool = AtomicBool::new(false);

/// The native console: COM1.
pub fn console_write(bytes: &[u8]) {
    if !SERIAL_READY.swap(true, Ordering::Relaxed) {
        serial::init(serial::COM1);
    }
    serial::write(serial::COM1, bytes);
}

/// The native power-off for test runs: QEMU's isa-debug-exit, then halt (a
/// machine without that device just stops).
pub fn shutdown(status: ExitStatus) -> ! {
    io::outb(io::DEBUG_EXIT_PORT, status.debug_exit_code());
    io::halt_forever()
}
