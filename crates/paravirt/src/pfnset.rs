//! A small set of frames kept as runs `[start, end)`.
//!
//! The boot build's new pagetable pages come from an allocator that hands
//! out frames lowest first, so they form a few long runs: a handful of
//! pairs holds hundreds of pages, with no allocator and no bitmap.

use arch_i386::Pfn;

/// Most runs a set holds.
pub const MAX_RUNS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfnRuns {
    runs: [(Pfn, Pfn); MAX_RUNS],
    len: usize,
}

/// The set has no room for another run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl Default for PfnRuns {
    fn default() -> Self {
        PfnRuns::new()
    }
}

impl PfnRuns {
    pub const fn new() -> PfnRuns {
        PfnRuns { runs: [(Pfn(0), Pfn(0)); MAX_RUNS], len: 0 }
    }

    /// Adds `pfn`: extends the run it continues, else starts one.
    pub fn insert(&mut self, pfn: Pfn) -> Result<(), Full> {
        if self.contains(pfn) {
            return Ok(());
        }
        if let Some(r) = self.runs[..self.len].iter_mut().find(|r| r.1 == pfn) {
            r.1 = pfn.add(1);
            return Ok(());
        }
        if let Some(r) = self.runs[..self.len].iter_mut().find(|r| r.0 == pfn.add(1)) {
            r.0 = pfn;
            return Ok(());
        }
        if self.len == MAX_RUNS {
            return Err(Full);
        }
        self.runs[self.len] = (pfn, pfn.add(1));
        self.len += 1;
        Ok(())
    }

    pub fn contains(&self, pfn: Pfn) -> bool {
        self.runs[..self.len].iter().any(|&(s, e)| s <= pfn && pfn < e)
    }

    pub fn runs(&self) -> &[(Pfn, Pfn)] {
        &self.runs[..self.len]
    }

    /// Every frame, run by run.
    pub fn iter(&self) -> impl Iterator<Item = Pfn> + '_ {
        self.runs().iter().flat_map(|&(s, e)| (s.0..e.0).map(Pfn))
    }

    pub fn count(&self) -> u32 {
        self.runs().iter().map(|(s, e)| e.0 - s.0).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn sequential_frames_make_one_run() {
        let mut s = PfnRuns::new();
        for p in 100..600 {
            s.insert(Pfn(p)).unwrap();
        }
        assert_eq!(s.runs(), &[(Pfn(100), Pfn(600))]);
        assert_eq!(s.count(), 500);
        assert!(s.contains(Pfn(599)) && !s.contains(Pfn(600)) && !s.contains(Pfn(99)));
    }

    #[test]
    fn gaps_make_runs_and_a_full_set_says_so() {
        let mut s = PfnRuns::new();
        for i in 0..MAX_RUNS as u32 {
            s.insert(Pfn(i * 10)).unwrap();
        }
        assert_eq!(s.insert(Pfn(1000)), Err(Full));
        // Joining an existing run still works when full.
        s.insert(Pfn(11)).unwrap();
        s.insert(Pfn(9)).unwrap();
        assert!(s.contains(Pfn(11)) && s.contains(Pfn(9)));
        let all: Vec<_> = s.iter().collect();
        assert_eq!(all.len() as u32, s.count());
    }
}
