//! The kernel's entry and exit: every exception, interrupt and system call
//! comes in through one stub per vector and one common path, and goes out
//! through the backend's `iret`.
//!
//! ```text
//!  vector v (IDT gate, or Xen's trap table) ─ stub v: [push 0], push v ─┐
//!  Xen's event callback ─ irq_upcall: push 0, push UPCALL ───────────────┤
//!                                                                         ▼
//!  entry_common: push ds, es; pushad; load the kernel's data segment
//!                call entry_dispatch(&mut EntryFrame)
//!                   0-31    trap::exception   (faults: resolved, a process
//!                                              killed, or the kernel stops)
//!                   0x80    syscall::dispatch
//!                   others  irq::interrupt    (hv.irq().dispatch -> handlers)
//!                   then, for a frame from user mode: sched::return_to_user
//!                   (preemption, a kill)
//!  entry_return: popad; pop es, ds; drop vector and error
//!                jmp [IRQ_RETURN] = hv.cpu().iret()
//! ```
//!
//! A new process starts at `entry_return` with a frame built for it: the
//! same exit as everything else.
//!
//! The data segments are saved and reloaded because user mode has its own
//! (flat too, but at ring 3): the kernel must not run on a selector the
//! user chose.

use core::sync::atomic::{AtomicU32, Ordering};

use arch_i386::trap::EntryFrame;
use paravirt::irq::UPCALL;

/// The pseudo-vector of Xen's failsafe callback.
pub const FAILSAFE: u32 = UPCALL + 1;
/// Every stub is this long, so stub `v` is at `entry_stubs + 16 * v`.
const STUB_SIZE: u32 = 16;

/// Where the exit path returns through: the backend's `iret`.
static IRQ_RETURN: AtomicU32 = AtomicU32::new(0);
/// The kernel's data segment selector, loaded on every entry.
static KERNEL_DS: AtomicU32 = AtomicU32::new(0);
/// The lowest address the running kernel stack may reach (0: unknown):
/// an entry whose frame lies within [`STACK_MARGIN`] of it reports the
/// overflow rather than let the stack run on into whatever lies below
/// (Linux's CONFIG_DEBUG_STACKOVERFLOW check in do_IRQ).
static STACK_LIMIT: AtomicU32 = AtomicU32::new(0);
const STACK_MARGIN: u32 = 1024;

/// The running kernel stack's lowest address (a context switch sets it).
pub fn set_stack_limit(bottom: u32) {
    STACK_LIMIT.store(bottom, Ordering::Relaxed);
}

/// The boot stack's lowest address (the idle task's stack).
pub fn boot_stack_bottom() -> u32 {
    extern "C" {
        static boot_stack: u8;
    }
    // Only the symbol's address is taken (no read: no unsafe needed).
    &raw const boot_stack as u32
}

// The stubs push a zero where the CPU pushes no error code (vectors not in
// arch_i386::trap::HAS_ERROR_CODE; every vector from 32 on), then the
// vector as a 32-bit immediate (`push imm8` would sign-extend vectors from
// 128 on), so every stub fits 16 bytes and the table is arithmetic.
core::arch::global_asm!(
    ".pushsection .text.entry, \"ax\"",
    ".balign 16",
    ".global entry_stubs",
    "entry_stubs:",
    ".set vec, 0",
    ".rept 256",
    "    .balign 16",
    "    .if (vec >= 32) || (((0x60227d00 >> (vec & 31)) & 1) == 0)",
    "    .byte 0x68",
    "    .long 0",
    "    .endif",
    "    .byte 0x68",
    "    .long vec",
    "    jmp entry_common",
    "    .set vec, vec + 1",
    ".endr",
    ".global irq_upcall",
    "irq_upcall:",
    "    push 0",
    "    push {upcall}",
    "    jmp entry_common",
    ".global irq_failsafe",
    "irq_failsafe:",
    "    push 0",
    "    push {failsafe}",
    "    jmp entry_common",
    "entry_common:",
    // push ds; push es, as 32-bit pushes (LLVM's Intel syntax assembles
    // the mnemonics as 16-bit ones).
    "    .byte 0x1e",
    "    .byte 0x06",
    "    pushad",
    "    cld",
    "    mov eax, dword ptr [{kds}]",
    "    mov ds, ax",
    "    mov es, ax",
    "    push esp",
    "    call entry_dispatch",
    "    add esp, 4",
    ".global entry_return",
    "entry_return:",
    "    popad",
    "    .byte 0x07", // pop es
    "    .byte 0x1f", // pop ds
    "    add esp, 8",
    "    jmp dword ptr [{ret}]",
    ".popsection",
    upcall = const UPCALL,
    failsafe = const FAILSAFE,
    kds = sym KERNEL_DS,
    ret = sym IRQ_RETURN,
);

const _: () = assert!(arch_i386::trap::HAS_ERROR_CODE == 0x6022_7d00);

extern "C" {
    fn entry_stubs();
    fn irq_upcall();
    fn irq_failsafe();
    fn entry_return();
}

/// The entry stub of vector `v`.
pub fn stub(v: u32) -> u32 {
    assert!(v < 256);
    entry_stubs as *const () as u32 + STUB_SIZE * v
}

pub fn upcall() -> u32 {
    irq_upcall as *const () as u32
}

pub fn failsafe() -> u32 {
    irq_failsafe as *const () as u32
}

/// Where a new process's first return to user mode starts: its kernel
/// stack holds a frame for it there.
pub fn return_path() -> u32 {
    entry_return as *const () as u32
}

/// The kernel's data segment, reloaded on every entry: before anything
/// can trap.
pub fn set_kernel_ds(ds: u16) {
    KERNEL_DS.store(ds as u32, Ordering::SeqCst);
}

/// The exit path: the backend's `iret` (`Cpu::iret`), once it is chosen;
/// the native one before.
pub fn set_iret(iret: u32) {
    IRQ_RETURN.store(iret, Ordering::SeqCst);
}

#[no_mangle]
extern "C" fn entry_dispatch(f: &mut EntryFrame) {
    let limit = STACK_LIMIT.load(Ordering::Relaxed);
    let here = f as *const EntryFrame as u32;
    if limit != 0 && here < limit + STACK_MARGIN {
        // Stop using this stack before reporting: the report needs some.
        STACK_LIMIT.store(0, Ordering::Relaxed);
        crate::fail!(
            "kernel stack overflow: an entry (vector {}) at esp {:#010x}, the stack ends at {:#010x}",
            f.vector,
            here,
            limit
        );
    }
    match f.vector {
        0..=31 => crate::trap::exception(f),
        v if v == user_abi::SYSCALL_VECTOR as u32 => crate::syscall::dispatch(f),
        FAILSAFE => crate::fail!(
            "Xen's failsafe callback: a segment register of the frame at eip {:#010x} did not load",
            f.eip
        ),
        _ => crate::irq::interrupt(f),
    }
    if f.from_user() {
        crate::sched::return_to_user(f);
    }
}
