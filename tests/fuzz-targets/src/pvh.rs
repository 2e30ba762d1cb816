//! PVH `hvm_start_info`: the input is low physical memory, the start_info
//! at 0. The kernel parses only what `probe` recognised; the body parses
//! whatever the input holds, since `parse` must not rely on the probe.

use arch_i386::PhysAddr;
use paravirt::phys::Bytes;
use paravirt::{pvh, BootInfo, BootProtocol};

pub fn run(data: &[u8]) {
    let mem = Bytes(data);
    let version = pvh::probe(&mem, PhysAddr(0)).unwrap_or(0);
    let mut boot = BootInfo::new(BootProtocol::Pvh { start_info: PhysAddr(0), version });
    pvh::parse(&mem, PhysAddr(0), &mut boot);
    crate::contract::boot_info(&boot);
}
