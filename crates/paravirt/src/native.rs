//! Native behaviour: what the hardware does with no hypervisor in the way.
//!
//! These are the bodies of the group traits' default methods (Linux's
//! `native_*` functions), and the native groups themselves, which override
//! nothing. A backend that needs the native version of one operation next
//! to its own calls these functions directly.

pub mod pc;

use core::sync::atomic::{AtomicBool, Ordering};

use arch_i386::cr::{Cr3, Cr4, Cr4Flags, Efer, EferFlags};
use arch_i386::paging::present;
use arch_i386::serial::COM1;
use arch_i386::{io, Level, PagingMode, Pfn, PteFlags, VirtAddr};

use crate::{Cpu, EntryRef, ExitStatus, HvResult, Irq, Mmu, PagetableBuild, PagingPolicy, Time};

/// The native groups: every method is the trait's default.
pub struct NativePaging;
pub struct NativeMmu;
pub struct NativeCpu;
pub struct NativeIrq;
pub struct NativeTime;

impl PagingPolicy for NativePaging {}
impl Mmu for NativeMmu {}

/// `mmu` as the native MMU ops' own type, if that is what it is: the
/// chosen backend's concrete type, so that code generic over `Mmu` can be
/// run monomorphized for it (every hook a direct, inlinable call).
pub fn as_native(mmu: &dyn Mmu) -> Option<&NativeMmu> {
    (mmu as &dyn core::any::Any).downcast_ref()
}
impl Cpu for NativeCpu {}
impl Irq for NativeIrq {}
impl Time for NativeTime {}

