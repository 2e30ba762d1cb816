//! Multiboot v1 information (the Multiboot Specification 0.6.96, section
//! 3.3), as QEMU's `-kernel` and GRUB legacy hand it over.

use arch_i386::PhysAddr;

use crate::bootinfo::BootInfoError;
use crate::cmdline::CmdLine;
use crate::memmap::{read_e820_entry, MemoryMap};
use crate::{BootInfo, PhysRead};

use arch_i386::multiboot::info::{
    FLAG_CMDLINE, FLAG_MEM, FLAG_MMAP, MMAP_ADDR, MMAP_BASE, MMAP_ENTRY_MIN, MMAP_LENGTH,
};

pub use arch_i386::multiboot::info::BOOTLOADER_MAGIC;

const OFF_FLAGS: u64 = arch_i386::multiboot::info::FLAGS as u64;
const OFF_CMDLINE: u64 = arch_i386::multiboot::info::CMDLINE as u64;
const OFF_MMAP_LENGTH: u64 = MMAP_LENGTH as u64;
const OFF_MMAP_ADDR: u64 = MMAP_ADDR as u64;

/// Fills `boot` from the multiboot info at `info`: command line and memory
/// map. A bad map is recorded in `boot.info_error`.
pub fn parse(mem: &dyn PhysRead, info: PhysAddr, boot: &mut BootInfo) {
    if let Err(e) = parse_inner(mem, info, boot) {
        boot.info_error = Some(e);
    }
}

fn parse_inner(mem: &dyn PhysRead, info: PhysAddr, boot: &mut BootInfo) -> Result<(), BootInfoError> {
    let unreadable = |what| move |a: PhysAddr| BootInfoError::Unreadable { what, addr: a.0 };
    let flags = mem.read_u32(PhysAddr(info.0 + OFF_FLAGS)).map_err(unreadable("multiboot info"))?;
    if flags & FLAG_CMDLINE != 0 {
        let pa = mem.read_u32(PhysAddr(info.0 + OFF_CMDLINE)).map_err(unreadable("multiboot info"))?;
        boot.cmdline = read_cstr(mem, PhysAddr(pa as u64), "multiboot command line")?;
    }
    if flags & FLAG_MMAP == 0 {
        let why = if flags & FLAG_MEM != 0 {
            "multiboot flags bit 6 is clear (only mem_lower/mem_upper given)"
        } else {
            "multiboot flags bits 0 and 6 are clear"
        };
        return Err(BootInfoError::Missing(why));
    }
    let len = mem.read_u32(PhysAddr(info.0 + OFF_MMAP_LENGTH)).map_err(unreadable("multiboot info"))?;
    let addr = mem.read_u32(PhysAddr(info.0 + OFF_MMAP_ADDR)).map_err(unreadable("multiboot info"))?;
    boot.memory = parse_mmap(mem, PhysAddr(addr as u64), len)?;
    boot.memory.validate()
}

fn parse_mmap(mem: &dyn PhysRead, addr: PhysAddr, len: u32) -> Result<MemoryMap, BootInfoError> {
    let mut map = MemoryMap::from_source("multiboot mmap_addr");
    let mut off = 0u32;
    let mut index = 0;
    while off < len {
        let at = PhysAddr(addr.0 + off as u64);
        let size = mem
            .read_u32(at)
            .map_err(|a| BootInfoError::Unreadable { what: "multiboot memory map", addr: a.0 })?;
        if size < MMAP_ENTRY_MIN {
            return Err(BootInfoError::Malformed { index, what: "size field below 20 bytes" });
        }
        if off as u64 + 4 + size as u64 > len as u64 {
            return Err(BootInfoError::Malformed { index, what: "entry runs past mmap_length" });
        }
        map.push(read_e820_entry(mem, at.0 + MMAP_BASE as u64, "multiboot memory map")?)?;
        off += size + 4;
        index += 1;
    }
    Ok(map)
}

