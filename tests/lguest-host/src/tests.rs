//! The host's logic on the development machine: shadow paging, the audit,
//! hypercall and ring decoding, against guest memory in a buffer.

extern crate std;

use std::boxed::Box;

use crate::abi::{self, off, STATUS_DONE};
use crate::clock::Clock;
use crate::gpt::{P, RW, USER};
use crate::guest_mem::GuestMem;
use crate::layout::GuestRegs;
use crate::phys::HostPhys;
use crate::pool::Pool;
use crate::shadow::Shadows;
use crate::vm::{End, Vm};

/// Host-physical layout of the test machine: 4 MiB of guest memory at
/// 16 MiB, then a 64-page shadow pool.
const BASE: u32 = 16 << 20;
pub(crate) const GUEST: u32 = 4 << 20;
const POOL: u32 = 64 * 4096;
/// The guest's pgdir and one pte page, near the top of its memory.
pub(crate) const PGDIR: u32 = GUEST - 4096;
pub(crate) const PTE: u32 = GUEST - 8192;

pub(crate) struct Machine {
    _ram: Ram,
    pub(crate) vm: Vm,
}

/// One page of the test machine's RAM: page-aligned, as real RAM is (the
/// host reads shadow entries and guest words at their width).
#[repr(C, align(4096))]
struct Frame([u8; 4096]);

/// The test machine's RAM, held by a raw pointer: the host reaches it only
/// through the address exposed when it was made, and a Box would be
/// retagged (its old pointers invalidated) every time the Machine moves.
/// Miri found both: a byte buffer aligned to 1, and the moved Box.
struct Ram(*mut [Frame]);

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: made by Box::into_raw in `machine`, freed only here.
        drop(unsafe { Box::from_raw(self.0) })
    }
}

