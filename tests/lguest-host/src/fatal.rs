//! Why a run must stop, as a message (the host has no allocator).
//!
//! lguest's `kill_guest`: a guest that breaks the rules (a bad hypercall,
//! a fault it has no handler for, a pagetable naming memory it does not
//! own) is stopped, and the reason ends up in the run's result line.

use core::fmt;

const CAP: usize = 200;

#[derive(Clone, Copy)]
pub struct Fatal {
    buf: [u8; CAP],
    len: usize,
}

impl Fatal {
    pub fn new(args: fmt::Arguments) -> Fatal {
        let mut f = Fatal { buf: [0; CAP], len: 0 };
        let _ = fmt::write(&mut f, args);
        f
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("(unprintable)")
    }
}

impl fmt::Write for Fatal {
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

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `fatal!("...", args)`: a [`Fatal`] with that message.
macro_rules! fatal {
    ($($arg:tt)*) => {
        $crate::fatal::Fatal::new(format_args!($($arg)*))
    };
}
pub(crate) use fatal;

pub type Result<T = ()> = core::result::Result<T, Fatal>;
