//! What the host counts: the price of running the guest, printed at the
//! end of every run.

use crate::abi::{self, NR_HCALLS};
use crate::console::say;

#[derive(Default)]
pub struct Stats {
    /// Hypercalls by number: trapped (`int $0x1f`) and from the async ring.
    pub sync: [u32; NR_HCALLS],
    pub drained: [u32; NR_HCALLS],
    /// Every return from the guest to the host.
    pub exits: u32,
    pub page_faults: u32,
    /// Faults delivered to the guest's own handlers, by vector.
    pub delivered: [u32; 32],
    pub io_skipped: u32,
    pub timer_ticks: u32,
}

impl Stats {
    pub fn print(&self) {
        let sync: u32 = self.sync.iter().sum();
        let drained: u32 = self.drained.iter().sum();
        say!("exits to the host: {} ({} hypercall traps, {} page faults, {} timer ticks)", self.exits, sync, self.page_faults, self.timer_ticks);
        say!("hypercalls: {} trapped + {} from the async ring", sync, drained);
        for nr in 0..NR_HCALLS {
            let (s, d) = (self.sync[nr], self.drained[nr]);
            if s + d > 0 {
                say!("  hypercall {:2} {:<14} {:6} trapped {:6} async", nr, abi::name(nr as u32), s, d);
            }
        }
        say!("async ring: {} entries drained", drained);
        let delivered: u32 = self.delivered.iter().sum();
        say!("faults delivered to the guest: {}; in/out instructions skipped: {}", delivered, self.io_skipped);
    }
}
