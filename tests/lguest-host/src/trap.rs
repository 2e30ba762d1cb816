//! Traps into the host: the guest's exits go to the library's handling
//! ([`lguest_host::exits`]); the host's timer interrupting the guest is
//! acknowledged and shown to the watchdog; a #DB the host's own watch
//! caused (`watch.rs`) just ends the run, for the run loop to look again;
//! the same timer ending the host's own wait is acknowledged
//! ([`host_interrupt`]); a fault in ring 0 is the host's own and ends the
//! run ([`host_fault`]).

use arch_i386::cr::Cr2;
use arch_i386::trap::{name, TrapFrame};
use arch_i386::{debug, pic};
use lguest_host::console::{say, GUEST_RESULT};
use lguest_host::fatal::{fatal, Result};
use lguest_host::layout::TIMER_VECTOR;
use lguest_host::vm::Vm;

use crate::outcome;
use crate::timer::HostTimer;
use lguest_host::watchdog::Watchdog;

/// Handles the trap that just ended the guest's run.
pub fn handle(vm: &mut Vm, timer: &mut HostTimer, watchdog: &mut Watchdog) -> Result {
    if vm.regs.vector == TIMER_VECTOR {
        pic::eoi(0);
        timer.fired();
        vm.stats.exit(TIMER_VECTOR);
        return watchdog.check(vm);
    }
    if vm.regs.vector == 1 {
        let dr6 = debug::dr6();
        // SAFETY: ring 0; DR6 is status the CPU never clears itself.
        unsafe { debug::clear_dr6() };
        if lguest_host::interrupts::host_debug_trap(vm, dr6) {
            return Ok(());
        }
    }
    let cr2 = if vm.regs.vector == 14 { Cr2::read().0 } else { 0 };
    lguest_host::exits::handle(vm, cr2)
}

/// The host's timer, taken in ring 0: it ended the host's `sti; hlt`
/// while the guest was halted (the only time the host has interrupts
/// enabled). Acknowledged; the run loop does the rest.
#[no_mangle]
extern "C" fn host_interrupt() {
    pic::eoi(0);
}

/// A fault in the host itself: report it and end the run.
#[no_mangle]
extern "C" fn host_fault(f: &TrapFrame) -> ! {
    let cr2 = if f.vector == 14 { Cr2::read().0 } else { 0 };
    let why = fatal!(
        "host fault {} (vector {}) at eip {:#010x}, error {:#x}, cr2 {:#010x}",
        name(f.vector),
        f.vector,
        f.eip,
        f.error,
        cr2
    );
    say!("{}", why);
    say!("  {} cs={:#x} eflags={:#x}", f, f.cs, f.eflags);
    let guest_result = GUEST_RESULT.load(core::sync::atomic::Ordering::Relaxed);
    outcome::host_failure(&why, guest_result)
}
