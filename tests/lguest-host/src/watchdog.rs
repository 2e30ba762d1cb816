//! A watchdog, so a guest that spins without ever calling the host ends
//! as a FAILURE instead of a timeout.
//!
//! The 8259 PICs are moved off the exception vectors (IRQ 0 would
//! otherwise arrive as vector 8, a "double fault") and every line but the
//! timer is masked. The PIT ticks at 100 Hz. The host itself never enables
//! interrupts; the guest always runs with the real eflags.IF set (its own
//! interrupt flag is virtual), so ticks arrive only while it runs and come
//! to the host as exits like any other. The guest sees none of them.

use arch_i386::io::Port;

use lguest_host::fatal::{fatal, Result};
use lguest_host::layout::TIMER_VECTOR;
use lguest_host::vm::Vm;

const HZ: u32 = 100;
/// Seconds without a hypercall before the guest is declared stuck.
const LIMIT_SECONDS: u32 = 10;

/// A write to the 8259 PICs or the PIT, which the host owns (the guest's
/// port accesses never reach them: they are skipped).
fn outb(port: u16, v: u8) {
    // SAFETY: the PIC (0x20/0x21, 0xA0/0xA1) and PIT (0x40-0x43) ports
    // program interrupt delivery and the timer, nothing that writes memory.
    unsafe { Port::<u8>::new(port).write(v) }
}

pub fn init() {
    // ICW1-4: edge-triggered, cascaded; vectors 32-39 and 40-47; slave on
    // IRQ 2; 8086 mode. Then mask everything but IRQ 0.
    outb(0x20, 0x11);
    outb(0xA0, 0x11);
    outb(0x21, TIMER_VECTOR as u8);
    outb(0xA1, TIMER_VECTOR as u8 + 8);
    outb(0x21, 0x04);
    outb(0xA1, 0x02);
    outb(0x21, 0x01);
    outb(0xA1, 0x01);
    outb(0x21, 0xFE);
    outb(0xA1, 0xFF);
    // PIT channel 0, lobyte/hibyte, mode 2 (rate generator).
    let divisor = 1_193_182 / HZ;
    outb(0x43, 0x34);
    outb(0x40, divisor as u8);
    outb(0x40, (divisor >> 8) as u8);
}

pub fn tick(vm: &mut Vm) -> Result {
    outb(0x20, 0x20); // end of interrupt
    vm.idle_ticks += 1;
    if vm.idle_ticks > LIMIT_SECONDS * HZ {
        return Err(fatal!(
            "the guest made no hypercall for {} s (eip {:#010x})",
            LIMIT_SECONDS,
            vm.regs.eip
        ));
    }
    Ok(())
}
