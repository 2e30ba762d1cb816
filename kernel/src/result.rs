//! How a run ends: exactly one `Test result:` line, then the backend's
//! shutdown with a matching status (XTF's convention).

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use paravirt::ExitStatus;

use crate::console;

static FINISHED: AtomicBool = AtomicBool::new(false);

/// Prints the result line and ends the run. A second call (a fault while
/// finishing) prints nothing more, so the log never shows two results.
pub fn finish(status: ExitStatus, why: fmt::Arguments) -> ! {
    if console::backend().is_none() && arch_i386::desc::cpl() == 0 {
        // Nothing was chosen (none linked, none detected, or we failed
        // before choosing): in ring 0 the native console still works, so
        // the early log and the result are not lost.
        console::set_backend(&NoBackend);
    }
    if !FINISHED.swap(true, Ordering::SeqCst) {
        if status == ExitStatus::Success {
            crate::kprintln!("Test result: SUCCESS");
        } else {
            crate::kprintln!("Test result: {}: {}", status.word(), why);
        }
    }
    shutdown(status)
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

pub fn success() -> ! {
    finish(ExitStatus::Success, format_args!(""))
}

#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        $crate::result::finish(paravirt::ExitStatus::Failure, format_args!($($arg)*))
    };
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        $crate::result::finish(paravirt::ExitStatus::Error, format_args!($($arg)*))
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
