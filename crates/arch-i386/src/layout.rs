//! Where the kernel lives in the 32-bit address space.
//!
//! The classic i386 split: user space below 3 GiB, the kernel above. The
//! kernel image is linked at `PAGE_OFFSET + 1 MiB` and loaded at physical
//! 1 MiB, so for the direct map `virt = phys + PAGE_OFFSET` (Linux's
//! `__va`/`__pa`). Xen PV loads the image at `VIRT_BASE + paddr` with
//! `VIRT_BASE == PAGE_OFFSET`, so the same relation holds there.

pub const PAGE_OFFSET: u32 = 0xC000_0000;
/// Physical (and, minus `PAGE_OFFSET`, virtual) load address of the image.
pub const KERNEL_PHYS_START: u32 = 0x10_0000;
