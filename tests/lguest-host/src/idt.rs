//! The guest's interrupt table, as LOAD_IDT_ENTRY builds it.
//!
//! The guest cannot load an IDT: the real one is the Switcher's, and every
//! trap comes to the host first. The guest hands over its gates one by one
//! and the host remembers the handler of each; when a fault is the
//! guest's to handle, the host delivers it there ([`crate::deliver`]).
//! As in 2.6.24, the host keeps NMI, double fault, vector 15 and the
//! hypercall vector for itself and ignores attempts to set them, accepts
//! only interrupt and trap gates, and runs every handler on the guest's
//! kernel code segment.

use crate::fatal::{fatal, Result};
use crate::layout::HYPERCALL_VECTOR;

/// Gates the guest may load: exceptions and (unused here) its 32 IRQs.
const GATES: u32 = 64;

#[derive(Clone, Copy, Debug)]
pub struct Gate {
    pub offset: u32,
    /// An interrupt gate (0xE) disables the guest's interrupts on entry.
    pub interrupt: bool,
}

pub struct GuestIdt {
    gates: [Option<Gate>; 32],
    pub loaded: u32,
}

impl Default for GuestIdt {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestIdt {
    pub const fn new() -> GuestIdt {
        GuestIdt { gates: [None; 32], loaded: 0 }
    }

    pub fn get(&self, vector: u32) -> Option<Gate> {
        self.gates.get(vector as usize).copied().flatten()
    }

    /// LOAD_IDT_ENTRY(vector, low word, high word).
    pub fn load(&mut self, vector: u32, lo: u32, hi: u32) -> Result {
        if vector >= GATES {
            return Err(fatal!("LOAD_IDT_ENTRY for vector {}: this guest has {} gates", vector, GATES));
        }
        if matches!(vector, 2 | 8 | 15) || vector == HYPERCALL_VECTOR || vector >= 32 {
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
