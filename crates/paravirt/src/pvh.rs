//! PVH boot: `struct hvm_start_info` (Xen's public `arch-x86/hvm/start_info.h`).
//!
//! The loader (QEMU's PVH option ROM, or Xen building a PVH guest) enters
//! the kernel at the XEN_ELFNOTE_PHYS32_ENTRY address in flat 32-bit
//! protected mode, paging off, with ebx pointing here. Version 1 adds the
//! memory map; version 0 (Xen's PVH dom0) has none, and the memory map must
//! come from the XENMEM_memory_map hypercall instead.

use arch_i386::PhysAddr;

use crate::bootinfo::BootInfoError;
use crate::memmap::read_e820_table;
use crate::multiboot::read_cstr;
use crate::{BootInfo, PhysRead};

pub const MAGIC: u32 = 0x336E_C578;

pub const OFF_MAGIC: u64 = 0;
pub const OFF_VERSION: u64 = 4;
pub const OFF_CMDLINE: u64 = 24;
pub const OFF_MEMMAP: u64 = 40;
pub const OFF_MEMMAP_ENTRIES: u64 = 48;
/// Version 1's size.
pub const SIZE: u64 = 56;
/// addr (u64), size (u64), type (u32), reserved (u32).
pub const MEMMAP_ENTRY: u64 = 24;

/// Is there a start_info at `pa`? Returns its version.
pub fn probe(mem: &dyn PhysRead, pa: PhysAddr) -> Option<u32> {
    if mem.read_u32(PhysAddr(pa.0 + OFF_MAGIC)).ok()? != MAGIC {
        return None;
    }
    mem.read_u32(PhysAddr(pa.0 + OFF_VERSION)).ok()
}

/// Fills `boot` from the start_info at `pa`.
pub fn parse(mem: &dyn PhysRead, pa: PhysAddr, boot: &mut BootInfo) {
    if let Err(e) = parse_inner(mem, pa, boot) {
        boot.info_error = Some(e);
    }
}

