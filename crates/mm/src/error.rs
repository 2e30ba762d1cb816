use core::fmt;

use arch_i386::VirtAddr;
use paravirt::{HvError, TableAllocError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmError {
    /// The boot allocator ran dry while allocating `what`.
    OutOfMemory { what: &'static str, allocated: u32 },
    /// The build's set of new pages has no room for another run: the
    /// allocator handed out pages scattered over too many ranges.
    TooScattered { what: &'static str, allocated: u32 },
    /// An entry the build must follow names a frame that is not ours.
    Foreign { va: VirtAddr, raw: u64 },
    /// The memory map has more free ranges than the boot allocator keeps.
    TooManyFreeRanges { max: usize },
    /// A frame was given back that was not allocated.
    DoubleFree { pfn: arch_i386::Pfn },
    /// A hypervisor operation failed.
    Hv(HvError),
    /// A large page someone else made is where the kernel needs 4 KiB
    /// pages (`what`: the kernel image, the pkmap area).
    LargePage { va: VirtAddr, what: &'static str },
    /// Not enough RAM for the kernel.
    TooLittleMemory { have: u64, need: u64 },
    /// Every persistent-kmap slot is in use (Linux would sleep until a
    /// kunmap; one CPU and no sleeping here, so it is a leak).
    PkmapFull { slots: u32 },
    /// A pkmap use count that does not match: kunmap of a frame not
    /// kmapped, or a frame kmapped while it became a pagetable page.
    PkmapCount { pfn: arch_i386::Pfn },
}

impl MmError {
    pub fn table_alloc(e: TableAllocError, what: &'static str, allocated: u32) -> MmError {
        match e {
            TableAllocError::OutOfMemory => MmError::OutOfMemory { what, allocated },
            TableAllocError::TooScattered => MmError::TooScattered { what, allocated },
        }
    }
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
            MmError::TooScattered { what, allocated } => write!(
                f,
                "allocating a {what} page: the build's new pages are scattered over too many ranges ({allocated} pages allocated so far)"
            ),
            MmError::Foreign { va, raw } => {
                write!(f, "the entry for {va} ({raw:#x}) names a frame that is not ours")
            }
            MmError::TooManyFreeRanges { max } => {
                write!(f, "the memory map leaves more than {max} free ranges; the boot allocator keeps {max}")
            }
            MmError::DoubleFree { pfn } => write!(f, "frame {pfn} was freed but is not allocated"),
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
            MmError::PkmapFull { slots } => write!(f, "all {slots} pkmap slots are in use"),
            MmError::PkmapCount { pfn } => write!(f, "pkmap use count of frame {pfn} does not match"),
        }
    }
}
