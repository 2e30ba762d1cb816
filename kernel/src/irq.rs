//! Interrupts: the kernel's entry code, the handler table, and the
//! interrupt-flag guard everything else uses.
//!
//! ```text
//!  entry.rs (vector 32..255, Xen's upcall)
//!    interrupt(frame) ── hv.irq().dispatch(vector) ── for each line that fired:
//!                                                       handler(line) or FAILURE
//!  back through entry.rs: jmp hv.cpu().iret(): iret / Xen's iret hypercall /
//!                          lguest's iret with its no-interrupt window
//! ```
//!
//! The kernel never executes `cli`, `sti` or `iret` itself outside the
//! backend's ops: that is the point of the interface. Handlers run with
//! interrupts disabled (an interrupt gate, Xen's masking on callback
//! entry, lguest's gate emulation), so the table and the state they touch
//! need no lock against themselves; the main code disables interrupts
//! around what it shares with them ([`IrqGuard`]).

use core::sync::atomic::{AtomicU32, Ordering};

use arch_i386::trap::EntryFrame;
use paravirt::irq::Entries;
use paravirt::{Hypervisor, Irq, IrqFlags, Line, Services};
use spin::Mutex;

use crate::{entry, fail, kprintln};

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
    entry::set_iret(hv.cpu().iret());
    hv.irq().irq_disable();
    let entries = Entries { upcall: entry::upcall(), failsafe: entry::failsafe() };
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

/// An external interrupt (or Xen's event upcall), from `entry.rs`.
pub fn interrupt(f: &mut EntryFrame) {
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
