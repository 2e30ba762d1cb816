//! Everything early boot learned, in one place, before any backend is
//! chosen: how we were entered, the command line, the memory map, the CPU.
//!
//! Backends detect from this alone. Errors found while gathering it (a bad
//! memory map, say) are kept here as values and reported once a backend,
//! and with it a console, has been chosen.

use core::fmt;

use arch_i386::cpu::CpuFeatures;
use arch_i386::{Pfn, PhysAddr, VirtAddr};

use crate::cmdline::CmdLine;
use crate::memmap::MemoryMap;
use crate::xen_start_info::{StartInfo, StartInfoError};

/// How the kernel was entered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BootProtocol {
    /// Multiboot v1: eax = 0x2BADB002, ebx = the multiboot info.
    Multiboot { info: PhysAddr },
    /// Xen/QEMU PVH: entered at XEN_ELFNOTE_PHYS32_ENTRY, ebx = the
    /// hvm_start_info (magic 0x336ec578).
    Pvh { start_info: PhysAddr, version: u32 },
    /// Linux 32-bit boot protocol: esi = boot_params ("zero page").
    /// `hardware_subarch` says who booted us (0 PC, 1 lguest, 2 Xen, ...).
    LinuxBoot { boot_params: PhysAddr, hardware_subarch: u32 },
    /// Xen PV: entered at XEN_ELFNOTE_ENTRY in ring 1 with paging on,
    /// esi = the start_info page (at `start_info`), parsed at entry.
    XenPv { start_info: VirtAddr, info: Result<StartInfo, StartInfoError> },
}

impl BootProtocol {
    pub fn name(&self) -> &'static str {
        match self {
            BootProtocol::Multiboot { .. } => "multiboot",
            BootProtocol::Pvh { .. } => "pvh",
            BootProtocol::LinuxBoot { .. } => "linux-boot",
            BootProtocol::XenPv { .. } => "xen-pv",
        }
    }
}

/// How the entry code tells `start_kernel` which way it came in: its
/// first argument. One number per entry path (the kernel's head code has
/// three; a backend with an entry point of its own, like Xen PV's, adds
/// one here and a [`BootProtocol`] variant).
pub mod entry {
    pub const MULTIBOOT: u32 = 1;
    pub const PVH: u32 = 2;
    pub const LINUX_BOOT: u32 = 3;
    pub const XEN_PV: u32 = 4;
}

/// Linux's `hardware_subarch` values this kernel knows.
pub const SUBARCH_PC: u32 = 0;
pub const SUBARCH_LGUEST: u32 = 1;

