//! The PC's own interrupt and time hardware, as a native kernel drives it:
//! the default behind every method of [`Irq`](crate::Irq)'s controller
//! half and of [`Time`](crate::Time).
//!
//! - Controller: the two 8259s, moved to vectors 0x20-0x2F, every line
//!   masked but the timer's when the PIT is the event device. With a local
//!   APIC its timer interrupts at [`LAPIC_TIMER_VECTOR`] and is
//!   acknowledged there; the 8259s stay masked.
//! - Clock source: the TSC where CPUID has one, its rate measured against
//!   PIT channel 2 (a known 1.193182 MHz) over [`CALIBRATION_MS`]. Without
//!   one (a 486), PIT channel 2 itself, free-running: 16 bits that wrap
//!   every 55 ms, extended to 64 by every read (the tick reads it far more
//!   often than that).
//! - Event device: the local APIC timer where CPUID has an APIC, its rate
//!   measured against the clock source; otherwise PIT channel 0 (one-shot
//!   at most 55 ms ahead; the kernel re-arms for a later deadline).
//! - Wall clock: the CMOS clock, read once, advanced by the clock source.
//!
//! `clocksource=tsc|pit` and `clockevent=lapic|pit` on the command line
//! choose the PIT even where the CPU has better, so the 486's paths are
//! tested on every CPU model.
//!
//! There is one of each device in a PC, so this state is one static,
//! [`PC`], set once by `time_init`.

use spin::{Mutex, Once};

use arch_i386::lapic::{self, Lapic};
use arch_i386::{cpu, irq as hw, pic, pit, rtc};

use crate::cmdline::CmdLine;
use crate::irq::Line;
use crate::services::DevicePage;
use crate::time::{Clocks, WallClock};
use crate::{HvError, HvResult, Services};

/// Where the 8259s deliver IRQ 0-15.
pub const PIC_BASE: u8 = 0x20;
/// The local APIC timer's vector (Linux's LOCAL_TIMER_VECTOR).
pub const LAPIC_TIMER_VECTOR: u8 = 0xEF;
/// The local APIC's spurious vector: taken, never acknowledged.
pub const LAPIC_SPURIOUS_VECTOR: u8 = 0xFF;

/// How long each calibration measures (ms): long enough that one PIT
/// count of error is about 0.01%.
pub const CALIBRATION_MS: u64 = 10;
/// Runs of each calibration: the TSC's least counts, the local APIC
/// timer's median.
pub const CALIBRATIONS: u32 = 3;

const PIT_MIN_COUNTS: u64 = 15;
const LAPIC_MIN_COUNTS: u64 = 15;

enum Source {
    /// `ns = (tsc - base) * mult >> 32`.
    Tsc {
        khz: u64,
        base: u64,
        mult: u64,
    },
    Pit,
}

enum Event {
    Pit,
    Lapic { counts_per_ms: u64 },
}

/// PIT channel 2 as a 64-bit counter.
struct PitClock {
    last: u16,
    counts: u64,
}

pub struct Pc {
    source: Once<Source>,
    event: Once<Event>,
    lapic: Once<Lapic>,
    pit_clock: Mutex<PitClock>,
    /// The CMOS reading (Unix seconds) and the clock when it was taken.
    wall: Once<(u64, u64)>,
}

pub static PC: Pc = Pc {
    source: Once::new(),
    event: Once::new(),
    lapic: Once::new(),
    pit_clock: Mutex::new(PitClock { last: 0, counts: 0 }),
    wall: Once::new(),
};

/// Runs `f` with the processor's interrupts off (native only: this module
/// is the native platform).
fn irqs_off<T>(f: impl FnOnce() -> T) -> T {
    let flags = hw::flags();
    hw::disable();
    let v = f();
    hw::restore(flags);
    v
}

impl Pc {
    // ---- Controller -------------------------------------------------------

