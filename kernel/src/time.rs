//! The kernel's time: a tick, a monotonic clock and `sleep`, on whatever
//! clock source and clock event device the backend provides.
//!
//! The tick runs in one of two ways, chosen per period:
//! - **periodic**: the device interrupts every period by itself (PIT,
//!   local APIC timer, Xen's periodic timer where the period is one it
//!   takes);
//! - **one-shot**: the handler arms the next deadline each time
//!   (Linux's tick-oneshot), computed as `start + (n + 1) * period`, never
//!   as "now + period", so interrupt latency does not accumulate.
//!
//! Ticks are accounted by the clock, not by counting interrupts (Linux's
//! `tick_do_update_jiffies64`): `jiffies = (now - start) / period` at
//! every timer interrupt. An interrupt that comes late, or two that
//! collapse into one, lose no tick from the accounting; the difference
//! between jiffies and interrupts is reported as interrupts missed.
//!
//! The tick's state is shared between the handler and the main code: the
//! main code reads and changes it with interrupts disabled.

use paravirt::{Clocks, Hypervisor, Line, Time};
use spin::{Mutex, Once};

use crate::fail;
use crate::irq::{self, IrqGuard};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    Periodic,
    OneShot,
    /// One interrupt at a deadline, then off.
    Single,
}

#[derive(Clone, Copy, Debug)]
pub struct Tick {
    pub mode: Mode,
    pub period: u64,
    /// Clock time the tick (or the single deadline's arming) started.
    pub start: u64,
    /// The armed deadline (one-shot and single).
    pub next: u64,
    /// Ticks accounted by the clock since `start`.
    pub jiffies: u64,
    /// Timer interrupts since `start`.
    pub interrupts: u64,
    /// Interrupts that came before their deadline (the device's longest
    /// delay was shorter) and only re-armed.
    pub early: u64,
    /// Interrupts while off: the device fired when nothing was armed.
    pub stray: u64,
    /// The clock at the last interrupt.
    pub last: u64,
    /// How late one-shot interrupts came after their deadline: in total,
    /// and the worst.
    pub late_total: u64,
    pub late_max: u64,
    /// The longest stretch without a timer interrupt since `start`.
    pub gap_max: u64,
}

const IDLE: Tick = Tick {
    mode: Mode::Off,
    period: 0,
    start: 0,
    next: 0,
    jiffies: 0,
    interrupts: 0,
    early: 0,
    stray: 0,
    last: 0,
    late_total: 0,
    late_max: 0,
    gap_max: 0,
};

static TICK: Mutex<Tick> = Mutex::new(IDLE);
static TIME: Once<&'static dyn Time> = Once::new();
static CLOCKS: Once<Clocks> = Once::new();

fn time() -> &'static dyn Time {
    *TIME.get().expect("time before time::init")
}

/// Starts the backend's clocks (interrupts still disabled) and registers
/// the tick handler.
pub fn init(
    hv: &'static dyn Hypervisor,
    services: &dyn paravirt::Services,
    cmdline: &paravirt::cmdline::CmdLine,
) -> Clocks {
    TIME.call_once(|| hv.time());
    let clocks = match hv.time().init(services, cmdline) {
        Ok(c) => c,
        Err(e) => fail!("clock set-up through {}: {}", hv.name(), e),
    };
    CLOCKS.call_once(|| clocks);
    irq::request_irq(Line::Timer, timer_interrupt);
    clocks
}

pub fn clocks() -> &'static Clocks {
    CLOCKS.get().expect("time::init first")
}

/// Monotonic nanoseconds.
pub fn now() -> u64 {
    time().clock_ns()
}

fn arm(deadline: u64) {
    if let Err(e) = time().set_oneshot(deadline) {
        fail!("arming the clock event device for {} ns: {}", deadline, e);
    }
}

fn timer_interrupt() {
    let now = now();
    timer_account(now);
    crate::sched::tick(now);
}

