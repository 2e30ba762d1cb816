//! System calls from the guest's user mode: `int $0x80` in ring 3,
//! reflected through the host.
//!
//! The real IDT is the Switcher's, so the guest's gate 0x80 is not where
//! the CPU looks. The Switcher's own gate 0x80 has DPL 3 (every other
//! vector but the hypercall's is DPL 0, so ring 3 reaching for them
//! raises #GP, which goes to the guest); it enters the host like any trap,
//! and the host delivers the call to the gate the guest loaded for
//! `syscall_vec`, as the CPU would have: from ring 3 onto the stack
//! SET_STACK named, ss and esp pushed, and for an interrupt gate the
//! guest's interrupts disabled ([`crate::deliver`]). The CPU's own check
//! is redone here: a gate whose DPL is below the caller's ring, or no gate,
//! is a #GP with the gate's selector as error code (0x80 * 8 + 2), at the
//! `int` instruction.
//!
//! # Why not 2.6.24's direct trap
//!
//! 2.6.24 wrote the guest's system-call gate into the real IDT while the
//! guest ran (and SET_STACK's stack into the TSS's ring-1 slot), so the CPU
//! went from ring 3 straight to the guest's handler in ring 1: no world
//! switch, 270 ns instead of 1750 ns a call by its own measure. Our
//! Switcher owns the real IDT and TSS and could do the same, but only for
//! a *trap* gate, as 2.6.24 did: an interrupt gate must clear the guest's
//! interrupt flag, which is `lguest_data.irq_enabled` and not something
//! the CPU writes, and the real eflags.IF it would clear instead would
//! stay clear in ring 1 (no `sti` there, and `iret` at CPL > IOPL leaves
//! IF alone), keeping the host's own timer out. The kernel's gate 0x80 is
//! an interrupt gate (`kernel/src/trap.rs`: it runs every entry with
//! interrupts off), which 2.6.24's `copy_traps` would have left at the
//! Switcher's default, DPL 0: every system call a #GP. So this host
//! reflects it, and says what that costs in its summary: one exit per
//! system call (the guest's pagetable switched out and back, the frame
//! pushed through a walk of the guest's tables).

use crate::abi::SYSCALL_VECTOR;
use crate::deliver::deliver;
use crate::fatal::Result;
use crate::vm::Vm;

/// `int imm8` is two bytes (0xCD, vector): a fault's eip is the
/// instruction's, a software interrupt's the one after it.
const INT_LEN: u32 = 2;
const GP: u32 = 13;
/// The error code of a fault on gate `v` of the IDT: its index, with the
/// IDT bit (2) set.
const fn gate_error(v: u32) -> u32 {
    (v << 3) | 2
}

/// The guest ran `int $syscall_vec`: the host's gate for it took it.
pub fn system_call(vm: &mut Vm) -> Result {
    let ring = vm.regs.cs & 3;
    match vm.idt.get(SYSCALL_VECTOR) {
        Some(gate) if gate.dpl >= ring => deliver(vm, SYSCALL_VECTOR, None),
        _ => {
            vm.regs.eip = vm.regs.eip.wrapping_sub(INT_LEN);
            deliver(vm, GP, Some(gate_error(SYSCALL_VECTOR)))
        }
    }
}
