//! CPU ops: what the kernel needs of the processor beyond paging, where a
//! paravirtualized kernel may not touch the processor itself.

use arch_i386::VirtAddr;

use crate::{native, HvResult};

pub trait Cpu: Sync {
    /// Load the kernel's IDT (`gates` are 32-bit gate descriptors).
    ///
    /// # Safety
    /// `gates` must live forever and point at valid handlers.
    unsafe fn load_idt(&self, gates: &'static [u64]) -> HvResult {
        // SAFETY: forwarded to the caller.
        unsafe { native::load_idt(gates) };
        Ok(())
    }

    /// Where the kernel's interrupt exit jumps instead of executing `iret`
    /// (Linux's `INTERRUPT_RETURN`), with the registers restored and the
    /// hardware frame (eip, cs, eflags) on the stack. Natively `iret`
    /// itself. A PV guest's return must also restore its virtual
    /// interrupt flag from the frame's eflags, atomically with the return:
    /// Xen's `iret` hypercall does both; lguest's guest code writes the
    /// flag inside an address range the host never interrupts.
    fn iret(&self) -> u32 {
        native::iret_address()
    }

    /// The faulting address of the last page fault.
    fn read_cr2(&self) -> VirtAddr {
        arch_i386::cr::Cr2::read()
    }
}
