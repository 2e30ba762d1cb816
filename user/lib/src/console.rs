//! The console: WRITE, and `print!`/`println!` over it.
//!
//! Every process writes to the one console, and the kernel may switch
//! processes between two WRITEs, so a `print!` formats into a buffer first
//! and writes it in one call: a line of up to `LINE` bytes reaches the
//! console whole, never interleaved with another process's.

use core::fmt;

use user_abi::nr;

use crate::{raw, Errno};

/// The longest output one WRITE carries.
pub const LINE: usize = 256;

/// Writes `bytes` to the console; how many the kernel took.
pub fn write(bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel reads `bytes.len()` bytes of a live slice.
    Errno::check(unsafe { raw::syscall2(nr::WRITE, bytes.as_ptr() as u32, bytes.len() as u32) })
        .map(|n| n as usize)
}

/// Formatted output gathered into whole writes of up to `LINE` bytes,
/// handed to `sink` (WRITE, or a test's vector).
pub struct Buffered<F: FnMut(&[u8])> {
    buf: [u8; LINE],
    len: usize,
    sink: F,
}

impl<F: FnMut(&[u8])> Buffered<F> {
    pub fn new(sink: F) -> Self {
        Buffered { buf: [0; LINE], len: 0, sink }
    }

    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.sink)(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl<F: FnMut(&[u8])> fmt::Write for Buffered<F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// All of `bytes`, however the kernel splits it; output the console
/// refuses is dropped (there is nowhere else to say so).
fn write_all(mut bytes: &[u8]) {
    while let Ok(n @ 1..) = write(bytes) {
        bytes = bytes.get(n..).unwrap_or_default();
        if bytes.is_empty() {
            break;
        }
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let mut out = Buffered::new(write_all);
    let _ = fmt::Write::write_fmt(&mut out, args);
    out.flush();
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use core::fmt::Write;

    use super::*;

    #[test]
    fn a_short_line_is_one_write() {
        let mut writes = Vec::new();
        {
            let mut out = Buffered::new(|b: &[u8]| writes.push(b.to_vec()));
            let pid = 7;
            writeln!(out, "pid {pid}: ok").unwrap();
            out.flush();
        }
        assert_eq!(writes, vec![b"pid 7: ok\n".to_vec()]);
    }

    #[test]
    fn a_long_one_is_split_at_the_buffer_and_nothing_is_lost() {
        let mut writes = Vec::new();
        {
            let mut out = Buffered::new(|b: &[u8]| writes.push(b.len()));
            out.write_str(&"x".repeat(LINE * 2 + 10)).unwrap();
            out.flush();
            out.flush();
        }
        assert_eq!(writes, vec![LINE, LINE, 10]);
    }
}
