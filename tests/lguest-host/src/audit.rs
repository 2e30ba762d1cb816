//! The final audit: is every shadow entry still backed by the guest's own
//! pagetables?
//!
//! A shadow entry may be *less* than the guest's mapping (not filled yet,
//! dropped by a flush) but never more: the same frame, and no permission
//! the guest's current tables do not grant. An entry that fails this is a
//! change the guest made without telling the host (a page made read-only
//! without SET_PTE, say): on lguest the guest would go on using the old
//! mapping. Each one is a violation.

use crate::console::say;
use crate::fatal::fatal;
use crate::gpt::{Walk, RW, USER};
use crate::shadow::{Mismatch, Shadows};

/// Violations printed in full; the rest are counted.
const SHOWN: u32 = 8;

fn perm(p: u32) -> (&'static str, &'static str) {
    (if p & RW != 0 { "writable" } else { "read-only" }, if p & USER != 0 { "user" } else { "kernel" })
}

fn report(m: &Mismatch) {
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
        "violation: shadow of guest pgdir {:#x} maps {:#010x} -> guest frame {:#x} {} {}, but the guest's pagetable {}",
        m.gpgdir,
        m.va,
        m.frame,
        rw,
        who,
        guest
    );
}

/// Runs the audit; returns the number of violations.
pub fn run(shadows: &Shadows) -> u32 {
    let mut violations = 0;
    let checked = shadows.audit(|m| {
        violations += 1;
        if violations <= SHOWN {
            report(m);
        }
    });
    if violations > SHOWN {
        say!("violation: ... and {} more", violations - SHOWN);
    }
    say!(
        "audit: {} shadow ptes in {} shadow pgdirs checked against the guest's pagetables: {} violations",
        checked,
        shadows.slots_used(),
        violations
    );
    violations
}
