//! Port I/O from the guest: skipped, as lguest did.
//!
//! The guest runs with IOPL 0 and the TSS has no I/O bitmap, so `in` and
//! `out` in ring 1 raise #GP. An lguest guest has no devices behind ports;
//! the host steps over the instruction, and an `in` reads all ones, the
//! traditional "nothing there". Only the one- and two-byte forms (optional
//! operand-size prefix, `in`/`out` with an immediate port or dx) are
//! recognised; anything else is a real #GP for the guest. Only the
//! guest's kernel is helped so: user mode's `in` and `out` are its #GP,
//! as in 2.6.24 (`emulate_insn` looks only at ring 1).

use crate::fatal::Result;
use crate::gpt;
use crate::vm::Vm;

/// Reads the instruction byte at guest virtual `va`, if mapped.
fn fetch(vm: &Vm, va: u32) -> Result<Option<u8>> {
    match gpt::translate(&vm.mem, vm.shadows.gpgdir(), va, false)? {
        Some(gpa) => Ok(Some(vm.mem.read_u8(gpa, "the guest's code")?)),
        None => Ok(None),
    }
}

/// Skips the port instruction at the guest's eip. False if it is none.
pub fn skip_io(vm: &mut Vm) -> Result<bool> {
    if vm.regs.cs & 3 != 1 {
        return Ok(false);
    }
    let eip = vm.regs.eip;
    let mut len = 0;
    let mut wide = 4;
    let Some(mut op) = fetch(vm, eip)? else { return Ok(false) };
    if op == 0x66 {
        wide = 2;
        len = 1;
        let Some(next) = fetch(vm, eip.wrapping_add(1))? else { return Ok(false) };
        op = next;
    }
    let (is_in, insn) = match op {
        0xE4 | 0xE5 => (true, 2),
        0xE6 | 0xE7 => (false, 2),
        0xEC | 0xED => (true, 1),
        0xEE | 0xEF => (false, 1),
        _ => return Ok(false),
    };
    if is_in {
        let mask: u32 = match (op & 1, wide) {
            (0, _) => 0xFF,
            (_, 2) => 0xFFFF,
            _ => 0xFFFF_FFFF,
        };
        vm.regs.eax |= mask;
    }
    vm.regs.eip = eip.wrapping_add(len + insn);
    vm.stats.io_skipped += 1;
    Ok(true)
}
