//! Why a run must stop, as a message (the host has no allocator).
//!
//! lguest's `kill_guest`: a guest that breaks the rules (a bad hypercall,
//! a fault it has no handler for, a pagetable naming memory it does not
//! own) is stopped, and the reason ends up in the run's result line.
//! [`Msg`] is the fixed-capacity text that carries it (and any other
//! message the host assembles before printing).

use core::fmt;

const CAP: usize = 200;

#[derive(Clone, Copy)]
pub struct Msg {
    buf: [u8; CAP],
    len: usize,
}

impl Msg {
    pub fn new(args: fmt::Arguments) -> Msg {
        let mut f = Msg { buf: [0; CAP], len: 0 };
        let _ = fmt::write(&mut f, args);
        f
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("(unprintable)")
    }
}

impl fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut b = [0; 4];
            let enc = c.encode_utf8(&mut b);
            if self.len + enc.len() > CAP {
                return Err(fmt::Error);
            }
            self.buf[self.len..self.len + enc.len()].copy_from_slice(enc.as_bytes());
            self.len += enc.len();
        }
        Ok(())
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A run-ending error: its message.
pub type Fatal = Msg;

/// `msg!("...", args)`: a [`Msg`] with that text.
#[macro_export]
macro_rules! msg {
    ($($arg:tt)*) => {
        $crate::fatal::Msg::new(format_args!($($arg)*))
    };
}
pub use msg;
/// `fatal!("...", args)`: a [`Fatal`] saying why the run must stop.
pub use msg as fatal;

pub type Result<T = ()> = core::result::Result<T, Fatal>;
