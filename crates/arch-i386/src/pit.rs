//! The 8253/8254 programmable interval timer: three 16-bit down-counters
//! fed by one 1.193182 MHz clock.
//!
//! - Channel 0 drives IRQ 0: the PC's timer interrupt, periodic (mode 2,
//!   rate generator) or one-shot (mode 0, interrupt on terminal count).
//! - Channel 1 once refreshed DRAM; nobody uses it.
//! - Channel 2 is gated by bit 0 of port 0x61 and its output is readable
//!   at bit 5 of the same port, with no interrupt: the one channel that
//!   can be timed by polling (calibration) or left free-running as a
//!   counter to read (a clock source for CPUs without a TSC).
//!
//! Reading a running counter takes a latch command first, so the two
//! bytes belong to the same count.

use crate::io::Port;

/// The input clock, Hz.
pub const HZ: u32 = 1_193_182;

const CH0: u16 = 0x40;
const CH2: u16 = 0x42;
const MODE: u16 = 0x43;
const GATE: u16 = 0x61;

/// Mode-register bits: channel, access (lobyte then hibyte), mode.
const SEL_CH0: u8 = 0x00;
const SEL_CH2: u8 = 0x80;
const LOHI: u8 = 0x30;
const MODE0_ONESHOT: u8 = 0x00;
const MODE2_RATE: u8 = 0x04;

/// Port 0x61: channel 2's gate, the speaker's data bit, channel 2's output.
const GATE2: u8 = 0x01;
const SPEAKER: u8 = 0x02;
const OUT2: u8 = 0x20;

fn outb(port: u16, v: u8) {
    // SAFETY: the PIT's ports (and port 0x61's gate and speaker bits,
    // which are all this module changes there) program counters, nothing
    // that touches memory.
    unsafe { Port::<u8>::new(port).write(v) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as in outb; reading a latched count or port 0x61 has no
    // other effect.
    unsafe { Port::<u8>::new(port).read() }
}

/// Counts (of [`HZ`]) for `ns` nanoseconds, clamped to what a counter
/// holds (1..=65536; 0 programs 65536).
pub fn counts_for_ns(ns: u64) -> u32 {
    ((ns * HZ as u64).div_ceil(1_000_000_000)).clamp(1, 65536) as u32
}

/// Nanoseconds for `counts` counts.
pub fn ns_for_counts(counts: u64) -> u64 {
    counts * 1_000_000_000 / HZ as u64
}

fn load(ch: u16, counts: u32) {
    outb(ch, counts as u8);
    outb(ch, (counts >> 8) as u8); // 65536 is written as 0
}

/// Channel 0 interrupts every `counts` counts.
pub fn ch0_periodic(counts: u32) {
    outb(MODE, SEL_CH0 | LOHI | MODE2_RATE);
    load(CH0, counts);
}

/// Channel 0 interrupts once, `counts` counts from now.
pub fn ch0_oneshot(counts: u32) {
    outb(MODE, SEL_CH0 | LOHI | MODE0_ONESHOT);
    load(CH0, counts);
}

/// Channel 0 stops interrupting: mode 0 with nothing loaded waits for a
/// count that never comes (Linux's PIT shutdown).
pub fn ch0_stop() {
    outb(MODE, SEL_CH0 | LOHI | MODE0_ONESHOT);
}

fn gate2(on: bool) {
    let v = inb(GATE) & !SPEAKER;
    outb(GATE, if on { v | GATE2 } else { v & !GATE2 });
}

/// Channel 2 counts down from `counts` once, raising its output at zero
/// ([`ch2_expired`]). The speaker stays off.
pub fn ch2_oneshot(counts: u32) {
    gate2(false);
    outb(MODE, SEL_CH2 | LOHI | MODE0_ONESHOT);
    load(CH2, counts);
    gate2(true);
}

pub fn ch2_expired() -> bool {
    inb(GATE) & OUT2 != 0
}

/// Channel 2 counts down through all 65536 values forever.
pub fn ch2_free_running() {
    gate2(false);
    outb(MODE, SEL_CH2 | LOHI | MODE2_RATE);
    load(CH2, 0);
    gate2(true);
}

/// Channel 2's current count (counting down).
pub fn ch2_read() -> u16 {
    outb(MODE, SEL_CH2); // latch
    let lo = inb(CH2) as u16;
    let hi = inb(CH2) as u16;
    hi << 8 | lo
}
