use core::fmt;

use arch_i386::VirtAddr;
use paravirt::HvError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmError {
    /// The boot allocator ran dry while allocating `what`.
    OutOfMemory { what: &'static str, allocated: u32 },
    /// A hypervisor operation failed.
    Hv(HvError),
    /// A large page someone else made is where the kernel needs 4 KiB
    /// pages (`what`: the kernel image, the pkmap area).
    LargePage { va: VirtAddr, what: &'static str },
    /// Not enough RAM for the kernel.
    TooLittleMemory { have: u64, need: u64 },
}

impl From<HvError> for MmError {
    fn from(e: HvError) -> Self {
        MmError::Hv(e)
    }
}

impl fmt::Display for MmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmError::OutOfMemory { what, allocated } => {
                write!(f, "out of early memory allocating a {what} page ({allocated} pages allocated so far)")
            }
            MmError::Hv(e) => write!(f, "{e}"),
            MmError::LargePage { va, what } => {
                write!(f, "a large page at {va} is in the way of the {what}, which needs 4 KiB pages")
            }
            MmError::TooLittleMemory { have, need } => write!(
                f,
                "memory below what the kernel needs: RAM ends at {} KiB, the kernel needs at least {} KiB",
                have / 1024,
                need / 1024
            ),
        }
    }
}
