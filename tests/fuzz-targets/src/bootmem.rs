//! The boot allocator over a validated map: the input is a floor, a limit,
//! reservations and then e820-style entries. Every frame handed out must be
//! whole RAM in the map, within `[floor, limit)`, outside every
//! reservation, and handed out once; the counts must add up.

use std::collections::BTreeSet;

use arch_i386::Pfn;
use mm::bootmem::{BootAlloc, MAX_FREE};
use mm::sim::SimMem;
use paravirt::PageAlloc;

/// Simulated frames: the limit is kept below this, so every frame the
/// allocator may serve exists (the kernel's limit is what the boot
/// environment mapped, likewise reachable).
const FRAMES: u32 = 256;
const RESERVATIONS: usize = 8;

pub fn run(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<{ 2 + 2 * RESERVATIONS }>() else { return };
    let floor = Pfn(head[0] as u32 % FRAMES);
    let limit = Pfn(head[1] as u32 % (FRAMES + 1));
    let reserved: std::vec::Vec<(Pfn, Pfn)> =
        head[2..].chunks_exact(2).map(|r| (Pfn(r[0] as u32), Pfn(r[0] as u32 + r[1] as u32 % 16))).collect();
    let map = crate::memmap::entries(rest);
    if map.validate().is_err() {
        return;
    }
    let mem = SimMem::new(FRAMES as usize);
    let Ok(mut a) = BootAlloc::new(&mem, &map, floor, limit, &reserved) else { return };
    let free = a.remaining();
    let mut seen = BTreeSet::new();
    while let Some(pfn) = a.alloc_page() {
        assert!(floor <= pfn && pfn < limit, "{pfn:?} outside [{floor:?}, {limit:?})");
        let pa = (pfn.0 as u64) << 12;
        assert!(map.is_ram(pa, pa + 4096), "{pfn:?} is not whole RAM in {map:?}");
        assert!(!reserved.iter().any(|&(s, e)| s <= pfn && pfn < e), "{pfn:?} is reserved");
        assert!(seen.insert(pfn), "{pfn:?} handed out twice");
    }
    assert_eq!(a.allocated() as usize, seen.len());
    assert_eq!(free as usize, seen.len(), "remaining() before allocating");
    assert_eq!(a.remaining(), 0);
    let mut out = [(Pfn(0), Pfn(0)); MAX_FREE];
    let n = a.allocated_ranges(&mut out);
    let total: u32 = out[..n].iter().map(|(s, e)| e.0 - s.0).sum();
    assert_eq!(total as usize, seen.len(), "allocated_ranges");
}
