//! Interrupt ops (Linux's `pv_irq_ops`) and the interrupt controller.
//!
//! The kernel's interrupt flag is the thing a paravirtualized kernel most
//! often touches: every spinlock that guards data an interrupt handler
//! uses turns it off and on. Natively it is EFLAGS.IF (`cli`, `sti`,
//! `pushf`). A PV guest runs in ring 1, where `cli` would fault, so the
//! flag becomes a byte in memory the hypervisor reads before delivering:
//! Xen's `vcpu_info.evtchn_upcall_mask`, lguest's `lguest_data.irq_enabled`.
//! Turning it off is then one store, with no hypercall; turning it on is a
//! store plus, on Xen, a check for an event that arrived meanwhile (which
//! Xen could not deliver and will not re-announce).
//!
//! The controller half says how interrupts reach the kernel and how they
//! are acknowledged: the 8259 PIC and the local APIC natively, event
//! channels on Xen (a callback, not a vector), lguest's host injecting
//! vectors 32 and up. The kernel owns the entry code; the backend turns
//! "vector v arrived" into the lines that fired ([`Irq::dispatch`]), and
//! the kernel calls the handler registered for each.

use core::fmt;

use arch_i386::irq as hw;

use crate::{native, HvResult, Services};

/// The saved interrupt state, in EFLAGS format (IF, bit 9, set: enabled),
/// whatever the platform keeps underneath: Linux's `save_fl` convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqFlags(u32);

impl IrqFlags {
    pub const ENABLED: IrqFlags = IrqFlags(hw::IF);
    pub const DISABLED: IrqFlags = IrqFlags(0);

    pub fn from_enabled(on: bool) -> IrqFlags {
        if on {
            IrqFlags::ENABLED
        } else {
            IrqFlags::DISABLED
        }
    }

    pub fn enabled(self) -> bool {
        self.0 & hw::IF != 0
    }
}

/// A source of interrupts, as the kernel names it. Backends map their own
/// sources (a PIC line, an APIC vector, an event channel, an lguest irq)
/// to these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// The clock event device ([`crate::Time`]).
    Timer,
    /// Anything else, by the backend's own number (PIC line, event
    /// channel port, lguest irq, or the vector itself): nothing in this
    /// kernel registers for these yet, so one arriving is reported.
    Other(u32),
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Timer => write!(f, "timer"),
            Line::Other(n) => write!(f, "source {}", n),
        }
    }
}

/// The pseudo-vector the kernel passes to [`Irq::dispatch`] from its
/// event-callback entry (Xen PV delivers events through a callback, not
/// through the IDT).
pub const UPCALL: u32 = 0x100;

/// The kernel's interrupt entry points, for backends that register them
/// with the hypervisor rather than in the IDT.
#[derive(Clone, Copy, Debug)]
pub struct Entries {
    /// Calls `dispatch(UPCALL)` with an interrupt frame on the stack, and
    /// returns through the platform's `iret` ([`crate::Cpu::iret`]).
    pub upcall: u32,
    /// Xen's failsafe callback: Xen could not load the segment registers
    /// of a frame we returned to. Reports and ends the run.
    pub failsafe: u32,
}

pub trait Irq: Sync {
    // ---- The interrupt flag ----------------------------------------------

    fn save_fl(&self) -> IrqFlags {
        IrqFlags::from_enabled(hw::flags() & hw::IF != 0)
    }

    fn restore_fl(&self, f: IrqFlags) {
        if f.enabled() {
            self.irq_enable()
        } else {
            self.irq_disable()
        }
    }

    fn irq_disable(&self) {
        hw::disable()
    }

    fn irq_enable(&self) {
        hw::enable()
    }

    /// Enables interrupts and waits for one, atomically: an interrupt
    /// arriving between the two cannot be missed. Returns after the
    /// interrupt was handled, with interrupts enabled.
    fn safe_halt(&self) {
        hw::safe_halt()
    }

    /// Waits with interrupts as they are: with them disabled, for good.
    fn halt(&self) {
        hw::halt()
    }

    // ---- The controller ---------------------------------------------------

    /// Sets up interrupt delivery, every source masked; called once, with
    /// interrupts disabled, before [`crate::Time::init`]. Returns the
    /// controller's name for the boot log.
    fn init(&self, _entries: &Entries, _services: &dyn Services) -> HvResult<&'static str> {
        native::pc::PC.irq_init()
    }

    /// Called by the kernel's entry code for `vector` (or [`UPCALL`]) with
    /// interrupts disabled: finds the lines that fired, calls `handle` for
    /// each, and acknowledges them to the controller.
    fn dispatch(&self, vector: u32, handle: &mut dyn FnMut(Line)) {
        native::pc::PC.dispatch(vector, handle)
    }
}
