//! The physical memory map, whatever protocol delivered it, and its
//! validation.
//!
//! Boot information is input: it can be missing, overlapping, zero-length,
//! or describe memory the kernel cannot use. Each case is an error value
//! ([`BootInfoError`]) with a message that names the entry, reported once a
//! console exists.

use core::fmt;

use crate::bootinfo::BootInfoError;
use crate::PhysRead;

/// Most entries kept; more is an error, not a silent truncation.
pub const MAX_REGIONS: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RegionKind {
    Ram,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Unusable,
    Other(u32),
}

impl RegionKind {
    /// From an e820 / multiboot / PVH type number (they agree).
    pub const fn from_e820(t: u32) -> RegionKind {
        match t {
            1 => RegionKind::Ram,
            2 => RegionKind::Reserved,
            3 => RegionKind::AcpiReclaimable,
            4 => RegionKind::AcpiNvs,
            5 => RegionKind::Unusable,
            t => RegionKind::Other(t),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Region {
    pub start: u64,
    pub len: u64,
    pub kind: RegionKind,
}

impl Region {
    pub const fn end(&self) -> u64 {
        self.start.wrapping_add(self.len)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MemoryMap {
    regions: [Region; MAX_REGIONS],
    len: usize,
    /// Where the map came from, in the boot protocol's own words
    /// (`hvm_start_info.memmap_paddr`): errors name it.
    pub source: &'static str,
}

impl Default for MemoryMap {
    fn default() -> Self {
        MemoryMap {
            regions: [Region { start: 0, len: 0, kind: RegionKind::Reserved }; MAX_REGIONS],
            len: 0,
            source: "memory map",
        }
    }
}

impl fmt::Debug for MemoryMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.regions()).finish()
    }
}

const FOUR_GIB: u64 = 1 << 32;

impl MemoryMap {
    /// An empty map whose errors will name `source`.
    pub fn from_source(source: &'static str) -> MemoryMap {
        MemoryMap { source, ..MemoryMap::default() }
    }

    pub fn push(&mut self, r: Region) -> Result<(), BootInfoError> {
        if self.len == MAX_REGIONS {
            let count = MAX_REGIONS as u64 + 1;
            return Err(BootInfoError::TooMany { field: self.source, count, max: MAX_REGIONS as u64 });
        }
        self.regions[self.len] = r;
        self.len += 1;
        Ok(())
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks the map as a whole: no zero-length or wrapping entry, no two
    /// entries overlapping, and some RAM below 4 GiB.
    pub fn validate(&self) -> Result<(), BootInfoError> {
        let r = self.regions();
        let map = self.source;
        if r.is_empty() {
            return Err(BootInfoError::Missing("the memory map is empty"));
        }
        for (i, e) in r.iter().enumerate() {
            if e.len == 0 {
                return Err(BootInfoError::ZeroLength { map, index: i, start: e.start });
            }
            if e.start.checked_add(e.len).is_none() {
                return Err(BootInfoError::Wraps { map, index: i, start: e.start, len: e.len });
            }
        }
        for (i, a) in r.iter().enumerate() {
            for (j, b) in r.iter().enumerate().skip(i + 1) {
                if a.start < b.end() && b.start < a.end() {
                    return Err(BootInfoError::Overlap { map, a: i, b: j, start: a.start.max(b.start) });
                }
            }
        }
        if !r.iter().any(|e| e.kind == RegionKind::Ram && e.start < FOUR_GIB) {
            return Err(BootInfoError::NoLowRam { map });
        }
        Ok(())
    }

    /// The end of the highest RAM below 4 GiB (clipped there): what a
    /// 32-bit kernel can ever address without PAE highmem tricks.
    pub fn ram_end_below_4g(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|e| e.kind == RegionKind::Ram && e.start < FOUR_GIB)
            .map(|e| e.end().min(FOUR_GIB))
            .max()
            .unwrap_or(0)
    }

    /// RAM at or above 4 GiB, which this kernel leaves alone. Saturating:
    /// on a map not yet validated, overlapping entries can add up past
    /// 2^64 (found by fuzzing), and the answer must still be a number.
    pub fn ram_above_4g(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|e| e.kind == RegionKind::Ram)
            .map(|e| e.end().saturating_sub(e.start.max(FOUR_GIB)))
            .fold(0, u64::saturating_add)
    }

    /// Is `[start, end)` entirely RAM?
    pub fn is_ram(&self, start: u64, end: u64) -> bool {
        // Entries are validated not to overlap, so walk the RAM pieces in
        // order of start and see that they cover the range.
        let mut at = start;
        while at < end {
            match self.regions().iter().find(|e| e.kind == RegionKind::Ram && e.start <= at && at < e.end()) {
                Some(e) => at = e.end(),
                None => return false,
            }
        }
        true
    }
}

/// One e820-style entry at `at`: base (u64), length (u64), type (u32).
/// Every protocol here lays its entries out so (multiboot after a size
/// word; boot_params, PVH and XENMEM_memory_map with a fixed stride).
pub fn read_e820_entry(mem: &dyn PhysRead, at: u64, what: &'static str) -> Result<Region, BootInfoError> {
    let unreadable = |a: arch_i386::PhysAddr| BootInfoError::Unreadable { what, addr: a.0 };
    let field = |off: u64| {
        at.checked_add(off).map(arch_i386::PhysAddr).ok_or(BootInfoError::Unreadable { what, addr: at })
    };
    let start = mem.read_u64(field(0)?).map_err(unreadable)?;
    let len = mem.read_u64(field(8)?).map_err(unreadable)?;
    let ty = mem.read_u32(field(16)?).map_err(unreadable)?;
    Ok(Region { start, len, kind: RegionKind::from_e820(ty) })
}

/// `count` e820-style entries `stride` bytes apart from `table` on, as a
/// map (not yet validated) whose errors name `what`. More entries than a
/// map holds is an error before anything is read.
pub fn read_e820_table(
    mem: &dyn PhysRead,
    table: u64,
    (count, count_field): (u64, &'static str),
    stride: u64,
    what: &'static str,
) -> Result<MemoryMap, BootInfoError> {
    // The table may have room for more (boot_params: 128); this kernel
    // keeps MAX_REGIONS, and the error names the field that counted them.
    if count > MAX_REGIONS as u64 {
        return Err(BootInfoError::TooMany { field: count_field, count, max: MAX_REGIONS as u64 });
    }
    let mut m = MemoryMap::from_source(what);
    for i in 0..count {
        let at = table.checked_add(i * stride).ok_or(BootInfoError::Unreadable { what, addr: table })?;
        m.push(read_e820_entry(mem, at, what)?)?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(u64, u64, u32)]) -> MemoryMap {
        let mut m = MemoryMap::default();
        for &(start, len, t) in entries {
            m.push(Region { start, len, kind: RegionKind::from_e820(t) }).unwrap();
        }
        m
    }

    #[test]
    fn qemu_like_map_is_fine() {
        let m = map(&[(0, 0x9fc00, 1), (0x9fc00, 0x400, 2), (0xf0000, 0x10000, 2), (0x100000, 0x7ee0000, 1)]);
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.ram_end_below_4g(), 0x7fe0000);
        assert!(m.is_ram(0x100000, 0x200000));
        assert!(!m.is_ram(0x9f000, 0x101000));
    }

