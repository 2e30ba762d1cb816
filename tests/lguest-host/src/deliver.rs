//! Delivering a fault, an interrupt or a system call to the guest's own
//! handler, as the CPU would have.
//!
//! The guest's kernel runs in ring 1 and its handlers too, so delivering a
//! fault that happened in ring 1 (or an interrupt while it ran there) is a
//! same-privilege interrupt: push
//! eflags, cs, eip (and the error code) on the guest's current stack and
//! continue at the handler. From ring 3 (user mode: its faults, an irq
//! that came while it ran, its system calls) the CPU would first switch to
//! the kernel stack the guest registered with SET_STACK (the latest one:
//! a context switch queues SET_STACK and its NEW_PGTABLE drains the ring)
//! and push ss and esp as well, and so does the host. The data segments
//! stay the user's, as on the CPU: the guest's entry code reloads them. The pushes go through the guest's own pagetables (the host writes
//! guest memory, not the shadow), so a stack the guest has not mapped
//! writable ends the run instead of faulting the host.
//!
//! As in lguest, the real eflags.IF of a guest is always set; the guest's
//! idea of it lives in `lguest_data.irq_enabled`, so that is what goes into
//! the pushed eflags, and an interrupt gate clears it.

use crate::abi::{off, IRQ_ENABLED, SYSCALL_VECTOR};
use crate::fatal::{fatal, Result};
use crate::gpt;
use crate::interrupts::Watch;
use crate::layout::GUEST_CS;
use crate::vm::Vm;
use arch_i386::trap::name;

const IF: u32 = 1 << 9;
const TF: u32 = 1 << 8;
const NT: u32 = 1 << 14;

/// What `vector` is, for a message.
fn what(vector: u32) -> &'static str {
    if vector == SYSCALL_VECTOR {
        "system call"
    } else {
        name(vector)
    }
}

/// Writes a u32 at guest virtual `va` as a ring-1 store would: one walk
/// of the guest's tables for a word within a page (every aligned one), a
/// walk per byte for one that straddles two.
fn store(vm: &Vm, va: u32, v: u32, vector: u32) -> Result {
    let gpa = |at: u32| {
        gpt::translate(&vm.mem, vm.shadows.gpgdir(), at, true)?.ok_or_else(|| {
            fatal!(
                "cannot deliver {}: the guest's stack at {:#010x} is not mapped writable",
                what(vector),
                at
            )
        })
    };
    if va & 0xFFF <= 0xFFC {
        return vm.mem.write_u32(gpa(va)?, v, "the guest's stack");
    }
    for (i, b) in v.to_le_bytes().into_iter().enumerate() {
        let at = va.wrapping_add(i as u32);
        vm.mem.write_u8(gpa(at)?, b, "the guest's stack")?;
    }
    Ok(())
}

/// Delivers `vector` (with `error` if it has an error code) to the guest:
/// a fault (below 32), an irq (32 to 63) or the system call (0x80), the
/// last two never with an error code.
pub fn deliver(vm: &mut Vm, vector: u32, error: Option<u32>) -> Result {
    let r = vm.regs;
    let Some(gate) = vm.idt.get(vector) else {
        return Err(match error {
            Some(e) => fatal!(
                "guest {} at eip {:#010x} (error code {:#x}) with no handler loaded",
                what(vector),
                r.eip,
                e
            ),
            None => fatal!("guest {} at eip {:#010x} with no handler loaded", what(vector), r.eip),
        });
    };
    let from_user = r.cs & 3 == 3;
    let (ss, mut sp) = if from_user {
        vm.kernel_stack.ok_or_else(|| fatal!("guest {} in ring 3 before SET_STACK", what(vector)))?
    } else {
        (r.ss, r.esp)
    };
    let irq_enabled = match vm.data {
        Some(d) => vm.mem.read_u32(d + off::IRQ_ENABLED, "lguest_data")?,
        None => 0,
    };
    let eflags = if irq_enabled & IRQ_ENABLED != 0 { r.eflags } else { r.eflags & !IF };
    // A fault while the host steps the guest out of its noirq window: the
    // trap flag is the host's, not part of the guest's state.
    let eflags = if vm.irqs.watch == Watch::Step { eflags & !TF } else { eflags };
    let mut frame = [0u32; 6];
    let mut n = 0;
    if from_user {
        frame[n] = r.ss;
        frame[n + 1] = r.esp;
        n += 2;
    }
    frame[n] = eflags;
    frame[n + 1] = r.cs;
    frame[n + 2] = r.eip;
    n += 3;
    if let Some(e) = error {
        frame[n] = e;
        n += 1;
    }
    for &v in &frame[..n] {
        sp = sp.wrapping_sub(4);
        store(vm, sp, v, vector)?;
    }
    let r = &mut vm.regs;
    r.ss = ss;
    r.esp = sp;
    r.cs = GUEST_CS;
    r.eip = gate.offset;
    r.eflags &= !(TF | NT);
    if gate.interrupt {
        if let Some(d) = vm.data {
            vm.mem.write_u32(d + off::IRQ_ENABLED, 0, "lguest_data")?;
        }
    }
    if let Some(n) = vm.stats.delivered.get_mut(vector as usize) {
        *n += 1;
    }
    Ok(())
}
