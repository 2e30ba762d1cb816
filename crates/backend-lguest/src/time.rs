//! Time under lguest, as 2.6.24 has it (arch/x86/lguest/boot.c,
//! `lguest_clock` and `lguest_clockevent`).
//!
//! - **Clock source**: the TSC, at the rate the host states in
//!   `lguest_data.tsc_khz` at LGUEST_INIT. The guest does not calibrate:
//!   it has no timer of its own to calibrate against, and the host knows.
//!   A host that states 0 does not trust its TSC (2.6.24's host says 0
//!   unless the TSC is constant and stable). 2.6.24's guest then reads
//!   `lguest_data.time`, which moves only when the host delivers an
//!   interrupt, so a guest spinning with interrupts off would wait for
//!   ever: this backend refuses instead, saying why.
//! - **Wall clock**: `lguest_data.time`, which the host writes at
//!   LGUEST_INIT (and at interrupt deliveries, none of which has happened
//!   when `init` reads it: every irq is still blocked), advanced by the
//!   clock source. Like 2.6.24's `read_persistent_clock`, it lags by
//!   however long the boot took since LGUEST_INIT.
//! - **Clock event device**: LHCALL_SET_CLOCKEVENT(delta in ns), which
//!   arms the host's one-shot timer for the guest (a new call replaces
//!   it; 0 stops it); it raises irq 0. One-shot only: the kernel's tick
//!   re-arms it from each interrupt. Deltas are clamped to 2.6.24's
//!   [100 ns, 2^32 - 1 ns]: a deadline already past fires after 100 ns (0
//!   would mean "stop"), one further than 4.29 s fires early and the
//!   kernel re-arms. The hypercall is synchronous, as in 2.6.24: the host
//!   must know the deadline before the guest goes on.

use paravirt::cmdline::CmdLine;
use paravirt::{Clocks, HvError, HvResult, Services, Time, WallClock};

use crate::abi::{nr, off, CLOCK_MAX_DELTA, CLOCK_MIN_DELTA, TIMER_IRQ};
use crate::transport::Host;
use crate::Lguest;

/// The TSC as a clock: `ns = (tsc - base) * mult >> 32`, and the wall
/// clock the host wrote, as of clock time `wall_at`.
pub struct TscClock {
    base: u64,
    mult: u64,
    wall: WallClock,
    wall_at: u64,
}

impl TscClock {
    fn new(khz: u64, base: u64) -> TscClock {
        TscClock { base, mult: (1_000_000u64 << 32) / khz, wall: WallClock::default(), wall_at: 0 }
    }

    fn ns(&self, tsc: u64) -> u64 {
        ((tsc.wrapping_sub(self.base) as u128 * self.mult as u128) >> 32) as u64
    }
}

/// SET_CLOCKEVENT's argument for a deadline `delta_ns` from now.
pub fn clockevent_delta(delta_ns: u64) -> u32 {
    delta_ns.clamp(CLOCK_MIN_DELTA as u64, CLOCK_MAX_DELTA as u64) as u32
}

impl<H: Host> Time for Lguest<H> {
    fn init(&self, _services: &dyn Services, _cmdline: &CmdLine) -> HvResult<Clocks> {
        let d = self.hc.data();
        let khz = d.read(off::TSC_KHZ) as u64;
        if khz == 0 {
            return Err(HvError::local(
                "lguest: the host states no TSC rate (lguest_data.tsc_khz = 0), and lguest_data.time moves only when an interrupt is delivered: no clock source",
                &[],
            ));
        }
        let mut clock = TscClock::new(khz, arch_i386::cpu::rdtsc());
        clock.wall = WallClock { sec: d.read(off::TIME) as u64, nsec: d.read(off::TIME + 4) };
        clock.wall_at = clock.ns(arch_i386::cpu::rdtsc());
        self.clock.call_once(|| clock);
        // Last, as 2.6.24's lguest_time_init: the clock's irq may come in
        // once everything it needs is set up.
        self.block(TIMER_IRQ, false);
        Ok(Clocks {
            source: "lguest-tsc",
            source_khz: khz,
            source_how: "stated by the host",
            event: "lguest-clockevent",
            periodic: None,
            min_delta_ns: CLOCK_MIN_DELTA as u64,
            max_delta_ns: CLOCK_MAX_DELTA as u64,
            wallclock: "lguest_data.time",
        })
    }

