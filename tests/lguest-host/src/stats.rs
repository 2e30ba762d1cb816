//! What the host counts: the price of running the guest, printed at the
//! end of every run.

use crate::abi::{self, NR_HCALLS, SYSCALL_VECTOR};
use crate::console::say;
use crate::fatal::msg;
use crate::layout::{HYPERCALL_VECTOR, TIMER_VECTOR, VECTORS};
use arch_i386::trap::name;

pub struct Stats {
    /// Hypercalls by number: trapped (`int $0x1f`) and from the async ring.
    pub sync: [u32; NR_HCALLS],
    pub drained: [u32; NR_HCALLS],
    /// Every return from the guest to the host, by vector (the Switcher's
    /// stubs), and the system calls (vector 0x80, the one stub above them).
    pub exits: [u32; VECTORS],
    pub syscalls: u32,
    /// Faults delivered to the guest's own handlers, by vector (irqs are
    /// counted by `interrupts`).
    pub delivered: [u32; 32],
    pub io_skipped: u32,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub const fn new() -> Stats {
        Stats {
            sync: [0; NR_HCALLS],
            drained: [0; NR_HCALLS],
            exits: [0; VECTORS],
            syscalls: 0,
            delivered: [0; 32],
            io_skipped: 0,
        }
    }

    /// Counts an exit at `vector`.
    pub fn exit(&mut self, vector: u32) {
        if vector == SYSCALL_VECTOR {
            self.syscalls += 1;
        } else if let Some(n) = self.exits.get_mut(vector as usize) {
            *n += 1;
        }
    }

    pub fn print(&self) {
        let sync: u32 = self.sync.iter().sum();
        let drained: u32 = self.drained.iter().sum();
        let exits: u32 = self.exits.iter().sum::<u32>() + self.syscalls;
        let mut parts = msg!("");
        for (v, &n) in self.exits.iter().enumerate().filter(|(_, &n)| n > 0) {
            let what = match v as u32 {
                HYPERCALL_VECTOR => "hypercall",
                TIMER_VECTOR => "timer",
                v => name(v),
            };
            let sep = if parts.as_str().is_empty() { "" } else { ", " };
            let _ = core::fmt::Write::write_fmt(&mut parts, format_args!("{}{} {}", sep, what, n));
        }
        if self.syscalls > 0 {
            let sep = if parts.as_str().is_empty() { "" } else { ", " };
            let _ =
                core::fmt::Write::write_fmt(&mut parts, format_args!("{}system call {}", sep, self.syscalls));
        }
        say!("exits to the host: {} ({})", exits, parts);
        say!("hypercalls: {} trapped + {} from the async ring", sync, drained);
        for nr in 0..NR_HCALLS {
            let (s, d) = (self.sync[nr], self.drained[nr]);
            if s + d > 0 {
                say!("  hypercall {:2} {:<14} {:6} trapped {:6} async", nr, abi::name(nr as u32), s, d);
            }
        }
        say!("async ring: {} entries drained", drained);
        let delivered: u32 = self.delivered.iter().sum();
        say!(
            "faults delivered to the guest: {}; in/out instructions skipped: {}",
            delivered,
            self.io_skipped
        );
    }
}
