//! A child's exit code: one byte (`status::exited` keeps eight bits) that
//! tells init what the child saw.
//!
//! ```text
//! 0x00..=0x7F   every check held; the value is hash7 of the checksum the
//!               child read back from its region after filling it, which
//!               init recomputes from the child's pid and size alone (so
//!               a status wait attributes to the wrong pid shows)
//! 0x80 | bits   these checks failed (Failures: bits 0-6)
//! 0xFF          the child panicked (user_lib::PANIC_EXIT)
//! ```
//!
//! MMAP ends a child at once, so it never comes with another bit: 0xFF is
//! never a report of failures, and 0x80 (failed, nothing failed) never
//! anything.
//!
//! The grandchild a child forks answers it the same way, with its own
//! bits (`GrandchildFailures`, exit code 0 when all held).

use core::fmt;

use crate::pattern::hash7;

/// What a child found wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures(pub u8);

impl Failures {
    /// mmap refused the region (the child stops there).
    pub const MMAP: Failures = Failures(1 << 0);
    /// Demand paging went wrong: a page was not zero at its first touch,
    /// or the region did not read back as written (its checksum is not
    /// its pattern's).
    pub const FILL: Failures = Failures(1 << 1);
    /// fork of the grandchild failed.
    pub const FORK: Failures = Failures(1 << 2);
    /// The grandchild did not exit 0 (it did not see its own writes or its
    /// parent's pattern, or it faulted), or wait did not return it.
    pub const GRANDCHILD: Failures = Failures(1 << 3);
    /// The region's checksum changed across the grandchild's life: its
    /// writes to the copy-on-write pages reached the child.
    pub const COW: Failures = Failures(1 << 4);
    /// sleep returned before its time by TIME, or TIME did not advance
    /// while spinning.
    pub const TIME: Failures = Failures(1 << 5);
    /// munmap of half the region failed, or the half kept lost its pattern.
    pub const MUNMAP: Failures = Failures(1 << 6);

    const NAMES: [&'static str; 7] = ["mmap", "fill", "fork", "grandchild", "cow", "time", "munmap"];

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: Failures) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOrAssign for Failures {
    fn bitor_assign(&mut self, other: Failures) {
        self.0 |= other.0;
    }
}

/// `fork+cow`: the names of the bits set.
impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut sep = "";
        for (bit, name) in Self::NAMES.iter().enumerate() {
            if self.0 & 1 << bit != 0 {
                write!(f, "{sep}{name}")?;
                sep = "+";
            }
        }
        Ok(())
    }
}

/// The child's exit code for these failures, or for success with the
/// checksum it read.
pub fn encode(failures: Failures, sum: u32) -> u32 {
    if failures.is_empty() {
        hash7(sum) as u32
    } else {
        0x80 | failures.0 as u32
    }
}

/// What an exit code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    Passed {
        hash: u8,
    },
    Failed(Failures),
    Panicked,
    /// A code no child makes.
    Invalid(u8),
}

pub fn decode(code: u8) -> Report {
    match code {
        0x00..=0x7F => Report::Passed { hash: code },
        0xFF => Report::Panicked,
        0x80 => Report::Invalid(code),
        c if c & 0x01 != 0 && c != 0x81 => Report::Invalid(code),
        c => Report::Failed(Failures(c & 0x7F)),
    }
}

/// What a grandchild found wrong; its exit code is these bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrandchildFailures(pub u8);

impl GrandchildFailures {
    /// A page it wrote did not read back as written.
    pub const OWN_WRITES: GrandchildFailures = GrandchildFailures(1 << 0);
    /// A page it only read did not hold its parent's pattern.
    pub const SHARED: GrandchildFailures = GrandchildFailures(1 << 1);
    /// getppid was not the child that forked it.
    pub const PARENT: GrandchildFailures = GrandchildFailures(1 << 2);
}

impl core::ops::BitOrAssign for GrandchildFailures {
    fn bitor_assign(&mut self, other: GrandchildFailures) {
        self.0 |= other.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_a_child_makes_decodes_to_what_it_meant() {
        for sum in [0, 1, 0xDEAD_BEEF, u32::MAX] {
            assert_eq!(decode(encode(Failures::default(), sum) as u8), Report::Passed { hash: hash7(sum) });
        }
        assert_eq!(decode(encode(Failures::MMAP, 0) as u8), Report::Failed(Failures::MMAP));
        // Every combination a child can report: MMAP alone, or any of the
        // other six.
        for bits in (0..0x80u8).filter(|b| b & 1 == 0 && *b != 0) {
            let code = encode(Failures(bits), 0x1234) as u8;
            assert_eq!(decode(code), Report::Failed(Failures(bits)), "{bits:#x}");
            assert_ne!(code as u32, user_lib::PANIC_EXIT);
        }
        assert_eq!(decode(0xFF), Report::Panicked);
        assert_eq!(decode(0x80), Report::Invalid(0x80));
        assert_eq!(decode(0x83), Report::Invalid(0x83));
    }

    #[test]
    fn failures_print_by_name() {
        let mut f = Failures::FORK;
        f |= Failures::COW;
        assert_eq!(format!("{f}"), "fork+cow");
        assert!(f.contains(Failures::COW) && !f.contains(Failures::TIME));
    }
}
