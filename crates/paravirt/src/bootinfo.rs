//! Everything early boot learned, in one place, before any backend is
//! chosen: how we were entered, the command line, the memory map, the CPU.
//!
//! Backends detect from this alone. Errors found while gathering it (a bad
//! memory map, say) are kept here as values and reported once a backend,
//! and with it a console, has been chosen.

use arch_i386::cpu::CpuFeatures;
use arch_i386::{Pfn, PhysAddr, VirtAddr};

use crate::cmdline::CmdLine;
use crate::memmap::{MemMapError, MemoryMap};

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
    /// esi = the start_info page; `magic` is its first 32 bytes.
    XenPv { start_info: VirtAddr, magic: [u8; 32] },
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

/// Linux's `hardware_subarch` values.
pub const SUBARCH_PC: u32 = 0;
pub const SUBARCH_LGUEST: u32 = 1;
pub const SUBARCH_XEN: u32 = 2;

/// Frame ranges the boot allocator must not hand out.
pub const MAX_RESERVED: usize = 8;

#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    pub protocol: BootProtocol,
    pub cmdline: CmdLine,
    pub memory: MemoryMap,
    /// Set when the protocol's memory map was missing or malformed.
    pub memory_error: Option<MemMapError>,
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
            memory_error: None,
            cpu: CpuFeatures::default(),
            cpl: 0,
            early_mapped_end: Pfn(0),
            reserved: [(Pfn(0), Pfn(0)); MAX_RESERVED],
            nreserved: 0,
        }
    }

    /// Keeps `[start, end)` away from the boot allocator. Returns false if
    /// the table is full (the caller reports it).
    pub fn reserve(&mut self, start: Pfn, end: Pfn) -> bool {
        if self.nreserved == MAX_RESERVED {
            return false;
        }
        self.reserved[self.nreserved] = (start, end);
        self.nreserved += 1;
        true
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
