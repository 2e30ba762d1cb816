//! The kernel command line: a copy in the kernel's own memory (boot
//! structures get overwritten), and `key=value` lookup.

use core::fmt;

pub const CMDLINE_MAX: usize = 512;

#[derive(Clone, Copy)]
pub struct CmdLine {
    buf: [u8; CMDLINE_MAX],
    len: usize,
    /// The boot loader's line was longer than we keep.
    pub truncated: bool,
}

impl Default for CmdLine {
    fn default() -> Self {
        CmdLine { buf: [0; CMDLINE_MAX], len: 0, truncated: false }
    }
}

impl CmdLine {
    /// From raw bytes, stopping at the first NUL.
    pub fn from_bytes(b: &[u8]) -> CmdLine {
        let mut c = CmdLine::default();
        let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
        let n = end.min(CMDLINE_MAX);
        c.buf[..n].copy_from_slice(&b[..n]);
        c.len = n;
        c.truncated = end > CMDLINE_MAX;
        c
    }

    pub fn as_str(&self) -> &str {
        // Not UTF-8? Keep the valid prefix: the line is for humans and for
        // ASCII keys.
        match core::str::from_utf8(&self.buf[..self.len]) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }

    /// The value of the last `key=value` word (the last one wins, as in
    /// Linux), if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.as_str()
            .split_ascii_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .next_back()
    }

    /// Is the bare word `flag` present?
    pub fn has(&self, flag: &str) -> bool {
        self.as_str().split_ascii_whitespace().any(|w| w == flag)
    }
}

impl fmt::Debug for CmdLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup() {
        let c =
            CmdLine::from_bytes(b"console=ttyS0 hypervisor=xen  paging=pae hypervisor=native quiet\0junk");
        assert_eq!(c.get("hypervisor"), Some("native"));
        assert_eq!(c.get("paging"), Some("pae"));
        assert_eq!(c.get("missing"), None);
        assert!(c.has("quiet"));
        assert!(!c.has("junk"));
    }

    #[test]
    fn long_lines_are_truncated_and_say_so() {
        let long = [b'a'; CMDLINE_MAX + 10];
        let c = CmdLine::from_bytes(&long);
        assert!(c.truncated);
        assert_eq!(c.as_str().len(), CMDLINE_MAX);
    }
}
