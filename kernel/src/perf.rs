//! Cost figures for early boot, as machine-readable log lines
//! (`perf: <figure> <value>`), read by `cargo xtask bench`.
//!
//! Printed only when the command line says `perf` (the benchmark does):
//! outside QEMU's `-icount` the TSC counts cycles of a busy machine, and
//! the figures would mean nothing.
//!
//! Time is counted with the TSC. On real hardware that is cycles and
//! noise; under QEMU with `-icount shift=0` the TSC advances by exactly one
//! per guest instruction (the hypervisor's instructions included: a
//! hypercall's cost shows), so the figures are instruction counts that do
//! not depend on the machine's load. `perf: calibration` says whether that
//! holds in this run: the difference between 2000 and 1000 iterations of a
//! 3-instruction loop, 3000 when the TSC counts instructions.

use paravirt::Counters;
use spin::Mutex;

use crate::kprintln;

struct State {
    /// Figures are printed (the `perf` switch) and the CPU has a TSC.
    on: bool,
    last: u64,
    /// The TSC at the first instruction of `start_kernel`.
    entry: u64,
    /// Ticks spent in measurements that run only in some environments
    /// (the dispatch benchmark), left out of the total so totals compare.
    excluded: u64,
}

static STATE: Mutex<State> = Mutex::new(State { on: false, last: 0, entry: 0, excluded: 0 });

/// The bulk path's running totals (TSC at the start of the current fill,
/// ticks and ptes so far). Touched only from the probe, on one CPU.
struct Bulk {
    start: u64,
    ticks: u64,
    ptes: u64,
}

static BULK: Mutex<Bulk> = Mutex::new(Bulk { start: 0, ticks: 0, ptes: 0 });

fn has_tsc() -> bool {
    arch_i386::cpu::has_cpuid() && arch_i386::cpu::cpuid(1, 0).edx & (1 << 4) != 0
}

/// At the first instruction of `start_kernel`: the TSC's starting point.
pub fn start() {
    if has_tsc() {
        let mut s = STATE.lock();
        s.last = arch_i386::cpu::rdtsc();
        s.entry = s.last;
    }
}

/// Right before the result line: TSC ticks since kernel entry, the whole
/// run (under a hypervisor, the hypervisor's work in between included),
/// less what was [`exclude`]d or [`leave_out`]: the time self-test.
pub fn total() {
    let s = STATE.lock();
    if s.on {
        let d = arch_i386::cpu::rdtsc() - s.entry - s.excluded;
        drop(s);
        kprintln!("perf: total.insns {}", d);
    }
}

/// Once the command line is known: are figures wanted?
pub fn enable(wanted: bool) {
    STATE.lock().on = wanted && has_tsc();
}

pub fn enabled() -> bool {
    STATE.lock().on
}

/// Ends a phase: prints the TSC ticks since the previous one.
pub fn phase(name: &str) {
    let s = STATE.lock();
    if !s.on {
        return;
    }
    let now = arch_i386::cpu::rdtsc();
    let d = now - s.last;
    drop(s);
    kprintln!("perf: insns.{} {}", name, d);
    // Do not count the printing itself.
    STATE.lock().last = arch_i386::cpu::rdtsc();
}

/// Leaves `ticks` out of the total.
pub fn exclude(ticks: u64) {
    STATE.lock().excluded += ticks;
}

/// Ends a span whose length is virtual time rather than work (the time
/// self-test: ticks at 100 and 1000 Hz, a sleep, a storm), leaving it out
/// of the total. It gets a log line, not a `perf:` figure: under
/// `-icount` its count varies between runs by a few dozen instructions
/// (where an interrupt lands in a polling loop), and every figure must
/// repeat exactly.
pub fn leave_out(what: &str) {
    let mut s = STATE.lock();
    if !s.on {
        return;
    }
    let now = arch_i386::cpu::rdtsc();
    let d = now - s.last;
    s.excluded += d;
    drop(s);
    kprintln!(
        "perf-note: {} took {} TSC ticks, left out of perf: total.insns (virtual time, not work)",
        what,
        d
    );
    let mut s = STATE.lock();
    s.excluded += arch_i386::cpu::rdtsc() - now;
    s.last = arch_i386::cpu::rdtsc();
}

/// Prints the calibration figure.
pub fn calibrate() {
    if !enabled() {
        return;
    }
    let t0 = arch_i386::cpu::rdtsc();
    arch_i386::cpu::spin3(1000);
    let t1 = arch_i386::cpu::rdtsc();
    arch_i386::cpu::spin3(2000);
    let t2 = arch_i386::cpu::rdtsc();
    kprintln!("perf: calibration {}", (t2 - t1) as i64 - (t1 - t0) as i64);
    STATE.lock().last = arch_i386::cpu::rdtsc();
}

/// Prints a backend's counters for a span of the boot.
pub fn counters(span: &str, c: &Counters) {
    if !enabled() {
        return;
    }
    kprintln!("perf: {}.hypercalls {}", span, c.hypercalls);
    kprintln!("perf: {}.mmu_update_entries {}", span, c.mmu_update_entries);
    kprintln!("perf: {}.mmuext_entries {}", span, c.mmuext_entries);
    kprintln!("perf: {}.multicall_entries {}", span, c.multicall_entries);
    kprintln!("perf: {}.async_entries {}", span, c.async_entries);
}

/// A figure, if figures are wanted.
pub fn figure(name: &str, value: u64) {
    if enabled() {
        kprintln!("perf: {} {}", name, value);
    }
}

/// The probe `mm::pagetable_init` calls.
pub fn mm_phase(p: mm::Phase) {
    let tsc = enabled();
    match p {
        mm::Phase::BulkStart if tsc => BULK.lock().start = arch_i386::cpu::rdtsc(),
        mm::Phase::BulkEnd(n) if tsc => {
            let now = arch_i386::cpu::rdtsc();
            let mut b = BULK.lock();
            b.ticks += now - b.start;
            b.ptes += n as u64;
        }
        mm::Phase::BulkStart | mm::Phase::BulkEnd(_) => {}
        mm::Phase::SetupStart => phase("setup_start"),
        mm::Phase::DirectMap => phase("direct_map"),
        mm::Phase::FixmapPkmap => phase("fixmap_pkmap"),
        mm::Phase::SetupDone => phase("setup_done"),
    }
}

/// The bulk path's totals: TSC ticks inside the fills (the rdtsc pair
/// itself included), and ptes written there.
pub fn bulk() {
    let b = BULK.lock();
    if enabled() {
        kprintln!("perf: bulk.insns {}", b.ticks);
        kprintln!("perf: bulk.ptes {}", b.ptes);
    }
}
