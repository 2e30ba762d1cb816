//! The host's hardware watch on the guest's interrupt flag
//! (`lguest_host::interrupts::Watch`): debug register 0 on `irq_enabled`
//! while an irq waits for the guest to enable interrupts, nothing
//! otherwise. (Stepping through the noirq window is the trap flag in the
//! guest's eflags, which the library sets.) The #DB it causes comes back
//! as an exit at vector 1 (`trap.rs`).

use arch_i386::debug;
use lguest_host::interrupts::Watch;
use lguest_host::vm::Vm;

pub struct FlagWatch {
    armed: bool,
}

impl FlagWatch {
    pub const fn new() -> FlagWatch {
        FlagWatch { armed: false }
    }

    /// Arms or disarms the watchpoint for the guest's next run (only when
    /// that changes: most entries need neither).
    pub fn apply(&mut self, vm: &Vm) {
        let want = vm.irqs.watch == Watch::FlagWrites;
        if want == self.armed {
            return;
        }
        // SAFETY: the host runs in ring 0. The watched address is the
        // guest's kernel view of `irq_enabled`: the host reaches guest
        // memory through its identity map, never there, so only the
        // guest's writes trap, and its #DB exits are handled (trap.rs).
        unsafe {
            if want {
                debug::watch_writes(vm.irqs.flag_va)
            } else {
                debug::unwatch()
            }
        }
        self.armed = want;
    }
}
