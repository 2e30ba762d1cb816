//! Every exit from the guest, by vector.
//!
//! - 0x1f: a hypercall.
//! - #PF: first the host's business: if the guest's own tables allow the
//!   access, it is a shadow miss; fill it and retry. Otherwise the fault
//!   is the guest's: cr2 goes to `lguest_data.cr2` and the fault to its
//!   handler.
//! - #GP: port I/O is skipped ([`crate::emulate`]); anything else (a
//!   privileged instruction in ring 1, an `int` the guest may not use) is
//!   the guest's.
//! - IRQ 0: the host's watchdog tick.
//! - NMI and #DF cannot be the guest's; every other exception is delivered.
//!
//! A fault in ring 0 is the host's own and ends the run ([`host_fault`]).

use arch_i386::cr;
use arch_i386::trap::{TrapFrame, HAS_ERROR_CODE};

use crate::abi::off;
use crate::console::{say, GUEST_RESULT};
use crate::deliver::deliver;
use crate::fatal::{fatal, Result};
use crate::switcher::{HYPERCALL_VECTOR, TIMER_VECTOR};
use crate::vm::Vm;
use crate::{emulate, hypercall, outcome, watchdog};

pub use arch_i386::trap::name;

/// Handles the trap in the frame; an error stops the guest.
pub fn handle(vm: &mut Vm) -> Result {
    let (vector, error, eip) = (vm.regs.vector, vm.regs.error, vm.regs.eip);
    if let Some(n) = vm.stats.exits.get_mut(vector as usize) {
        *n += 1;
    }
    match vector {
        HYPERCALL_VECTOR => hypercall::trap(vm),
        TIMER_VECTOR => watchdog::tick(vm),
        14 => page_fault(vm),
        13 if emulate::skip_io(vm)? => Ok(()),
        2 | 8 => Err(fatal!("{} while the guest ran (eip {:#010x})", name(vector), eip)),
        v if v < 32 => {
            let has_error = (HAS_ERROR_CODE >> v) & 1 != 0;
            deliver(vm, v, has_error.then_some(error))
        }
        v => Err(fatal!("unexpected vector {} from the guest", v)),
    }
}

fn page_fault(vm: &mut Vm) -> Result {
    let (cr2, error, eip) = (cr::Cr2::read().0, vm.regs.error, vm.regs.eip);
    if vm.shadows.fault(cr2, error)? {
        return vm.filled(eip, cr2, error);
    }
    if let Some(d) = vm.data {
        vm.mem.write_u32(d + off::CR2, cr2, "lguest_data")?;
    }
    deliver(vm, 14, Some(error)).map_err(|e| fatal!("{} (cr2 {:#010x})", e, cr2))
}

/// A fault in the host itself: report it and end the run.
#[no_mangle]
extern "C" fn host_fault(f: &TrapFrame) -> ! {
    let cr2 = if f.vector == 14 { cr::Cr2::read().0 } else { 0 };
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
