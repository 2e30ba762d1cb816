//! Port I/O. Ring 0 (or IOPL) only: under Xen PV the kernel first asks for
//! IOPL with a hypercall, under lguest the host skips guest port accesses.

/// QEMU's isa-debug-exit device: writing `v` here ends QEMU with status
/// `(v << 1) | 1`.
pub const DEBUG_EXIT_PORT: u16 = 0xF4;

#[cfg(target_arch = "x86")]
pub fn outb(port: u16, v: u8) {
    // SAFETY: the ports we use (UART, debug-exit) have no memory effects.
    unsafe { x86::io::outb(port, v) }
}

#[cfg(target_arch = "x86")]
pub fn inb(port: u16) -> u8 {
    // SAFETY: as for outb; reading the UART status has no side effects.
    unsafe { x86::io::inb(port) }
}

#[cfg(target_arch = "x86")]
pub fn outl(port: u16, v: u32) {
    // SAFETY: as for outb.
    unsafe { x86::io::outl(port, v) }
}

#[cfg(not(target_arch = "x86"))]
pub fn outb(_: u16, _: u8) {
    panic!("outb: port I/O called on the host")
}

#[cfg(not(target_arch = "x86"))]
pub fn inb(_: u16) -> u8 {
    panic!("inb: port I/O called on the host")
}

#[cfg(not(target_arch = "x86"))]
pub fn outl(_: u16, _: u32) {
    panic!("outl: port I/O called on the host")
}

/// Stops the CPU for good: interrupts off, then `hlt` forever. Used after
/// the exit device had its chance, so a machine without one stays quiet.
#[cfg(target_arch = "x86")]
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt only stops this CPU.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) }
    }
}

#[cfg(not(target_arch = "x86"))]
pub fn halt_forever() -> ! {
    panic!("halt_forever called on the host")
}
