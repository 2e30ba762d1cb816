//! How a run ends, the Xen Test Framework's way: whatever the kernel finds
//! is reported with a status (SUCCESS, SKIP, ERROR, FAILURE); the most
//! severe one wins, and exactly one `Test result:` line is printed, at the
//! end, followed by the backend's shutdown with the matching status.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use paravirt::ExitStatus;
use spin::Mutex;

use crate::console;

const REASON_MAX: usize = 400;

/// The most severe status reported so far, and the first reason given for
/// it.
struct Verdict {
    status: ExitStatus,
    why: [u8; REASON_MAX],
    len: usize,
}

static VERDICT: Mutex<Verdict> =
    Mutex::new(Verdict { status: ExitStatus::Success, why: [0; REASON_MAX], len: 0 });

static FINISHED: AtomicBool = AtomicBool::new(false);

impl Write for Verdict {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len < REASON_MAX {
                self.why[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Records `status` (with its reason) if it is more severe than anything
/// reported so far; the run goes on.
pub fn report(status: ExitStatus, why: fmt::Arguments) {
    // A fault while reporting must not deadlock: if the verdict is busy,
    // the finish that follows prints what it has.
    let Some(mut v) = VERDICT.try_lock() else { return };
    if status > v.status {
        v.status = status;
        v.len = 0;
        let _ = v.write_fmt(why);
    }
}

/// Prints the one result line and ends the run with its status. A second
/// call (a fault while finishing) prints nothing more, so the log never
/// shows two results.
pub fn finish() -> ! {
    if console::backend().is_none() && arch_i386::desc::cpl() == 0 {
        // Nothing was chosen (none linked, none detected, or we failed
        // before choosing): in ring 0 the native console still works, so
        // the early log and the result are not lost.
        console::set_backend(&NoBackend, None);
    }
    let status = match VERDICT.try_lock() {
        Some(v) => v.status,
        None => ExitStatus::Failure,
    };
    if !FINISHED.swap(true, Ordering::SeqCst) {
        crate::perf::total();
        match VERDICT.try_lock() {
            Some(v) if v.status != ExitStatus::Success => {
                let why = core::str::from_utf8(&v.why[..v.len]).unwrap_or("(unprintable reason)");
                crate::kprintln!("Test result: {}: {}", v.status.word(), why);
            }
            Some(_) => crate::kprintln!("Test result: SUCCESS"),
            None => crate::kprintln!("Test result: FAILURE: a fault while reporting the result"),
        }
    }
    shutdown(status)
}

/// Reports `status` and ends the run at once.
pub fn end(status: ExitStatus, why: fmt::Arguments) -> ! {
    report(status, why);
    finish()
}

fn shutdown(status: ExitStatus) -> ! {
    match console::backend() {
        Some(hv) => hv.shutdown(status),
        // No backend in ring 1: nothing can be done but stop.
        None => loop {
            core::hint::spin_loop()
        },
    }
}

/// Something the kernel checked is wrong: FAILURE, and the run ends.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        $crate::result::end(paravirt::ExitStatus::Failure, format_args!($($arg)*))
    };
}

/// The environment broke, not the kernel: ERROR, and the run ends.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        $crate::result::end(paravirt::ExitStatus::Error, format_args!($($arg)*))
    };
}

/// This configuration cannot run the kernel's checks: SKIP, and the run
/// ends.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {
        $crate::result::end(paravirt::ExitStatus::Skip, format_args!($($arg)*))
    };
}

/// The console of last resort: native defaults, never selected.
struct NoBackend;

impl paravirt::Hypervisor for NoBackend {
    fn name(&self) -> &'static str {
        "none"
    }
    fn detect(&self, _: &paravirt::BootInfo) -> paravirt::Verdict {
        Err("the emergency console is never selected")
    }
}