fn parse_inner(mem: &dyn PhysRead, pa: PhysAddr, boot: &mut BootInfo) -> Result<(), BootInfoError> {
    let rd32 = |o: u64| {
        mem.read_u32(PhysAddr(pa.0 + o))
            .map_err(|a| BootInfoError::Unreadable { what: "hvm_start_info", addr: a.0 })
    };
    let rd64 = |o: u64| {
        mem.read_u64(PhysAddr(pa.0 + o))
            .map_err(|a| BootInfoError::Unreadable { what: "hvm_start_info", addr: a.0 })
    };
    let version = rd32(OFF_VERSION)?;
    let cmdline = rd64(OFF_CMDLINE)?;
    if cmdline != 0 {
        boot.cmdline = read_cstr(mem, PhysAddr(cmdline), "hvm_start_info.cmdline_paddr")?;
    }
    // Versions above 1 are accepted, as Linux does: the structure only
    // grows, and a newer loader's version-1 fields mean what they meant.
    if version < 1 {
        return Err(BootInfoError::Missing(
            "hvm_start_info.version = 0 carries no memory map (only Xen, through XENMEM_memory_map, can supply one)",
        ));
    }
    let map = rd64(OFF_MEMMAP)?;
    let n = rd32(OFF_MEMMAP_ENTRIES)? as u64;
    if map == 0 {
        return Err(BootInfoError::Missing("hvm_start_info.memmap_paddr is 0"));
    }
    if n == 0 {
        return Err(BootInfoError::Missing("hvm_start_info.memmap_entries is 0"));
    }
    let count = (n, "hvm_start_info.memmap_entries");
    let m = read_e820_table(mem, map, count, MEMMAP_ENTRY, "hvm_start_info.memmap_paddr")?;
    boot.memory = m;
    m.validate()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::phys::Bytes;
    use crate::BootProtocol;
    use std::vec;

    fn w32(m: &mut [u8], o: usize, v: u32) {
        m[o..o + 4].copy_from_slice(&v.to_le_bytes())
    }

    fn w64(m: &mut [u8], o: usize, v: u64) {
        m[o..o + 8].copy_from_slice(&v.to_le_bytes())
    }

    /// A version-1 start_info at 0x1000: two RAM entries at 0x2000, the
    /// command line at 0x2800.
    fn good() -> std::vec::Vec<u8> {
        let mut m = vec![0u8; 0x3000];
        w32(&mut m, 0x1000, MAGIC);
        w32(&mut m, 0x1004, 1);
        w64(&mut m, 0x1018, 0x2800);
        w64(&mut m, 0x1028, 0x2000);
        w32(&mut m, 0x1030, 2);
        w64(&mut m, 0x2000, 0);
        w64(&mut m, 0x2008, 0x9fc00);
        w32(&mut m, 0x2010, 1);
        w64(&mut m, 0x2018, 0x100000);
        w64(&mut m, 0x2020, 0x1000000);
        w32(&mut m, 0x2028, 1);
        m[0x2800..0x2805].copy_from_slice(b"quiet");
        m
    }

    fn error_of(m: &[u8]) -> std::string::String {
        let mut b = BootInfo::new(BootProtocol::Pvh { start_info: PhysAddr(0x1000), version: 1 });
        parse(&Bytes(m), PhysAddr(0x1000), &mut b);
        std::format!("{}", b.info_error.expect("a lie must be an error"))
    }

    #[test]
    fn version_1_with_map() {
        let m = good();
        assert_eq!(probe(&Bytes(&m), PhysAddr(0x1000)), Some(1));
        let mut b = BootInfo::new(BootProtocol::Pvh { start_info: PhysAddr(0x1000), version: 1 });
        parse(&Bytes(&m), PhysAddr(0x1000), &mut b);
        assert_eq!(b.info_error, None);
        assert_eq!(b.memory.ram_end_below_4g(), 0x1100000);
        assert!(b.cmdline.has("quiet"));
    }

    #[test]
    fn version_0_has_no_map() {
        let mut m = vec![0u8; 0x2000];
        m[0x1000..0x1004].copy_from_slice(&MAGIC.to_le_bytes());
        let mut b = BootInfo::new(BootProtocol::Pvh { start_info: PhysAddr(0x1000), version: 0 });
        parse(&Bytes(&m), PhysAddr(0x1000), &mut b);
        assert!(matches!(b.info_error, Some(BootInfoError::Missing(_))));
        m[0x1000] = 0;
        assert_eq!(probe(&Bytes(&m), PhysAddr(0x1000)), None);
    }

    #[test]
    fn a_newer_version_is_read_as_version_1() {
        let mut m = good();
        w32(&mut m, 0x1004, 0x7fff_ffff);
        let mut b = BootInfo::new(BootProtocol::Pvh { start_info: PhysAddr(0x1000), version: 0x7fff_ffff });
        parse(&Bytes(&m), PhysAddr(0x1000), &mut b);
        assert_eq!(b.info_error, None);
    }

    #[test]
    fn every_lie_names_its_field() {
        let lie = |f: &dyn Fn(&mut std::vec::Vec<u8>)| {
            let mut m = good();
            f(&mut m);
            error_of(&m)
        };
        assert!(lie(&|m| w32(m, 0x1004, 0)).contains("hvm_start_info.version = 0"));
        assert!(lie(&|m| w64(m, 0x1028, 0)).contains("hvm_start_info.memmap_paddr is 0"));
        assert!(lie(&|m| w32(m, 0x1030, 0)).contains("hvm_start_info.memmap_entries is 0"));
        assert!(lie(&|m| w32(m, 0x1030, 100_000)).contains("hvm_start_info.memmap_entries = 100000"));
        assert!(lie(&|m| w64(m, 0x1028, 0x10_0000)).contains("hvm_start_info.memmap_paddr at 0x100000"));
        assert!(lie(&|m| w64(m, 0x1018, 0x4000)).contains("hvm_start_info.cmdline_paddr at 0x4000"));
        assert!(lie(&|m| w64(m, 0x2008, 0x20_0000)).contains("hvm_start_info.memmap_paddr: entries 0 and 1"));
    }
}
