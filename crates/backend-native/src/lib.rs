//! Bare hardware, or a hypervisor that virtualizes the whole machine
//! (QEMU's TCG, KVM, Xen HVM without PV awareness).
//!
//! Every `Hypervisor` method defaults to native behaviour, so this backend
//! overrides nothing but its identity and when it applies: whenever the
//! kernel runs in ring 0 on a PC. It is the last resort (priority 0).

#![no_std]

use linkme::distributed_slice;
use paravirt::bootinfo::SUBARCH_PC;
use paravirt::{BootInfo, BootProtocol, Detected, Hypervisor, Verdict, HYPERVISORS};

pub struct Native;

impl Hypervisor for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn detect(&self, boot: &BootInfo) -> Verdict {
        if boot.cpl != 0 {
            return Err("running in ring 1: entered by a paravirtualizing hypervisor, native needs ring 0");
        }
        match boot.protocol {
            BootProtocol::XenPv { .. } => Err("entered through Xen's PV entry"),
            BootProtocol::LinuxBoot { hardware_subarch, .. } if hardware_subarch != SUBARCH_PC => {
                Err("boot_params.hardware_subarch names a paravirtualized platform")
            }
            // QEMU's PVH loader passes the PC's memory map (version 1). A
            // start_info without one comes from a platform with no PC
            // firmware and no devices of its own (Xen's PVH): its memory
            // map and console are hypercalls away, out of native's reach.
            BootProtocol::Pvh { version: 0, .. } => {
                Err("PVH start_info version 0 has no memory map: a paravirtualized platform, not a PC")
            }
            _ => Ok(Detected { priority: 0, why: "ring 0 on a PC: bare hardware or full virtualization" }),
        }
    }
}

#[distributed_slice(HYPERVISORS)]
static NATIVE: &'static dyn Hypervisor = &Native;

#[cfg(test)]
mod tests {
    use super::*;
    use arch_i386::PhysAddr;

    #[test]
    fn ring0_pc_only() {
        let mut b = BootInfo::new(BootProtocol::Multiboot { info: PhysAddr(0) });
        assert!(Native.detect(&b).is_ok());
        b.cpl = 1;
        assert!(Native.detect(&b).is_err());
        let b = BootInfo::new(BootProtocol::LinuxBoot { boot_params: PhysAddr(0), hardware_subarch: 1 });
        assert!(Native.detect(&b).is_err());
    }

    #[test]
    #[cfg_attr(miri, ignore = "linkme's slice is bounded by symbols the linker makes; Miri links nothing")]
    fn registered() {
        assert!(HYPERVISORS.iter().any(|h| h.name() == "native"));
    }
}
