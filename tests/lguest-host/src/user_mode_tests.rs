//! User mode (ring 3) under the host: its system calls, faults and the
//! interrupts that come while it runs reach the guest's kernel on the
//! stack SET_STACK named, with the frame the CPU would have pushed.

extern crate std;

use std::vec::Vec;

use crate::abi::{self, off, STATUS_DONE, SYSCALL_VECTOR};
use crate::exits;
use crate::gpt::{P, RW, USER};
use crate::idt::{Gate, GuestIdt};
use crate::interrupts;
use crate::layout::{GuestRegs, GUEST_CS, GUEST_DS};
use crate::tests::{
    guest_with_a_timer, hypercall, irq_enabled, machine, map, running, Machine, DATA, EIP, GUEST, HANDLER,
    PGDIR, STACK_TOP,
};

const USER_CS: u32 = (14 << 3) | 3;
const USER_DS: u32 = (15 << 3) | 3;
/// User memory: one pte page for 0x40000000-0x403FFFFF.
const USER_PTE: u32 = GUEST - 3 * 4096;
const USER_VA: u32 = 0x4000_0000;
/// User code runs in its page 5, on a stack somewhere below.
const USER_EIP: u32 = USER_VA + 0x5123;
const USER_ESP: u32 = 0xBFFF_EFF0;
const SYSCALL_HANDLER: u32 = 0xC010_3000;
const GP_HANDLER: u32 = 0xC010_4000;
const PF_HANDLER: u32 = 0xC010_5000;
/// The error code of #GP on IDT gate 0x80: its index, the IDT bit.
const GATE_0X80: u32 = (0x80 << 3) | 2;
/// The eflags user mode runs with: IF and the always-one bit.
const EFLAGS: u32 = 0x202;

/// LOAD_IDT_ENTRY for a present gate of `kind` (0xE interrupt, 0xF trap).
fn gate(m: &mut Machine, vector: u32, handler: u32, kind: u32, dpl: u32) {
    let lo = (0x61 << 16) | (handler & 0xFFFF);
    let hi = (handler & 0xFFFF_0000) | 0x8000 | (dpl << 13) | (kind << 8);
    hypercall(m, abi::LOAD_IDT_ENTRY, vector, lo, hi);
}

/// A guest kernel ready for user mode: a timer (`guest_with_a_timer`),
/// the system call's gate as our kernel loads it (an interrupt gate, DPL
/// 3), #GP's and #PF's, and its kernel stack stated with SET_STACK.
fn kernel() -> Machine {
    let mut m = guest_with_a_timer();
    gate(&mut m, SYSCALL_VECTOR, SYSCALL_HANDLER, 0xE, 3);
    gate(&mut m, 13, GP_HANDLER, 0xE, 0);
    gate(&mut m, 14, PF_HANDLER, 0xE, 0);
    hypercall(&mut m, abi::SET_STACK, GUEST_DS, STACK_TOP, 2);
    m
}

/// The guest runs in ring 3, interrupts enabled (the kernel's `iret` to
/// user mode stored its IF in `irq_enabled`).
fn user_mode(m: &mut Machine) {
    m.vm.mem.write_u32(DATA + off::IRQ_ENABLED, abi::IRQ_ENABLED, "irq_enabled").unwrap();
    m.vm.regs = GuestRegs {
        eip: USER_EIP,
        esp: USER_ESP,
        cs: USER_CS,
        ss: USER_DS,
        ds: USER_DS,
        es: USER_DS,
        eflags: EFLAGS,
        ..GuestRegs::default()
    };
}

/// Maps user page `i` of USER_VA to guest frame `frame` with `perm`.
fn map_user(m: &Machine, i: u32, frame: u32, perm: u32) {
    m.vm.mem.write_u32(PGDIR + (USER_VA >> 22) * 4, USER_PTE | P | RW | USER, "pgd").unwrap();
    m.vm.mem.write_u32(USER_PTE + i * 4, (frame << 12) | perm, "pte").unwrap();
}

/// The guest traps into the host at `vector`.
fn exit(m: &mut Machine, vector: u32, error: u32, cr2: u32) -> crate::fatal::Result {
    m.vm.regs.vector = vector;
    m.vm.regs.error = error;
    exits::handle(&mut m.vm, cr2)
}

/// The `n` words on top of the guest's kernel stack (frame 8), lowest
/// first: what the host pushed.
fn pushed(m: &Machine, n: u32) -> Vec<u32> {
    let at = |va: u32| m.vm.mem.read_u32(8 * 4096 + (va & 0xFFF), "").unwrap();
    (0..n).map(|k| at(m.vm.regs.esp + 4 * k)).collect()
}