/// Writes one entry. A PAE entry is two 32-bit halves on i386; when it
/// becomes present the high half (address bits, NX) must land first, so the
/// MMU never sees a present entry with a stale high half (Linux's
/// `native_set_pte` for PAE). When it stops being present the low half
/// (with the present bit) goes first for the same reason.
pub fn write_entry(at: &EntryRef, val: u64) {
    // SAFETY: EntryRef's invariant: `ptr` is an aligned entry of the mode's
    // width in a pagetable page. Natively (and in every page the kernel has
    // not handed to a hypervisor) it is writable; a hypervisor's read-only
    // page faults, which is a report, not a stray write.
    unsafe {
        match at.mode() {
            PagingMode::TwoLevel => (at.ptr() as *mut u32).write_volatile(val as u32),
            PagingMode::Pae => {
                let p = at.ptr() as *mut u32;
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
    assert!(first.index() + count <= first.mode().entries_per_page(), "pte run leaves its page");
    match first.mode() {
        PagingMode::TwoLevel => {
            // SAFETY: `first.index + count` is within the page (asserted),
            // so every write stays inside one pte page, writable because
            // the bulk path fills pages the hypervisor has not seen.
            unsafe { fill32(first.ptr() as *mut u32, count, lo) }
        }
        // SAFETY: as above. The pte page is not live yet or the entries
        // are not present, so the order of the two halves does not matter.
        PagingMode::Pae if no_carry => unsafe { fill64(first.ptr() as *mut u32, count, lo, hi) },
        PagingMode::Pae => {
            let p = first.ptr() as *mut u64;
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
pub fn pagetable_setup_start(b: &mut PagetableBuild) -> HvResult {
    let mut cr4 = Cr4::read();
    if b.caps.large_pages && b.mode == PagingMode::TwoLevel {
        cr4 |= Cr4Flags::PSE;
    }
    if b.caps.global_pages {
        cr4 |= Cr4Flags::PGE;
    }
    // SAFETY: PSE and PGE are set only when CPUID reported them (`caps`
    // comes from the CPU's features); neither changes what existing
    // entries mean (none has PSE or G set yet).
    unsafe { Cr4::write(cr4) };
    if b.caps.nx {
        // SAFETY: NX exists (CPUID), so EFER does; no live entry has bit 63
        // set (we run on the 2-level boot pagetable, which has no NX bit).
        unsafe { Efer::write(Efer::read() | EferFlags::NXE) };
    }
    if b.mode == PagingMode::TwoLevel && !cr4.contains(Cr4Flags::PAE) {
        // We run on the head code's 2-level pagetable: copy its kernel-half
        // pgd entries, so pagetable_init keeps every pte page it has.
        let boot = Cr3::read().pfn();
        copy_kernel_pgd(b, boot);
    }
    // PAE from a 2-level boot: nothing to keep, the formats differ (the
    // seed's "clobbering" case). `root` is empty and gets built from scratch.
    Ok(())
}

/// Copies the present kernel-half pgd entries of `from` into `b.root`.
/// Used when adopting a pagetable someone else built in the same format.
pub fn copy_kernel_pgd(b: &mut PagetableBuild, from: Pfn) {
    let mode = b.mode;
    for i in mode.pgd_index(arch_i386::layout::PAGE_OFFSET)..mode.ptrs_per_pgd() {
        let old = root_entry(b, from, i);
        let new = root_entry(b, b.root, i);
        let v = old.read();
        if present(v) && !present(new.read()) {
            write_entry(&new, v);
        }
    }
}

/// The `index`th entry of the top-level page `root` (reachable through
/// `b.mem`), as a build write sees it.
pub fn root_entry(b: &PagetableBuild, root: Pfn, index: u32) -> EntryRef {
    assert!(index < b.mode.ptrs_per_pgd());
    b.entry(root, Level::Pgd, index, VirtAddr(0))
}

/// The native `pagetable_setup_done`: make `root` the live pagetable.
pub fn pagetable_setup_done(b: PagetableBuild) -> HvResult {
    let cr3 = b.root.addr();
    if b.mode == PagingMode::Pae {
        // The seed: "Add low memory identity-mappings - SMP needs it when
        // starting up on an AP from real-mode." It is also what lets the
        // switch below run: with paging off for a moment, we execute at our
        // physical address, and the first fetch after paging is back on
        // must find that address mapped.
        let kernel = root_entry(&b, b.root, b.mode.pgd_index(arch_i386::layout::PAGE_OFFSET));
        let zero = root_entry(&b, b.root, 0);
        write_entry(&zero, kernel.read());
        if !Cr4::read().contains(Cr4Flags::PAE) {
            // SAFETY: `root` is a complete PAE pagetable mapping the kernel
            // at PAGE_OFFSET and, through pgd[0], at its physical address.
            unsafe { arch_i386::trampoline::enable_pae(cr3.0 as u32) };
            return Ok(());
        }
    }
    // SAFETY: the build made `root` a complete pagetable of the current
    // format that maps the kernel where the old one did.
    unsafe { Cr3::write(cr3) };
    Ok(())
}

/// Drops non-global TLB entries: reload CR3.
pub fn flush_tlb_user() {
    // SAFETY: reloading the live CR3 changes no mapping.
    unsafe { Cr3::write(Cr3::read()) }
}

/// Drops every TLB entry, global ones too: toggle CR4.PGE.
pub fn flush_tlb_kernel() {
    let cr4 = Cr4::read();
    if cr4.contains(Cr4Flags::PGE) {
        // SAFETY: clearing and restoring PGE changes no mapping, only
        // flushes global TLB entries.
        unsafe {
            Cr4::write(cr4 - Cr4Flags::PGE);
            Cr4::write(cr4);
        }
    } else {
        flush_tlb_user();
    }
}

/// # Safety
/// `gates` must live forever and point at valid handlers.
pub unsafe fn load_idt(gates: &'static [u64]) {
    #[cfg(target_arch = "x86")]
    // SAFETY: forwarded to the caller.
    unsafe {
        arch_i386::desc::load_idt(&arch_i386::desc::TablePointer::of(gates));
    }
    #[cfg(not(target_arch = "x86"))]
    let _ = gates;
}

#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".pushsection .text.native_iret, \"ax\"",
    ".global native_iret",
    "native_iret:",
    "    iretd",
    ".popsection"
);

/// The address of a bare `iret`: the native interrupt return.
pub fn iret_address() -> u32 {
    #[cfg(target_arch = "x86")]
    {
        extern "C" {
            fn native_iret();
        }
        native_iret as *const () as u32
    }
    #[cfg(not(target_arch = "x86"))]
    0
}

static SERIAL_READY: AtomicBool = AtomicBool::new(false);

/// The native console: COM1.
pub fn console_write(bytes: &[u8]) {
    if !SERIAL_READY.swap(true, Ordering::Relaxed) {
        COM1.init();
    }
    COM1.write(bytes);
}

/// The native power-off for test runs: QEMU's isa-debug-exit, then halt (a
/// machine without that device just stops).
pub fn shutdown(status: ExitStatus) -> ! {
    // SAFETY: native runs are QEMU (isa-debug-exit at 0xF4) or a PC, where
    // nothing answers at port 0xF4.
    unsafe { io::debug_exit(status.debug_exit_code()) };
    io::halt_forever()
}
