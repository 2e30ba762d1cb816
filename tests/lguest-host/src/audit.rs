//! The audit: is every shadow entry still backed by the guest's own
//! pagetables?
//!
//! A shadow entry may be *less* than the guest's mapping (not filled yet,
//! dropped by a flush) but never more: the same frame, and no permission
//! the guest's current tables do not grant. An entry that fails this is a
//! change the guest made without telling the host (a page made read-only
//! without SET_PTE, say): on lguest the guest would go on using the old
//! mapping. Each one is a violation.
//!
//! A shadow is audited when it is evicted (the host keeps four, and a
//! guest with more live pgdirs than that evicts one at almost every
//! switch: its stale entries would otherwise vanish unseen) and, for the
//! shadows still kept, at the end. What a shadow the guest dropped itself
//! (SET_PMD, FLUSH_TLB) held is not audited: the guest said it changed.

use crate::console::say;
use crate::fatal::fatal;
use crate::gpt::{Walk, RW, USER};
use crate::shadow::{Mismatch, Shadows};

/// Violations kept to print in full; the rest are counted.
const SHOWN: usize = 8;

/// What audits found: shadow pgdirs and entries checked, violations.
#[derive(Clone, Copy, Debug, Default)]
pub struct Findings {
    pub pgdirs: u32,
    pub checked: u32,
    pub violations: u32,
    shown: [Option<Mismatch>; SHOWN],
}

impl Findings {
    pub fn bad(&mut self, m: &Mismatch) {
        if let Some(slot) = self.shown.get_mut(self.violations as usize) {
            *slot = Some(*m);
        }
        self.violations += 1;
    }

    fn report(&self, when: &str) {
        for m in self.shown.iter().flatten() {
            report(when, m);
        }
        if self.violations as usize > SHOWN {
            say!("violation: ... and {} more {}", self.violations as usize - SHOWN, when);
        }
    }
}

fn perm(p: u32) -> (&'static str, &'static str) {
    (if p & RW != 0 { "writable" } else { "read-only" }, if p & USER != 0 { "user" } else { "kernel" })
}

fn report(when: &str, m: &Mismatch) {
    let (rw, who) = perm(m.perm);
    let guest = match m.guest {
        Walk::Unmapped => fatal!("maps nothing there"),
        Walk::Large => fatal!("has a 4 MiB page there"),
        Walk::Mapped { frame, perm: p } => {
            let (grw, gwho) = perm(p);
            fatal!("maps frame {:#x} {} {} (a change the host was not told about)", frame, grw, gwho)
        }
    };
    say!(
        "violation {}: shadow of guest pgdir {:#x} maps {:#010x} -> guest frame {:#x} {} {}, but the guest's pagetable {}",
        when,
        m.gpgdir,
        m.va,
        m.frame,
        rw,
        who,
        guest
    );
}

/// The end of the run: audits the shadows still kept, reports them and
/// what the evictions' audits found; returns the number of violations.
pub fn run(shadows: &Shadows) -> u32 {
    let evicted = shadows.evicted;
    let kept = shadows.audit();
    evicted.report("at eviction");
    kept.report("at the end");
    say!(
        "audit: {} shadow ptes in {} shadow pgdirs at their eviction and {} in the {} kept at the end checked against the guest's pagetables: {} violations",
        evicted.checked,
        evicted.pgdirs,
        kept.checked,
        kept.pgdirs,
        evicted.violations + kept.violations
    );
    evicted.violations + kept.violations
}
