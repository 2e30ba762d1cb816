//! Making hypercalls, counting them, and (for tests) failing one on
//! purpose.
//!
//! A PV kernel calls into Xen through the hypercall page: Xen fills it at
//! load time (the HYPERCALL_PAGE ELF note says where) with one 32-byte stub
//! per hypercall, `mov eax, nr; int 0x82; ret`. Arguments go in ebx, ecx,
//! edx, esi, edi; the result comes back in eax. Those registers cannot all
//! be named in Rust inline asm on i386 (LLVM keeps ebx and esi), so one
//! small assembly routine does the register shuffle. A PVH kernel gets the
//! same page filled with `vmcall`/`vmmcall` stubs through an MSR.

use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use paravirt::Counters;

use crate::abi::{nr, MmuUpdate, MmuextOp, MulticallEntry, DOMID_SELF};
use crate::batch::MULTICALL_MAX;
use crate::transport::{Hypercalls, SubCall, SubResult};

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
    // The kernel's exit path jumps here with an iret frame on the stack and
    // every register restored: count the iret hypercall in memory (flags
    // are free to change: the hypercall restores them from the frame), then
    // enter its stub, which saves eax itself.
    ".pushsection .text.xen_iret_counted, \"ax\"",
    ".global xen_iret_counted",
    "xen_iret_counted:",
    "    lock inc dword ptr [{irets}]",
    "    jmp hypercall_page + {iret_offset}",
    ".popsection",
    irets = sym IRETS,
    iret_offset = const nr::IRET * 32,
);

/// `iret` hypercalls made by the exit path (every return from an
/// exception, an event or a system call): they are made from assembly, so
/// they are counted there.
static IRETS: AtomicU32 = AtomicU32::new(0);

/// Where the kernel's exit path jumps: the iret hypercall, counted.
pub fn iret_entry() -> u32 {
    #[cfg(target_arch = "x86")]
    return xen_iret_counted as *const () as u32;
    #[cfg(not(target_arch = "x86"))]
    0
}

