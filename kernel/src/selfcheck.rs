//! Prints the self-check: a ptdump-style summary of the kernel half, the
//! table counts, and every problem found.

use mm::check::{check, Report};
use mm::walk::Walker;
use mm::{Caps, Layout};

use crate::kprintln;

/// Checks the live pagetable and prints the result.
pub fn run(w: &Walker, layout: &Layout, caps: &Caps, readonly_tables: bool) -> Report {
    kprintln!("ptdump: kernel half of the live pagetable (root pfn {:#x}):", w.root.0);
    let r = check(w, layout, caps, readonly_tables, |d| kprintln!("ptdump: {}", d));
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