    fn clock_ns(&self) -> u64 {
        match self.clock.get() {
            Some(c) => c.ns(arch_i386::cpu::rdtsc()),
            None => 0,
        }
    }

    fn wallclock(&self) -> WallClock {
        let Some(c) = self.clock.get() else { return WallClock::default() };
        let t = c.wall.nsec as u64 + self.clock_ns().saturating_sub(c.wall_at);
        WallClock { sec: c.wall.sec + t / 1_000_000_000, nsec: (t % 1_000_000_000) as u32 }
    }

    fn set_periodic(&self, period_ns: u64) -> HvResult {
        Err(HvError::local("lguest: the clock event device is one-shot only (period ns)", &[period_ns]))
    }

    fn set_oneshot(&self, deadline_ns: u64) -> HvResult {
        let delta = clockevent_delta(deadline_ns.saturating_sub(self.clock_ns()));
        self.hc.call(nr::SET_CLOCKEVENT, delta, 0, 0);
        Ok(())
    }

    fn stop(&self) -> HvResult {
        self.hc.call(nr::SET_CLOCKEVENT, 0, 0, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::fake::FakeHost;
    use arch_i386::Pfn;

    struct NoServices;
    impl Services for NoServices {
        fn map_device(&self, _: paravirt::DevicePage, _: u64) -> HvResult<usize> {
            unreachable!()
        }
    }

    fn booted(tsc_khz: u32) -> Lguest<FakeHost> {
        let lg = Lguest::<FakeHost>::faked(Pfn(1));
        lg.hc.ensure_init();
        lg.hc.data().write(off::TSC_KHZ, tsc_khz);
        lg.hc.data().write(off::TIME, 1_750_000_000);
        lg
    }

    #[test]
    fn the_tsc_at_the_hosts_rate_and_the_timer_irq_unblocked() {
        let lg = booted(2_000_000);
        let c = lg.init(&NoServices, &CmdLine::from_bytes(b"")).unwrap();
        assert_eq!((c.source, c.source_khz, c.periodic), ("lguest-tsc", 2_000_000, None));
        assert_eq!((c.min_delta_ns, c.max_delta_ns), (100, u32::MAX as u64));
        assert_eq!(lg.hc.data().read(off::BLOCKED_INTERRUPTS), !1, "only the timer's irq unblocked");
        assert_eq!(lg.wallclock().sec, 1_750_000_000);
        let clock = TscClock::new(2_000_000, 1000);
        assert_eq!(clock.ns(1000 + 2_000_000_000), 1_000_000_000);
    }

    #[test]
    fn a_host_that_states_no_tsc_rate_is_refused() {
        let lg = booted(0);
        let e = lg.init(&NoServices, &CmdLine::from_bytes(b"")).unwrap_err();
        assert!(std::format!("{e}").contains("tsc_khz = 0"), "{e}");
    }

    #[test]
    fn one_shot_deltas_are_clamped_and_zero_stops() {
        let lg = booted(1_000_000);
        lg.init(&NoServices, &CmdLine::from_bytes(b"")).unwrap();
        assert!(lg.set_periodic(10_000_000).is_err());
        // The clock reads 0 here (no TSC on the host): deadlines are deltas.
        lg.set_oneshot(0).unwrap();
        lg.set_oneshot(1_000_000).unwrap();
        lg.set_oneshot(10_000_000_000).unwrap();
        lg.stop().unwrap();
        let calls: Vec<(u32, u32)> =
            lg.host().done().iter().filter(|c| c.0 == nr::SET_CLOCKEVENT).map(|c| (c.0, c.1)).collect();
        let e = nr::SET_CLOCKEVENT;
        assert_eq!(calls, [(e, 100), (e, 1_000_000), (e, u32::MAX), (e, 0)]);
        assert_eq!(lg.hc.counters().hypercalls, 5, "LGUEST_INIT and four clock events");
    }
}
