//! The runtime page allocator: every frame of RAM the boot left free, one
//! bit each, handed out and taken back.
//!
//! Two zones, as in Linux's i386 kernel: low memory (below `max_low_pfn`,
//! reachable through the direct map: pagetable pages and kernel
//! structures must come from here) and high memory (above it: only
//! mappable through a temporary mapping, fine for user pages). A request
//! for a high page falls back to low memory when high memory is empty.
//!
//! The bitmap itself lives in pages the boot allocator gave; a set bit is
//! a free frame.

use arch_i386::Pfn;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// Below `max_low_pfn`: in the direct map.
    Low,
    /// Above it: user pages, mapped through kmap when the kernel must
    /// touch them.
    High,
}

pub struct FrameAllocator<'a> {
    /// Bit `pfn` set: frame `pfn` is free.
    bits: &'a mut [u32],
    max_low: Pfn,
    end: Pfn,
    free_low: u32,
    free_high: u32,
    /// Where the next search of each zone starts.
    hint_low: u32,
    hint_high: u32,
}

/// A frame given back that was not handed out (or is not RAM here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAllocated(pub Pfn);

impl<'a> FrameAllocator<'a> {
    /// Words of bitmap needed for frames below `end`.
    pub const fn words_for(end: Pfn) -> usize {
        end.0.div_ceil(32) as usize
    }

