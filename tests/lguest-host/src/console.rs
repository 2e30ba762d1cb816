//! The serial port, shared by the host's own lines and the guest's early
//! console (NOTIFY).
//!
//! The guest's text goes out as it comes, so its log reads exactly as it
//! would on bare metal. Meanwhile the host assembles it into lines to find
//! the `Test result:` verdicts; its own lines start with `lguest-host:` and
//! are only ever printed at the start of a line.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use paravirt::ExitStatus;

/// The serial line on the machine; on the host (tests, fuzzing) there is
/// none and output is dropped: tests look at the host's state, not at its
/// text.
fn out(bytes: &[u8]) {
    #[cfg(target_os = "none")]
    arch_i386::serial::COM1.write(bytes);
    #[cfg(not(target_os = "none"))]
    let _ = bytes;
}

struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        out(s.as_bytes());
        Ok(())
    }
}

pub fn init() {
    #[cfg(target_os = "none")]
    arch_i386::serial::COM1.init();
}

/// A host line: `lguest-host: ...`.
pub fn host_line(args: fmt::Arguments) {
    let _ = Serial.write_str("lguest-host: ");
    let _ = Serial.write_fmt(args);
    let _ = Serial.write_str("\n");
}

#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::host_line(format_args!($($arg)*))
    };
}
pub use say;

/// The guest has printed a `Test result:` line (for the host-fault path,
/// which has no [`GuestConsole`] at hand).
pub static GUEST_RESULT: AtomicBool = AtomicBool::new(false);

/// The first bytes of a line are enough to recognise a verdict.
const PREFIX: usize = 64;

/// The guest's console, as the host follows it.
pub struct GuestConsole {
    line: [u8; PREFIX],
    len: usize,
    at_line_start: bool,
    /// `Test result:` lines seen, and the verdict of the first.
    pub results: u32,
    pub verdict: Option<ExitStatus>,
    pub bytes: u32,
}

impl Default for GuestConsole {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestConsole {
    pub const fn new() -> GuestConsole {
        GuestConsole { line: [0; PREFIX], len: 0, at_line_start: true, results: 0, verdict: None, bytes: 0 }
    }

    /// Prints a byte of guest output and follows its lines.
    pub fn put(&mut self, b: u8) {
        out(&[b]);
        self.bytes += 1;
        if b == b'\n' {
            self.end_line();
        } else {
            self.at_line_start = false;
            if self.len < PREFIX {
                self.line[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn end_line(&mut self) {
        let line = &self.line[..self.len];
        if let Some(rest) = line.strip_prefix(b"Test result: ") {
            self.results += 1;
            GUEST_RESULT.store(true, Ordering::Relaxed);
            let v = if rest == b"SUCCESS" {
                ExitStatus::Success
            } else if rest.starts_with(b"ERROR") {
                ExitStatus::Error
            } else {
                // FAILURE, or anything else that claims to be a result.
                ExitStatus::Failure
            };
            self.verdict.get_or_insert(v);
        }
        self.len = 0;
        self.at_line_start = true;
    }

    /// Before a host line: finish a guest line the guest left open.
    pub fn break_line(&mut self) {
        if !self.at_line_start {
            out(b"\n");
            self.end_line();
        }
    }
}

/// The host's own verdict, for a run whose guest printed none.
pub fn host_result(status: ExitStatus, why: &dyn fmt::Display) {
    let _ = writeln!(Serial, "Test result: {}: lguest-host: {}", status.word(), why);
}
