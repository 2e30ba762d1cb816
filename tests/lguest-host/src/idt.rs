//! The guest's interrupt table, as LOAD_IDT_ENTRY builds it.
//!
//! The guest cannot load an IDT: the real one is the Switcher's, and every
//! trap comes to the host first. The guest hands over its gates one by one
//! and the host remembers the handler of each; when a fault is the
//! guest's to handle, an irq is due, or user mode makes a system call, the
//! host delivers it there ([`crate::deliver`], [`crate::interrupts`],
//! [`crate::exits`]).
//!
//! As in 2.6.24, the host keeps NMI, double fault, vector 15 and the
//! hypercall vector for itself and ignores attempts to set them, accepts
//! only interrupt and trap gates, and runs every handler on the guest's
//! kernel code segment. It keeps the exceptions' and the irqs' gates
//! (0-63) and, above them, only the system call's (0x80, 2.6.24's
//! `syscall_idt`): other vectors are accepted and not kept, since nothing
//! can raise them. A gate's privilege level is kept, as 2.6.24's
//! `set_trap` keeps it: it says which rings may reach it with `int`,
//! which for the system call is ring 3.

use crate::abi::{FIRST_EXTERNAL_VECTOR, LGUEST_IRQS, SYSCALL_VECTOR};
use crate::fatal::{fatal, Result};
use crate::layout::HYPERCALL_VECTOR;

/// Gates the host delivers faults and irqs through: the exceptions and
/// the 32 irqs'.
pub const GATES: u32 = FIRST_EXTERNAL_VECTOR + LGUEST_IRQS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    pub offset: u32,
    /// An interrupt gate (0xE) disables the guest's interrupts on entry.
    pub interrupt: bool,
    /// The gate's DPL: the outermost ring whose `int` may use it.
    pub dpl: u32,
}

pub struct GuestIdt {
    gates: [Option<Gate>; GATES as usize],
    syscall: Option<Gate>,
    pub loaded: u32,
}

impl Default for GuestIdt {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestIdt {
    pub const fn new() -> GuestIdt {
        GuestIdt { gates: [None; GATES as usize], syscall: None, loaded: 0 }
    }

    pub fn get(&self, vector: u32) -> Option<Gate> {
        if vector == SYSCALL_VECTOR {
            return self.syscall;
        }
        self.gates.get(vector as usize).copied().flatten()
    }

    fn slot(&mut self, vector: u32) -> Option<&mut Option<Gate>> {
        if vector == SYSCALL_VECTOR {
            return Some(&mut self.syscall);
        }
        self.gates.get_mut(vector as usize)
    }

    /// LOAD_IDT_ENTRY(vector, low word, high word).
    pub fn load(&mut self, vector: u32, lo: u32, hi: u32) -> Result {
        if vector >= 256 {
            return Err(fatal!("LOAD_IDT_ENTRY for vector {}: there are 256", vector));
        }
        if matches!(vector, 2 | 8 | 15) || vector == HYPERCALL_VECTOR {
            return Ok(());
        }
        let Some(slot) = self.slot(vector) else { return Ok(()) };
        let present = hi & (1 << 15) != 0;
        let kind = (hi >> 8) & 0xF;
        if present && kind != 0xE && kind != 0xF {
            return Err(fatal!(
                "LOAD_IDT_ENTRY for vector {}: gate type {:#x} (only interrupt and trap gates)",
                vector,
                kind
            ));
        }
        *slot = present.then_some(Gate {
            offset: (lo & 0xFFFF) | (hi & 0xFFFF_0000),
            interrupt: kind == 0xE,
            dpl: (hi >> 13) & 3,
        });
        self.loaded += 1;
        Ok(())
    }
}