#[cfg(target_arch = "x86")]
extern "C" {
    fn xen_iret_counted();
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

/// A hypercall through the page, uncounted. Pointer arguments must point
/// at live, correctly laid-out structures.
pub fn raw(nr: u32, args: [u32; 5]) -> i32 {
    #[cfg(target_arch = "x86")]
    // SAFETY: the stub for `nr` is in the hypercall page (its filling is
    // checked before a backend using it is chosen); callers pass pointers
    // to live structures of the layout the call expects.
    unsafe {
        xen_hypercall(nr, args[0], args[1], args[2], args[3], args[4])
    }
    #[cfg(not(target_arch = "x86"))]
    {
        let _ = (nr, args);
        panic!("Xen hypercall {nr} on the host")
    }
}

/// The real transport: hypercalls through the page, counted, with the
/// `xen_fail_hypercall=N` sabotage.
pub struct HypercallPage {
    hypercalls: AtomicU32,
    mmu_update_entries: AtomicU32,
    mmuext_entries: AtomicU32,
    multicall_entries: AtomicU32,
    /// `xen_fail_hypercall=N`: the Nth pagetable hypercall (mmu_update,
    /// mmuext_op, update_va_mapping, multicall, counted from 1) is sent
    /// with its last entry (a multicall's first sub-call's last entry)
    /// naming a machine frame that does not exist, so Xen itself refuses
    /// it. 0: off.
    fail_at: AtomicU32,
    pagetable_calls: AtomicU32,
    /// The first console_io failure, if any (there is nowhere to print it
    /// when it happens).
    console_error: AtomicI32,
}

impl Default for HypercallPage {
    fn default() -> Self {
        Self::new()
    }
}

impl HypercallPage {
    pub const fn new() -> HypercallPage {
        HypercallPage {
            hypercalls: AtomicU32::new(0),
            mmu_update_entries: AtomicU32::new(0),
            mmuext_entries: AtomicU32::new(0),
            multicall_entries: AtomicU32::new(0),
            fail_at: AtomicU32::new(0),
            pagetable_calls: AtomicU32::new(0),
            console_error: AtomicI32::new(0),
        }
    }

    /// A hypercall, counted.
    pub fn call(&self, nr: u32, args: [u32; 5]) -> i32 {
        self.hypercalls.fetch_add(1, Ordering::Relaxed);
        raw(nr, args)
    }

    pub fn fail_at(&self, n: u32) {
        self.fail_at.store(n, Ordering::Relaxed);
    }

    pub fn counters(&self) -> Counters {
        Counters {
            hypercalls: self.hypercalls.load(Ordering::Relaxed) + IRETS.load(Ordering::Relaxed),
            mmu_update_entries: self.mmu_update_entries.load(Ordering::Relaxed),
            mmuext_entries: self.mmuext_entries.load(Ordering::Relaxed),
            multicall_entries: self.multicall_entries.load(Ordering::Relaxed),
            ..Counters::default()
        }
    }

    /// Console output (`console_io`), left out of the counters, which would
    /// otherwise depend on how much the kernel logs. Its result is kept:
    /// see `console_error`.
    pub fn console_write(&self, bytes: &[u8]) -> Result<(), i32> {
        use crate::abi::CONSOLEIO_WRITE;
        let rc = raw(nr::CONSOLE_IO, [CONSOLEIO_WRITE, bytes.len() as u32, bytes.as_ptr() as u32, 0, 0]);
        if rc < 0 {
            let _ = self.console_error.compare_exchange(0, rc, Ordering::Relaxed, Ordering::Relaxed);
            return Err(rc);
        }
        Ok(())
    }

    /// The first console_io error, if there was one.
    pub fn console_error(&self) -> Option<i32> {
        Some(self.console_error.load(Ordering::Relaxed)).filter(|&rc| rc != 0)
    }
}

impl Hypercalls for HypercallPage {
    fn mmu_update(&self, reqs: &mut [MmuUpdate], done: &mut u32) -> i32 {
        self.mmu_update_entries.fetch_add(reqs.len() as u32, Ordering::Relaxed);
        let args = [reqs.as_ptr() as u32, reqs.len() as u32, done as *mut u32 as u32, DOMID_SELF, 0];
        self.call(nr::MMU_UPDATE, args)
    }

    fn mmuext_op(&self, ops: &mut [MmuextOp], done: &mut u32) -> i32 {
        self.mmuext_entries.fetch_add(ops.len() as u32, Ordering::Relaxed);
        let args = [ops.as_ptr() as u32, ops.len() as u32, done as *mut u32 as u32, DOMID_SELF, 0];
        self.call(nr::MMUEXT_OP, args)
    }

    fn update_va_mapping(&self, va: u32, val: u64, flags: u32) -> i32 {
        self.call(nr::UPDATE_VA_MAPPING, [va, val as u32, (val >> 32) as u32, flags, 0])
    }

    fn multicall(&self, calls: &mut [SubCall], results: &mut [SubResult]) -> i32 {
        assert!(calls.len() <= MULTICALL_MAX && results.len() == calls.len());
        let mut mc = [MulticallEntry::default(); MULTICALL_MAX];
        for ((e, c), r) in mc.iter_mut().zip(calls.iter_mut()).zip(results.iter_mut()) {
            // A 32-bit guest's pointers are its addresses: Xen reads the
            // arrays and writes `done` through them while it runs the call.
            let done = &raw mut r.done as u32;
            *r = SubResult::default();
            *e = match c {
                SubCall::MmuUpdate(reqs) => {
                    self.mmu_update_entries.fetch_add(reqs.len() as u32, Ordering::Relaxed);
                    let args = [reqs.as_mut_ptr() as u32, reqs.len() as u32, done, DOMID_SELF, 0, 0];
                    MulticallEntry { op: nr::MMU_UPDATE, result: 0, args }
                }
                SubCall::Mmuext(ops) => {
                    self.mmuext_entries.fetch_add(ops.len() as u32, Ordering::Relaxed);
                    let args = [ops.as_mut_ptr() as u32, ops.len() as u32, done, DOMID_SELF, 0, 0];
                    MulticallEntry { op: nr::MMUEXT_OP, result: 0, args }
                }
                SubCall::UpdateVaMapping { va, val, flags } => MulticallEntry {
                    op: nr::UPDATE_VA_MAPPING,
                    result: 0,
                    args: [*va, *val as u32, (*val >> 32) as u32, *flags, 0, 0],
                },
            };
        }
        let n = calls.len();
        self.multicall_entries.fetch_add(n as u32, Ordering::Relaxed);
        let rc = self.call(nr::MULTICALL, [mc.as_ptr() as u32, n as u32, 0, 0, 0]);
        for (r, e) in results.iter_mut().zip(&mc[..n]) {
            r.rc = e.result as i32;
        }
        rc
    }

    fn sabotage_following(&self) -> bool {
        self.fail_at.store(self.pagetable_calls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        true
    }

    fn sabotage_next(&self) -> bool {
        let n = self.pagetable_calls.fetch_add(1, Ordering::Relaxed) + 1;
        n == self.fail_at.load(Ordering::Relaxed)
    }
}
