//! Prints the self-check: a ptdump-style summary of the kernel half (its
//! mappings, what the build kept, the pagetable pages: what `cargo xtask
//! ptdump` draws), the table counts, and every problem found; and the
//! same summary of a process's user half.

use mm::check::{check, Report};
use mm::ptdump::{table_runs, user_ranges, user_table_runs, KeptRange};
use mm::walk::Walker;
use mm::{Caps, Layout, Pagetable};

use crate::kprintln;

/// Checks the live pagetable `pt` and prints the result.
pub fn run(w: &Walker, layout: &Layout, caps: &Caps, readonly_tables: bool, pt: &Pagetable) -> Report {
    kprintln!("ptdump: kernel half of the live pagetable (root pfn {:#x}):", w.root.0);
    let r = check(w, layout, caps, readonly_tables, |d| kprintln!("ptdump: {}", d));
    for &(first, end) in pt.stats.kept.runs() {
        kprintln!("ptdump: {}", KeptRange(first, end));
    }
    if pt.stats.kept.unlisted > 0 {
        kprintln!("ptdump: kept {} more pages, not listed", pt.stats.kept.unlisted);
    }
    table_runs(w, layout, &pt.fresh, |t| kprintln!("ptdump: {}", t));
    kprintln!(
        "selfcheck: {} pages mapped ({} large), {} pte pages, {} pmd pages, {} user-half pmd entries (the boot identity alias), {} problems",
        r.mapped_pages,
        r.large_pages,
        r.pte_tables,
        r.pmd_tables,
        r.user_pmds,
        r.problems
    );
    for p in r.problems() {
        kprintln!("selfcheck: problem: {}", p);
    }
    if r.ok() {
        kprintln!(
            "selfcheck: ok: low memory mapped once at PAGE_OFFSET, {}, fixmap and pkmap tables present{}",
            if caps.nx {
                "W^X holds (text RX, rodata R, the rest RW NX)"
            } else {
                "text and rodata read-only (no NX: data stays executable)"
            },
            if readonly_tables { ", pagetable pages read-only" } else { "" }
        );
    }
    r
}

/// Most runs of a user half printed: a copy-on-write region alternates
/// writable and read-only pages, and would otherwise fill the log.
const USER_RUNS: usize = 12;

/// Prints the ptdump of the user half `w` walks; `whose` says whose.
pub fn user_half(w: &Walker, layout: &Layout, whose: core::fmt::Arguments) {
    kprintln!("ptdump: user half of {} (root pfn {:#x}):", whose, w.root.0);
    let more = user_ranges(w, USER_RUNS, |d| kprintln!("ptdump: {}", d));
    if more > 0 {
        kprintln!("ptdump: {} more runs, not listed", more);
    }
    user_table_runs(w, layout, |t| kprintln!("ptdump: {}", t));
}
