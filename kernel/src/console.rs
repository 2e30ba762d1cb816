//! The boot log.
//!
//! Until a backend is chosen there is no console: on Xen PV a port write
//! would fault, under lguest it would be skipped. So log lines go to a
//! buffer first, and are replayed on the chosen backend's console the
//! moment it exists (Linux's log_buf does the same for early printk).

use core::fmt::{self, Write};

use paravirt::{BootInfo, Hypervisor};
use spin::{Mutex, Once};

static BACKEND: Once<&'static dyn Hypervisor> = Once::new();

const EARLY_SIZE: usize = 8192;

struct Early {
    buf: [u8; EARLY_SIZE],
    len: usize,
    lost: usize,
}

static EARLY: Mutex<Early> = Mutex::new(Early { buf: [0; EARLY_SIZE], len: 0, lost: 0 });

/// The chosen backend, once there is one.
pub fn backend() -> Option<&'static dyn Hypervisor> {
    BACKEND.get().copied()
}

/// Makes `hv` the console and replays the early buffer on it.
pub fn set_backend(hv: &'static dyn Hypervisor, boot: Option<&BootInfo>) {
    if let Some(boot) = boot {
        hv.console_init(boot);
    }
    BACKEND.call_once(|| hv);
    let mut early = EARLY.lock();
    hv.console_write(&early.buf[..early.len]);
    if early.lost > 0 {
        let mut line = Line::new();
        let _ = writeln!(line, "(early log: {} bytes lost)", early.lost);
        hv.console_write(line.as_bytes());
    }
    early.len = 0;
}

/// Writes bytes to the console, or to the early buffer.
pub fn write(bytes: &[u8]) {
    match backend() {
        Some(hv) => hv.console_write(bytes),
        None => {
            let mut early = EARLY.lock();
            let room = EARLY_SIZE - early.len;
            let n = bytes.len().min(room);
            let at = early.len;
            early.buf[at..at + n].copy_from_slice(&bytes[..n]);
            early.len += n;
            early.lost += bytes.len() - n;
        }
    }
}

/// One line assembled in memory, so a console that costs a hypercall per
/// write gets one per line.
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line { buf: [0; 512], len: 0 }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                // Full: flush what we have and go on.
                write(&self.buf[..self.len]);
                self.len = 0;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// `println!` for the console.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut line = $crate::console::Line::new();
        let _ = writeln!(line, $($arg)*);
        $crate::console::write(line.as_bytes());
    }};
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Error => "error: ",
            log::Level::Warn => "warning: ",
            _ => "",
        };
        kprintln!("{}{}", level, record.args());
    }
    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

pub fn init_log() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}
