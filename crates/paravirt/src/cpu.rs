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

    /// The faulting address of the last page fault.
    fn read_cr2(&self) -> VirtAddr {
        arch_i386::cr::Cr2::read()
    }
}