#[test]
fn a_system_call_enters_the_kernel_on_the_set_stack_stack_like_an_interrupt_gate() {
    let mut m = kernel();
    user_mode(&mut m);
    m.vm.regs.eax = 20;
    exit(&mut m, SYSCALL_VECTOR, 0, 0).unwrap();
    let r = m.vm.regs;
    assert_eq!((r.eip, r.cs, r.ss, r.esp), (SYSCALL_HANDLER, GUEST_CS, GUEST_DS, STACK_TOP - 20));
    assert_eq!(
        pushed(&m, 5),
        [USER_EIP, USER_CS, EFLAGS, USER_ESP, USER_DS],
        "eip after the int, no error code, user mode's ss:esp above"
    );
    assert_eq!((r.eax, r.ds, r.es), (20, USER_DS, USER_DS), "the call's registers, for the kernel to read");
    assert_eq!(irq_enabled(&m), 0, "an interrupt gate disables");
    assert_eq!((m.vm.stats.syscalls, m.vm.stats.exits.iter().sum::<u32>()), (1, 0));
}

#[test]
fn a_system_call_gate_user_mode_may_not_use_is_a_gp_at_the_int() {
    for dpl in [Some(0), Some(1), None] {
        let mut m = kernel();
        match dpl {
            Some(dpl) => gate(&mut m, SYSCALL_VECTOR, SYSCALL_HANDLER, 0xE, dpl),
            None => hypercall(&mut m, abi::LOAD_IDT_ENTRY, SYSCALL_VECTOR, 0, 0),
        }
        user_mode(&mut m);
        exit(&mut m, SYSCALL_VECTOR, 0, 0).unwrap();
        assert_eq!(m.vm.regs.eip, GP_HANDLER, "DPL {dpl:?}");
        assert_eq!(
            pushed(&m, 6),
            [GATE_0X80, USER_EIP - 2, USER_CS, EFLAGS, USER_ESP, USER_DS],
            "a fault: eip at the int"
        );
    }
}

#[test]
fn the_kernel_may_use_the_system_call_gate_too_on_its_own_stack() {
    let mut m = kernel();
    running(&mut m);
    exit(&mut m, SYSCALL_VECTOR, 0, 0).unwrap();
    assert_eq!((m.vm.regs.eip, m.vm.regs.esp), (SYSCALL_HANDLER, STACK_TOP - 12));
    assert_eq!(pushed(&m, 3), [EIP, GUEST_CS, EFLAGS], "same ring: no stack switch");
}

#[test]
fn lguest_init_refuses_any_system_call_vector_but_0x80() {
    let mut m = machine();
    for i in 0..64 {
        m.vm.mem.write_u8(DATA + off::HCALL_STATUS + i, STATUS_DONE, "ring").unwrap();
    }
    m.vm.mem.write_u32(DATA + off::SYSCALL_VEC, 0x81, "syscall_vec").unwrap();
    m.vm.regs = GuestRegs { eax: abi::LGUEST_INIT, edx: DATA, ..GuestRegs::default() };
    let e = crate::hypercall::trap(&mut m.vm).unwrap_err();
    assert!(e.as_str().contains("syscall_vec is 0x81"), "{e}");
    assert_eq!(m.vm.data, None);
}

#[test]
fn the_system_call_gate_is_kept_with_its_dpl_other_high_vectors_are_not() {
    let mut idt = GuestIdt::new();
    let (lo, hi) = ((0x61 << 16) | 0x3000, 0xC010_0000 | 0x8000 | (3 << 13) | 0xE00);
    for v in [0x40, 0x80, 0x81] {
        idt.load(v, lo, hi).unwrap();
    }
    assert_eq!(idt.get(0x80), Some(Gate { offset: 0xC010_3000, interrupt: true, dpl: 3 }));
    assert_eq!((idt.get(0x40), idt.get(0x81)), (None, None), "nothing can raise them");
    assert!(idt.load(0x80, lo, (hi & !0xF00) | 0xC00).is_err(), "a call gate");
    assert!(idt.load(0x81, lo, (hi & !0xF00) | 0xC00).is_ok(), "ignored, as 2.6.24 does");
    idt.load(0x80, 0, 0).unwrap();
    assert_eq!(idt.get(0x80), None, "not present: cleared");
}

