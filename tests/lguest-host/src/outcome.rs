//! How a run ends: the host's counters, the audit, and QEMU's exit status.
//!
//! The guest cannot reach the exit device (its port writes are skipped),
//! so the host decides the status, from what it saw:
//! - exactly one `Test result: SUCCESS` line from the guest, a clean
//!   power-off and no violation: SUCCESS (QEMU exits with 33);
//! - a guest `Test result: FAILURE...` line, a violation, a guest the host
//!   had to stop, or no or several result lines: FAILURE (35);
//! - a guest `Test result: ERROR...` line: ERROR (37).
//!
//! The most severe wins. By the project's convention a boot prints exactly
//! one `Test result:` line: the host prints its own only when the guest
//! printed none.

use arch_i386::io;
use paravirt::ExitStatus;

use lguest_host::audit;
use lguest_host::console::{self, say};
use lguest_host::fatal::{fatal, Fatal};
use lguest_host::vm::{End, Vm};

pub fn finish(vm: &mut Vm) -> ! {
    vm.console.break_line();
    let mut stopped: Option<Fatal> = None;
    match vm.end.take() {
        Some(End::PowerOff) => say!("the guest powered off (CRASH \"Power down\")"),
        Some(End::Crashed(msg)) => {
            say!("the guest crashed: {}", msg);
            stopped = Some(fatal!("the guest crashed: {}", msg));
        }
        Some(End::Killed(why)) => {
            say!("stopped the guest: {}", why);
            stopped = Some(why);
        }
        None => stopped = Some(fatal!("the run ended for no reason")),
    }
    vm.stats.print();
    vm.irqs.print(&vm.clockevent);
    let s = vm.shadows.stats;
    let pool = vm.shadows.pool();
    say!(
        "shadow page faults: {} filled from the guest's tables, {} delivered to the guest",
        s.filled,
        vm.stats.delivered[14]
    );
    say!(
        "shadow tables: {} SET_PTE entries applied, {} pgd entries dropped by SET_PMD, {} full and {} user flushes, {} pgdir switches, {} evictions; {} of {} pool pages in use (peak {}), {} pool resets",
        s.set_pte_applied,
        s.pmd_dropped,
        s.flushes_all,
        s.flushes_user,
        s.switches,
        s.evictions,
        pool.in_use,
        pool.total,
        pool.peak,
        s.pool_resets
    );
    let violations = audit::run(&vm.shadows);

    let c = &vm.console;
    let mut status = match (c.results, c.verdict) {
        (1, Some(v)) => v,
        _ => ExitStatus::Failure,
    };
    if violations > 0 || stopped.is_some() {
        status = status.max(ExitStatus::Failure);
    }
    match c.results {
        0 => {
            let why = match stopped {
                Some(why) => why,
                None if violations > 0 => {
                    fatal!("{} shadow entries not backed by the guest's pagetables", violations)
                }
                None => fatal!("the guest powered off without a result line"),
            };
            console::host_result(ExitStatus::Failure, &why);
        }
        1 => {}
        n => say!("the guest printed {} result lines", n),
    }
    exit(status)
}

/// The host itself failed (a fault in ring 0): no counters, just the line.
pub fn host_failure(why: &Fatal, guest_result: bool) -> ! {
    if !guest_result {
        console::host_result(ExitStatus::Failure, why);
    }
    exit(ExitStatus::Failure)
}

/// Ends QEMU through isa-debug-exit: it exits with (v << 1) | 1.
pub fn exit(status: ExitStatus) -> ! {
    say!("exit: {} (isa-debug-exit {:#x})", status.word(), status.debug_exit_code());
    // SAFETY: the host runs under QEMU with isa-debug-exit at 0xF4 (the
    // project boots it no other way); elsewhere nothing answers there.
    unsafe { io::debug_exit(status.debug_exit_code()) };
    io::halt_forever()
}
