//! From the entry registers to a `BootInfo`: every detection input in one
//! place, parsed before any backend is chosen.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{cpu, Pfn, PhysAddr, VirtAddr};
use paravirt::bootinfo::BootInfoError;
use paravirt::xen_start_info::{self, StartInfo};
use paravirt::{bootparams, multiboot, pvh, BootInfo, BootProtocol};

use paravirt::bootinfo::entry;

use crate::head;
use crate::mem::BootRead;

/// A ring-1 Linux-boot entry (lguest): boot_params and its command line
/// sit in the first pages, which the host maps; read no further than this
/// before the backend says how much is mapped.
const RING1_READ_LIMIT: u64 = 1 << 20;

pub fn gather(protocol: u32, info: u32, cpl: u8) -> BootInfo {
    let sym = head::symbols();
    let limit = if cpl == 0 { sym.boot_map_end as u64 } else { RING1_READ_LIMIT };
    let rd = BootRead { limit };
    let pa = PhysAddr(info as u64);
    let mut boot = match protocol {
        entry::MULTIBOOT => {
            let mut b = BootInfo::new(BootProtocol::Multiboot { info: pa });
            multiboot::parse(&rd, pa, &mut b);
            b
        }
        entry::PVH => {
            let version = pvh::probe(&rd, pa);
            let mut b = BootInfo::new(BootProtocol::Pvh { start_info: pa, version: version.unwrap_or(0) });
            match version {
                Some(_) => pvh::parse(&rd, pa, &mut b),
                None => {
                    b.info_error = Some(BootInfoError::Malformed {
                        index: 0,
                        what: "PVH entry without an hvm_start_info (bad magic)",
                    })
                }
            }
            b
        }
        entry::LINUX_BOOT => {
            let probed = bootparams::probe(&rd, pa);
            let mut b = BootInfo::new(BootProtocol::LinuxBoot {
                boot_params: pa,
                hardware_subarch: probed.map(|p| p.1).unwrap_or(0),
            });
            match probed {
                Some(_) => bootparams::parse(&rd, pa, &mut b),
                None => b.info_error = Some(BootInfoError::Missing("no boot_params header (HdrS) at esi")),
            }
            b
        }
        entry::XEN_PV => {
            // Xen maps start_info for us (a page, at a virtual address). Its
            // command line is a detection input like any other: parsed now,
            // before a backend is chosen.
            let mut page = [0u8; xen_start_info::SIZE];
            // SAFETY: Xen PV enters with esi = a mapped start_info page,
            // which is larger than `SIZE`.
            unsafe { core::ptr::copy_nonoverlapping(info as *const u8, page.as_mut_ptr(), page.len()) };
            let parsed = StartInfo::parse(&page);
            let mut b = BootInfo::new(BootProtocol::XenPv {
                start_info: VirtAddr(info),
                info: parsed.map(|(si, _)| si),
            });
            if let Ok((_, cmdline)) = parsed {
                b.cmdline = cmdline;
            }
            b
        }
        _ => {
            let mut b = BootInfo::new(BootProtocol::Multiboot { info: pa });
            b.info_error = Some(BootInfoError::Missing("unknown boot protocol"));
            b
        }
    };
    boot.cpu = cpu::probe();
    boot.cpl = cpl;
    boot.early_mapped_end = if cpl == 0 {
        Pfn(sym.boot_map_end >> 12)
    } else {
        Pfn(0) // the backend's init says
    };
    // The kernel image is never free memory, except its brk area, which is
    // there to be allocated from.
    let image_end = PhysAddr((sym.brk - PAGE_OFFSET) as u64).pfn_up();

    if let Err(e) = boot.reserve(PhysAddr(arch_i386::layout::KERNEL_PHYS_START as u64).pfn(), image_end) {
        boot.info_error.get_or_insert(e);
    }
    boot
}
