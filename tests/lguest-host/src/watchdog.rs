//! A watchdog, so a guest that spins without purpose ends as a FAILURE
//! instead of a timeout.
//!
//! A guest shows it is alive by calling the host or by taking interrupts
//! (`Vm::progress`): a kernel that waits in a loop for its tick, with
//! interrupts enabled, is not stuck, and neither is one that halts (the
//! host does not look while it sleeps; a halt nothing can end is stopped
//! by `interrupts::check_halted`). The host's timer interrupts a running
//! guest at least every 54.9 ms (the binary's `timer.rs`), and each time
//! the watchdog looks: no sign of life for [`LIMIT_SECONDS`] stops the
//! guest.

use crate::clock::NS;
use crate::fatal::{fatal, Result};
use crate::vm::Vm;

/// Seconds without a hypercall or an interrupt before the guest is
/// declared stuck.
pub const LIMIT_SECONDS: u64 = 10;

pub struct Watchdog {
    /// `Vm::progress` when it last changed, and the host clock then.
    progress: u32,
    since: u64,
}

impl Default for Watchdog {
    fn default() -> Self {
        Self::new()
    }
}

impl Watchdog {
    pub const fn new() -> Watchdog {
        Watchdog { progress: 0, since: 0 }
    }

    pub fn check(&mut self, vm: &Vm) -> Result {
        let (now, progress) = (vm.clock.now(), vm.progress());
        if progress != self.progress {
            self.progress = progress;
            self.since = now;
            return Ok(());
        }
        if now - self.since > LIMIT_SECONDS * NS {
            return Err(fatal!(
                "the guest made no hypercall and took no interrupt for {} s (eip {:#010x})",
                LIMIT_SECONDS,
                vm.regs.eip
            ));
        }
        Ok(())
    }
}
