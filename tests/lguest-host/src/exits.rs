//! Every exit from the guest but the host's own timer tick, by vector.
//!
//! - 0x1f: a hypercall.
//! - #PF: first the host's business: if the guest's own tables allow the
//!   access, it is a shadow miss; fill it and retry. Otherwise the fault
//!   is the guest's: cr2 goes to `lguest_data.cr2` and the fault to its
//!   handler, with the error code its own tables would have caused
//!   ([`guest_error`]).
//! - #GP: port I/O is skipped ([`crate::emulate`]); anything else (a
//!   privileged instruction in ring 1, an `int` the guest may not use) is
//!   the guest's.
//! - NMI and #DF cannot be the guest's; every other exception is delivered.
//! - 0x80: a system call from user mode, reflected ([`crate::syscall`]).

use arch_i386::trap::{name, HAS_ERROR_CODE};

use crate::abi::{off, SYSCALL_VECTOR};
use crate::deliver::deliver;
use crate::fatal::{fatal, Result};
use crate::gpt::{self, Walk};
use crate::layout::{HYPERCALL_VECTOR, SWITCHER_PGD_INDEX};
use crate::vm::Vm;
use crate::{emulate, hypercall, syscall};

/// Handles the exit the guest's registers describe (`cr2` is the fault
/// address, for a #PF); an error stops the guest.
pub fn handle(vm: &mut Vm, cr2: u32) -> Result {
    let (vector, error, eip) = (vm.regs.vector, vm.regs.error, vm.regs.eip);
    vm.stats.exit(vector);
    match vector {
        HYPERCALL_VECTOR => hypercall::trap(vm),
        SYSCALL_VECTOR => syscall::system_call(vm),
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
    let error = guest_error(vm, cr2, error)?;
    deliver(vm, 14, Some(error)).map_err(|e| fatal!("{} (cr2 {:#010x})", e, cr2))
}

/// A page-fault error code as the guest's own tables would have caused it.
/// The CPU's P bit says whether the *shadow* mapped the page, and a shadow
/// fills lazily: a write to a page the guest maps read-only and the shadow
/// does not map yet comes in as "not present", where the guest's MMU
/// would have said "present, protection". Copy-on-write is exactly that
/// case, and a kernel that tells demand paging from copy-on-write by this
/// bit (ours does; 2.6.24's Linux looked at the pte instead) would map a
/// fresh page over the shared one. So P is the guest's walk's, for every
/// address the guest's tables decide (not the Switcher's).
fn guest_error(vm: &Vm, va: u32, error: u32) -> Result<u32> {
    if va >> 22 >= SWITCHER_PGD_INDEX {
        return Ok(error);
    }
    let present = matches!(gpt::walk(&vm.mem, vm.shadows.gpgdir(), va)?, Walk::Mapped { .. });
    Ok((error & !PF_PRESENT) | if present { PF_PRESENT } else { 0 })
}

/// The page-fault error code's P bit: a protection fault on a present page.
const PF_PRESENT: u32 = 1;
