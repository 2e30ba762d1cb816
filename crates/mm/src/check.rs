//! The self-check: walk the live pagetable and verify what the kernel
//! promised, independently of how it was built.
//!
//! Invariants over the kernel half, `[PAGE_OFFSET, FIXADDR_TOP)`:
//! - every low frame `pfn < max_low_pfn` is mapped at `PAGE_OFFSET + pfn *
//!   4K`, and nothing else in the kernel half maps anything (so each low
//!   page is mapped exactly once there);
//! - kernel text is read-only and executable, rodata read-only, everything
//!   else non-executable when NX is on; no kernel page is user-accessible;
//! - the fixmap and persistent-kmap areas have their pte pages, empty;
//! - where the backend requires it, every pagetable page is mapped
//!   read-only (Xen PV).
//!
//! Violations are counted and the first few described; the ptdump-style
//! summary goes to a callback so the kernel can print it.

use core::fmt;

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, Pfn, PteFlags};

use paravirt::Mmu;

use crate::layout::{Layout, Section};
use crate::walk::{Mapping, Walker};
use crate::Caps;

/// A run of mappings with the same flags and page size, contiguous in both
/// virtual and physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpRange {
    pub start: u32,
    pub end: u64,
    pub pfn: Pfn,
    pub flags: PteFlags,
    pub size: u32,
}

impl fmt::Display for DumpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.end - self.start as u64;
        let (n, unit) =
            if len >= 1 << 20 && len.is_multiple_of(1 << 20) { (len >> 20, "M") } else { (len >> 10, "K") };
        let fl = self.flags;
        write!(
            f,
            "{:#010x}-{:#010x} {:>5}{} {} {} {} {} {:>2}{} -> pfn {:#x}",
            self.start,
            self.end,
            n,
            unit,
            if fl.contains(PteFlags::RW) { "RW" } else { "ro" },
            if fl.contains(PteFlags::NX) { "NX" } else { "x " },
            if fl.contains(PteFlags::USER) { "USR" } else { "ker" },
            if fl.contains(PteFlags::GLOBAL) { "GLB" } else { "   " },
            if self.size >= 1 << 20 { self.size >> 20 } else { self.size >> 10 },
            if self.size >= 1 << 20 { "M" } else { "K" },
            self.pfn.0,
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A low frame's direct-map address maps nothing.
    Missing {
        va: u32,
    },
    WrongFrame {
        va: u32,
        want: Pfn,
        got: Pfn,
    },
    Permission {
        va: u32,
        why: &'static str,
    },
    /// A kernel-half mapping outside the direct map.
    Stray {
        va: u32,
        pfn: Pfn,
    },
    /// A required pte page is missing (fixmap, pkmap).
    NoTable {
        va: u32,
        what: &'static str,
    },
    /// A pagetable page is writable in the kernel's map.
    WritableTable {
        pfn: Pfn,
    },
    /// The entry names a frame that is not ours (Xen: the m2p and p2m
    /// tables do not agree on it), or a pte page we cannot reach.
    Foreign {
        va: u32,
        raw: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Problem::Missing { va } => write!(f, "{va:#010x}: low memory not mapped"),
            Problem::WrongFrame { va, want, got } => {
                write!(f, "{va:#010x}: maps pfn {got} instead of {want}")
            }
            Problem::Permission { va, why } => write!(f, "{va:#010x}: {why}"),
            Problem::Stray { va, pfn } => write!(f, "{va:#010x}: unexpected mapping of pfn {pfn}"),
            Problem::NoTable { va, what } => write!(f, "{va:#010x}: no pte page for the {what}"),
            Problem::WritableTable { pfn } => {
                write!(f, "pagetable page pfn {pfn} is mapped writable")
            }
            Problem::Foreign { va, raw } => {
                write!(f, "{va:#010x}: entry {raw:#x} names a frame that is not ours")
            }
        }
    }
}

const KEEP: usize = 4;

#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    pub mapped_pages: u32,
    pub large_pages: u32,
    pub pte_tables: u32,
    pub pmd_tables: u32,
    pub problems: u32,
    pub first: [Option<Problem>; KEEP],
    /// Present pmd entries below PAGE_OFFSET (e.g. the seed's PAE identity
    /// alias, which makes a whole pmd page of the kernel's appear there).
    pub user_pmds: u32,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems == 0
    }
    fn add(&mut self, p: Problem) {
        if (self.problems as usize) < KEEP {
            self.first[self.problems as usize] = Some(p);
        }
        self.problems += 1;
    }
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.first.iter().flatten()
    }
}

