//! The guest's interrupt table, as LOAD_IDT_ENTRY builds it.
//!
//! The guest cannot load an IDT: the real one is the Switcher's, and every
//! trap comes to the host first. The guest hands over its gates one by one
//! and the host remembers the handler of each; when a fault is the
//! guest's to handle, or an irq is due, the host delivers it there
//! ([`crate::deliver`], [`crate::interrupts`]).
//! As in 2.6.24, the host keeps NMI, double fault, vector 15 and the
//! hypercall vector for itself and ignores attempts to set them, accepts
//! only interrupt and trap gates, and runs every handler on the guest's
//! kernel code segment. Gates above the irqs' (2.6.24 stores them, and uses
//! only the system call's, for traps straight into the guest, which this
//! host does not do) are accepted and not kept.

use crate::abi::{FIRST_EXTERNAL_VECTOR, LGUEST_IRQS};
use crate::fatal::{fatal, Result};
use crate::layout::HYPERCALL_VECTOR;

/// Gates the host uses: the exceptions and the 32 irqs'.
pub const GATES: u32 = FIRST_EXTERNAL_VECTOR + LGUEST_IRQS;

#[derive(Clone, Copy, Debug)]
pub struct Gate {
    pub offset: u32,
    /// An interrupt gate (0xE) disables the guest's interrupts on entry.
    pub interrupt: bool,
}

pub struct GuestIdt {
    gates: [Option<Gate>; GATES as usize],
    pub loaded: u32,
}

impl Default for GuestIdt {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestIdt {
    pub const fn new() -> GuestIdt {
        GuestIdt { gates: [None; GATES as usize], loaded: 0 }
    }

    pub fn get(&self, vector: u32) -> Option<Gate> {
        self.gates.get(vector as usize).copied().flatten()
    }

    /// LOAD_IDT_ENTRY(vector, low word, high word).
    pub fn load(&mut self, vector: u32, lo: u32, hi: u32) -> Result {
        if vector >= 256 {
            return Err(fatal!("LOAD_IDT_ENTRY for vector {}: there are 256", vector));
        }
        if matches!(vector, 2 | 8 | 15) || vector == HYPERCALL_VECTOR || vector >= GATES {
            return Ok(());
        }
        self.loaded += 1;
        if hi & (1 << 15) == 0 {
            self.gates[vector as usize] = None;
            return Ok(());
        }
        let kind = (hi >> 8) & 0xF;
        if kind != 0xE && kind != 0xF {
            return Err(fatal!(
                "LOAD_IDT_ENTRY for vector {}: gate type {:#x} (only interrupt and trap gates)",
                vector,
                kind
            ));
        }
        self.gates[vector as usize] =
            Some(Gate { offset: (lo & 0xFFFF) | (hi & 0xFFFF_0000), interrupt: kind == 0xE });
        Ok(())
    }
}
