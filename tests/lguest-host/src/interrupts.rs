//! Interrupts for the guest, by 2.6.24's rules
//! (drivers/lguest/interrupts_and_traps.c `maybe_do_interrupt`, and the
//! loop of core.c `run_guest`).
//!
//! An interrupt for the guest is a bit in a pending set (2.6.24's
//! `lg->irqs_pending`): here only irq 0, raised when the guest's clock
//! event expires (in 2.6.24 the Launcher raised device irqs too). Before
//! every entry into the guest the host looks at it, in 2.6.24's order:
//!
//! 1. the lowest pending irq the guest has not blocked in
//!    `blocked_interrupts`; if there is none, there is nothing to do;
//! 2. if the guest's eip is inside its noirq window `[noirq_start,
//!    noirq_end)` (stated at LGUEST_INIT: its `iret`, which has restored
//!    the interrupt flag but not yet popped the frame), wait;
//! 3. if the guest is halted, wake it, setting `irq_enabled` to 512
//!    whatever it was: the guest halts with interrupts disabled and relies
//!    on this (`safe_halt` is "enable and wait" in one step). Otherwise, if
//!    `irq_enabled` lacks IF (512), wait;
//! 4. deliver the irq at vector 32 + irq through the gate the guest loaded
//!    there, as the CPU would through an interrupt gate: eflags, cs and
//!    eip pushed (no error code; eflags.IF from `irq_enabled`) and, for an
//!    interrupt gate, `irq_enabled` cleared. Its pending bit is cleared.
//!    With no gate loaded there, it stays pending (and, as in 2.6.24,
//!    hides every higher irq);
//! 5. refresh the wall clock in `lguest_data.time`, delivered or not.
//!
//! One irq per entry: another one waits for the next entry, by which time
//! the handler of the first has returned and enabled interrupts again.
//!
//! An irq that has to wait is delivered at the guest's next exit to the
//! host: a hypercall, a fault, or a host interrupt. On 2.6.24 the host's
//! own timer tick guaranteed one soon (the guest does not tell the host
//! when it enables interrupts: no SEND_INTERRUPTS in that ABI). This host
//! has no tick of its own, so while an irq is pending its timer fires
//! every [`HOST_TICK_NS`] ([`host_deadline`]).
//!
//! A halted guest sleeps until an irq it has not blocked is pending. With
//! no timer armed and every pending irq blocked nothing here can ever wake
//! it (this host has no devices): [`check_halted`] ends the run with that
//! reason rather than sleep for ever.

use crate::abi::{off, FIRST_EXTERNAL_VECTOR, IRQ_ENABLED, LGUEST_IRQS, TIMER_IRQ};
use crate::clock::ClockEvent;
use crate::console::say;
use crate::deliver::deliver;
use crate::fatal::{fatal, Result};
use crate::vm::Vm;

/// How often the host interrupts a guest while an irq waits for it: a
/// 1000 Hz host's tick.
pub const HOST_TICK_NS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug, Default)]
pub struct Interrupts {
    /// Raised and not yet delivered: bit n, irq n.
    pub pending: u32,
    /// HALT: the guest sleeps until an irq wakes it.
    pub halted: bool,
    /// `[noirq_start, noirq_end)`, read at LGUEST_INIT.
    pub noirq: (u32, u32),
    pub stats: IrqStats,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct IrqStats {
    /// HALT calls, and halts an irq ended.
    pub halts: u32,
    pub wakeups: u32,
    /// Interrupts delivered, by irq.
    pub delivered: [u32; LGUEST_IRQS as usize],
    /// Entries at which an irq the guest had not blocked had to wait: for
    /// interrupts to be enabled, or for eip to leave the noirq window.
    pub held_disabled: u32,
    pub held_noirq: u32,
    /// Entries at which the irq to deliver had no gate loaded.
    pub no_gate: u32,
    /// Time the host waited for a halted guest's irq (ns).
    pub idle_ns: u64,
}

impl Interrupts {
    pub fn raise(&mut self, irq: u32) {
        assert!(irq < LGUEST_IRQS);
        self.pending |= 1 << irq;
    }

    pub fn delivered(&self) -> u32 {
        self.stats.delivered.iter().sum()
    }

