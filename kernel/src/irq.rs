//! Interrupts: the kernel's entry code, the handler table, and the
//! interrupt-flag guard everything else uses.
//!
//! ```text
//!  IDT vector 32..255 ──┐                 (native, PVH, lguest)
//!  Xen event callback ──┤ stub: push vector, pushad
//!                       ▼
//!  irq_entry(frame) ── hv.irq().dispatch(vector) ── for each line that fired:
//!                       │                              handler(line) or FAILURE
//!                       ▼
//!  popad; jmp [irq_return]  = hv.cpu().iret(): iret / Xen's iret hypercall /
//!                             lguest's iret with its no-interrupt window
//! ```
//!
//! The kernel never executes `cli`, `sti` or `iret` itself outside the
//! backend's ops: that is the point of the interface. Handlers run with
//! interrupts disabled (an interrupt gate, Xen's masking on callback
//! entry, lguest's gate emulation), so the table and the state they touch
//! need no lock against themselves; the main code disables interrupts
//! around what it shares with them ([`IrqGuard`]).

use core::sync::atomic::{AtomicU32, Ordering};

use arch_i386::trap::TrapFrame;
use paravirt::irq::{Entries, UPCALL};
use paravirt::{Hypervisor, Irq, IrqFlags, Line, Services};
use spin::Mutex;

use crate::{fail, kprintln};

/// The first vector that is not an exception.
pub const FIRST_EXTERNAL_VECTOR: u32 = 32;
/// The pseudo-vector of Xen's failsafe callback.
const FAILSAFE: u32 = UPCALL + 1;
/// Every external vector's stub is this long (`push imm32` twice, a
/// `jmp rel32`, padding), so stub `v` is at `irq_stubs + 16 * (v - 32)`.
const STUB_SIZE: u32 = 16;

// The stubs push a zero error code and the vector as 32-bit immediates
// (`push imm8` would sign-extend vectors >= 128), so every stub has the
// same size and the table is arithmetic.
core::arch::global_asm!(
    ".pushsection .text.irq_stubs, \"ax\"",
    ".balign 16",
    ".global irq_stubs",
    "irq_stubs:",
    ".set vec, 32",
    ".rept 224",
    "    .balign 16",
    "    .byte 0x68",
    "    .long 0",
    "    .byte 0x68",
    "    .long vec",
    "    jmp irq_common",
    "    .set vec, vec + 1",
    ".endr",
    ".global irq_upcall",
    "irq_upcall:",
    "    push 0",
    "    push {upcall}",
    "    jmp irq_common",
    ".global irq_failsafe",
    "irq_failsafe:",
    "    push 0",
    "    push {failsafe}",
    "    jmp irq_common",
    "irq_common:",
    "    pushad",
    "    cld",
    "    push esp",
    "    call irq_entry",
    "    add esp, 4",
    "    popad",
    "    add esp, 8",
    "    jmp dword ptr [{ret}]",
    ".popsection",
    upcall = const UPCALL,
    failsafe = const FAILSAFE,
    ret = sym IRQ_RETURN,
);

extern "C" {
    fn irq_stubs();
    fn irq_upcall();
    fn irq_failsafe();
}

/// Where the entry code returns through: the backend's `iret`.
static IRQ_RETURN: AtomicU32 = AtomicU32::new(0);

/// The entry stub of external vector `v`.
pub fn stub(v: u32) -> u32 {
    assert!((FIRST_EXTERNAL_VECTOR..256).contains(&v));
    irq_stubs as *const () as u32 + STUB_SIZE * (v - FIRST_EXTERNAL_VECTOR)
}

pub type Handler = fn();

const MAX_HANDLERS: usize = 4;

/// Registered handlers, by line. Touched by `request_irq` (interrupts
/// off) and by the entry code (interrupts off).
static HANDLERS: Mutex<[Option<(Line, Handler)>; MAX_HANDLERS]> = Mutex::new([None; MAX_HANDLERS]);

/// Interrupts taken, all lines.
pub static TAKEN: AtomicU32 = AtomicU32::new(0);

fn hv() -> &'static dyn Hypervisor {
    crate::console::backend().expect("interrupts before a backend was chosen")
}

/// Sets up interrupt delivery through `hv`: the return path, then the
/// backend's controller (every source masked). Interrupts stay disabled.
pub fn init(hv: &'static dyn Hypervisor, services: &dyn Services) -> &'static str {
    IRQ_RETURN.store(hv.cpu().iret(), Ordering::SeqCst);
    hv.irq().irq_disable();
    let entries =
        Entries { upcall: irq_upcall as *const () as u32, failsafe: irq_failsafe as *const () as u32 };
    match hv.irq().init(&entries, services) {
        Ok(name) => name,
        Err(e) => fail!("interrupt controller set-up through {}: {}", hv.name(), e),
    }
}

/// Makes `h` the handler of `line`.
pub fn request_irq(line: Line, h: Handler) {
    let _off = IrqGuard::new();
    let mut t = HANDLERS.lock();
    let same = t.iter().position(|s| matches!(s, Some((l, _)) if *l == line));
    match same.or_else(|| t.iter().position(Option::is_none)) {
        Some(i) => t[i] = Some((line, h)),
        None => fail!("request_irq({}): the handler table is full", line),
    }
}

pub fn free_irq(line: Line) {
    let _off = IrqGuard::new();
    for s in HANDLERS.lock().iter_mut() {
        if matches!(s, Some((l, _)) if *l == line) {
            *s = None;
        }
    }
}

#[no_mangle]
extern "C" fn irq_entry(f: &mut TrapFrame) {
    if f.vector == FAILSAFE {
        fail!("Xen's failsafe callback: a segment register of the frame at eip {:#010x} did not load", f.eip);
    }
    TAKEN.fetch_add(1, Ordering::Relaxed);
    let vector = f.vector;
    hv().irq().dispatch(vector, &mut |line| {
        let h = HANDLERS.lock().iter().flatten().find(|(l, _)| *l == line).map(|(_, h)| *h);
        match h {
            Some(h) => h(),
            None => {
                kprintln!("interrupt: {} at vector {:#x} (eip {:#010x}) has no handler", line, vector, f.eip);
                fail!("an interrupt arrived for {} and nobody registered for it", line)
            }
        }
    });
}

/// Interrupts disabled for the guard's life, restored (not blindly
/// enabled) at its end, so guards nest: Linux's
/// `local_irq_save`/`local_irq_restore`.
pub struct IrqGuard {
    irq: &'static dyn Irq,
    saved: IrqFlags,
}

impl IrqGuard {
    pub fn new() -> IrqGuard {
        let irq = hv().irq();
        let saved = irq.save_fl();
        irq.irq_disable();
        IrqGuard { irq, saved }
    }
}

impl Drop for IrqGuard {
    fn drop(&mut self) {
        self.irq.restore_fl(self.saved);
    }
}
