//! Making hypercalls, counting them, and (for tests) failing one on
//! purpose.
//!
//! A PV kernel calls into Xen through the hypercall page: Xen fills it at
//! load time (the HYPERCALL_PAGE ELF note says where) with one 32-byte stub
//! per hypercall, `mov eax, nr; int 0x82; ret`. Arguments go in ebx, ecx,
//! edx, esi, edi; the result comes back in eax. Those registers cannot all
//! be named in Rust inline asm on i386 (LLVM keeps ebx and esi), so one
//! small assembly routine does the register shuffle.

use core::sync::atomic::{AtomicU32, Ordering};

use paravirt::{Counters, HvError, HvResult};

#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".pushsection .text.xen_hypercall_page, \"ax\"",
    ".align 4096",
    ".global hypercall_page",
    "hypercall_page:",
    "    .skip 4096",
    ".popsection",
    // i32 xen_hypercall(u32 nr, u32 a1, u32 a2, u32 a3, u32 a4, u32 a5)
    ".pushsection .text.xen_hypercall, \"ax\"",
    ".global xen_hypercall",
    "xen_hypercall:",
    "    push ebp",
    "    push ebx",
    "    push esi",
    "    push edi",
    "    mov eax, [esp + 20]",
    "    mov ebx, [esp + 24]",
    "    mov ecx, [esp + 28]",
    "    mov edx, [esp + 32]",
    "    mov esi, [esp + 36]",
    "    mov edi, [esp + 40]",
    "    shl eax, 5",
    "    add eax, offset hypercall_page",
    "    call eax",
    "    pop edi",
    "    pop esi",
    "    pop ebx",
    "    pop ebp",
    "    ret",
    ".popsection",
);

#[cfg(target_arch = "x86")]
extern "C" {
    static hypercall_page: [u8; 4096];
    fn xen_hypercall(nr: u32, a1: u32, a2: u32, a3: u32, a4: u32, a5: u32) -> i32;
}

/// Has Xen filled the hypercall page? The first stub starts with
/// `mov eax, 0` (0xB8).
#[cfg(target_arch = "x86")]
pub fn page_filled() -> bool {
    // SAFETY: hypercall_page is a 4 KiB array in the kernel image.
    unsafe { core::ptr::read_volatile(&raw const hypercall_page as *const u8) == 0xB8 }
}

#[cfg(not(target_arch = "x86"))]
pub fn page_filled() -> bool {
    false
}

/// The hypercall page's (virtual) address.
pub fn page_address() -> u32 {
    #[cfg(target_arch = "x86")]
    return &raw const hypercall_page as u32;
    #[cfg(not(target_arch = "x86"))]
    0
}

static HYPERCALLS: AtomicU32 = AtomicU32::new(0);
static MMU_UPDATE_ENTRIES: AtomicU32 = AtomicU32::new(0);
static MMUEXT_ENTRIES: AtomicU32 = AtomicU32::new(0);
static MULTICALL_ENTRIES: AtomicU32 = AtomicU32::new(0);

/// A hypercall, counted, returning Xen's result.
pub fn call(nr: u32, args: [u32; 5]) -> i32 {
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    call_uncounted(nr, args)
}

/// A hypercall left out of the counters: console output, which would
/// otherwise make the counts depend on how much the kernel logs.
pub fn call_uncounted(nr: u32, args: [u32; 5]) -> i32 {
    #[cfg(target_arch = "x86")]
    // SAFETY: the stub for `nr` is in the hypercall page (checked at init);
    // pointer arguments point at live, correctly laid-out structures.
    unsafe {
        xen_hypercall(nr, args[0], args[1], args[2], args[3], args[4])
    }
    #[cfg(not(target_arch = "x86"))]
    {
        let _ = (nr, args);
        panic!("Xen hypercall on the host")
    }
}

pub(crate) fn count_entries(mmu: u32, mmuext: u32, multicall: u32) {
    MMU_UPDATE_ENTRIES.fetch_add(mmu, Ordering::Relaxed);
    MMUEXT_ENTRIES.fetch_add(mmuext, Ordering::Relaxed);
    MULTICALL_ENTRIES.fetch_add(multicall, Ordering::Relaxed);
}

pub fn counters() -> Counters {
    Counters {
        hypercalls: HYPERCALLS.load(Ordering::Relaxed),
        mmu_update_entries: MMU_UPDATE_ENTRIES.load(Ordering::Relaxed),
        mmuext_entries: MMUEXT_ENTRIES.load(Ordering::Relaxed),
        multicall_entries: MULTICALL_ENTRIES.load(Ordering::Relaxed),
        ..Counters::default()
    }
}

/// `xen_fail_hypercall=N`: the Nth pagetable hypercall (mmu_update,
/// mmuext_op, multicall, counted from 1) is sent with a machine frame that
/// does not exist, so Xen itself rejects it. 0: off.
static FAIL_AT: AtomicU32 = AtomicU32::new(0);
static PT_CALLS: AtomicU32 = AtomicU32::new(0);

pub fn fail_at(n: u32) {
    FAIL_AT.store(n, Ordering::Relaxed);
}

/// Counts a pagetable hypercall; true if this one is to be sabotaged.
pub(crate) fn sabotage_this_one() -> bool {
    let n = PT_CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    n == FAIL_AT.load(Ordering::Relaxed)
}

/// A machine frame no machine has (2^40 bytes up, beyond the physical
/// address width): Xen answers it with an error. (A smaller bogus frame
/// may be MMIO, which dom0 is allowed to map.)
pub(crate) const BOGUS_MFN: u32 = 0x0FFF_FFFF;

/// Turns a negative result into an error naming the operation.
pub fn check(op: &'static str, rc: i32, args: &[u64]) -> HvResult {
    if rc < 0 {
        Err(HvError::new(op, args, rc as i64))
    } else {
        Ok(())
    }
}

/// Console output (`console_io`), left out of the counters.
pub fn console_write(bytes: &[u8]) {
    use crate::abi::{nr, CONSOLEIO_WRITE};
    call_uncounted(nr::CONSOLE_IO, [CONSOLEIO_WRITE, bytes.len() as u32, bytes.as_ptr() as u32, 0, 0]);
}

/// Ends the run: QEMU's isa-debug-exit (we may use the port: PV asked for
/// IOPL 1, PVH runs in ring 0) stops the machine with our status; without
/// that device, power off through Xen.
pub fn exit(code: u8) -> ! {
    use crate::abi::{nr, SCHEDOP_SHUTDOWN, SCHEDOP_YIELD, SHUTDOWN_POWEROFF};
    arch_i386::io::outb(arch_i386::io::DEBUG_EXIT_PORT, code);
    let reason: u32 = SHUTDOWN_POWEROFF;
    call(nr::SCHED_OP, [SCHEDOP_SHUTDOWN, &raw const reason as u32, 0, 0, 0]);
    loop {
        call(nr::SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]);
    }
}