std::thread_local! {
    /// The test machine's TSC: 1 GHz (a tick a nanosecond), moved by hand.
    static TSC: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

fn tsc() -> u64 {
    TSC.with(|t| t.get())
}

pub(crate) fn advance_ns(ns: u64) {
    TSC.with(|t| t.set(t.get() + ns));
}

/// The wall clock the test machine starts at.
const WALL: u64 = 1_750_000_000;

pub(crate) fn machine() -> Machine {
    let pages = ((GUEST + POOL) / 4096) as usize;
    let ram = Ram(Box::into_raw((0..pages).map(|_| Frame([0; 4096])).collect::<Box<[Frame]>>()));
    let origin = (ram.0 as *mut u8).expose_provenance().wrapping_sub(BASE as usize);
    // SAFETY: every host-physical address the host uses, [BASE, BASE +
    // GUEST + POOL), is inside the RAM (exposed above), which outlives the
    // Machine's Vm.
    let phys = unsafe { HostPhys::new(origin) };
    let mem = GuestMem { base: BASE, size: GUEST, phys };
    let pool = Pool::new(phys, BASE + GUEST, BASE + GUEST + POOL);
    let shadows = Shadows::new(mem, pool, 0, PGDIR).unwrap();
    let vm = Vm::new(GuestRegs::default(), mem, shadows, PGDIR, Clock::new(1_000_000, tsc, WALL));
    Machine { _ram: ram, vm }
}

/// Maps guest va 0xC0000000 + i * 4K to guest frame `frame` with `perm`
/// in the test pgdir.
pub(crate) fn map(m: &Machine, i: u32, frame: u32, perm: u32) {
    m.vm.mem.write_u32(PGDIR + 768 * 4, PTE | P | RW | USER, "pgd").unwrap();
    m.vm.mem.write_u32(PTE + i * 4, (frame << 12) | perm, "pte").unwrap();
}

#[test]
fn a_shadow_is_filled_on_demand_and_the_audit_sees_an_untold_change() {
    let mut m = machine();
    map(&m, 0, 5, P | RW);
    // A write the guest's tables allow: the host's miss, filled.
    assert!(m.vm.shadows.fault(0xC000_0000, 0x2).unwrap());
    assert_eq!(crate::audit::run(&m.vm.shadows), 0);
    // The guest makes the page read-only without telling: stale.
    map(&m, 0, 5, P);
    assert_eq!(crate::audit::run(&m.vm.shadows), 1);
    // Told with SET_PTE: the shadow follows.
    m.vm.shadows.set_pte(PGDIR, 0xC000_0000, (5 << 12) | P).unwrap();
    assert_eq!(crate::audit::run(&m.vm.shadows), 0);
}

#[test]
fn faults_the_guests_tables_forbid_are_the_guests() {
    let mut m = machine();
    map(&m, 1, 6, P);
    assert!(!m.vm.shadows.fault(0xC000_1000, 0x2).unwrap(), "a write to a read-only page");
    assert!(!m.vm.shadows.fault(0xC000_1000, 0x4).unwrap(), "a user access to a kernel page");
    assert!(!m.vm.shadows.fault(0xC000_2000, 0).unwrap(), "nothing mapped");
    map(&m, 2, 7, P | USER);
    assert!(m.vm.shadows.fault(0xC000_2000, 0x4).unwrap());
}

#[test]
fn a_frame_beyond_guest_memory_stops_the_guest_not_the_host() {
    let mut m = machine();
    map(&m, 3, 0xFFFFF, P | RW);
    let e = m.vm.shadows.fault(0xC000_3000, 0).unwrap_err();
    assert!(e.as_str().contains("beyond its 4 MiB"), "{e}");
    m.vm.mem.write_u32(PGDIR + 769 * 4, 0xFFFF_F000 | P, "pgd").unwrap();
    assert!(m.vm.shadows.fault(0xC040_0000, 0).is_err());
}

#[test]
fn more_than_four_pgdirs_evict_round_robin_never_the_current_one() {
    let mut m = machine();
    for k in 1..=6 {
        m.vm.shadows.switch_to(PGDIR - k * 0x2000).unwrap();
        assert_eq!(m.vm.shadows.gpgdir(), PGDIR - k * 0x2000);
    }
    assert_eq!(m.vm.shadows.slots_used(), crate::shadow::SLOTS);
    assert_eq!(m.vm.shadows.stats.evictions, 3);
    assert!(m.vm.shadows.switch_to(GUEST).is_err(), "a pgdir outside guest memory");
    assert!(m.vm.shadows.switch_to(0x1001).is_err(), "an unaligned pgdir");
}

#[test]
fn an_evicted_shadow_is_audited_before_it_goes() {
    let mut m = machine();
    map(&m, 0, 5, P | RW);
    assert!(m.vm.shadows.fault(0xC000_0000, 0x2).unwrap());
    map(&m, 0, 5, P);
    // Round robin from slot 1: the fourth eviction is the first pgdir's.
    for k in 1..=7 {
        m.vm.shadows.switch_to(PGDIR - k * 0x2000).unwrap();
    }
    let e = m.vm.shadows.evicted;
    assert_eq!((m.vm.shadows.stats.evictions, e.pgdirs), (4, 4));
    assert_eq!((e.checked, e.violations), (1, 1), "the untold change, seen as it went");
    assert_eq!(crate::audit::run(&m.vm.shadows), 1, "and counted at the end");
}

/// Registers `lguest_data` at guest-physical `data` with LGUEST_INIT,
/// with what the guest fills in first (an empty ring, the system-call
/// vector).
pub(crate) fn init(m: &mut Machine, data: u32) {
    for i in 0..64 {
        m.vm.mem.write_u8(data + off::HCALL_STATUS + i, STATUS_DONE, "ring").unwrap();
    }
    m.vm.mem.write_u32(data + off::SYSCALL_VEC, abi::SYSCALL_VECTOR, "syscall_vec").unwrap();
    hypercall(m, abi::LGUEST_INIT, data, 0, 0);
    assert_eq!(m.vm.data, Some(data));
}

pub(crate) fn hypercall(m: &mut Machine, call: u32, a1: u32, a2: u32, a3: u32) {
    m.vm.regs = GuestRegs { eax: call, edx: a1, ebx: a2, ecx: a3, ..GuestRegs::default() };
    crate::hypercall::trap(&mut m.vm).unwrap();
}

#[test]
fn the_async_ring_is_drained_in_order_before_a_trapped_call() {
    let mut m = machine();
    let data = 0x1000;
    init(&mut m, data);
    assert_eq!(m.vm.mem.read_u32(data + off::RESERVE_MEM, "").unwrap(), crate::layout::SWITCHER_SIZE);
    map(&m, 0, 5, P | RW);
    assert!(m.vm.shadows.fault(0xC000_0000, 0x2).unwrap());
    // Two queued SET_PTEs (hcall_args: eax, ebx = arg2, ecx = arg3, edx =
    // arg1), the second undoing the first.
    let post = |m: &Machine, slot: u32, va: u32, val: u32| {
        let at = data + off::HCALLS + slot * off::HCALL_SIZE;
        for (i, w) in [abi::SET_PTE, va, val, PGDIR].into_iter().enumerate() {
            m.vm.mem.write_u32(at + 4 * i as u32, w, "hcalls").unwrap();
        }
        m.vm.mem.write_u8(data + off::HCALL_STATUS + slot, 0, "status").unwrap();
    };
    map(&m, 0, 5, P);
    post(&m, 0, 0xC000_0000, (5 << 12) | P);
    post(&m, 1, 0xC000_1000, 0);
    hypercall(&mut m, abi::FLUSH_ASYNC, 0, 0, 0);
    assert_eq!(m.vm.stats.drained[abi::SET_PTE as usize], 2);
    assert_eq!(m.vm.mem.read_u8(data + off::HCALL_STATUS, "").unwrap(), STATUS_DONE);
    assert_eq!(crate::audit::run(&m.vm.shadows), 0, "the queued update reached the shadow");
}

#[test]
fn a_bad_guest_is_stopped_with_a_reason() {
    let mut m = machine();
    m.vm.regs.eax = abi::SET_PTE;
    let e = crate::hypercall::trap(&mut m.vm).unwrap_err();
    assert!(e.as_str().contains("before LGUEST_INIT"), "{e}");
    init(&mut m, 0x1000);
    m.vm.regs = GuestRegs { eax: 99, ..GuestRegs::default() };
    assert!(crate::hypercall::trap(&mut m.vm).is_err());
    m.vm.regs = GuestRegs { eax: abi::NOTIFY, edx: GUEST + 10, ..GuestRegs::default() };
    assert!(crate::hypercall::trap(&mut m.vm).is_err(), "a string outside guest memory");
}

#[test]
fn power_down_ends_the_run() {
    let mut m = machine();
    init(&mut m, 0x1000);
    m.vm.mem.write_bytes(0x3000, b"Power down\0", "msg").unwrap();
    hypercall(&mut m, abi::CRASH, 0x3000, 0, 0);
    assert!(matches!(m.vm.end, Some(End::PowerOff)));
}

// ---- Interrupts and time --------------------------------------------------

use crate::interrupts::{self, decide, Decision, Watch};
use arch_i386::debug::{DR6_B0, DR6_BS};

const TF: u32 = 1 << 8;

#[test]
fn the_lowest_unblocked_irq_wins_and_only_outside_the_noirq_window() {
    let window = (0xC010_0000, 0xC010_0008);
    let d = |pending, blocked, eip, halted, irq_enabled| {
        decide(pending, blocked, eip, window, halted, irq_enabled)
    };
    assert_eq!(d(0b110, 0, 0xC000_0000, false, 512), Decision::Deliver { irq: 1, wake: false });
    assert_eq!(d(0b110, 0b010, 0xC000_0000, false, 512), Decision::Deliver { irq: 2, wake: false });
    assert_eq!(d(0b001, 0b001, 0xC000_0000, false, 512), Decision::Nothing, "blocked");
    assert_eq!(d(0, 0, 0xC000_0000, false, 512), Decision::Nothing);
    // The window: start inclusive, end exclusive.
    assert_eq!(d(1, 0, 0xC010_0000, false, 512), Decision::InNoirqWindow(0));
    assert_eq!(d(1, 0, 0xC010_0007, false, 512), Decision::InNoirqWindow(0));
    assert_eq!(d(1, 0, 0xC010_0008, false, 512), Decision::Deliver { irq: 0, wake: false });
    // Disabled: wait; only IF counts (the word is 0 or 512).
    assert_eq!(d(1, 0, 0xC000_0000, false, 0), Decision::Disabled(0));
    assert_eq!(d(1, 0, 0xC000_0000, false, 0x2), Decision::Disabled(0));
}

#[test]
fn a_halted_guest_wakes_for_an_unblocked_irq_whatever_its_flag_says() {
    let window = (0xC010_0000, 0xC010_0008);
    assert_eq!(decide(1, 0, 0xC000_0000, window, true, 0), Decision::Deliver { irq: 0, wake: true });
    assert_eq!(decide(1, 1, 0xC000_0000, window, true, 0), Decision::Nothing, "a blocked irq does not wake");
    assert_eq!(decide(1, 0, 0xC010_0004, window, true, 0), Decision::InNoirqWindow(0), "the window first");
}

pub(crate) const DATA: u32 = 0x1000;
/// The guest's kernel stack: the page at 0xC0000000 + 8 * 4K (frame 8),
/// its top.
pub(crate) const STACK_TOP: u32 = 0xC000_9000;
pub(crate) const HANDLER: u32 = 0xC010_2000;
const NOIRQ: (u32, u32) = (0xC010_0000, 0xC010_0008);
pub(crate) const EIP: u32 = 0xC010_1234;

/// A guest after LGUEST_INIT with its noirq window, an interrupt gate for
/// the timer's vector, interrupts enabled, the timer's irq unblocked, and a
/// writable stack.
pub(crate) fn guest_with_a_timer() -> Machine {
    let mut m = machine();
    m.vm.mem.write_u32(DATA + off::NOIRQ_START, NOIRQ.0, "").unwrap();
    m.vm.mem.write_u32(DATA + off::NOIRQ_END, NOIRQ.1, "").unwrap();
    init(&mut m, DATA);
    assert_eq!(m.vm.irqs.noirq, NOIRQ);
    assert_eq!(m.vm.mem.read_u32(DATA + off::TSC_KHZ, "").unwrap(), 1_000_000);
    assert_eq!(m.vm.mem.read_u32(DATA + off::TIME, "").unwrap(), WALL as u32);
    // An interrupt gate (type 0xE, present, DPL 0) at vector 32.
    hypercall(
        &mut m,
        abi::LOAD_IDT_ENTRY,
        32,
        (0x60 << 16) | (HANDLER & 0xFFFF),
        (HANDLER & 0xFFFF_0000) | 0x8E00,
    );
    map(&m, 8, 8, P | RW);
    m.vm.mem.write_u32(DATA + off::IRQ_ENABLED, 512, "").unwrap();
    m.vm.mem.write_u32(DATA + off::BLOCKED_INTERRUPTS, !1, "").unwrap();
    m
}

/// The guest runs at EIP on its stack, with the real IF set.
pub(crate) fn running(m: &mut Machine) {
    m.vm.regs.eip = EIP;
    m.vm.regs.esp = STACK_TOP;
    m.vm.regs.cs = crate::layout::GUEST_CS;
    m.vm.regs.ss = crate::layout::GUEST_DS;
    m.vm.regs.eflags = 0x202;
}

pub(crate) fn irq_enabled(m: &Machine) -> u32 {
    m.vm.mem.read_u32(DATA + off::IRQ_ENABLED, "").unwrap()
}

/// The frame the host pushed: (eflags, cs, eip), read through frame 8.
fn frame(m: &Machine) -> (u32, u32, u32) {
    let at = |va: u32| m.vm.mem.read_u32(8 * 4096 + (va & 0xFFF), "").unwrap();
    (at(m.vm.regs.esp + 8), at(m.vm.regs.esp + 4), at(m.vm.regs.esp))
}

#[test]
fn an_expired_clock_event_is_delivered_like_an_interrupt_gate() {
    let mut m = guest_with_a_timer();
    hypercall(&mut m, abi::SET_CLOCKEVENT, 1_000_000, 0, 0);
    running(&mut m);
    advance_ns(999_999);
    interrupts::before_entry(&mut m.vm).unwrap();
    assert_eq!(m.vm.regs.eip, EIP, "not yet due");
    assert_eq!(interrupts::host_deadline(&m.vm, m.vm.clock.now()), Some(1_000_000));
    advance_ns(1);
    interrupts::before_entry(&mut m.vm).unwrap();
    assert_eq!(m.vm.regs.eip, HANDLER);
    assert_eq!(m.vm.regs.esp, STACK_TOP - 12, "eflags, cs, eip: no error code");
    assert_eq!(frame(&m), (0x202, crate::layout::GUEST_CS, EIP));
    assert_eq!(irq_enabled(&m), 0, "an interrupt gate disables");
    assert_eq!(m.vm.irqs.pending, 0);
    assert_eq!(m.vm.irqs.stats.delivered[0], 1);
    assert_eq!(m.vm.clockevent.deadline, None, "one-shot");
    assert_eq!(m.vm.mem.read_u32(DATA + off::TIME + 4, "").unwrap(), 1_000_000, "the wall clock refreshed");
    // Nothing more comes: the next entry delivers nothing.
    interrupts::before_entry(&mut m.vm).unwrap();
    assert_eq!(m.vm.irqs.stats.delivered[0], 1);
    assert_eq!(interrupts::host_deadline(&m.vm, m.vm.clock.now()), None);
}

#[test]
fn an_irq_waits_while_disabled_or_in_the_noirq_window_and_the_host_ticks_meanwhile() {
    let mut m = guest_with_a_timer();
    hypercall(&mut m, abi::SET_CLOCKEVENT, 100, 0, 0);
    running(&mut m);
    m.vm.mem.write_u32(DATA + off::IRQ_ENABLED, 0, "").unwrap();
    advance_ns(100);
    interrupts::before_entry(&mut m.vm).unwrap();
    assert_eq!((m.vm.regs.eip, m.vm.irqs.pending), (EIP, 1), "held while disabled");
    let now = m.vm.clock.now();
    assert_eq!(interrupts::host_deadline(&m.vm, now), Some(now + interrupts::HOST_TICK_NS));
    // The host watches the flag where the guest's kernel writes it.
    assert_eq!(m.vm.irqs.watch, Watch::FlagWrites);
    assert_eq!(m.vm.irqs.flag_va, 0xC000_0000 + DATA + off::IRQ_ENABLED);
    assert!(interrupts::host_debug_trap(&mut m.vm, DR6_B0), "the watchpoint's #DB is the host's");
    assert!(
        !interrupts::host_debug_trap(&mut m.vm, DR6_BS),
        "a single step it did not ask for is the guest's"
    );
    // Enabled, but the guest is in its iret's window: still held, and
    // stepped out of it.
    m.vm.mem.write_u32(DATA + off::IRQ_ENABLED, 512, "").unwrap();
    m.vm.regs.eip = NOIRQ.0 + 6;
    interrupts::before_entry(&mut m.vm).unwrap();
    assert_eq!(m.vm.regs.eip, NOIRQ.0 + 6);
    assert_eq!(m.vm.irqs.watch, Watch::Step);
    assert_eq!(m.vm.regs.eflags & TF, TF);
    assert!(interrupts::host_debug_trap(&mut m.vm, DR6_BS));
    // Out of the window: delivered, with IF set in the frame, and the
    // host's trap flag neither in the frame nor left on.
    m.vm.regs.eip = NOIRQ.1;
    interrupts::before_entry(&mut m.vm).unwrap();
    assert_eq!(m.vm.regs.eip, HANDLER);
    assert_eq!(frame(&m).0 & (0x200 | TF), 0x200);
    assert_eq!((m.vm.irqs.watch, m.vm.regs.eflags & TF), (Watch::Nothing, 0));
    assert!(!interrupts::host_debug_trap(&mut m.vm, DR6_B0 | DR6_BS), "no watch: the guest's");
    let s = m.vm.irqs.stats;
    assert_eq!((s.held_disabled, s.held_noirq, s.delivered[0]), (1, 1, 1));
    assert_eq!((s.flag_traps, s.steps), (1, 1));
}

#[test]
fn halt_with_interrupts_disabled_wakes_enabled_at_the_timer() {
    let mut m = guest_with_a_timer();
    m.vm.mem.write_u32(DATA + off::IRQ_ENABLED, 0, "").unwrap();
    hypercall(&mut m, abi::SET_CLOCKEVENT, 5_000, 0, 0);
    // HALT, from the instruction before EIP (`int $0x1f` is 2 bytes).
    running(&mut m);
    m.vm.regs.eax = abi::HALT;
    crate::hypercall::trap(&mut m.vm).unwrap();
    let after_int = EIP;
    assert!(m.vm.irqs.halted);
    interrupts::before_entry(&mut m.vm).unwrap();
    interrupts::check_halted(&m.vm).unwrap();
    assert!(m.vm.irqs.halted, "asleep until the deadline");
    advance_ns(5_000);
    interrupts::before_entry(&mut m.vm).unwrap();
    assert!(!m.vm.irqs.halted);
    assert_eq!(m.vm.regs.eip, HANDLER);
    assert_eq!(frame(&m), (0x202, crate::layout::GUEST_CS, after_int), "IF set: the handler returns enabled");
    assert_eq!(irq_enabled(&m), 0, "and the gate disabled them for the handler");
    assert_eq!((m.vm.irqs.stats.halts, m.vm.irqs.stats.wakeups), (1, 1));
}

#[test]
fn a_halt_nothing_can_end_stops_the_guest() {
    let mut m = guest_with_a_timer();
    // The timer's irq is pending but blocked, and no timer is armed.
    m.vm.irqs.raise(0);
    m.vm.mem.write_u32(DATA + off::BLOCKED_INTERRUPTS, !0, "").unwrap();
    hypercall(&mut m, abi::HALT, 0, 0, 0);
    running(&mut m);
    interrupts::before_entry(&mut m.vm).unwrap();
    let e = interrupts::check_halted(&m.vm).unwrap_err();
    assert!(e.as_str().contains("nothing can wake it"), "{e}");
}

#[test]
fn an_irq_with_no_gate_stays_pending() {
    let mut m = guest_with_a_timer();
    hypercall(&mut m, abi::LOAD_IDT_ENTRY, 32, 0, 0);
    running(&mut m);
    m.vm.irqs.raise(0);
    interrupts::before_entry(&mut m.vm).unwrap();
    assert_eq!((m.vm.regs.eip, m.vm.irqs.pending, m.vm.irqs.stats.no_gate), (EIP, 1, 1));
}

#[test]
fn the_watchdog_stops_a_guest_with_no_sign_of_life_only() {
    use crate::watchdog::{Watchdog, LIMIT_SECONDS};
    let mut m = guest_with_a_timer();
    let mut w = Watchdog::new();
    w.check(&m.vm).unwrap();
    // A hypercall (or an interrupt) every 9 s: alive.
    for _ in 0..3 {
        advance_ns(9 * crate::clock::NS);
        w.check(&m.vm).unwrap();
        hypercall(&mut m, abi::FLUSH_ASYNC, 0, 0, 0);
    }
    m.vm.irqs.raise(0);
    running(&mut m);
    advance_ns(9 * crate::clock::NS);
    interrupts::before_entry(&mut m.vm).unwrap();
    w.check(&m.vm).unwrap();
    // Then nothing, for longer than the limit.
    advance_ns(LIMIT_SECONDS * crate::clock::NS + 1);
    let e = w.check(&m.vm).unwrap_err();
    assert!(e.as_str().contains("no hypercall and took no interrupt"), "{e}");
}
