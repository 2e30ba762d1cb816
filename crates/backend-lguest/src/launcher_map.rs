//! The pagetable the guest boots on, as the Launcher built it.
//!
//! lguest's Launcher maps all guest memory twice, at 0 and at PAGE_OFFSET,
//! with the same pte pages under both halves (flags 0x7: present, writable,
//! user), and puts the pte pages and the pgdir together at the top of guest
//! memory. The host publishes the pgdir's address in `lguest_data.pgdir`.
//!
//! The kernel keeps that map (it adopts the pte pages into its own
//! pagetable), so those pages must never be handed out as free memory, and
//! it may allocate from everything the map reaches. [`scan`] measures both
//! from the kernel half of the pgdir. It reads memory through a closure so
//! the unit tests can hand it a simulated table.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{PagingMode, Pfn};

/// Runs of pagetable pages kept (the pte pages are contiguous in the
/// Launcher's layout: one run, plus the pgdir, which usually joins it).
pub const MAX_RUNS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LauncherMap {
    /// Frames `0..end` are mapped at `PAGE_OFFSET + pfn * 4K`.
    pub end: Pfn,
    /// `[start, end)` runs of frames holding the pgdir and its pte pages.
    runs: [(Pfn, Pfn); MAX_RUNS],
    nruns: usize,
}

impl LauncherMap {
    pub fn runs(&self) -> &[(Pfn, Pfn)] {
        &self.runs[..self.nruns]
    }

    /// Adds one frame, growing or joining runs where it touches them.
    fn add(&mut self, pfn: Pfn) -> Result<(), &'static str> {
        let runs = &mut self.runs[..self.nruns];
        if runs.iter().any(|r| r.0 <= pfn && pfn < r.1) {
            return Ok(());
        }
        let below = runs.iter().position(|r| r.1 == pfn);
        let above = runs.iter().position(|r| r.0 == pfn.add(1));
        match (below, above) {
            (Some(b), Some(a)) => {
                runs[b].1 = runs[a].1;
                self.runs[a] = self.runs[self.nruns - 1];
                self.nruns -= 1;
            }
            (Some(b), None) => runs[b].1 = pfn.add(1),
            (None, Some(a)) => runs[a].0 = pfn,
            (None, None) => {
                if self.nruns == MAX_RUNS {
                    return Err("the Launcher's pagetable pages are scattered over too many runs");
                }
                self.runs[self.nruns] = (pfn, pfn.add(1));
                self.nruns += 1;
            }
        }
        Ok(())
    }
}

/// Scans the kernel half of the 2-level pgdir at `pgdir`. `read(pfn, i)`
/// returns entry `i` of frame `pfn`; `ram_pages` bounds every frame the
/// table may name.
pub fn scan(pgdir: Pfn, ram_pages: u32, read: impl Fn(Pfn, u32) -> u32) -> Result<LauncherMap, &'static str> {
    let mode = PagingMode::TwoLevel;
    if pgdir.0 >= ram_pages {
        return Err("lguest_data.pgdir is beyond guest memory");
    }
    let mut m = LauncherMap { end: Pfn(0), runs: [(Pfn(0), Pfn(0)); MAX_RUNS], nruns: 0 };
    m.add(pgdir)?;
    let mut contiguous = true;
    for i in mode.pgd_index(PAGE_OFFSET)..mode.ptrs_per_pgd() {
        let pde = read(pgdir, i);
        if !present(pde as u64) {
            contiguous = false;
            continue;
        }
        let table = Pfn(pde >> 12);
        if table.0 >= ram_pages {
            return Err("a Launcher pgdir entry names a frame beyond guest memory");
        }
        m.add(table)?;
        if !contiguous {
            // The linear part ended: only the tables are still of interest.
            continue;
        }
        let base = (i - mode.pgd_index(PAGE_OFFSET)) << 10;
        let mut j = 0;
        while j < mode.ptrs_per_pte() {
            let pte = read(table, j);
            if !present(pte as u64) || pte >> 12 != base + j {
                contiguous = false;
                break;
            }
            j += 1;
        }
        if j > 0 {
            m.end = Pfn(base + j);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::HashMap;

    /// Builds the Launcher's table for `mem` bytes in a map of frames.
    fn launcher(mem: u32) -> (Pfn, HashMap<(u32, u32), u32>) {
        let pages = mem >> 12;
        let ptes = pages.div_ceil(1024);
        let pgdir = pages - 1;
        let first = pgdir - ptes;
        let mut m = HashMap::new();
        for p in 0..pages {
            m.insert((first + p / 1024, p % 1024), (p << 12) | 7);
        }
        for t in 0..ptes {
            let e = ((first + t) << 12) | 7;
            m.insert((pgdir, t), e);
            m.insert((pgdir, 768 + t), e);
        }
        (Pfn(pgdir), m)
    }

    #[test]
    fn finds_the_linear_map_and_its_tables() {
        let (pgdir, m) = launcher(32 << 20);
        let r = scan(pgdir, 8192, |p, i| *m.get(&(p.0, i)).unwrap_or(&0)).unwrap();
        assert_eq!(r.end, Pfn(8192));
        // 8 pte pages right below the pgdir: one run with it.
        assert_eq!(r.runs(), &[(Pfn(8191 - 8), Pfn(8192))]);
    }

    #[test]
    fn a_partial_last_table_ends_the_map_there() {
        let (pgdir, m) = launcher(30 << 20);
        let r = scan(pgdir, 7680, |p, i| *m.get(&(p.0, i)).unwrap_or(&0)).unwrap();
        assert_eq!(r.end, Pfn(7680));
    }

    #[test]
    fn tables_beyond_memory_are_refused() {
        let (pgdir, m) = launcher(32 << 20);
        assert!(scan(pgdir, 4096, |p, i| *m.get(&(p.0, i)).unwrap_or(&0)).is_err());
    }
}