fn timer_account(now: u64) {
    let mut t = TICK.lock();
    let prev = if t.interrupts == 0 { t.start } else { t.last };
    t.gap_max = t.gap_max.max(now.saturating_sub(prev));
    t.last = now;
    match t.mode {
        Mode::Off => t.stray += 1,
        Mode::Periodic => {
            // The device's interrupts come at multiples of its own period,
            // which the clock measures a hair longer or shorter: round.
            t.interrupts += 1;
            t.jiffies = (now - t.start + t.period / 2) / t.period;
        }
        Mode::OneShot => {
            t.interrupts += 1;
            if now < t.next {
                t.early += 1;
            } else {
                let late = now - t.next;
                t.late_total += late;
                t.late_max = t.late_max.max(late);
                t.jiffies = (now - t.start) / t.period;
                t.next = t.start + (t.jiffies + 1) * t.period;
            }
            let next = t.next;
            arm(next);
        }
        Mode::Single => {
            t.interrupts += 1;
            if now < t.next {
                t.early += 1;
                let next = t.next;
                arm(next);
            } else {
                t.jiffies = 1;
                t.mode = Mode::Off;
            }
        }
    }
}

/// Starts a tick of `period_ns`, periodic if the device can and
/// `periodic` is asked for, one-shot otherwise. Returns the mode used.
pub fn start_tick(period_ns: u64, periodic: bool) -> Mode {
    let _off = IrqGuard::new();
    let mut t = TICK.lock();
    let start = now();
    let mode = if periodic && clocks().periodic_at(period_ns) { Mode::Periodic } else { Mode::OneShot };
    *t = Tick { mode, period: period_ns, start, next: start + period_ns, ..IDLE };
    let r = match mode {
        Mode::Periodic => time().set_periodic(period_ns),
        _ => time().set_oneshot(start + period_ns),
    };
    if let Err(e) = r {
        fail!("starting a {} ns tick: {}", period_ns, e);
    }
    mode
}

/// One interrupt at `deadline` (clock time), then nothing.
pub fn arm_single(deadline: u64) {
    let _off = IrqGuard::new();
    let mut t = TICK.lock();
    *t = Tick { mode: Mode::Single, period: 0, start: now(), next: deadline, ..IDLE };
    arm(deadline);
}

/// Stops the tick; returns its final state.
pub fn stop_tick() -> Tick {
    let _off = IrqGuard::new();
    let mut t = TICK.lock();
    if let Err(e) = time().stop() {
        fail!("stopping the clock event device: {}", e);
    }
    // Account up to now: the ticks since the last interrupt are not lost
    // because no interrupt came to count them.
    let now = now();
    if matches!(t.mode, Mode::Periodic | Mode::OneShot) {
        t.jiffies = t.jiffies.max((now - t.start) / t.period);
        let prev = if t.interrupts == 0 { t.start } else { t.last };
        t.gap_max = t.gap_max.max(now - prev);
        t.last = now;
    }
    let last = *t;
    t.mode = Mode::Off;
    last
}

/// The tick's state now.
#[allow(clippy::let_and_return)] // see below
pub fn tick() -> Tick {
    let _off = IrqGuard::new();
    // Copied out in its own statement: a lock guard in the tail expression
    // would outlive `_off` (edition 2021 drops tail temporaries last) and
    // be held with interrupts enabled.
    let t = *TICK.lock();
    t
}

/// Halts until the clock reaches `deadline`, waking at each interrupt.
/// Something must be armed to wake us (the tick, or `arm_single`).
/// Returns how many times it halted.
pub fn sleep_until(deadline: u64) -> u64 {
    let irq = crate::console::backend().expect("a backend").irq();
    let mut halts = 0;
    loop {
        irq.irq_disable();
        // Checked with interrupts off, then halted with them enabled in
        // one step: a wake-up between the check and the halt is not lost.
        if now() >= deadline {
            irq.irq_enable();
            return halts;
        }
        halts += 1;
        irq.safe_halt();
    }
}
