//! The Linux 32-bit boot protocol's `struct boot_params` (the "zero
//! page"), Documentation/x86/boot.rst: the fields a paravirtualized entry
//! uses. lguest's Launcher hands one over with `hardware_subarch = 1`.

use arch_i386::PhysAddr;

use crate::bootinfo::BootInfoError;
use crate::memmap::read_e820_table;
use crate::multiboot::read_cstr;
use crate::{BootInfo, PhysRead};

pub const OFF_E820_ENTRIES: u64 = 0x1E8;
pub const OFF_HEADER: u64 = 0x202;
pub const OFF_VERSION: u64 = 0x206;
pub const OFF_LOADFLAGS: u64 = 0x211;
pub const OFF_CMD_LINE_PTR: u64 = 0x228;
pub const OFF_HARDWARE_SUBARCH: u64 = 0x23C;
pub const OFF_E820_TABLE: u64 = 0x2D0;
/// "HdrS"
pub const HEADER_MAGIC: u32 = 0x5372_6448;
/// loadflags: the loader set up segments, do not reload them.
pub const KEEP_SEGMENTS: u8 = 1 << 6;
/// addr (u64), size (u64), type (u32), packed.
const E820_ENTRY: u64 = 20;

/// Is there a boot_params with a setup header at `pa`? Returns
/// (protocol version, hardware_subarch).
pub fn probe(mem: &dyn PhysRead, pa: PhysAddr) -> Option<(u16, u32)> {
    if mem.read_u32(PhysAddr(pa.0 + OFF_HEADER)).ok()? != HEADER_MAGIC {
        return None;
    }
    let version = mem.read_u32(PhysAddr(pa.0 + OFF_VERSION)).ok()? as u16;
    // hardware_subarch exists from protocol 2.07 on.
    let subarch =
        if version >= 0x207 { mem.read_u32(PhysAddr(pa.0 + OFF_HARDWARE_SUBARCH)).ok()? } else { 0 };
    Some((version, subarch))
}

pub fn parse(mem: &dyn PhysRead, pa: PhysAddr, boot: &mut BootInfo) {
    if let Err(e) = parse_inner(mem, pa, boot) {
        boot.info_error = Some(e);
    }
}

fn parse_inner(mem: &dyn PhysRead, pa: PhysAddr, boot: &mut BootInfo) -> Result<(), BootInfoError> {
    let bad = |a: PhysAddr| BootInfoError::Unreadable { what: "boot_params", addr: a.0 };
    let cmd = mem.read_u32(PhysAddr(pa.0 + OFF_CMD_LINE_PTR)).map_err(bad)?;
    if cmd != 0 {
        boot.cmdline = read_cstr(mem, PhysAddr(cmd as u64), "boot_params.cmd_line_ptr")?;
    }
    let mut n = [0u8; 1];
    mem.read(PhysAddr(pa.0 + OFF_E820_ENTRIES), &mut n).map_err(bad)?;
    let n = n[0] as u64;
    if n == 0 {
        return Err(BootInfoError::Missing("boot_params.e820_entries is 0"));
    }
    let count = (n, "boot_params.e820_entries");
    let m = read_e820_table(mem, pa.0 + OFF_E820_TABLE, count, E820_ENTRY, "boot_params.e820_table")?;
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

    /// The Launcher's zero page: one RAM entry of 64 MiB, "quiet".
    fn zero_page() -> std::vec::Vec<u8> {
        let mut m = vec![0u8; 0x2000];
        m[0x202..0x206].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
        m[0x206..0x208].copy_from_slice(&0x207u16.to_le_bytes());
        m[0x23c..0x240].copy_from_slice(&1u32.to_le_bytes());
        m[0x228..0x22c].copy_from_slice(&0x1000u32.to_le_bytes());
        m[0x1000..0x1005].copy_from_slice(b"quiet");
        m[0x1e8] = 1;
        m[0x2d8..0x2e0].copy_from_slice(&0x0400_0000u64.to_le_bytes());
        m[0x2e0..0x2e4].copy_from_slice(&1u32.to_le_bytes());
        m
    }

    #[test]
    fn lguest_style_zero_page() {
        let m = zero_page();
        assert_eq!(probe(&Bytes(&m), PhysAddr(0)), Some((0x207, 1)));
        let mut b = BootInfo::new(BootProtocol::LinuxBoot { boot_params: PhysAddr(0), hardware_subarch: 1 });
        parse(&Bytes(&m), PhysAddr(0), &mut b);
        assert_eq!(b.info_error, None);
        assert_eq!(b.memory.ram_end_below_4g(), 0x0400_0000);
        assert!(b.cmdline.has("quiet"));
    }

    #[test]
    fn every_lie_names_its_field() {
        let lie = |f: &dyn Fn(&mut std::vec::Vec<u8>)| {
            let mut m = zero_page();
            f(&mut m);
            let mut b =
                BootInfo::new(BootProtocol::LinuxBoot { boot_params: PhysAddr(0), hardware_subarch: 1 });
            parse(&Bytes(&m), PhysAddr(0), &mut b);
            std::format!("{}", b.info_error.expect("a lie must be an error"))
        };
        assert!(lie(&|m| m[0x1e8] = 0).contains("boot_params.e820_entries is 0"));
        assert!(lie(&|m| m[0x1e8] = 200).contains("boot_params.e820_entries = 200"));
        assert!(lie(&|m| m[0x228..0x22c].copy_from_slice(&0x8000u32.to_le_bytes()))
            .contains("boot_params.cmd_line_ptr at 0x8000"));
        assert!(lie(&|m| m[0x2d8..0x2e0].fill(0))
            .contains("boot_params.e820_table: entry 0 at 0x0 has zero length"));
    }

    #[test]
    fn no_header_no_protocol() {
        let m = vec![0u8; 0x1000];
        assert_eq!(probe(&Bytes(&m), PhysAddr(0)), None);
    }
}
