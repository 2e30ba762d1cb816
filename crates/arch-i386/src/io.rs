//! Port I/O. Ring 0 (or IOPL) only: under Xen PV the kernel first asks for
//! IOPL with a hypercall, under lguest the host skips guest port accesses.
//!
//! A port is a typed value ([`Port<u8>`], [`Port<u16>`], [`Port<u32>`]);
//! reading and writing it is `unsafe`, because a port can be a device that
//! writes memory (DMA) or resets the machine. Wrappers that know which
//! device sits behind a port ([`crate::serial::Uart`], [`debug_exit`]) carry
//! that knowledge in their own types and are safe to use.

use core::marker::PhantomData;

/// QEMU's isa-debug-exit device: writing `v` here ends QEMU with status
/// `(v << 1) | 1`.
pub const DEBUG_EXIT_PORT: u16 = 0xF4;

/// The widths a port access can have.
pub trait PortValue: Copy {
    /// # Safety
    /// See [`Port::read`].
    unsafe fn read_port(port: u16) -> Self;
    /// # Safety
    /// See [`Port::write`].
    unsafe fn write_port(port: u16, v: Self);
}

/// An I/O port of width `T`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port<T: PortValue> {
    port: u16,
    _width: PhantomData<T>,
}

impl<T: PortValue> Port<T> {
    pub const fn new(port: u16) -> Port<T> {
        Port { port, _width: PhantomData }
    }

    /// # Safety
    /// The device behind the port must tolerate the read (some reads
    /// acknowledge interrupts or pop FIFOs) and must not be one another
    /// part of the system owns.
    pub unsafe fn read(&self) -> T {
        // SAFETY: forwarded to the caller.
        unsafe { T::read_port(self.port) }
    }

    /// # Safety
    /// The write must not make the device touch memory the kernel uses or
    /// change state another part of the system relies on.
    pub unsafe fn write(&self, v: T) {
        // SAFETY: forwarded to the caller.
        unsafe { T::write_port(self.port, v) }
    }
}

#[cfg(target_arch = "x86")]
mod imp {
    use super::PortValue;

    impl PortValue for u8 {
        unsafe fn read_port(port: u16) -> u8 {
            let v: u8;
            // SAFETY: `in` touches no memory; the device is the caller's duty.
            unsafe { core::arch::asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack)) };
            v
        }
        unsafe fn write_port(port: u16, v: u8) {
            // SAFETY: as above.
            unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack)) };
        }
    }
    impl PortValue for u16 {
        unsafe fn read_port(port: u16) -> u16 {
            let v: u16;
            // SAFETY: as above.
            unsafe { core::arch::asm!("in ax, dx", out("ax") v, in("dx") port, options(nomem, nostack)) };
            v
        }
        unsafe fn write_port(port: u16, v: u16) {
            // SAFETY: as above.
            unsafe { core::arch::asm!("out dx, ax", in("dx") port, in("ax") v, options(nomem, nostack)) };
        }
    }
    impl PortValue for u32 {
        unsafe fn read_port(port: u16) -> u32 {
            let v: u32;
            // SAFETY: as above.
            unsafe { core::arch::asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack)) };
            v
        }
        unsafe fn write_port(port: u16, v: u32) {
            // SAFETY: as above.
            unsafe { core::arch::asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack)) };
        }
    }
}

#[cfg(not(target_arch = "x86"))]
mod imp {
    use super::PortValue;

    macro_rules! host_port {
        ($($t:ty)*) => {$(
            impl PortValue for $t {
                unsafe fn read_port(port: u16) -> $t {
                    panic!("in {port:#x}: port I/O called on the host")
                }
                unsafe fn write_port(port: u16, _: $t) {
                    panic!("out {port:#x}: port I/O called on the host")
                }
            }
        )*};
    }
    host_port!(u8 u16 u32);
}

/// Ends a QEMU run with status `(code << 1) | 1` through isa-debug-exit.
///
/// # Safety
/// The machine must be QEMU with isa-debug-exit at [`DEBUG_EXIT_PORT`], or
/// have nothing at that port (an ISA write to an empty port is ignored).
pub unsafe fn debug_exit(code: u8) {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u8>::new(DEBUG_EXIT_PORT).write(code) }
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
