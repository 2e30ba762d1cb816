//! The 16550 UART, polled. Enough for a boot log: no interrupts, no
//! receive.

use crate::io::Port;

/// A 16550-compatible UART at a fixed I/O base.
#[derive(Clone, Copy, Debug)]
pub struct Uart {
    base: u16,
}

/// The PC's first serial port.
// SAFETY: 0x3F8 is COM1 on every PC, and QEMU's `-serial` is a 16550 there;
// a machine without one reads all ones (THRE set) and ignores the writes.
pub const COM1: Uart = unsafe { Uart::new(0x3F8) };

const THR: u16 = 0; // transmit holding register
const IER: u16 = 1;
const FCR: u16 = 2;
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const LSR_THRE: u8 = 1 << 5;

impl Uart {
    /// # Safety
    /// `base` must be a 16550 UART's I/O base (or no device at all): its
    /// registers have no memory effects.
    pub const unsafe fn new(base: u16) -> Uart {
        Uart { base }
    }

    fn out(&self, reg: u16, v: u8) {
        // SAFETY: a UART register (the type's invariant): no memory effects.
        unsafe { Port::<u8>::new(self.base + reg).write(v) }
    }

    fn inb(&self, reg: u16) -> u8 {
        // SAFETY: as for `out`; reading LSR has no side effects.
        unsafe { Port::<u8>::new(self.base + reg).read() }
    }

    /// 115200 8n1, FIFO on, interrupts off.
    pub fn init(&self) {
        self.out(IER, 0);
        self.out(LCR, 0x80); // DLAB: the next two writes set the divisor
        self.out(0, 1);
        self.out(1, 0);
        self.out(LCR, 0x03);
        self.out(FCR, 0xC7);
        self.out(MCR, 0x03);
    }

    pub fn write_byte(&self, b: u8) {
        // A missing UART reads as 0xFF, which has THRE set: we never spin.
        let mut spins = 0u32;
        while self.inb(LSR) & LSR_THRE == 0 && spins < 100_000 {
            spins += 1;
        }
        self.out(THR, b);
    }

    pub fn write(&self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }
}
