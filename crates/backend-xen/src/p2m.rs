//! Pseudo-physical to machine frames and back.
//!
//! A PV guest's "physical" frames (pfns) are its own numbering, 0 to
//! nr_pages; the MMU sees machine frames (mfns), wherever Xen put the
//! pages. Pagetable entries hold mfns. Xen gives the guest the p2m table
//! (`start_info.mfn_list`, one u32 per pfn) and maps the global read-only
//! m2p table in the hypervisor's part of the address space. A frame is
//! ours when the two agree: `p2m[m2p[mfn]] == mfn`.
//!
//! Both tables are read with volatile loads through raw pointers, never
//! as Rust slices: Xen rewrites m2p entries of other domains' frames at
//! any time, and the guest's p2m is ours to change later (ballooning).

use arch_i386::Pfn;

#[derive(Clone, Copy, Debug)]
pub struct P2m {
    p2m: *const u32,
    nr_pages: u32,
    m2p: *const u32,
    /// Highest machine frame the m2p covers.
    max_mfn: u32,
}

// SAFETY: the tables are read-only for us (volatile loads only) and the
// kernel runs on one CPU.
unsafe impl Send for P2m {}
// SAFETY: as above.
unsafe impl Sync for P2m {}

impl P2m {
    /// # Safety
    /// `p2m` must point at `nr_pages` readable u32s and `m2p` at
    /// `max_mfn + 1` readable u32s, for as long as the value is used.
    pub const unsafe fn new(p2m: *const u32, nr_pages: u32, m2p: *const u32, max_mfn: u32) -> P2m {
        P2m { p2m, nr_pages, m2p, max_mfn }
    }

    pub fn nr_pages(&self) -> u32 {
        self.nr_pages
    }

    /// The machine frame behind `pfn`, if `pfn` is ours.
    pub fn mfn(&self, pfn: Pfn) -> Option<u32> {
        if pfn.0 >= self.nr_pages {
            return None;
        }
        // SAFETY: pfn < nr_pages: inside the p2m table (constructor's
        // contract).
        Some(unsafe { self.p2m.add(pfn.0 as usize).read_volatile() })
    }

    /// The pfn of a machine frame, if the frame is ours.
    pub fn pfn(&self, mfn: u32) -> Option<Pfn> {
        if mfn > self.max_mfn {
            return None;
        }
        // SAFETY: mfn <= max_mfn: inside the m2p table.
        let p = Pfn(unsafe { self.m2p.add(mfn as usize).read_volatile() });
        (self.mfn(p) == Some(mfn)).then_some(p)
    }

    /// How many frames from `pfn` on are machine-contiguous with it (at
    /// most `max`): runs the bulk path can fill like native memory.
    pub fn contiguous(&self, pfn: Pfn, max: u32) -> u32 {
        let Some(first) = self.mfn(pfn) else { return 0 };
        let max = max.min(self.nr_pages - pfn.0);
        let p = self.p2m;
        let base = pfn.0 as usize;
        // Frame pfn + i's machine frame, for i < max.
        let at = |i: u32| {
            debug_assert!(i < max);
            // SAFETY: i < max, so pfn + i < nr_pages: inside the p2m table
            // (the constructor's contract).
            unsafe { p.add(base + i as usize).read_volatile() }
        };
        let mut n = 1;
        // Eight at a time while they last: this reads every frame of low
        // memory once per boot, so it is kept tight.
        while n + 8 <= max && (0..8).all(|k| at(n + k) == first.wrapping_add(n + k)) {
            n += 8;
        }
        while n < max && at(n) == first.wrapping_add(n) {
            n += 1;
        }
        n
    }
}

/// Most runs a [`Runs`] table holds. Xen hands dom0 its memory in a few
/// long runs (one or two at every size measured here, up to 3 GiB).
pub const MAX_RUNS: usize = 32;

/// The machine-contiguous runs of pfns `[0, end)`, found once (one read
/// of the p2m per frame, at the start of the pagetable build): the bulk
/// path then fills a pte page from a run's first machine frame, the same
/// unrolled store loop as native, without looking at the p2m again.
///
/// Valid while the p2m does not change: this kernel never gives frames
/// back to Xen or takes new ones (no ballooning).
#[derive(Clone, Copy, Debug)]
pub struct Runs {
    /// (first pfn, its mfn) of each run, by pfn; a run ends where the next
    /// starts, the last one at `end`.
    starts: [(u32, u32); MAX_RUNS],
    len: usize,
    end: u32,
}

impl Default for Runs {
    fn default() -> Self {
        Runs::new()
    }
}