/// Frame ranges the boot allocator must not hand out.
pub const MAX_RESERVED: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BootInfoError {
    /// The boot protocol carried no memory map.
    Missing(&'static str),
    /// A structure pointer led outside readable memory.
    Unreadable {
        what: &'static str,
        addr: u64,
    },
    /// An entry is malformed (bad size field).
    Malformed {
        index: usize,
        what: &'static str,
    },
    /// A table holds more entries than it may: `field` (a count, or the
    /// map that overflowed) said `count`.
    TooMany {
        field: &'static str,
        count: u64,
        max: u64,
    },
    /// More reserved ranges than [`MAX_RESERVED`].
    TooManyReserved,
    ZeroLength {
        map: &'static str,
        index: usize,
        start: u64,
    },
    Wraps {
        map: &'static str,
        index: usize,
        start: u64,
        len: u64,
    },
    Overlap {
        map: &'static str,
        a: usize,
        b: usize,
        start: u64,
    },
    /// No RAM below 4 GiB at all.
    NoLowRam {
        map: &'static str,
    },
    /// The map claims RAM past the memory the platform shows to exist
    /// (under lguest, the Launcher's map of all guest memory).
    RamOutside {
        map: &'static str,
        ram_end: u64,
        real_end: u64,
    },
    /// The map claims RAM where a written word is not kept: no memory
    /// is there.
    RamMissing {
        map: &'static str,
        at: u64,
    },
    /// `boot_params.hardware_subarch` names a platform no backend in this
    /// image runs on at this privilege level.
    Subarch {
        value: u32,
    },
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::Missing(why) => write!(f, "no memory map: {why}"),
            BootInfoError::Unreadable { what, addr } => {
                write!(f, "{what} at {addr:#x} is outside readable memory")
            }
            BootInfoError::Malformed { index, what } => {
                write!(f, "memory map entry {index} is malformed: {what}")
            }
            BootInfoError::TooMany { field, count, max } => {
                write!(f, "{field} = {count}: more than the {max} memory map entries allowed")
            }
            BootInfoError::TooManyReserved => {
                write!(f, "more than {MAX_RESERVED} reserved ranges of memory")
            }
            BootInfoError::ZeroLength { map, index, start } => {
                write!(f, "{map}: entry {index} at {start:#x} has zero length")
            }
            BootInfoError::Wraps { map, index, start, len } => write!(
                f,
                "{map}: entry {index} ({start:#x} + {len:#x}) runs past the end of the 64-bit address space"
            ),
            BootInfoError::Overlap { map, a, b, start } => {
                write!(f, "{map}: entries {a} and {b} overlap at {start:#x}")
            }
            BootInfoError::NoLowRam { map } => write!(
                f,
                "{map}: no RAM below 4 GiB: every RAM entry lies beyond what a 32-bit kernel can map"
            ),
            BootInfoError::RamOutside { map, ram_end, real_end } => write!(
                f,
                "{map}: RAM up to {ram_end:#x}, but the guest's memory ends at {real_end:#x}"
            ),
            BootInfoError::RamMissing { map, at } => write!(
                f,
                "{map}: RAM claimed at {at:#x} does not keep what is written there: no memory behind it"
            ),
            BootInfoError::Subarch { value } => write!(
                f,
                "boot_params.hardware_subarch = {value}: not a platform this kernel runs on in ring 1 (1 is lguest)"
            ),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    pub protocol: BootProtocol,
    pub cmdline: CmdLine,
    pub memory: MemoryMap,
    /// Set when the boot information (its memory map, its command line)
    /// was missing or malformed.
    pub info_error: Option<BootInfoError>,
    pub cpu: CpuFeatures,
    /// Privilege level we were entered at (0 bare/HVM, 1 Xen PV and lguest).
    pub cpl: u8,
    /// Frames below this one were mapped at `PAGE_OFFSET + pa` by whoever
    /// booted us: the only memory pagetable pages may come from before the
    /// kernel's own map exists.
    pub early_mapped_end: Pfn,
    reserved: [(Pfn, Pfn); MAX_RESERVED],
    nreserved: usize,
}

impl BootInfo {
    pub fn new(protocol: BootProtocol) -> BootInfo {
        BootInfo {
            protocol,
            cmdline: CmdLine::default(),
            memory: MemoryMap::default(),
            info_error: None,
            cpu: CpuFeatures::default(),
            cpl: 0,
            early_mapped_end: Pfn(0),
            reserved: [(Pfn(0), Pfn(0)); MAX_RESERVED],
            nreserved: 0,
        }
    }

    /// Keeps `[start, end)` away from the boot allocator.
    pub fn reserve(&mut self, start: Pfn, end: Pfn) -> Result<(), BootInfoError> {
        if self.nreserved == MAX_RESERVED {
            return Err(BootInfoError::TooManyReserved);
        }
        self.reserved[self.nreserved] = (start, end);
        self.nreserved += 1;
        Ok(())
    }

    pub fn reserved(&self) -> &[(Pfn, Pfn)] {
        &self.reserved[..self.nreserved]
    }

    /// The Linux boot protocol's hardware_subarch, if that is how we came.
    pub fn hardware_subarch(&self) -> Option<u32> {
        match self.protocol {
            BootProtocol::LinuxBoot { hardware_subarch, .. } => Some(hardware_subarch),
            _ => None,
        }
    }
}
