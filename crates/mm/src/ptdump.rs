//! What the ptdump says beyond the kernel half's mappings
//! (`check::DumpRange`): which direct-map entries the build kept from the
//! pagetable it booted on, the pagetable pages themselves (level,
//! read-only or not in the kernel's map, made by the build or kept), and a
//! process's user half. `cargo xtask ptdump` draws its picture from these
//! lines.
//!
//! Kept entries are known only while building (the build fills only empty
//! entries, so an entry present then was the boot pagetable's), so the
//! build records them as it goes, in runs of frames: the boot environment
//! maps low memory contiguously, so a few runs hold it all.

use core::fmt;

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{Level, Pfn, PteFlags};
use paravirt::pfnset::PfnRuns;
use paravirt::Mmu;

use crate::check::DumpRange;
use crate::layout::Layout;
use crate::walk::Walker;

/// Most runs of kept entries recorded; more are counted, not listed.
pub const MAX_KEPT_RUNS: usize = 8;

/// Direct-map pages whose entries the build found present and kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    runs: [(Pfn, Pfn); MAX_KEPT_RUNS],
    len: usize,
    /// Pages kept beyond the last run that fit.
    pub unlisted: u32,
}

impl Default for Kept {
    fn default() -> Self {
        Kept { runs: [(Pfn(0), Pfn(0)); MAX_KEPT_RUNS], len: 0, unlisted: 0 }
    }
}

impl Kept {
    /// Records `n` kept entries mapping frames `first..first + n`.
    pub fn add(&mut self, first: Pfn, n: u32) {
        if self.len > 0 && self.runs[self.len - 1].1 == first {
            self.runs[self.len - 1].1 = Pfn(first.0 + n);
        } else if self.len < MAX_KEPT_RUNS {
            self.runs[self.len] = (first, Pfn(first.0 + n));
            self.len += 1;
        } else {
            self.unlisted += n;
        }
    }

    pub fn runs(&self) -> &[(Pfn, Pfn)] {
        &self.runs[..self.len]
    }
}

/// A run of kept entries as the ptdump prints it: the virtual range.
pub struct KeptRange(pub Pfn, pub Pfn);

impl fmt::Display for KeptRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let va = |p: Pfn| PAGE_OFFSET as u64 + ((p.0 as u64) << 12);
        write!(f, "kept {:#010x}-{:#010x} (entries of the boot pagetable)", va(self.0), va(self.1))
    }
}

/// Consecutive pagetable pages of one level, alike in how they are mapped
/// and where they came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableRun {
    pub level: Level,
    pub first: Pfn,
    pub end: Pfn,
    /// Mapped read-only in the kernel's direct map (None: not in it).
    pub readonly: Option<bool>,
    /// Made by the build (one of its fresh pages), or kept from the boot
    /// pagetable.
    pub built: bool,
}

impl fmt::Display for TableRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tables {} pfn {:#x}-{:#x} ({}) {} {}",
            match self.level {
                Level::Pgd => "pgd",
                Level::Pmd => "pmd",
                Level::Pte => "pte",
            },
            self.first.0,
            self.end.0,
            self.end.0 - self.first.0,
            match self.readonly {
                Some(true) => "ro",
                Some(false) => "RW",
                None => "unmapped",
            },
            if self.built { "built" } else { "kept" }
        )
    }
}

/// Is pagetable page `pfn` mapped read-only in the kernel's direct map?
/// None if the direct map does not reach it.
pub fn mapped_readonly<M: Mmu + ?Sized>(w: &Walker<M>, layout: &Layout, pfn: Pfn) -> Option<bool> {
    if pfn.0 >= layout.max_low_pfn.0 {
        return None;
    }
    let va = PAGE_OFFSET + (pfn.0 << 12);
    let entry = match w.pte(va) {
        Some(e) => e.read(),
        // Under a large page (or unmapped: then the self-check says so).
        None => w.pmd(va)?.read(),
    };
    Some(entry & PteFlags::RW.bits() == 0)
}

/// Calls `dump` with the pagetable pages of the kernel half, in runs;
/// `fresh` is the build's own pages.
pub fn table_runs<M: Mmu + ?Sized>(
    w: &Walker<M>,
    layout: &Layout,
    fresh: &PfnRuns,
    dump: impl FnMut(&TableRun),
) {
    let top = layout.fixaddr_top as u64 + 4096;
    table_runs_in(w, layout, PAGE_OFFSET, top, |pfn| fresh.contains(pfn), dump);
}