/// The NUL-terminated string at `pa`, up to what CmdLine keeps (a longer
/// one is cut and says so). A byte that cannot be read before the NUL or
/// the cut is an error: the line would otherwise end there silently.
pub fn read_cstr(mem: &dyn PhysRead, pa: PhysAddr, what: &'static str) -> Result<CmdLine, BootInfoError> {
    let mut buf = [0u8; crate::cmdline::CMDLINE_MAX + 1];
    let mut n = 0;
    while n < buf.len() {
        let at = pa.0.checked_add(n as u64).ok_or(BootInfoError::Unreadable { what, addr: pa.0 })?;
        mem.read(PhysAddr(at), &mut buf[n..n + 1])
            .map_err(|a| BootInfoError::Unreadable { what, addr: a.0 })?;
        if buf[n] == 0 {
            break;
        }
        n += 1;
    }
    Ok(CmdLine::from_bytes(&buf[..n]))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::phys::Bytes;
    use crate::BootProtocol;
    use std::vec;
    use std::vec::Vec;

    /// A fake low memory with a multiboot info at 0x1000, a map at 0x2000
    /// and a command line at 0x3000.
    fn image(flags: u32, entries: &[(u32, u64, u64, u32)], mmap_len: Option<u32>) -> Vec<u8> {
        let mut m = vec![0u8; 0x4000];
        m[0x1000..0x1004].copy_from_slice(&flags.to_le_bytes());
        m[0x1010..0x1014].copy_from_slice(&0x3000u32.to_le_bytes());
        let mut off = 0x2000;
        for &(size, base, len, ty) in entries {
            m[off..off + 4].copy_from_slice(&size.to_le_bytes());
            m[off + 4..off + 12].copy_from_slice(&base.to_le_bytes());
            m[off + 12..off + 20].copy_from_slice(&len.to_le_bytes());
            m[off + 20..off + 24].copy_from_slice(&ty.to_le_bytes());
            off += 4 + size as usize;
        }
        let len = mmap_len.unwrap_or((off - 0x2000) as u32);
        m[0x102c..0x1030].copy_from_slice(&len.to_le_bytes());
        m[0x1030..0x1034].copy_from_slice(&0x2000u32.to_le_bytes());
        m[0x3000..0x3011].copy_from_slice(b"hypervisor=native");
        m
    }

    fn run(m: &[u8]) -> BootInfo {
        let mut b = BootInfo::new(BootProtocol::Multiboot { info: PhysAddr(0x1000) });
        parse(&Bytes(m), PhysAddr(0x1000), &mut b);
        b
    }

    const ALL: u32 = FLAG_MEM | FLAG_CMDLINE | FLAG_MMAP;

    #[test]
    fn qemu_map() {
        let m = image(
            ALL,
            &[(20, 0, 0x9fc00, 1), (20, 0x100000, 0x7f00000, 1), (20, 0xfffc0000, 0x40000, 2)],
            None,
        );
        let b = run(&m);
        assert_eq!(b.info_error, None);
        assert_eq!(b.memory.regions().len(), 3);
        assert_eq!(b.memory.ram_end_below_4g(), 0x8000000);
        assert_eq!(b.cmdline.get("hypervisor"), Some("native"));
    }

    #[test]
    fn larger_entry_size_is_skipped_over() {
        let m = image(ALL, &[(24, 0, 0x9fc00, 1), (24, 0x100000, 0x100000, 1)], None);
        assert_eq!(run(&m).memory.regions().len(), 2);
    }

    #[test]
    fn missing_map() {
        let m = image(FLAG_MEM | FLAG_CMDLINE, &[], None);
        assert!(matches!(run(&m).info_error, Some(BootInfoError::Missing(_))));
    }

    #[test]
    fn malformed_maps() {
        let m = image(ALL, &[(8, 0, 0x9fc00, 1)], Some(24));
        assert!(matches!(run(&m).info_error, Some(BootInfoError::Malformed { index: 0, .. })));
        let m = image(ALL, &[(20, 0, 0x9fc00, 1)], Some(30));
        assert!(matches!(run(&m).info_error, Some(BootInfoError::Malformed { .. })));
    }

    #[test]
    fn overlap_zero_and_high_are_reported() {
        let m = image(ALL, &[(20, 0x100000, 0x400000, 1), (20, 0x300000, 0x400000, 1)], None);
        assert!(matches!(run(&m).info_error, Some(BootInfoError::Overlap { a: 0, b: 1, .. })));
        let m = image(ALL, &[(20, 0x100000, 0, 1)], None);
        assert!(matches!(run(&m).info_error, Some(BootInfoError::ZeroLength { .. })));
        let m = image(ALL, &[(20, 0x1_0000_0000, 0x1000_0000, 1)], None);
        assert_eq!(run(&m).info_error, Some(BootInfoError::NoLowRam { map: "multiboot mmap_addr" }));
    }

    #[test]
    fn a_command_line_running_off_memory_is_an_error() {
        let mut m = image(ALL, &[(20, 0, 0x9fc00, 1)], None);
        let end = m.len();
        m[end - 3..].copy_from_slice(b"abc");
        m[0x1010..0x1014].copy_from_slice(&((end - 3) as u32).to_le_bytes());
        assert!(matches!(
            run(&m).info_error,
            Some(BootInfoError::Unreadable { what: "multiboot command line", .. })
        ));
    }

    #[test]
    fn map_pointer_outside_memory() {
        let mut m = image(ALL, &[(20, 0, 0x9fc00, 1)], None);
        m[0x1030..0x1034].copy_from_slice(&0xdead_0000u32.to_le_bytes());
        assert!(matches!(run(&m).info_error, Some(BootInfoError::Unreadable { .. })));
    }
}
