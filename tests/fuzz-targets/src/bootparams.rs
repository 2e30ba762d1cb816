//! Linux `boot_params` (the zero page) and its e820 table: the input is
//! low physical memory, the zero page at 0, its command-line pointer
//! anywhere.

use arch_i386::PhysAddr;
use paravirt::phys::Bytes;
use paravirt::{bootparams, BootInfo, BootProtocol};

pub fn run(data: &[u8]) {
    let mem = Bytes(data);
    let hardware_subarch = bootparams::probe(&mem, PhysAddr(0)).map_or(0, |(_, s)| s);
    let mut boot = BootInfo::new(BootProtocol::LinuxBoot { boot_params: PhysAddr(0), hardware_subarch });
    bootparams::parse(&mem, PhysAddr(0), &mut boot);
    crate::contract::boot_info(&boot);
}
