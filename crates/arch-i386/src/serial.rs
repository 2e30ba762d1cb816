//! The 16550 UART at COM1, polled. Enough for a boot log: no interrupts,
//! no receive.

use crate::io::{inb, outb};

pub const COM1: u16 = 0x3F8;

const THR: u16 = 0; // transmit holding register
const IER: u16 = 1;
const FCR: u16 = 2;
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const LSR_THRE: u8 = 1 << 5;

/// 115200 8n1, FIFO on, interrupts off.
pub fn init(base: u16) {
    outb(base + IER, 0);
    outb(base + LCR, 0x80); // DLAB: the next two writes set the divisor
    outb(base, 1);
    outb(base + 1, 0);
    outb(base + LCR, 0x03);
    outb(base + FCR, 0xC7);
    outb(base + MCR, 0x03);
}

pub fn write_byte(base: u16, b: u8) {
    // A missing UART reads as 0xFF, which has THRE set: we never spin.
    let mut spins = 0u32;
    while inb(base + LSR) & LSR_THRE == 0 && spins < 100_000 {
        spins += 1;
    }
    outb(base + THR, b);
}

pub fn write(base: u16, bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            write_byte(base, b'\r');
        }
        write_byte(base, b);
    }
}
