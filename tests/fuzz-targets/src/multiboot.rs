//! Multiboot v1: the input is low physical memory from address 0, the
//! multiboot info at 0, so its pointers (command line, memory map) land
//! anywhere in the input or beyond it.

use arch_i386::PhysAddr;
use paravirt::phys::Bytes;
use paravirt::{multiboot, BootInfo, BootProtocol};

pub fn run(data: &[u8]) {
    let mut boot = BootInfo::new(BootProtocol::Multiboot { info: PhysAddr(0) });
    multiboot::parse(&Bytes(data), PhysAddr(0), &mut boot);
    crate::contract::boot_info(&boot);
}