    /// The end-of-run summary.
    pub fn print(&self, timer: &ClockEvent) {
        let s = &self.stats;
        say!(
            "guest halted {} times, woken {} times by an interrupt; {} ms idle",
            s.halts,
            s.wakeups,
            s.idle_ns / 1_000_000
        );
        say!(
            "interrupts delivered: {} (timer {}); clock events armed {}, expired {}; entries with an irq waiting: {} with interrupts disabled, {} in the noirq window, {} with no gate loaded",
            self.delivered(),
            s.delivered[TIMER_IRQ as usize],
            timer.armed,
            timer.fired,
            s.held_disabled,
            s.held_noirq,
            s.no_gate
        );
    }
}

/// What the host does about pending irqs before entering the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No pending irq the guest has not blocked.
    Nothing,
    /// `irq` waits: eip is in the noirq window.
    InNoirqWindow(u32),
    /// `irq` waits: the guest has interrupts disabled (and is not halted).
    Disabled(u32),
    /// Deliver `irq`, waking the guest first if it is halted.
    Deliver { irq: u32, wake: bool },
}

/// 2.6.24's rules, steps 1-3, on the state they read.
pub fn decide(
    pending: u32,
    blocked: u32,
    eip: u32,
    noirq: (u32, u32),
    halted: bool,
    irq_enabled: u32,
) -> Decision {
    let ready = pending & !blocked;
    if ready == 0 {
        return Decision::Nothing;
    }
    let irq = ready.trailing_zeros();
    if (noirq.0..noirq.1).contains(&eip) {
        return Decision::InNoirqWindow(irq);
    }
    if !halted && irq_enabled & IRQ_ENABLED == 0 {
        return Decision::Disabled(irq);
    }
    Decision::Deliver { irq, wake: halted }
}

/// Before every entry into the guest: raises irq 0 if the guest's clock
/// event has expired, then applies the rules.
pub fn before_entry(vm: &mut Vm) -> Result {
    let Some(data) = vm.data else { return Ok(()) };
    let now = vm.clock.now();
    if vm.clockevent.expire(now) {
        vm.irqs.raise(TIMER_IRQ);
    }
    if vm.irqs.pending == 0 {
        return Ok(());
    }
    const W: &str = "lguest_data";
    let blocked = vm.mem.read_u32(data + off::BLOCKED_INTERRUPTS, W)?;
    let irq_enabled = vm.mem.read_u32(data + off::IRQ_ENABLED, W)?;
    let i = &mut vm.irqs;
    match decide(i.pending, blocked, vm.regs.eip, i.noirq, i.halted, irq_enabled) {
        Decision::Nothing => return Ok(()),
        Decision::InNoirqWindow(_) => {
            i.stats.held_noirq += 1;
            return Ok(());
        }
        Decision::Disabled(_) => {
            i.stats.held_disabled += 1;
            return Ok(());
        }
        Decision::Deliver { irq, wake } => {
            if wake {
                i.halted = false;
                i.stats.wakeups += 1;
                vm.mem.write_u32(data + off::IRQ_ENABLED, IRQ_ENABLED, W)?;
            }
            let vector = FIRST_EXTERNAL_VECTOR + irq;
            if vm.idt.get(vector).is_some() {
                vm.irqs.pending &= !(1 << irq);
                vm.irqs.stats.delivered[irq as usize] += 1;
                deliver(vm, vector, None)?;
            } else {
                vm.irqs.stats.no_gate += 1;
            }
        }
    }
    write_timestamp(vm, now)
}

/// `lguest_data.time` = the host's wall clock at `now`.
pub fn write_timestamp(vm: &Vm, now: u64) -> Result {
    let data = vm.data_field(off::TIME)?;
    let (sec, nsec) = vm.clock.wall(now);
    vm.mem.write_u32(data, sec, "lguest_data.time")?;
    vm.mem.write_u32(data + 4, nsec, "lguest_data.time")
}

/// When the host must next get control for the guest's sake (host clock
/// ns): its clock event's deadline, or a host tick from `now` while an irq
/// waits. None: only the guest's own exits matter.
pub fn host_deadline(vm: &Vm, now: u64) -> Option<u64> {
    let tick = (vm.irqs.pending != 0).then_some(now + HOST_TICK_NS);
    match (vm.clockevent.deadline, tick) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A halted guest (after [`before_entry`]) that nothing can wake is
/// stopped with the reason.
pub fn check_halted(vm: &Vm) -> Result {
    if !vm.irqs.halted || vm.clockevent.deadline.is_some() {
        return Ok(());
    }
    let blocked = vm.mem.read_u32(vm.data_field(off::BLOCKED_INTERRUPTS)?, "lguest_data")?;
    Err(fatal!(
        "the guest halted (eip {:#010x}) with no timer armed and no irq it has not blocked pending (pending {:#x}, blocked {:#x}): nothing can wake it",
        vm.regs.eip,
        vm.irqs.pending,
        blocked
    ))
}
