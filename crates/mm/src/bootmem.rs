//! The boot page allocator (Linux's bootmem, reduced to what early
//! pagetable construction needs): hands out zeroed frames, lowest first,
//! from RAM the memory map reports, minus everything already in use.
//!
//! Frames must also be reachable before the kernel's own map exists, so
//! the allocator only serves frames below `limit`: the end of what the boot
//! environment mapped (head code's window, Xen's initial mapping, the
//! lguest host's linear map).

use arch_i386::Pfn;
use paravirt::memmap::{MemoryMap, RegionKind};
use paravirt::{PageAlloc, PhysMem};

use crate::MmError;

/// Free ranges kept: the memory map's most entries, each of which
/// reservations may split once more.
pub const MAX_FREE: usize = 64;

pub struct BootAlloc<'a> {
    mem: &'a dyn PhysMem,
    free: [(Pfn, Pfn); MAX_FREE],
    nfree: usize,
    cur: usize,
    next: Pfn,
    allocated: u32,
}

impl<'a> BootAlloc<'a> {
    /// Free memory = RAM in `map` within `[floor, limit)`, minus `reserved`.
    /// More free ranges than the allocator keeps is an error, not memory
    /// dropped silently.
    pub fn new(
        mem: &'a dyn PhysMem,
        map: &MemoryMap,
        floor: Pfn,
        limit: Pfn,
        reserved: &[(Pfn, Pfn)],
    ) -> Result<Self, MmError> {
        let mut a = BootAlloc {
            mem,
            free: [(Pfn(0), Pfn(0)); MAX_FREE],
            nfree: 0,
            cur: 0,
            next: Pfn(0),
            allocated: 0,
        };
        for r in map.regions().iter().filter(|r| r.kind == RegionKind::Ram) {
            // Whole frames only: round the start up and the end down.
            let start = Pfn(((r.start.min(1 << 44) + 0xFFF) >> 12) as u32).max(floor);
            let end = Pfn((r.end().min(1 << 44) >> 12) as u32).min(limit);
            if start < end {
                a.add_free(start, end, reserved)?;
            }
        }
        a.free[..a.nfree].sort_unstable();
        a.next = a.free.first().map(|r| r.0).unwrap_or(Pfn(0));
        Ok(a)
    }

    /// Adds `[start, end)` minus the reserved ranges.
    fn add_free(&mut self, start: Pfn, end: Pfn, reserved: &[(Pfn, Pfn)]) -> Result<(), MmError> {
        // Find the first reservation cutting into the range and recurse on
        // the pieces around it.
        if let Some(&(rs, re)) = reserved.iter().find(|(rs, re)| *rs < end && *re > start) {
            if start < rs {
                self.add_free(start, rs, reserved)?;
            }
            if re < end {
                self.add_free(re, end, reserved)?;
            }
            return Ok(());
        }
        if self.nfree == MAX_FREE {
            return Err(MmError::TooManyFreeRanges { max: MAX_FREE });
        }
        self.free[self.nfree] = (start, end);
        self.nfree += 1;
        Ok(())
    }

    /// Frames handed out so far.
    pub fn allocated(&self) -> u32 {
        self.allocated
    }

    /// Frames still free.
    pub fn remaining(&self) -> u32 {
        let mut n = 0;
        for (i, &(s, e)) in self.free[..self.nfree].iter().enumerate() {
            if i > self.cur {
                n += e.0 - s.0;
            } else if i == self.cur {
                n += e.0.saturating_sub(self.next.0.max(s.0));
            }
        }
        n
    }

    /// The free ranges (for the boot log).
    pub fn free_ranges(&self) -> &[(Pfn, Pfn)] {
        &self.free[..self.nfree]
    }

    /// What was handed out, as ranges, into `out`; returns how many. For
    /// handing the rest of memory to the runtime allocator.
    pub fn allocated_ranges(&self, out: &mut [(Pfn, Pfn); MAX_FREE]) -> usize {
        let mut n = 0;
        for (i, &(s, e)) in self.free[..self.nfree].iter().enumerate().take(self.cur + 1) {
            let end = if i == self.cur { self.next.clamp(s, e) } else { e };
            if s < end {
                out[n] = (s, end);
                n += 1;
            }
        }
        n
    }
}

impl BootAlloc<'_> {
    fn take(&mut self) -> Option<Pfn> {
        while self.cur < self.nfree {
            let (start, end) = self.free[self.cur];
            if self.next < start {
                self.next = start;
            }
            if self.next < end {
                let pfn = self.next;
                self.next = self.next.add(1);
                self.allocated += 1;
                return Some(pfn);
            }
            self.cur += 1;
        }
        None
    }
}

