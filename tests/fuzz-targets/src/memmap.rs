//! The memory map's validation on its own: the input is e820-style entries
//! (start u64, length u64, type u32; 20 bytes each), overlapping, unsorted,
//! zero-length and wrapping ones included. The map is checked as the
//! protocols hand it over, not normalised: `validate` accepts it or says
//! which entry is wrong.

use paravirt::memmap::{MemoryMap, Region, RegionKind, MAX_REGIONS};

const ENTRY: usize = 20;

/// The entries in `data`, as many as a map holds (a longer table must be
/// `TooMany`, which `push` answers).
pub fn entries(data: &[u8]) -> MemoryMap {
    let mut m = MemoryMap::default();
    for (i, e) in data.chunks_exact(ENTRY).enumerate() {
        let start = u64::from_le_bytes(e[0..8].try_into().unwrap());
        let len = u64::from_le_bytes(e[8..16].try_into().unwrap());
        let ty = u32::from_le_bytes(e[16..20].try_into().unwrap());
        let pushed = m.push(Region { start, len, kind: RegionKind::from_e820(ty) });
        assert_eq!(pushed.is_err(), i >= MAX_REGIONS, "push of entry {i}");
    }
    m
}

pub fn run(data: &[u8]) {
    let m = entries(data);
    // The queries must answer (not loop or overflow) for any map, valid
    // or not: the kernel logs them before it judges the map.
    let _ = m.ram_end_below_4g();
    let _ = m.ram_above_4g();
    if let Ok(()) = m.validate() {
        crate::contract::valid_map(&m);
    }
}
