//! Time ops (Linux's `pv_time_ops`, clock sources and clock event
//! devices): how the kernel reads the time and asks to be interrupted.
//!
//! - The **clock source**: monotonic nanoseconds since some point at boot.
//!   Natively the TSC, calibrated against the PIT, or on a CPU without one
//!   (a 486) the PIT itself. Under Xen the TSC scaled by what Xen
//!   publishes in `vcpu_time_info` (pvclock): Xen measured the frequency,
//!   so the guest does not calibrate. Under lguest the TSC at the rate the
//!   host states.
//! - **Wall-clock time**: natively the CMOS clock, on Xen shared_info's
//!   `wc_sec`/`wc_nsec` plus system time, on lguest what the host writes.
//! - The **clock event device**: "interrupt me at time t" (one-shot), and
//!   where the device can do it by itself, "every p" (periodic). Natively
//!   the local APIC timer or the PIT; on Xen a hypercall arming a timer
//!   delivered as VIRQ_TIMER; on lguest a hypercall arming the host's.
//!   It fires [`crate::irq::Line::Timer`].
//!
//! Deadlines are absolute, on the clock source's timeline: the kernel
//! emulating a periodic tick with one-shots computes each deadline from
//! the last one, never from "now", so the tick does not drift by the
//! interrupt latency.

use core::fmt;

use crate::cmdline::CmdLine;
use crate::{native, HvResult, Services};

/// What [`Time::init`] chose, for the boot log and for the kernel's tick.
#[derive(Clone, Copy, Debug)]
pub struct Clocks {
    pub source: &'static str,
    /// The source's rate in kHz where it has one (a calibrated or stated
    /// TSC), 0 otherwise.
    pub source_khz: u64,
    /// How the rate was found: "calibrated against the PIT", "pvclock",
    /// "stated by the host".
    pub source_how: &'static str,
    pub event: &'static str,
    /// Periods (ns) the device can generate by itself; `None`: one-shot
    /// only (the kernel emulates a periodic tick).
    pub periodic: Option<(u64, u64)>,
    /// The shortest and longest one-shot delay the device takes (ns). A
    /// deadline further out fires early, at the longest delay; the kernel
    /// re-arms.
    pub min_delta_ns: u64,
    pub max_delta_ns: u64,
    pub wallclock: &'static str,
}

impl Clocks {
    pub fn periodic_at(&self, period_ns: u64) -> bool {
        matches!(self.periodic, Some((lo, hi)) if (lo..=hi).contains(&period_ns))
    }
}

/// Seconds and nanoseconds since 1970-01-01 00:00 UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallClock {
    pub sec: u64,
    pub nsec: u32,
}

impl fmt::Display for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = arch_i386::rtc::DateTime::from_unix(self.sec);
        write!(f, "{} UTC", t)
    }
}

pub trait Time: Sync {
    /// Chooses and starts the clock source and the clock event device
    /// (stopped), after [`crate::Irq::init`], with interrupts disabled.
    fn init(&self, services: &dyn Services, cmdline: &CmdLine) -> HvResult<Clocks> {
        native::pc::PC.time_init(services, cmdline)
    }

    /// Monotonic nanoseconds since the clock source started.
    fn clock_ns(&self) -> u64 {
        native::pc::PC.clock_ns()
    }

    fn wallclock(&self) -> WallClock {
        native::pc::PC.wallclock()
    }

    /// Interrupts every `period_ns` until stopped or re-armed. Only for a
    /// period in [`Clocks::periodic`].
    fn set_periodic(&self, period_ns: u64) -> HvResult {
        native::pc::PC.set_periodic(period_ns)
    }

    /// One interrupt when the clock reaches `deadline_ns` (as soon as
    /// possible if it has; early, at the device's longest delay, if the
    /// deadline is further). Replaces whatever was armed.
    fn set_oneshot(&self, deadline_ns: u64) -> HvResult {
        native::pc::PC.set_oneshot(deadline_ns)
    }

    /// No more timer interrupts.
    fn stop(&self) -> HvResult {
        native::pc::PC.stop_timer()
    }
}