impl PageAlloc for BootAlloc<'_> {
    fn alloc_page(&mut self) -> Option<Pfn> {
        let pfn = self.take()?;
        assert!(self.mem.reachable(pfn), "boot allocator frame {pfn:?} is not mapped");
        // SAFETY: the frame is reachable, so PhysMem maps its 4096 bytes;
        // it is free RAM (no pagetable page yet), hence writable.
        unsafe { core::ptr::write_bytes(self.mem.page(pfn), 0, 4096) };
        Some(pfn)
    }

    fn alloc_page_uninit(&mut self) -> Option<Pfn> {
        self.take()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::cell::RefCell;
    use paravirt::memmap::Region;
    use std::vec;
    use std::vec::Vec;

    struct Sim(RefCell<Vec<[u8; 4096]>>);
    // SAFETY: every frame of the vector is a distinct 4096-byte array that
    // lives as long as the Sim.
    unsafe impl PhysMem for Sim {
        fn page(&self, pfn: Pfn) -> *mut u8 {
            self.0.borrow_mut()[pfn.0 as usize].as_mut_ptr()
        }
        fn reachable(&self, pfn: Pfn) -> bool {
            (pfn.0 as usize) < self.0.borrow().len()
        }
    }

    fn map(regions: &[(u64, u64)]) -> MemoryMap {
        let mut m = MemoryMap::default();
        for &(start, len) in regions {
            m.push(Region { start, len, kind: RegionKind::Ram }).unwrap();
        }
        m
    }

    #[test]
    fn skips_reservations_and_stops_at_limit() {
        let sim = Sim(RefCell::new(vec![[0xAA; 4096]; 0x110]));
        let m = map(&[(0, 0x9f000), (0x100000, 0x3f00000)]);
        // Frames 0x100..0x103 hold the kernel; the limit is 0x106.
        let mut a = BootAlloc::new(&sim, &m, Pfn(0x100), Pfn(0x106), &[(Pfn(0x100), Pfn(0x103))]).unwrap();
        assert_eq!(a.remaining(), 3);
        let got: Vec<_> = core::iter::from_fn(|| a.alloc_page()).collect();
        assert_eq!(got, [Pfn(0x103), Pfn(0x104), Pfn(0x105)]);
        assert_eq!(a.allocated(), 3);
        assert_eq!(a.remaining(), 0);
        let mut out = [(Pfn(0), Pfn(0)); MAX_FREE];
        assert_eq!(a.allocated_ranges(&mut out), 1);
        assert_eq!(out[0], (Pfn(0x103), Pfn(0x106)));
    }

    #[test]
    fn pages_come_zeroed() {
        let sim = Sim(RefCell::new(vec![[0xAA; 4096]; 8]));
        let m = map(&[(0, 0x8000)]);
        let mut a = BootAlloc::new(&sim, &m, Pfn(1), Pfn(8), &[]).unwrap();
        let p = a.alloc_page().unwrap();
        assert_eq!(p, Pfn(1));
        assert!(sim.0.borrow()[1].iter().all(|&b| b == 0));
        let mut out = [(Pfn(0), Pfn(0)); MAX_FREE];
        assert_eq!(a.allocated_ranges(&mut out), 1);
        assert_eq!(out[0], (Pfn(1), Pfn(2)));
    }

    #[test]
    fn too_many_free_ranges_is_an_error() {
        let sim = Sim(RefCell::new(vec![[0; 4096]; 1]));
        let m = map(&[(0, 0x1000_0000)]);
        // Every other frame reserved: far more free ranges than kept.
        let reserved: Vec<(Pfn, Pfn)> =
            (0..MAX_FREE as u32 + 1).map(|i| (Pfn(2 * i + 1), Pfn(2 * i + 2))).collect();
        let r = BootAlloc::new(&sim, &m, Pfn(0), Pfn(0x10000), &reserved);
        assert!(matches!(r, Err(MmError::TooManyFreeRanges { max: MAX_FREE })));
    }

    #[test]
    fn partial_frames_are_not_ram() {
        let sim = Sim(RefCell::new(vec![[0; 4096]; 8]));
        let m = map(&[(0x800, 0x2000)]);
        let mut a = BootAlloc::new(&sim, &m, Pfn(0), Pfn(8), &[]).unwrap();
        assert_eq!(a.alloc_page(), Some(Pfn(1)));
        assert_eq!(a.alloc_page(), None);
    }
}
