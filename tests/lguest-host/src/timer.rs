//! The host's time hardware: the TSC, measured against the PIT, and PIT
//! channel 0 as a one-shot timer that brings the host back when the guest
//! needs it.
//!
//! - The 8259s are moved off the exception vectors (IRQ 0 would otherwise
//!   arrive as vector 8, a "double fault"), every line masked but IRQ 0,
//!   PIT channel 0, at [`TIMER_VECTOR`].
//! - The TSC's rate is the TSC ticks while PIT channel 2 counts down
//!   [`CALIBRATION_MS`] (Linux's `pit_calibrate_tsc`, as the native kernel
//!   does it): the rate the guest is told in `lguest_data.tsc_khz`. Taken
//!   [`CALIBRATIONS`] times, keeping the least, as Linux's
//!   `native_calibrate_tsc` does: under TCG on a loaded machine single
//!   measurements came out as much as six times too high, never too low,
//!   and a guest told such a rate runs its clock six times slow against
//!   the PIT. The wall clock is the CMOS clock, read once, advanced by the
//!   TSC.
//! - Channel 0 is one-shot (mode 0), armed before every entry into the
//!   guest for the earliest of: the guest's clock event, a host tick while
//!   an irq waits (`interrupts::host_deadline`), and, with nothing else,
//!   its longest count (54.9 ms), so the watchdog looks at the guest that
//!   often. It counts 838 ns steps, rounded up: it never fires before the
//!   deadline, and the host compares deadlines with the TSC.
//!
//! The host itself runs with interrupts disabled. The guest runs with the
//! real IF set (its own flag is virtual), so the PIT interrupts it and
//! comes to the host as an exit like any other. While the guest is halted
//! the host waits with `sti; hlt` ([`HostTimer::idle`]), the one place it
//! enables interrupts; the Switcher's stub sends an interrupt taken there
//! to [`host_interrupt`](crate::trap), which acknowledges it.

use arch_i386::{cpu, irq as hw, pic, pit};

use lguest_host::fatal::Result;
use lguest_host::interrupts;
use lguest_host::layout::TIMER_VECTOR;
use lguest_host::vm::Vm;

/// How long one TSC calibration measures (one PIT count of error is then
/// under 0.01%), and how many are taken.
pub const CALIBRATION_MS: u64 = 20;
pub const CALIBRATIONS: usize = 5;

/// The TSC's rate as measured: the least of the measurements (kHz), and
/// the greatest, for the log.
pub struct TscRate {
    pub khz: u32,
    pub worst_khz: u32,
}

/// Sets up the 8259s, stops channel 0, and measures the TSC.
pub fn init() -> TscRate {
    pic::remap(TIMER_VECTOR as u8);
    pic::unmask(0);
    pit::ch0_stop();
    let mut rate = TscRate { khz: u32::MAX, worst_khz: 0 };
    for _ in 0..CALIBRATIONS {
        pit::ch2_oneshot((pit::HZ as u64 * CALIBRATION_MS / 1000) as u32);
        let t0 = cpu::rdtsc();
        while !pit::ch2_expired() {}
        let khz = ((cpu::rdtsc() - t0) / CALIBRATION_MS) as u32;
        rate.khz = rate.khz.min(khz);
        rate.worst_khz = rate.worst_khz.max(khz);
    }
    rate
}

/// PIT channel 0, as the host last programmed it.
pub struct HostTimer {
    /// When it will fire (host clock ns), if it has not yet.
    armed: Option<u64>,
}

impl HostTimer {
    pub const fn new() -> HostTimer {
        HostTimer { armed: None }
    }

    /// Makes channel 0 fire by `target` (host clock ns) at the latest, or
    /// after its longest count if that is sooner. A count already running
    /// that ends in time is left alone: the guest re-enters after every
    /// exit, and most exits change nothing.
    pub fn arm(&mut self, now: u64, target: u64) {
        if self.armed.is_some_and(|a| a > now && a <= target) {
            return;
        }
        // Channel 0 counts 16 bits at most (54.9 ms).
        let longest = pit::ns_for_counts(65536);
        let counts = pit::counts_for_ns(target.saturating_sub(now).min(longest));
        pit::ch0_oneshot(counts);
        self.armed = Some(now + pit::ns_for_counts(counts as u64));
    }

    /// Channel 0 fired (its interrupt was taken).
    pub fn fired(&mut self) {
        self.armed = None;
    }

    /// Arms for what the guest needs next, before entering it.
    pub fn arm_for(&mut self, vm: &Vm) {
        let now = vm.clock.now();
        self.arm(now, interrupts::host_deadline(vm, now).unwrap_or(u64::MAX));
    }

    /// The guest is halted: waits for channel 0, with interrupts enabled,
    /// then returns for the next turn of the run loop (which wakes the
    /// guest if its timer is due). A halt nothing can end stops the guest.
    pub fn idle(&mut self, vm: &mut Vm) -> Result {
        interrupts::check_halted(vm)?;
        let start = vm.clock.now();
        self.arm_for(vm);
        // `sti; hlt`: an interrupt that came after the arming is taken at
        // the `hlt`, never lost between the two.
        hw::safe_halt();
        hw::disable();
        self.fired();
        vm.irqs.stats.idle_ns += vm.clock.now() - start;
        Ok(())
    }
}
