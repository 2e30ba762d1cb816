//! CPU ops: what the kernel needs of the processor beyond paging, where a
//! paravirtualized kernel may not touch the processor itself.

use arch_i386::desc::{Selectors, Tss};
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

    /// The kernel's and user mode's segment selectors: the kernel's own
    /// GDT natively (Linux's numbering), the hypervisor's flat selectors
    /// under Xen PV, the guest view of the host's GDT under lguest.
    fn selectors(&self) -> Selectors {
        Selectors::NATIVE
    }

    /// The kernel stack the CPU switches to when an interrupt, exception
    /// or system call comes from user mode (Linux's `load_sp0`): natively
    /// the TSS's `esp0`; a PV kernel does not own a TSS the CPU uses, so
    /// it tells the hypervisor (Xen's `stack_switch`, lguest's SET_STACK).
    ///
    /// # Safety
    /// `tss` must be the TSS the CPU uses (natively; PV backends ignore
    /// it), and `sp0` the top of a kernel stack that stays mapped while
    /// user code can trap onto it.
    unsafe fn load_sp0(&self, tss: *mut Tss, sp0: u32) -> HvResult {
        // SAFETY: forwarded to the caller: `tss` is the live TSS.
        unsafe { (*tss).esp0 = sp0 };
        Ok(())
    }

    /// The faulting address of the last page fault.
    fn read_cr2(&self) -> VirtAddr {
        arch_i386::cr::Cr2::read()
    }
}
