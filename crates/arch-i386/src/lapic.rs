//! The local APIC, in xAPIC (memory-mapped) mode: end of interrupt, and
//! its timer.
//!
//! The registers are a page of MMIO at the address in the
//! IA32_APIC_BASE MSR (0xFEE00000 unless moved; CPUs before the P6 have no
//! MSR and a fixed base). The timer counts the bus clock, divided, down
//! from an initial count and raises the LVT timer entry's vector at zero:
//! once, or reloading (periodic). Its rate is the bus clock's, which no
//! register states: it is calibrated against another clock.
//!
//! x2APIC (the same registers as MSRs) is not used: QEMU's `-icount`
//! cannot serve timer reads through `rdmsr`, and the bench needs it.

/// IA32_APIC_BASE: bits 12+ the base, bit 11 the global enable.
pub const BASE_MSR: u32 = 0x1B;
pub const BASE_ENABLE: u64 = 1 << 11;
pub const DEFAULT_BASE: u64 = 0xFEE0_0000;

const ID: usize = 0x20;
const EOI: usize = 0xB0;
const SVR: usize = 0xF0;
const LVT_TIMER: usize = 0x320;
const LVT_LINT0: usize = 0x350;
const LVT_LINT1: usize = 0x360;
const LVT_ERROR: usize = 0x370;
const TIMER_INITIAL: usize = 0x380;
const TIMER_CURRENT: usize = 0x390;
const TIMER_DIVIDE: usize = 0x3E0;

const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const TIMER_PERIODIC: u32 = 1 << 17;
/// LINT0 delivering the 8259's interrupts as they are ("virtual wire").
const DELIVERY_EXTINT: u32 = 0b111 << 8;
const DELIVERY_NMI: u32 = 0b100 << 8;
/// Divide configuration 0b0011: bus clock / 16 (Linux's choice).
const DIVIDE_BY_16: u32 = 0b0011;

/// The local APIC's register page.
pub struct Lapic {
    base: *mut u32,
}

// SAFETY: one CPU; the registers are per-CPU hardware, and every access is
// a single volatile load or store.
unsafe impl Send for Lapic {}
// SAFETY: as above.
unsafe impl Sync for Lapic {}

impl Lapic {
    /// # Safety
    /// `va` must map the local APIC's register page, uncached, for as
    /// long as the value is used.
    pub unsafe fn new(va: usize) -> Lapic {
        Lapic { base: va as *mut u32 }
    }

    fn read(&self, reg: usize) -> u32 {
        // SAFETY: `reg` is one of this module's register offsets, inside
        // the page `new` was given.
        unsafe { self.base.byte_add(reg).read_volatile() }
    }

    fn write(&self, reg: usize, v: u32) {
        // SAFETY: as in read.
        unsafe { self.base.byte_add(reg).write_volatile(v) }
    }

    pub fn id(&self) -> u32 {
        self.read(ID) >> 24
    }

    /// Software-enables the APIC with `spurious` as its spurious vector,
    /// timer and error masked, and the 8259 still delivering through LINT0
    /// (virtual wire), NMIs through LINT1.
    pub fn enable(&self, spurious: u8) {
        self.write(LVT_TIMER, LVT_MASKED);
        self.write(LVT_ERROR, LVT_MASKED);
        self.write(LVT_LINT0, DELIVERY_EXTINT);
        self.write(LVT_LINT1, DELIVERY_NMI);
        self.write(TIMER_DIVIDE, DIVIDE_BY_16);
        self.write(SVR, SVR_ENABLE | spurious as u32);
    }

    pub fn eoi(&self) {
        self.write(EOI, 0);
    }

    /// Interrupts once at `vector` after `counts` (bus clock / 16).
    pub fn timer_oneshot(&self, vector: u8, counts: u32) {
        self.write(LVT_TIMER, vector as u32);
        self.write(TIMER_INITIAL, counts.max(1));
    }

    /// Interrupts at `vector` every `counts`.
    pub fn timer_periodic(&self, vector: u8, counts: u32) {
        self.write(LVT_TIMER, vector as u32 | TIMER_PERIODIC);
        self.write(TIMER_INITIAL, counts.max(1));
    }

    pub fn timer_stop(&self) {
        self.write(LVT_TIMER, LVT_MASKED);
        self.write(TIMER_INITIAL, 0);
    }

    /// Starts the counter from `counts` with no interrupt, for calibration.
    pub fn timer_count_from(&self, counts: u32) {
        self.write(LVT_TIMER, LVT_MASKED);
        self.write(TIMER_INITIAL, counts);
    }

    pub fn timer_current(&self) -> u32 {
        self.read(TIMER_CURRENT)
    }
}