/// Checks the pagetable `w` walks; `dump` receives the ptdump ranges of
/// the kernel half.
pub fn check<M: Mmu + ?Sized>(
    w: &Walker<M>,
    layout: &Layout,
    caps: &Caps,
    readonly_tables: bool,
    mut dump: impl FnMut(&DumpRange),
) -> Report {
    let mut r = Report::default();
    let direct_end = layout.direct_map_end() as u64;
    let top = layout.fixaddr_top as u64 + 4096;
    let mut expect = PAGE_OFFSET as u64;
    let mut run: Option<DumpRange> = None;

    // The section the current run started in.
    let mut run_section = Section::Data;
    w.for_each_mapping(PAGE_OFFSET, top, |m| {
        let Some(pfn) = m.pfn else {
            r.add(Problem::Foreign { va: m.va, raw: m.raw });
            return;
        };
        r.mapped_pages += m.size / 4096;
        if m.size > 4096 {
            r.large_pages += 1;
        }
        let next_pfn = |d: &DumpRange| Pfn(d.pfn.0 + ((d.end - d.start as u64) >> 12) as u32);
        let section = layout.image.section(m.va);
        // Fast path: the mapping continues the current run (contiguous in
        // virtual and physical address, same flags and size, same kernel
        // section). The run's first mapping was checked in full, so this
        // one is right too: at the expected frame (contiguity), with the
        // same, already accepted, permissions. The backend's `pte_pfn`
        // verified its frame translation (under Xen, mfn -> pfn -> mfn).
        if let Some(d) = run.as_mut() {
            if d.end == m.va as u64
                && d.flags == m.flags
                && d.size == m.size
                && next_pfn(d) == pfn
                && section == run_section
                && (m.va as u64) < direct_end
            {
                d.end += m.size as u64;
                expect = m.va as u64 + m.size as u64;
                return;
            }
        }
        check_mapping(&mut r, &m, pfn, layout, caps, direct_end, &mut expect);
        // A new ptdump range.
        if let Some(d) = run.take() {
            dump(&d);
        }
        run = Some(DumpRange {
            start: m.va,
            end: m.va as u64 + m.size as u64,
            pfn,
            flags: m.flags,
            size: m.size,
        });
        run_section = section;
    });
    if let Some(d) = run {
        dump(&d);
    }
    while expect < direct_end {
        r.add(Problem::Missing { va: expect as u32 });
        expect = direct_end;
    }

    // The fixmap and pkmap need their pte pages.
    let (fix_start, fix_end) = layout.fixmap_range();
    let pmd_size = layout.mode.pmd_size() as u64;
    let mut va = fix_start as u64;
    while va < fix_end {
        require_table(&mut r, w, va as u32, "fixmap");
        va += pmd_size;
    }
    require_table(&mut r, w, layout.pkmap_base, "persistent-kmap area");

    // Pagetable pages: count them, and check they are read-only if the
    // backend needs that.
    w.for_each_table(PAGE_OFFSET, top, |pfn, level| {
        match level {
            Level::Pte => r.pte_tables += 1,
            Level::Pmd => r.pmd_tables += 1,
            Level::Pgd => {}
        }
        if readonly_tables && crate::ptdump::mapped_readonly(w, layout, pfn) == Some(false) {
            r.add(Problem::WritableTable { pfn });
        }
    });

    // The user half is only counted, at pmd granularity: walking it page by
    // page would double the check's cost for the PAE identity alias.
    let pmd_size = layout.mode.pmd_size();
    let mut va = 0u64;
    while va < PAGE_OFFSET as u64 {
        match w.pmd(va as u32) {
            Some(p) => {
                r.user_pmds += present(p.read()) as u32;
                va += pmd_size as u64;
            }
            None => va += 1 << layout.mode.pgd_shift(),
        }
    }
    r
}

fn require_table<M: Mmu + ?Sized>(r: &mut Report, w: &Walker<M>, va: u32, what: &'static str) {
    let ok = w.pmd(va).map(|p| {
        let v = p.read();
        present(v) && !w.is_large(v)
    });
    if ok != Some(true) {
        r.add(Problem::NoTable { va, what });
    }
}

fn check_mapping(
    r: &mut Report,
    m: &Mapping,
    pfn: Pfn,
    layout: &Layout,
    caps: &Caps,
    direct_end: u64,
    expect: &mut u64,
) {
    let va = m.va as u64;
    if va >= direct_end {
        r.add(Problem::Stray { va: m.va, pfn });
        return;
    }
    if va > *expect {
        r.add(Problem::Missing { va: *expect as u32 });
    }
    *expect = va + m.size as u64;
    let want = Pfn(((va - PAGE_OFFSET as u64) >> 12) as u32);
    if pfn != want {
        r.add(Problem::WrongFrame { va: m.va, want, got: pfn });
    }
    if m.flags.contains(PteFlags::USER) {
        r.add(Problem::Permission { va: m.va, why: "kernel page is user-accessible" });
    }
    let section = if m.size > 4096 {
        if layout.image.overlaps_protected(m.va, m.size) {
            r.add(Problem::Permission { va: m.va, why: "large page covers kernel text/rodata" });
        }
        Section::Data
    } else {
        layout.image.section(m.va)
    };
    let rw = m.flags.contains(PteFlags::RW);
    let nx = m.flags.contains(PteFlags::NX);
    let why = match section {
        Section::Text if rw => Some("kernel text is writable"),
        Section::Text if nx => Some("kernel text is not executable"),
        Section::Rodata if rw => Some("rodata is writable"),
        Section::Rodata if caps.nx && !nx => Some("rodata is executable"),
        Section::Data if caps.nx && !nx => Some("data is executable (W^X)"),
        _ => None,
    };
    if let Some(why) = why {
        r.add(Problem::Permission { va: m.va, why });
    }
}