/// Calls `dump` with the pagetable pages of a process's user half (its
/// pgd, the pmd pages under PAE, its pte pages: in high memory, not in
/// the direct map, under HIGHPTE), in runs. The kernel made every one.
pub fn user_table_runs<M: Mmu + ?Sized>(w: &Walker<M>, layout: &Layout, dump: impl FnMut(&TableRun)) {
    table_runs_in(w, layout, 0, PAGE_OFFSET as u64, |_| true, dump);
}

fn table_runs_in<M: Mmu + ?Sized>(
    w: &Walker<M>,
    layout: &Layout,
    start: u32,
    end: u64,
    built: impl Fn(Pfn) -> bool,
    mut dump: impl FnMut(&TableRun),
) {
    let mut run: Option<TableRun> = None;
    w.for_each_table(start, end, |pfn, level| {
        let page = TableRun {
            level,
            first: pfn,
            end: Pfn(pfn.0 + 1),
            readonly: mapped_readonly(w, layout, pfn),
            built: built(pfn),
        };
        match run.as_mut() {
            Some(r)
                if r.end == pfn
                    && r.level == page.level
                    && r.readonly == page.readonly
                    && r.built == page.built =>
            {
                r.end = page.end
            }
            _ => {
                if let Some(r) = run.replace(page) {
                    dump(&r);
                }
            }
        }
    });
    if let Some(r) = run {
        dump(&r);
    }
}

/// The bits a user-half run is alike in: what the page allows, not the
/// accessed and dirty bits the CPU sets as the process runs.
const USER_RUN_BITS: PteFlags =
    PteFlags::PRESENT.union(PteFlags::RW).union(PteFlags::USER).union(PteFlags::NX).union(PteFlags::GLOBAL);

/// Calls `dump` with the user half of a process's pagetable in runs of
/// virtually contiguous pages alike in what they allow, as Linux's ptdump
/// merges: a process's frames are scattered, so a run's `pfn` is only its
/// first page's. At most `max` runs; returns how many more there were.
pub fn user_ranges<M: Mmu + ?Sized>(w: &Walker<M>, max: usize, mut dump: impl FnMut(&DumpRange)) -> usize {
    let (mut shown, mut more) = (0, 0);
    let mut run: Option<DumpRange> = None;
    let mut emit = |d: DumpRange| {
        if shown < max {
            shown += 1;
            dump(&d);
        } else {
            more += 1;
        }
    };
    w.for_each_mapping(0, PAGE_OFFSET as u64, |m| {
        // An unreachable pte page (pfn None, size 0) is not a mapping.
        let (Some(pfn), true) = (m.pfn, m.size > 0) else { return };
        let flags = m.flags.intersection(USER_RUN_BITS);
        if let Some(d) = run.as_mut() {
            if d.end == m.va as u64 && d.flags == flags && d.size == m.size {
                d.end += m.size as u64;
                return;
            }
        }
        let next = DumpRange { start: m.va, end: m.va as u64 + m.size as u64, pfn, flags, size: m.size };
        if let Some(d) = run.replace(next) {
            emit(d);
        }
    });
    if let Some(d) = run {
        emit(d);
    }
    more
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;

    use super::*;

    #[test]
    fn kept_entries_merge_into_runs_and_overflow_is_counted() {
        let mut k = Kept::default();
        k.add(Pfn(0x100), 0x80);
        k.add(Pfn(0x180), 0x80);
        k.add(Pfn(0x400), 1);
        assert_eq!(k.runs(), &[(Pfn(0x100), Pfn(0x200)), (Pfn(0x400), Pfn(0x401))]);
        for i in 0..10 {
            k.add(Pfn(0x1000 + 2 * i), 1);
        }
        assert_eq!(k.runs().len(), MAX_KEPT_RUNS);
        assert_eq!(k.unlisted, 4);
        assert_eq!(
            KeptRange(Pfn(0x100), Pfn(0x200)).to_string(),
            "kept 0xc0100000-0xc0200000 (entries of the boot pagetable)"
        );
    }

    #[test]
    fn a_table_run_says_level_mapping_and_origin() {
        let r = TableRun {
            level: Level::Pte,
            first: Pfn(0x1ac),
            end: Pfn(0x1b0),
            readonly: Some(true),
            built: true,
        };
        assert_eq!(r.to_string(), "tables pte pfn 0x1ac-0x1b0 (4) ro built");
    }
}