#[test]
fn a_user_fault_reaches_the_kernel_stack_with_cr2_and_the_guests_error_code() {
    let mut m = kernel();
    map_user(&m, 0, 9, P | USER);
    user_mode(&mut m);
    // A read: the guest's tables allow it, the host's miss.
    exit(&mut m, 14, 0x4, USER_VA + 0x10).unwrap();
    assert_eq!(m.vm.regs.eip, USER_EIP, "filled and retried");
    // A write to the read-only page (copy-on-write), before or after the
    // shadow has it: "present" either way, as the guest's MMU would say.
    for shadow_error in [0x6, 0x7] {
        m.vm.shadows.flush(false);
        user_mode(&mut m);
        exit(&mut m, 14, shadow_error, USER_VA + 0x10).unwrap();
        assert_eq!((m.vm.regs.eip, m.vm.regs.esp), (PF_HANDLER, STACK_TOP - 24));
        assert_eq!(pushed(&m, 6), [0x7, USER_EIP, USER_CS, EFLAGS, USER_ESP, USER_DS]);
        assert_eq!(m.vm.mem.read_u32(DATA + off::CR2, "").unwrap(), USER_VA + 0x10);
    }
    // Nothing mapped (demand paging): not present.
    user_mode(&mut m);
    exit(&mut m, 14, 0x6, USER_VA + 0x1000).unwrap();
    assert_eq!(pushed(&m, 1), [0x6]);
    // A kernel page: present, but not the user's.
    map(&m, 1, 6, P | RW);
    user_mode(&mut m);
    exit(&mut m, 14, 0x4, 0xC000_1000).unwrap();
    assert_eq!(pushed(&m, 1), [0x5]);
}

#[test]
fn an_irq_while_user_mode_runs_is_taken_on_the_kernel_stack() {
    let mut m = kernel();
    user_mode(&mut m);
    m.vm.irqs.raise(0);
    interrupts::before_entry(&mut m.vm).unwrap();
    assert_eq!((m.vm.regs.eip, m.vm.regs.cs, m.vm.regs.ss), (HANDLER, GUEST_CS, GUEST_DS));
    assert_eq!(pushed(&m, 5), [USER_EIP, USER_CS, EFLAGS, USER_ESP, USER_DS]);
    assert_eq!(irq_enabled(&m), 0);
}

#[test]
fn the_stack_of_the_latest_set_stack_is_used_even_when_it_came_through_the_ring() {
    let mut m = kernel();
    // A context switch: SET_STACK queued, then NEW_PGTABLE, which drains
    // the ring first. The new task's stack: frame 10's page.
    map(&m, 10, 10, P | RW);
    let at = DATA + off::HCALLS;
    for (i, w) in [abi::SET_STACK, 0xC000_B000, 2, GUEST_DS].into_iter().enumerate() {
        m.vm.mem.write_u32(at + 4 * i as u32, w, "hcalls").unwrap();
    }
    m.vm.mem.write_u8(DATA + off::HCALL_STATUS, 0, "status").unwrap();
    hypercall(&mut m, abi::NEW_PGTABLE, PGDIR, 0, 0);
    user_mode(&mut m);
    exit(&mut m, SYSCALL_VECTOR, 0, 0).unwrap();
    assert_eq!((m.vm.regs.ss, m.vm.regs.esp), (GUEST_DS, 0xC000_B000 - 20));
    let word = |k: u32| m.vm.mem.read_u32(10 * 4096 + 0x1000 - 20 + 4 * k, "").unwrap();
    assert_eq!((word(0), word(3)), (USER_EIP, USER_ESP));
}

#[test]
fn user_mode_before_set_stack_stops_the_guest() {
    let mut m = guest_with_a_timer();
    gate(&mut m, SYSCALL_VECTOR, SYSCALL_HANDLER, 0xE, 3);
    user_mode(&mut m);
    let e = exit(&mut m, SYSCALL_VECTOR, 0, 0).unwrap_err();
    assert!(e.as_str().contains("system call in ring 3 before SET_STACK"), "{e}");
}

#[test]
fn port_io_in_user_mode_is_its_gp_not_skipped() {
    let mut m = kernel();
    map_user(&m, 5, 11, P | USER);
    m.vm.mem.write_u8(11 * 4096 + (USER_EIP & 0xFFF), 0xEC, "in al, dx").unwrap();
    user_mode(&mut m);
    exit(&mut m, 13, 0, 0).unwrap();
    assert_eq!((m.vm.regs.eip, m.vm.stats.io_skipped), (GP_HANDLER, 0));
    assert_eq!(pushed(&m, 2), [0, USER_EIP]);
    // The same instruction in the kernel is skipped.
    running(&mut m);
    m.vm.regs.cs = GUEST_CS;
    m.vm.regs.eip = USER_EIP;
    exit(&mut m, 13, 0, 0).unwrap();
    assert_eq!((m.vm.regs.eip, m.vm.stats.io_skipped), (USER_EIP + 1, 1));
}
