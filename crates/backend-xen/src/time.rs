//! Xen's time, for PV and PVH alike: the clock is pvclock over vCPU 0's
//! `vcpu_time_info` (no hypercall to read it), the wall clock is
//! shared_info's wall time at system time 0 plus the clock, and the clock
//! event device is vCPU 0's single-shot timer, delivered as VIRQ_TIMER on
//! an event channel.
//!
//! One-shot only, as Linux's Xen clockevent: Xen's periodic timer is
//! stopped while the vCPU is descheduled, so it cannot wake a vCPU
//! blocked in `SCHEDOP_block`. The 100 Hz periodic timer every PV vCPU
//! starts with is stopped here; the kernel's tick arms single-shots.
//!
//! Deadlines are Xen system time, which is what the clock returns, so a
//! deadline goes to Xen as it is.

use spin::Mutex;

use paravirt::{Clocks, HvError, HvResult, Irq, WallClock};

use crate::abi::{nr, VCPUOP_SET_SINGLESHOT_TIMER, VCPUOP_STOP_PERIODIC_TIMER, VCPUOP_STOP_SINGLESHOT_TIMER};
use crate::evtchn::EventChannels;
use crate::hypercall::HypercallPage;
use crate::pvclock::TSC_STABLE;
use crate::shared_info::{Page, SharedInfo};

/// `struct vcpu_set_singleshot_timer`, compat layout: 12 bytes (the u64
/// 4-aligned).
#[repr(C, packed(4))]
struct SingleshotTimer {
    timeout_abs_ns: u64,
    flags: u32,
}

const _: () = assert!(core::mem::size_of::<SingleshotTimer>() == 12);

pub struct XenTime {
    /// The largest time returned so far, for a pvclock without
    /// TSC_STABLE: snapshots taken on different occasions may disagree by
    /// a little, and the clock must not go backwards. Touched with
    /// interrupts disabled only.
    last: Mutex<u64>,
}

impl Default for XenTime {
    fn default() -> Self {
        Self::new()
    }
}

fn page(shared: &SharedInfo) -> HvResult<Page> {
    shared.page().ok_or(HvError::local("xen: time before shared_info is mapped", &[]))
}

impl XenTime {
    pub const fn new() -> XenTime {
        XenTime { last: Mutex::new(0) }
    }

    /// Binds the timer VIRQ, stops both timers, unmasks the port.
    pub fn init(&self, hc: &HypercallPage, shared: &SharedInfo, events: &EventChannels) -> HvResult<Clocks> {
        let page = page(shared)?;
        let port = events.bind_timer(hc, page)?;
        let rc = hc.call(nr::VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0]);
        if rc < 0 {
            return Err(HvError::refused("vcpu_op(VCPUOP_stop_periodic_timer, 0)", &[], rc as i64));
        }
        self.stop(hc)?;
        events.unmask(page, port);
        let t = page.time();
        log::info!(
            "xen: VIRQ_TIMER on event channel port {}; pvclock at {} ns, TSC {} kHz by Xen's scale (mul {:#x} shift {}){}",
            port,
            t.system_time,
            t.tsc_khz(),
            t.mul,
            t.shift,
            if t.flags & TSC_STABLE != 0 { ", TSC stable" } else { "" }
        );
        Ok(Clocks {
            source: "xen-pvclock",
            source_khz: t.tsc_khz(),
            source_how: "Xen's system time and TSC scale from vcpu_time_info",
            event: "xen-singleshot-timer",
            periodic: None,
            min_delta_ns: 1000,
            max_delta_ns: 1 << 40,
            wallclock: "shared_info wc_sec/wc_nsec + system time",
        })
    }

    /// Xen system time, ns. `irq` masks events around the monotonic
    /// guard (the timer handler reads the clock too).
    pub fn clock_ns(&self, shared: &SharedInfo, irq: &dyn Irq) -> u64 {
        let Some(page) = shared.page() else { return 0 };
        let t = page.time();
        let ns = t.ns_at(arch_i386::cpu::rdtsc());
        if t.flags & TSC_STABLE != 0 {
            return ns;
        }
        let flags = irq.save_fl();
        irq.irq_disable();
        let mut last = self.last.lock();
        let ns = ns.max(*last);
        *last = ns;
        drop(last);
        irq.restore_fl(flags);
        ns
    }

    pub fn wallclock(&self, shared: &SharedInfo, irq: &dyn Irq) -> WallClock {
        let Some(page) = shared.page() else { return WallClock::default() };
        let (sec, nsec) = page.wallclock_base();
        let ns = self.clock_ns(shared, irq) + nsec as u64;
        WallClock { sec: sec + ns / 1_000_000_000, nsec: (ns % 1_000_000_000) as u32 }
    }

    /// VIRQ_TIMER at system time `deadline_ns` (at once if it has passed:
    /// flags 0).
    pub fn set_oneshot(&self, hc: &HypercallPage, deadline_ns: u64) -> HvResult {
        let t = SingleshotTimer { timeout_abs_ns: deadline_ns, flags: 0 };
        let rc = hc.call(nr::VCPU_OP, [VCPUOP_SET_SINGLESHOT_TIMER, 0, &raw const t as u32, 0, 0]);
        if rc < 0 {
            return Err(HvError::refused(
                "vcpu_op(VCPUOP_set_singleshot_timer, 0)",
                &[deadline_ns],
                rc as i64,
            ));
        }
        Ok(())
    }

    pub fn stop(&self, hc: &HypercallPage) -> HvResult {
        let rc = hc.call(nr::VCPU_OP, [VCPUOP_STOP_SINGLESHOT_TIMER, 0, 0, 0, 0]);
        if rc < 0 {
            return Err(HvError::refused("vcpu_op(VCPUOP_stop_singleshot_timer, 0)", &[], rc as i64));
        }
        Ok(())
    }
}

impl paravirt::Time for crate::XenPv {
    fn init(&self, _: &dyn paravirt::Services, _: &paravirt::cmdline::CmdLine) -> HvResult<Clocks> {
        self.time.init(self.hc(), &self.shared, &self.events)
    }
    fn clock_ns(&self) -> u64 {
        self.time.clock_ns(&self.shared, self)
    }
    fn wallclock(&self) -> WallClock {
        self.time.wallclock(&self.shared, self)
    }
    fn set_periodic(&self, _: u64) -> HvResult {
        Err(HvError::local("xen: no periodic clock events (one-shot only)", &[]))
    }
    fn set_oneshot(&self, deadline_ns: u64) -> HvResult {
        self.time.set_oneshot(self.hc(), deadline_ns)
    }
    fn stop(&self) -> HvResult {
        self.time.stop(self.hc())
    }
}

impl paravirt::Time for crate::hvm::XenHvm {
    fn init(&self, _: &dyn paravirt::Services, _: &paravirt::cmdline::CmdLine) -> HvResult<Clocks> {
        self.time.init(&self.hc, &self.shared, &self.events)
    }
    fn clock_ns(&self) -> u64 {
        self.time.clock_ns(&self.shared, self)
    }
    fn wallclock(&self) -> WallClock {
        self.time.wallclock(&self.shared, self)
    }
    fn set_periodic(&self, _: u64) -> HvResult {
        Err(HvError::local("xen: no periodic clock events (one-shot only)", &[]))
    }
    fn set_oneshot(&self, deadline_ns: u64) -> HvResult {
        self.time.set_oneshot(&self.hc, deadline_ns)
    }
    fn stop(&self) -> HvResult {
        self.time.stop(&self.hc)
    }
}
