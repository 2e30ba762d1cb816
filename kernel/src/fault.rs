//! Deliberate faults (`fault=` on the command line), so the boot matrix
//! can prove that faults are reported and end the run as a FAILURE rather
//! than a silent reset.

use paravirt::BootInfo;

/// An address in the vmalloc area: never mapped this early.
const UNMAPPED: u32 = 0xF000_0000;

pub fn inject(boot: &BootInfo) {
    match boot.cmdline.get("fault") {
        None => {}
        Some("pf") => {
            crate::kprintln!("fault: reading unmapped {:#x}", UNMAPPED);
            // SAFETY: deliberately faults; the #PF handler ends the run.
            let _ = unsafe { (UNMAPPED as *const u32).read_volatile() };
        }
        Some("ud") => {
            crate::kprintln!("fault: executing ud2");
            // SAFETY: deliberately faults (#UD).
            unsafe { core::arch::asm!("ud2") };
        }
        Some("stack") => {
            crate::kprintln!("fault: breakpoint with the stack pointer on unmapped memory");
            // SAFETY: deliberately faults: delivering #BP onto an unmapped
            // stack faults again, which is a double fault; only a task
            // gate (a fresh stack) can report it.
            unsafe { core::arch::asm!("mov esp, {0}", "int3", in(reg) UNMAPPED, options(noreturn)) };
        }
        // Later, once interrupts are set up (timetest.rs).
        Some("irq") => {}
        Some(other) => crate::fail!("fault={}: unknown (use pf, ud, stack or irq)", other),
    }
}