    /// An allocator over frames below `end` (`bits` must hold
    /// `words_for(end)` words), with nothing free yet.
    pub fn new(bits: &'a mut [u32], max_low: Pfn, end: Pfn) -> FrameAllocator<'a> {
        assert!(bits.len() >= Self::words_for(end), "frame bitmap too small");
        bits.fill(0);
        FrameAllocator { bits, max_low, end, free_low: 0, free_high: 0, hint_low: 0, hint_high: max_low.0 }
    }

    fn zone_of(&self, pfn: Pfn) -> Zone {
        if pfn < self.max_low {
            Zone::Low
        } else {
            Zone::High
        }
    }

    pub fn is_free(&self, pfn: Pfn) -> bool {
        self.bits[(pfn.0 / 32) as usize] & (1 << (pfn.0 % 32)) != 0
    }

    fn set(&mut self, pfn: Pfn, free: bool) {
        let (w, b) = ((pfn.0 / 32) as usize, 1 << (pfn.0 % 32));
        if free {
            self.bits[w] |= b;
        } else {
            self.bits[w] &= !b;
        }
        let counter = match self.zone_of(pfn) {
            Zone::Low => &mut self.free_low,
            Zone::High => &mut self.free_high,
        };
        if free {
            *counter += 1;
        } else {
            *counter -= 1;
        }
    }

    /// Adds `[start, end)` to the free frames (at set-up).
    pub fn add_free(&mut self, start: Pfn, end: Pfn) {
        for p in start.0..end.0.min(self.end.0) {
            if !self.is_free(Pfn(p)) {
                self.set(Pfn(p), true);
            }
        }
    }

    /// A frame of `zone` (a high request falls back to low memory).
    pub fn alloc(&mut self, zone: Zone) -> Option<Pfn> {
        if zone == Zone::High {
            if let Some(p) = self.search(self.max_low.0, self.end.0, self.hint_high) {
                self.hint_high = p.0 + 1;
                self.set(p, false);
                return Some(p);
            }
        }
        let p = self.search(0, self.max_low.0.min(self.end.0), self.hint_low)?;
        self.hint_low = p.0 + 1;
        self.set(p, false);
        Some(p)
    }

    /// `n` physically contiguous low-memory frames (a kernel stack, a
    /// table that must be contiguous in the direct map): the first run
    /// found.
    pub fn alloc_contiguous(&mut self, n: u32) -> Option<Pfn> {
        let hi = self.max_low.0.min(self.end.0);
        let mut start = 0;
        while start + n <= hi {
            let p = self.search_range(start, hi)?;
            let run = (0..n).take_while(|&i| p.0 + i < hi && self.is_free(p.add(i))).count() as u32;
            if run == n {
                for i in 0..n {
                    self.set(p.add(i), false);
                }
                return Some(p);
            }
            start = p.0 + run + 1;
        }
        None
    }

    /// The first free frame in `[lo, hi)`, searching from `hint` on and
    /// wrapping around.
    fn search(&self, lo: u32, hi: u32, hint: u32) -> Option<Pfn> {
        if lo >= hi {
            return None;
        }
        let hint = hint.clamp(lo, hi);
        self.search_range(hint, hi).or_else(|| self.search_range(lo, hint))
    }

    fn search_range(&self, lo: u32, hi: u32) -> Option<Pfn> {
        let mut p = lo;
        while p < hi {
            let w = self.bits[(p / 32) as usize] >> (p % 32);
            if w == 0 {
                p = (p / 32 + 1) * 32;
                continue;
            }
            let q = p + w.trailing_zeros();
            return (q < hi).then_some(Pfn(q));
        }
        None
    }

    /// Gives `pfn` back.
    pub fn free(&mut self, pfn: Pfn) -> Result<(), NotAllocated> {
        if pfn >= self.end || self.is_free(pfn) {
            return Err(NotAllocated(pfn));
        }
        self.set(pfn, true);
        Ok(())
    }

    /// Free frames in each zone: (low, high).
    pub fn free_count(&self) -> (u32, u32) {
        (self.free_low, self.free_high)
    }

    pub fn max_low(&self) -> Pfn {
        self.max_low
    }

    /// The first frame past the ones it manages.
    pub fn end(&self) -> Pfn {
        self.end
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn zones_fallback_and_round_trip() {
        let mut bits = vec![0u32; FrameAllocator::words_for(Pfn(1000))];
        let mut a = FrameAllocator::new(&mut bits, Pfn(600), Pfn(1000));
        a.add_free(Pfn(100), Pfn(110));
        a.add_free(Pfn(990), Pfn(1000));
        assert_eq!(a.free_count(), (10, 10));
        let h = a.alloc(Zone::High).unwrap();
        assert!(h.0 >= 990);
        let l = a.alloc(Zone::Low).unwrap();
        assert_eq!(l, Pfn(100));
        // High memory exhausted: a high request gets low memory.
        for _ in 0..9 {
            assert!(a.alloc(Zone::High).unwrap().0 >= 990);
        }
        assert!(a.alloc(Zone::High).unwrap().0 < 600);
        assert_eq!(a.free_count(), (8, 0));
        a.free(h).unwrap();
        assert_eq!(a.free(h), Err(NotAllocated(h)), "double free is refused");
        assert_eq!(a.free(Pfn(5000)), Err(NotAllocated(Pfn(5000))));
        assert_eq!(a.free_count(), (8, 1));
    }

    #[test]
    fn contiguous_runs_skip_holes() {
        let mut bits = vec![0u32; FrameAllocator::words_for(Pfn(100))];
        let mut a = FrameAllocator::new(&mut bits, Pfn(100), Pfn(100));
        a.add_free(Pfn(10), Pfn(12));
        a.add_free(Pfn(20), Pfn(23));
        assert_eq!(a.alloc_contiguous(3), Some(Pfn(20)));
        assert_eq!(a.alloc_contiguous(3), None);
        assert_eq!(a.alloc_contiguous(2), Some(Pfn(10)));
        assert_eq!(a.free_count(), (0, 0));
    }

    #[test]
    fn exhaustion_and_wraparound() {
        let mut bits = vec![0u32; FrameAllocator::words_for(Pfn(64))];
        let mut a = FrameAllocator::new(&mut bits, Pfn(64), Pfn(64));
        a.add_free(Pfn(0), Pfn(64));
        let all: std::vec::Vec<_> = core::iter::from_fn(|| a.alloc(Zone::Low)).collect();
        assert_eq!(all.len(), 64);
        assert_eq!(a.alloc(Zone::Low), None);
        a.free(Pfn(3)).unwrap();
        assert_eq!(a.alloc(Zone::Low), Some(Pfn(3)), "the search wraps around");
    }
}
#[cfg(test)]
mod zone_tests {
    extern crate std;
    use super::*;
    #[test]
    fn zone_counts_split_at_max_low() {
        let mut bits = std::vec![0u32; 1 << 15];
        let mut a = FrameAllocator::new(&mut bits, Pfn(0x377fe), Pfn(0x3ffe0));
        a.add_free(Pfn(0x100), Pfn(0x3ffe0));
        assert_eq!(a.free_count(), (0x377fe - 0x100, 0x3ffe0 - 0x377fe));
    }
}
