//! The real backends in one registry: each wins exactly on its platform.

use arch_i386::{PhysAddr, VirtAddr};
use paravirt::xen_start_info::{StartInfo, SIZE};
use paravirt::{evaluate, select, BootInfo, BootProtocol, SelectError, HYPERVISORS};

// Linking a backend crate is what registers it.
use backend_lguest as _;
use backend_native as _;
use backend_xen as _;

fn chosen(boot: &BootInfo, forced: Option<&str>) -> Result<&'static str, String> {
    let c = evaluate(&HYPERVISORS, boot).map_err(|e| format!("{e:?}"))?;
    select(&c, forced).map(|h| h.name()).map_err(|e| format!("{e:?}"))
}

#[test]
fn registry_holds_the_three_backends() {
    let mut names: Vec<_> = HYPERVISORS.iter().map(|h| h.name()).collect();
    names.sort();
    assert_eq!(names, ["lguest", "native", "xen", "xen-hvm"]);
}

#[test]
fn multiboot_in_ring0_is_native() {
    let boot = BootInfo::new(BootProtocol::Multiboot { info: PhysAddr(0x9000) });
    assert_eq!(chosen(&boot, None).unwrap(), "native");
}

/// A Xen PV entry with a start_info page whose magic is `magic`.
fn xen_pv(magic: &[u8; 15]) -> BootInfo {
    let mut page = [0u8; SIZE];
    page[..15].copy_from_slice(magic);
    let info = StartInfo::parse(&page).map(|(si, _)| si);
    let mut boot = BootInfo::new(BootProtocol::XenPv { start_info: VirtAddr(0xC040_0000), info });
    boot.cpl = 1;
    boot
}

#[test]
fn xen_start_info_is_xen() {
    let boot = xen_pv(b"xen-3.0-x86_32p");
    assert_eq!(chosen(&boot, None).unwrap(), "xen");
    // Forcing native there is refused with the reason.
    let err = chosen(&boot, Some("native")).unwrap_err();
    assert!(err.contains("NotDetected"), "{err}");
    // A 64-bit or non-PAE start_info is not ours.
    let boot = xen_pv(b"xen-3.0-x86_64\0");
    assert!(chosen(&boot, Some("xen")).is_err());
}

#[test]
fn lguest_boot_params_is_lguest() {
    let mut boot = BootInfo::new(BootProtocol::LinuxBoot { boot_params: PhysAddr(0), hardware_subarch: 1 });
    boot.cpl = 1;
    assert_eq!(chosen(&boot, None).unwrap(), "lguest");
    // A PC boot_params in ring 0 is native.
    let boot = BootInfo::new(BootProtocol::LinuxBoot { boot_params: PhysAddr(0), hardware_subarch: 0 });
    assert_eq!(chosen(&boot, None).unwrap(), "native");
}

fn with_xen_cpuid(mut boot: BootInfo) -> BootInfo {
    boot.cpu.hv_leaves[0] = Some(arch_i386::cpu::HypervisorLeaf {
        base: 0x4000_0000,
        max_leaf: 0x4000_0005,
        signature: *b"XenVMMXenVMM",
    });
    boot
}

#[test]
fn pvh_under_xen_is_xen_hvm_and_refuses_native() {
    let boot = with_xen_cpuid(BootInfo::new(BootProtocol::Pvh { start_info: PhysAddr(0x8000), version: 0 }));
    assert_eq!(chosen(&boot, None).unwrap(), "xen-hvm");
    let err = chosen(&boot, Some("native")).unwrap_err();
    assert!(err.contains("no memory map"), "{err}");
}

#[test]
fn pvh_under_qemu_is_native() {
    let mut boot = BootInfo::new(BootProtocol::Pvh { start_info: PhysAddr(0x8000), version: 1 });
    boot.cpu.hv_leaves[0] = Some(arch_i386::cpu::HypervisorLeaf {
        base: 0x4000_0000,
        max_leaf: 0x4000_0001,
        signature: *b"TCGTCGTCGTCG",
    });
    assert_eq!(chosen(&boot, None).unwrap(), "native");
}

#[test]
fn xen_hvm_refuses_ring1() {
    let boot = with_xen_cpuid(xen_pv(b"xen-3.0-x86_32p"));
    // PV wins by priority, and xen-hvm would not run in ring 1 anyway.
    assert_eq!(chosen(&boot, None).unwrap(), "xen");
    assert!(chosen(&boot, Some("xen-hvm")).is_err());
}

#[test]
fn unknown_names_are_refused() {
    let boot = BootInfo::new(BootProtocol::Multiboot { info: PhysAddr(0) });
    let c = evaluate(&HYPERVISORS, &boot).unwrap();
    assert_eq!(select(&c, Some("vmware")).err(), Some(SelectError::Unknown("vmware")));
}