    #[test]
    fn rejects_bad_maps() {
        assert_eq!(map(&[]).validate(), Err(BootInfoError::Missing("the memory map is empty")));
        assert_eq!(
            map(&[(0, 0x9fc00, 1), (0x100000, 0, 1)]).validate(),
            Err(BootInfoError::ZeroLength { map: "memory map", index: 1, start: 0x100000 })
        );
        assert_eq!(
            map(&[(0x100000, 0x400000, 1), (0x200000, 0x100000, 2)]).validate(),
            Err(BootInfoError::Overlap { map: "memory map", a: 0, b: 1, start: 0x200000 })
        );
        assert!(matches!(
            map(&[(0x100000, 0x100000, 1), (0xffff_ffff_ffff_0000, 0x20000, 1)]).validate(),
            Err(BootInfoError::Wraps { index: 1, .. })
        ));
        assert_eq!(
            map(&[(0x1_0000_0000, 0x4000_0000, 1)]).validate(),
            Err(BootInfoError::NoLowRam { map: "memory map" })
        );
    }

    #[test]
    fn ram_above_4g_is_clipped_not_rejected() {
        let m = map(&[(0x100000, 0xbff0_0000, 1), (0x1_0000_0000, 0x4000_0000, 1)]);
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.ram_end_below_4g(), 0xc000_0000);
        assert_eq!(m.ram_above_4g(), 0x4000_0000);
    }

    #[test]
    fn too_many_entries_is_an_error() {
        let mut m = MemoryMap::default();
        for i in 0..MAX_REGIONS as u64 {
            m.push(Region { start: i << 20, len: 1 << 20, kind: RegionKind::Ram }).unwrap();
        }
        assert!(matches!(
            m.push(Region { start: 0, len: 1, kind: RegionKind::Ram }),
            Err(BootInfoError::TooMany { count: 65, .. })
        ));
    }
}
