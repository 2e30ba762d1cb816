//! Every exit from the guest but the host's own timer tick, by vector.
//!
//! - 0x1f: a hypercall.
//! - #PF: first the host's business: if the guest's own tables allow the
//!   access, it is a shadow miss; fill it and retry. Otherwise the fault
//!   is the guest's: cr2 goes to `lguest_data.cr2` and the fault to its
//!   handler.
//! - #GP: port I/O is skipped ([`crate::emulate`]); anything else (a
//!   privileged instruction in ring 1, an `int` the guest may not use) is
//!   the guest's.
//! - NMI and #DF cannot be the guest's; every other exception is delivered.

use arch_i386::trap::{name, HAS_ERROR_CODE};

use crate::abi::off;
use crate::deliver::deliver;
use crate::fatal::{fatal, Result};
use crate::layout::HYPERCALL_VECTOR;
use crate::vm::Vm;
use crate::{emulate, hypercall};

/// Handles the exit the guest's registers describe (`cr2` is the fault
/// address, for a #PF); an error stops the guest.
pub fn handle(vm: &mut Vm, cr2: u32) -> Result {
    let (vector, error, eip) = (vm.regs.vector, vm.regs.error, vm.regs.eip);
    if let Some(n) = vm.stats.exits.get_mut(vector as usize) {
        *n += 1;
    }
    match vector {
        HYPERCALL_VECTOR => hypercall::trap(vm),
        14 => page_fault(vm, cr2),
        13 if emulate::skip_io(vm)? => Ok(()),
        2 | 8 => Err(fatal!("{} while the guest ran (eip {:#010x})", name(vector), eip)),
        v if v < 32 => {
            let has_error = (HAS_ERROR_CODE >> v) & 1 != 0;
            deliver(vm, v, has_error.then_some(error))
        }
        v => Err(fatal!("unexpected vector {} from the guest", v)),
    }
}

fn page_fault(vm: &mut Vm, cr2: u32) -> Result {
    let (error, eip) = (vm.regs.error, vm.regs.eip);
    if vm.shadows.fault(cr2, error)? {
        return vm.filled(eip, cr2, error);
    }
    if let Some(d) = vm.data {
        vm.mem.write_u32(d + off::CR2, cr2, "lguest_data")?;
    }
    deliver(vm, 14, Some(error)).map_err(|e| fatal!("{} (cr2 {:#010x})", e, cr2))
}