impl Runs {
    /// Covers nothing: every lookup misses.
    pub const fn new() -> Runs {
        Runs { starts: [(0, 0); MAX_RUNS], len: 0, end: 0 }
    }

    /// Scans the p2m from pfn 0 up to `end` (or as far as MAX_RUNS runs
    /// reach: past that, lookups miss and the caller reads the p2m).
    pub fn scan(p2m: &P2m, end: u32) -> Runs {
        let end = end.min(p2m.nr_pages());
        let mut r = Runs::new();
        while r.end < end && r.len < MAX_RUNS {
            let pfn = Pfn(r.end);
            let Some(mfn) = p2m.mfn(pfn) else { break };
            r.starts[r.len] = (pfn.0, mfn);
            r.len += 1;
            r.end += p2m.contiguous(pfn, end - pfn.0);
        }
        r
    }

    /// The machine frame behind `pfn` and how many frames from `pfn` on
    /// continue its run, if the table covers `pfn`.
    #[inline]
    pub fn lookup(&self, pfn: Pfn) -> Option<(u32, u32)> {
        if pfn.0 >= self.end {
            return None;
        }
        // The first run that starts after pfn ends pfn's.
        let i = self.starts[..self.len].iter().position(|&(s, _)| s > pfn.0).unwrap_or(self.len);
        let (start, mfn) = self.starts[i - 1];
        let run_end = if i < self.len { self.starts[i].0 } else { self.end };
        Some((mfn + (pfn.0 - start), run_end - pfn.0))
    }

    /// How many runs were found.
    pub fn count(&self) -> usize {
        self.len
    }

    /// pfns below this are covered.
    pub fn end(&self) -> u32 {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::table;

    #[test]
    fn round_trips_and_refuses_foreign_frames() {
        // Two runs of machine frames, as Xen hands dom0 its memory.
        let t = table(1024, |p| if p < 600 { 0x8000 + p } else { 0x2_0000 + p });
        assert_eq!(t.mfn(Pfn(5)), Some(0x8005));
        assert_eq!(t.pfn(0x8005), Some(Pfn(5)));
        assert_eq!(t.mfn(Pfn(1024)), None);
        // A machine frame no pfn of ours maps, and one beyond the m2p.
        assert_eq!(t.pfn(0x9000), None);
        assert_eq!(t.pfn(0xFFFF_FFFF), None);
        assert_eq!(t.contiguous(Pfn(590), 100), 10);
        assert_eq!(t.contiguous(Pfn(600), 100), 100);
        assert_eq!(t.contiguous(Pfn(2000), 100), 0);
        assert_eq!(t.contiguous(Pfn(1000), 100), 24, "stops at the last page");
    }

    #[test]
    fn runs_are_found_once_and_looked_up() {
        // Runs of 600, 1 and 423 frames (the middle one alone, and the
        // last one ends at nr_pages).
        let t = table(1024, |p| match p {
            0..600 => 0x8000 + p,
            600 => 0x100,
            _ => 0x2_0000 + p,
        });
        let r = Runs::scan(&t, 5000);
        assert_eq!((r.count(), r.end()), (3, 1024));
        assert_eq!(r.lookup(Pfn(0)), Some((0x8000, 600)));
        assert_eq!(r.lookup(Pfn(599)), Some((0x8000 + 599, 1)));
        assert_eq!(r.lookup(Pfn(600)), Some((0x100, 1)));
        assert_eq!(r.lookup(Pfn(601)), Some((0x2_0000 + 601, 423)));
        assert_eq!(r.lookup(Pfn(1024)), None);
        for p in 0..1024 {
            assert_eq!(r.lookup(Pfn(p)).map(|x| x.0), t.mfn(Pfn(p)), "pfn {p}");
        }
        // Only as far as asked.
        assert_eq!(Runs::scan(&t, 300).lookup(Pfn(300)), None);
    }

    #[test]
    fn a_p2m_too_scattered_for_the_table_is_covered_as_far_as_it_reaches() {
        // Every frame its own run: MAX_RUNS of them are covered.
        let t = table(100, |p| 0x9000 + 2 * p);
        let r = Runs::scan(&t, 100);
        assert_eq!((r.count(), r.end()), (MAX_RUNS, MAX_RUNS as u32));
        assert_eq!(r.lookup(Pfn(MAX_RUNS as u32 - 1)), Some((0x9000 + 2 * (MAX_RUNS as u32 - 1), 1)));
        assert_eq!(r.lookup(Pfn(MAX_RUNS as u32)), None);
    }
}
