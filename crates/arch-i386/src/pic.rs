//! The two cascaded 8259A interrupt controllers of the PC.
//!
//! At power-on the master delivers IRQ 0-7 at vectors 8-15, on top of the
//! CPU's exceptions (IRQ 0, the timer, would arrive as a "double fault"),
//! so every user first moves them ([`remap`]). Edge-triggered, the slave
//! cascaded on the master's IRQ 2, as on every PC.
//!
//! A line the PIC raised and then dropped before the CPU acknowledged it
//! is delivered as the lowest-priority line, IRQ 7 (or 15 on the slave),
//! with its in-service bit clear: a spurious interrupt, which must not be
//! acknowledged (for 15 the master, which did see its cascade line, must).

use crate::io::Port;

const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_CMD: u16 = 0xA0;
const SLAVE_DATA: u16 = 0xA1;

const EOI: u8 = 0x20;
/// OCW3: the next command-port read returns the in-service register.
const READ_ISR: u8 = 0x0B;

/// The line the slave is cascaded on.
pub const CASCADE: u8 = 2;

fn outb(port: u16, v: u8) {
    // SAFETY: the 8259 ports program interrupt delivery, nothing that
    // touches memory; the kernel's interrupt code is their only user.
    unsafe { Port::<u8>::new(port).write(v) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as in outb; reading the mask or a register has no effect.
    unsafe { Port::<u8>::new(port).read() }
}

/// Initialises both PICs: IRQ 0-7 at vectors `base..base + 8`, IRQ 8-15
/// after them; every line masked.
pub fn remap(base: u8) {
    outb(MASTER_CMD, 0x11); // ICW1: edge, cascade, ICW4 follows
    outb(SLAVE_CMD, 0x11);
    outb(MASTER_DATA, base); // ICW2: vector base
    outb(SLAVE_DATA, base + 8);
    outb(MASTER_DATA, 1 << CASCADE); // ICW3: slave on IRQ 2
    outb(SLAVE_DATA, CASCADE); // ICW3: slave identity
    outb(MASTER_DATA, 0x01); // ICW4: 8086 mode
    outb(SLAVE_DATA, 0x01);
    set_mask(0xFFFF);
}

/// Bit n set: IRQ n masked.
pub fn set_mask(mask: u16) {
    outb(MASTER_DATA, mask as u8);
    outb(SLAVE_DATA, (mask >> 8) as u8);
}

pub fn mask() -> u16 {
    inb(MASTER_DATA) as u16 | (inb(SLAVE_DATA) as u16) << 8
}

/// Lets IRQ `irq` through (and the cascade, for a slave line).
pub fn unmask(irq: u8) {
    let mut m = mask() & !(1 << irq);
    if irq >= 8 {
        m &= !(1 << CASCADE);
    }
    set_mask(m);
}

pub fn mask_line(irq: u8) {
    set_mask(mask() | 1 << irq);
}

/// The in-service register: which lines are being handled.
pub fn in_service() -> u16 {
    outb(MASTER_CMD, READ_ISR);
    outb(SLAVE_CMD, READ_ISR);
    inb(MASTER_CMD) as u16 | (inb(SLAVE_CMD) as u16) << 8
}

/// Is this delivery of `irq` spurious? Only IRQ 7 and 15 can be; a
/// spurious 15 still owes the master its end of interrupt, sent here.
pub fn is_spurious(irq: u8) -> bool {
    if irq != 7 && irq != 15 {
        return false;
    }
    if in_service() & (1 << irq) != 0 {
        return false;
    }
    if irq == 15 {
        outb(MASTER_CMD, EOI);
    }
    true
}

/// End of interrupt for `irq`: the PIC may deliver lines of the same or
/// lower priority again.
pub fn eoi(irq: u8) {
    if irq >= 8 {
        outb(SLAVE_CMD, EOI);
    }
    outb(MASTER_CMD, EOI);
}
