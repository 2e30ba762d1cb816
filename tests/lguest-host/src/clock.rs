//! The host's time, and the guest's clock event device.
//!
//! The host keeps time with the TSC, whose rate the binary measures
//! against the PIT at start-up (the rate 2.6.24's host hands the guest in
//! `lguest_data.tsc_khz`), and knows the wall clock from the CMOS clock
//! read then. [`Clock`] turns TSC readings into nanoseconds since then and
//! into wall-clock time; the TSC itself is read through a function the
//! binary supplies (`rdtsc`) and tests fake.
//!
//! [`ClockEvent`] is 2.6.24's per-guest hrtimer (`lg->hrt`): SET_CLOCKEVENT
//! arms it `delta` ns from now (replacing what was armed; 0 disarms), and
//! when the clock reaches the deadline it raises irq 0, once. Deadlines
//! are nanoseconds on the host's clock; the binary gets control back in
//! time for the next one with its own hardware timer.

/// Nanoseconds per second.
pub const NS: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// TSC ticks per millisecond.
    pub tsc_khz: u32,
    read_tsc: fn() -> u64,
    /// `ns = ticks * mult >> 32`: the host reads its clock several times
    /// an exit, and a 128-bit division is a long call on i386.
    mult: u64,
    /// The TSC and the wall clock (Unix seconds) when the clock started.
    tsc0: u64,
    wall0: u64,
}

impl Clock {
    /// A clock starting now, with the wall clock at `wall_sec`.
    pub fn new(tsc_khz: u32, read_tsc: fn() -> u64, wall_sec: u64) -> Clock {
        assert!(tsc_khz > 0, "a TSC that does not tick is no clock");
        let mult = (1_000_000u64 << 32) / tsc_khz as u64;
        Clock { tsc_khz, read_tsc, mult, tsc0: read_tsc(), wall0: wall_sec }
    }

    /// Nanoseconds since the clock started.
    pub fn now(&self) -> u64 {
        let ticks = (self.read_tsc)().wrapping_sub(self.tsc0);
        ((ticks as u128 * self.mult as u128) >> 32) as u64
    }

    /// Wall-clock time at clock time `ns`: (seconds since 1970, ns), the
    /// guest's `struct timespec`.
    pub fn wall(&self, ns: u64) -> (u32, u32) {
        ((self.wall0 + ns / NS) as u32, (ns % NS) as u32)
    }
}

/// The guest's one-shot timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClockEvent {
    /// When it fires (host clock ns), if armed.
    pub deadline: Option<u64>,
    /// SET_CLOCKEVENT calls that armed it, and deadlines that expired.
    pub armed: u32,
    pub fired: u32,
}

impl ClockEvent {
    /// SET_CLOCKEVENT(delta) at clock time `now`: 0 stops it.
    pub fn set(&mut self, now: u64, delta_ns: u32) {
        if delta_ns == 0 {
            self.deadline = None;
        } else {
            self.deadline = Some(now + delta_ns as u64);
            self.armed += 1;
        }
    }

    /// Has the deadline passed at `now`? If so it is disarmed (one-shot):
    /// the caller raises the irq.
    pub fn expire(&mut self, now: u64) -> bool {
        match self.deadline {
            Some(d) if now >= d => {
                self.deadline = None;
                self.fired += 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    std::thread_local! {
        static TSC: core::cell::Cell<u64> = const { core::cell::Cell::new(5_000) };
    }
    fn tsc() -> u64 {
        TSC.with(|t| t.get())
    }

    #[test]
    fn tsc_ticks_become_nanoseconds_and_wall_time() {
        let c = Clock::new(2_000_000, tsc, 1_700_000_000);
        assert_eq!(c.now(), 0);
        TSC.with(|t| t.set(5_000 + 3_000_000_001));
        assert_eq!(c.now(), 1_500_000_000);
        assert_eq!(c.wall(c.now()), (1_700_000_001, 500_000_000));
    }

    #[test]
    fn the_timer_fires_once_at_its_deadline_and_zero_stops_it() {
        let mut t = ClockEvent::default();
        t.set(1000, 100);
        assert!(!t.expire(1099));
        assert!(t.expire(1100));
        assert!(!t.expire(2000), "one-shot");
        t.set(2000, 500);
        t.set(2100, 0);
        assert!(!t.expire(10_000), "stopped");
        t.set(3000, 50);
        t.set(3000, 700);
        assert!(!t.expire(3050), "a new call replaces the deadline");
        assert!(t.expire(3700));
        assert_eq!((t.armed, t.fired), (4, 2));
    }
}