    pub fn irq_init(&self) -> HvResult<&'static str> {
        pic::remap(PIC_BASE);
        Ok("8259 PIC pair (IRQ 0-15 at vectors 0x20-0x2f)")
    }

    pub fn dispatch(&self, vector: u32, handle: &mut dyn FnMut(Line)) {
        let pic_range = PIC_BASE as u32..PIC_BASE as u32 + 16;
        if pic_range.contains(&vector) {
            let irq = (vector - PIC_BASE as u32) as u8;
            if pic::is_spurious(irq) {
                return;
            }
            // Edge-triggered: acknowledge first (Linux's handle_edge_irq),
            // so an edge during the handler is kept, not lost.
            pic::eoi(irq);
            let timer = irq == 0 && matches!(self.event.get(), Some(Event::Pit));
            handle(if timer { Line::Timer } else { Line::Other(irq as u32) });
        } else if vector == LAPIC_TIMER_VECTOR as u32 && self.lapic.get().is_some() {
            if let Some(l) = self.lapic.get() {
                l.eoi();
            }
            handle(Line::Timer);
        } else if vector == LAPIC_SPURIOUS_VECTOR as u32 && self.lapic.get().is_some() {
            // Nothing to acknowledge (the APIC did not set an ISR bit).
        } else {
            handle(Line::Other(vector));
        }
    }

    // ---- Time -------------------------------------------------------------

    pub fn time_init(&self, services: &dyn Services, cmdline: &CmdLine) -> HvResult<Clocks> {
        let bad = |_| HvError::local("bad clock switch: clocksource=tsc|pit, clockevent=lapic|pit", &[]);
        let want_source = cmdline.get_choice("clocksource", &["tsc", "pit"], "tsc or pit").map_err(bad)?;
        let want_event = cmdline.get_choice("clockevent", &["lapic", "pit"], "lapic or pit").map_err(bad)?;
        let f = cpu::probe();
        pit::ch0_stop(); // the firmware's 18.2 Hz tick

        let source = if f.tsc && want_source != Some("pit") {
            let khz = calibrate_tsc_khz();
            if khz == 0 {
                return Err(HvError::local("TSC calibration: the TSC did not advance", &[]));
            }
            Source::Tsc { khz, base: cpu::rdtsc(), mult: (1_000_000u64 << 32) / khz }
        } else {
            pit::ch2_free_running();
            *self.pit_clock.lock() = PitClock { last: pit::ch2_read(), counts: 0 };
            Source::Pit
        };
        let (source_name, source_khz, source_how) = match source {
            Source::Tsc { khz, .. } => ("tsc", khz, "calibrated against PIT channel 2"),
            Source::Pit => ("pit", pit::HZ as u64 / 1000, "PIT channel 2 free-running, 16 bits extended"),
        };
        self.source.call_once(|| source);

        let event = if f.apic && want_event != Some("pit") {
            let l = self.map_lapic(services, &f)?;
            l.enable(LAPIC_SPURIOUS_VECTOR);
            let counts_per_ms = self.calibrate_lapic(&l);
            if counts_per_ms == 0 {
                return Err(HvError::local("local APIC timer calibration: the counter did not move", &[]));
            }
            self.lapic.call_once(|| l);
            Event::Lapic { counts_per_ms }
        } else {
            pic::unmask(0);
            Event::Pit
        };
        let clocks = match event {
            Event::Lapic { counts_per_ms } => {
                let min = LAPIC_MIN_COUNTS * 1_000_000 / counts_per_ms;
                let max = u32::MAX as u64 * 1_000_000 / counts_per_ms;
                Clocks {
                    event: "lapic-timer",
                    periodic: Some((min.max(1000), max)),
                    min_delta_ns: min.max(1000),
                    max_delta_ns: max,
                    ..self.partial(source_name, source_khz, source_how)
                }
            }
            Event::Pit => {
                let min = pit::ns_for_counts(PIT_MIN_COUNTS);
                let max = pit::ns_for_counts(65536);
                Clocks {
                    event: "pit",
                    periodic: Some((min, max)),
                    min_delta_ns: min,
                    max_delta_ns: max,
                    ..self.partial(source_name, source_khz, source_how)
                }
            }
        };
        self.event.call_once(|| event);
        let now = rtc::now().unix_seconds();
        let at = self.clock_ns();
        self.wall.call_once(|| (now, at));
        Ok(clocks)
    }

    fn partial(&self, source: &'static str, source_khz: u64, source_how: &'static str) -> Clocks {
        Clocks {
            source,
            source_khz,
            source_how,
            event: "",
            periodic: None,
            min_delta_ns: 0,
            max_delta_ns: 0,
            wallclock: "cmos-rtc",
        }
    }

    fn map_lapic(&self, services: &dyn Services, f: &cpu::CpuFeatures) -> HvResult<Lapic> {
        // P6 and later have the base MSR (and may have the APIC disabled
        // in it); the Pentium's APIC sits at the default address.
        let mut base = lapic::DEFAULT_BASE;
        if f.msr && f.family >= 6 {
            let msr = arch_i386::cr::rdmsr(lapic::BASE_MSR);
            base = msr & 0xFFFF_F000;
            if msr & lapic::BASE_ENABLE == 0 {
                // SAFETY: sets only the enable bit of the APIC base MSR
                // CPUID said exists, at the base it already holds.
                unsafe { arch_i386::cr::wrmsr(lapic::BASE_MSR, msr | lapic::BASE_ENABLE) };
            }
        }
        let va = services.map_device(DevicePage::Lapic, base)?;
        // SAFETY: the kernel mapped the APIC's page uncached at `va` for
        // good (`Services::map_device`).
        Ok(unsafe { Lapic::new(va) })
    }

    /// Bus counts (divided by 16) per millisecond, measured against the
    /// clock source.
    /// The local APIC timer's counts per ms: the median of
    /// `CALIBRATIONS` runs against the clock source, so one run a busy
    /// host distorted does not decide (seen under TCG: one rate 27% low,
    /// and every tick after it 1.37 times too fast).
    fn calibrate_lapic(&self, l: &Lapic) -> u64 {
        let mut runs = [0u64; CALIBRATIONS as usize];
        for r in runs.iter_mut() {
            *r = self.calibrate_lapic_once(l);
        }
        runs.sort_unstable();
        runs[runs.len() / 2]
    }

    fn calibrate_lapic_once(&self, l: &Lapic) -> u64 {
        let start = self.clock_ns();
        l.timer_count_from(u32::MAX);
        while self.clock_ns() - start < CALIBRATION_MS * 1_000_000 {}
        let counted = (u32::MAX - l.timer_current()) as u64;
        let ns = self.clock_ns() - start;
        l.timer_stop();
        counted * 1_000_000 / ns.max(1)
    }

    pub fn clock_ns(&self) -> u64 {
        match self.source.get() {
            Some(Source::Tsc { base, mult, .. }) => {
                let d = cpu::rdtsc().wrapping_sub(*base);
                ((d as u128 * *mult as u128) >> 32) as u64
            }
            Some(Source::Pit) => irqs_off(|| {
                let mut c = self.pit_clock.lock();
                let now = pit::ch2_read();
                // Channel 2 counts down.
                c.counts += c.last.wrapping_sub(now) as u64;
                c.last = now;
                let counts = c.counts;
                drop(c);
                counts / pit::HZ as u64 * 1_000_000_000 + pit::ns_for_counts(counts % pit::HZ as u64)
            }),
            None => 0,
        }
    }

    pub fn wallclock(&self) -> WallClock {
        let (sec, at) = self.wall.get().copied().unwrap_or((0, 0));
        let since = self.clock_ns().saturating_sub(at);
        WallClock { sec: sec + since / 1_000_000_000, nsec: (since % 1_000_000_000) as u32 }
    }

    fn counts(&self, ns: u64) -> HvResult<Counts> {
        match self.event.get() {
            Some(Event::Lapic { counts_per_ms }) => {
                let c = (ns as u128 * *counts_per_ms as u128 / 1_000_000)
                    .clamp(LAPIC_MIN_COUNTS as u128, u32::MAX as u128);
                Ok(Counts::Lapic(c as u32))
            }
            Some(Event::Pit) => Ok(Counts::Pit(pit::counts_for_ns(ns).max(PIT_MIN_COUNTS as u32))),
            None => Err(HvError::local("the clock event device is not set up", &[])),
        }
    }

    pub fn set_periodic(&self, period_ns: u64) -> HvResult {
        match self.counts(period_ns)? {
            Counts::Lapic(c) => self.lapic()?.timer_periodic(LAPIC_TIMER_VECTOR, c),
            Counts::Pit(c) => pit::ch0_periodic(c),
        }
        Ok(())
    }

    pub fn set_oneshot(&self, deadline_ns: u64) -> HvResult {
        let delta = deadline_ns.saturating_sub(self.clock_ns());
        match self.counts(delta)? {
            Counts::Lapic(c) => self.lapic()?.timer_oneshot(LAPIC_TIMER_VECTOR, c),
            Counts::Pit(c) => pit::ch0_oneshot(c),
        }
        Ok(())
    }

    pub fn stop_timer(&self) -> HvResult {
        match self.event.get() {
            Some(Event::Lapic { .. }) => self.lapic()?.timer_stop(),
            Some(Event::Pit) => pit::ch0_stop(),
            None => {}
        }
        Ok(())
    }

    fn lapic(&self) -> HvResult<&Lapic> {
        self.lapic.get().ok_or(HvError::local("the local APIC is not mapped", &[]))
    }
}

enum Counts {
    Lapic(u32),
    Pit(u32),
}

/// TSC kHz: TSC ticks while PIT channel 2 counts down CALIBRATION_MS
/// (Linux's `pit_calibrate_tsc`), the least of [`CALIBRATIONS`] runs. A
/// run can only come out too high: anything that delays the loop's view of
/// the PIT's output (an emulator's thread descheduled) adds TSC ticks, and
/// nothing removes them. Under QEMU's TCG on a busy host single runs have
/// come out several times too high.
fn calibrate_tsc_khz() -> u64 {
    (0..CALIBRATIONS)
        .map(|_| {
            irqs_off(|| {
                pit::ch2_oneshot((pit::HZ as u64 * CALIBRATION_MS / 1000) as u32);
                let t0 = cpu::rdtsc();
                while !pit::ch2_expired() {}
                let t1 = cpu::rdtsc();
                (t1 - t0) / CALIBRATION_MS
            })
        })
        .min()
        .unwrap_or(0)
}
