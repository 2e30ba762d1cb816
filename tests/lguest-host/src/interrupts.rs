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
//! host: a hypercall, a fault, or a host interrupt. The guest does not
//! tell the host when it enables interrupts (no SEND_INTERRUPTS in 2.6.24's
//! ABI: enabling is one store); on 2.6.24 the host's own timer tick made
//! the next exit come soon. That is too late for a guest that spins with
//! interrupts disabled all but a few instructions of each turn (as the
//! kernel's 1000 Hz self-test does: the tick's state is read under a
//! guard): a tick rarely lands in the enabled moment, and most irqs wait
//! whole ticks. So this host, unlike 2.6.24's, watches while an irq
//! waits ([`Watch`]), with no change to the guest's side:
//! - interrupts disabled: a hardware write watchpoint on `irq_enabled`
//!   (at its address in the guest's direct map, `__va` of the address
//!   LGUEST_INIT gave), so the store that enables them traps right after
//!   it, and the irq is delivered there, as a real `sti` would let it in;
//! - eip in the noirq window: the trap flag, one instruction at a time,
//!   until the guest's `iret` has left it.
//!
//! The host's timer still fires every [`HOST_TICK_NS`] while an irq is
//! pending ([`host_deadline`]), for what no watch sees: an irq the guest
//! blocked and then unblocks, a guest that reaches the flag through some
//! other mapping.
//!
//! A halted guest sleeps until an irq it has not blocked is pending. With
//! no timer armed and every pending irq blocked nothing here can ever wake
//! it (this host has no devices): [`check_halted`] ends the run with that
//! reason rather than sleep for ever.

use arch_i386::debug::{DR6_B0, DR6_BS};
use arch_i386::layout::PAGE_OFFSET;

use crate::abi::{off, FIRST_EXTERNAL_VECTOR, IRQ_ENABLED, LGUEST_IRQS, TIMER_IRQ};
use crate::clock::ClockEvent;
use crate::console::say;
use crate::deliver::deliver;
use crate::fatal::{fatal, Result};
use crate::vm::Vm;

/// How often the host interrupts a guest while an irq waits for it: a
/// 1000 Hz host's tick.
pub const HOST_TICK_NS: u64 = 1_000_000;

/// eflags.TF: the host's, while it steps the guest (the guest never sets
/// it; its own frames never carry it).
const TF: u32 = 1 << 8;

/// What the host watches while an irq waits, to get control the moment the
/// guest can take it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Watch {
    #[default]
    Nothing,
    /// Writes to `irq_enabled` at [`Interrupts::flag_va`] (a debug
    /// register's write watchpoint).
    FlagWrites,
    /// Every instruction (eflags.TF): eip is in the noirq window.
    Step,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Interrupts {
    /// Raised and not yet delivered: bit n, irq n.
    pub pending: u32,
    /// HALT: the guest sleeps until an irq wakes it.
    pub halted: bool,
    /// `[noirq_start, noirq_end)`, read at LGUEST_INIT.
    pub noirq: (u32, u32),
    /// Where the guest's kernel writes `irq_enabled`: `__va` of its
    /// guest-physical address.
    pub flag_va: u32,
    /// What the host watches during the guest's next run.
    pub watch: Watch,
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
    /// Exits the watches caused: the flag written, a step taken.
    pub flag_traps: u32,
    pub steps: u32,
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
            "interrupts delivered: {} (timer {}); clock events armed {}, expired {}; entries with an irq waiting: {} with interrupts disabled, {} in the noirq window, {} with no gate loaded; watch traps: {} irq_enabled writes, {} single steps",
            self.delivered(),
            s.delivered[TIMER_IRQ as usize],
            timer.armed,
            timer.fired,
            s.held_disabled,
            s.held_noirq,
            s.no_gate,
            s.flag_traps,
            s.steps
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
/// event has expired, then applies the rules, and sets what to watch.
pub fn before_entry(vm: &mut Vm) -> Result {
    // TF is the host's: off unless this entry steps the guest, and never in
    // a frame the guest is given.
    vm.regs.eflags &= !TF;
    vm.irqs.watch = Watch::Nothing;
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
            i.watch = Watch::Step;
            vm.regs.eflags |= TF;
            return Ok(());
        }
        Decision::Disabled(_) => {
            i.stats.held_disabled += 1;
            i.watch = Watch::FlagWrites;
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

/// A #DB (vector 1) exit with debug status `dr6`: true if the host's own
/// watch caused it (the run loop then looks again), false if it is the
/// guest's to handle.
pub fn host_debug_trap(vm: &mut Vm, dr6: u32) -> bool {
    let s = &mut vm.irqs.stats;
    match vm.irqs.watch {
        Watch::FlagWrites if dr6 & DR6_B0 != 0 => s.flag_traps += 1,
        Watch::Step if dr6 & DR6_BS != 0 => s.steps += 1,
        _ => return false,
    }
    true
}

/// `__va`: where the guest's kernel sees guest-physical `gpa` (Linux's
/// direct map, which 2.6.24's guest passes `lguest_data` through).
pub fn guest_va(gpa: u32) -> u32 {
    PAGE_OFFSET.wrapping_add(gpa)
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
