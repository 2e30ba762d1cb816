//! init's exit code: 0 when everything held, else the class of the first
//! failure it found (it goes on after one, so every failure is printed,
//! but the code names the first).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Failure {
    /// Its argument asked for no region size (max_mib 0).
    Arg = 1,
    /// A fork of a child failed (and FORK_MAY_FAIL was not given).
    Fork = 2,
    /// spawn of an embedded program failed.
    Spawn = 3,
    /// wait failed, returned a pid init did not make, or found children
    /// left at the end.
    Wait = 4,
    /// A child reported failed checks, panicked, or did not exit.
    Child = 5,
    /// A child passed its own checks but its checksum is not its pattern's.
    Checksum = 6,
    /// bad-kernel-read or bad-ud2 was not killed by the fault it makes.
    Fault = 7,
    /// The spinner ended by itself, or kill did not end it.
    Spinner = 8,
}

impl Failure {
    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            Failure::Arg => "arg",
            Failure::Fork => "fork",
            Failure::Spawn => "spawn",
            Failure::Wait => "wait",
            Failure::Child => "child",
            Failure::Checksum => "checksum",
            Failure::Fault => "fault",
            Failure::Spinner => "spinner",
        }
    }
}
