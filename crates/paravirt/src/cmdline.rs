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
    /// Offset of the first byte that is not UTF-8, if any: only the part
    /// before it is looked at.
    pub invalid_at: Option<usize>,
}

impl Default for CmdLine {
    fn default() -> Self {
        CmdLine { buf: [0; CMDLINE_MAX], len: 0, truncated: false, invalid_at: None }
    }
}

/// A `key=value` switch whose value is not what the key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadSwitch<'a> {
    pub key: &'static str,
    pub value: &'a str,
    pub want: &'static str,
}

impl fmt::Display for BadSwitch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}: not {}", self.key, self.value, self.want)
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
        c.invalid_at = core::str::from_utf8(&c.buf[..n]).err().map(|e| e.valid_up_to());
        c
    }

    /// The line, up to its first byte that is not UTF-8 (see `invalid_at`).
    pub fn as_str(&self) -> &str {
        let valid = self.invalid_at.unwrap_or(self.len);
        core::str::from_utf8(&self.buf[..valid]).unwrap_or("")
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

    /// A numeric switch: absent is `None`, present but not a decimal (or
    /// `0x` hexadecimal) number is an error, not a silent default.
    pub fn get_u32(&self, key: &'static str) -> Result<Option<u32>, BadSwitch<'_>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let parsed = match v.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        };
        parsed.map(Some).ok_or(BadSwitch { key, value: v, want: "a number" })
    }

    /// A switch that takes one of `choices`.
    pub fn get_choice(
        &self,
        key: &'static str,
        choices: &'static [&'static str],
        want: &'static str,
    ) -> Result<Option<&str>, BadSwitch<'_>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if choices.contains(&v) => Ok(Some(v)),
            Some(v) => Err(BadSwitch { key, value: v, want }),
        }
    }
}

impl fmt::Debug for CmdLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
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
    fn numeric_switches_parse_or_fail_loudly() {
        let c = CmdLine::from_bytes(b"a=12 b=0x1f c=twelve d=");
        assert_eq!(c.get_u32("a"), Ok(Some(12)));
        assert_eq!(c.get_u32("b"), Ok(Some(31)));
        assert_eq!(c.get_u32("z"), Ok(None));
        let e = c.get_u32("c").unwrap_err();
        assert_eq!(std::format!("{e}"), "c=twelve: not a number");
        assert!(c.get_u32("d").is_err());
        assert_eq!(c.get_choice("a", &["12"], "12"), Ok(Some("12")));
        assert!(c.get_choice("a", &["pae"], "pae").is_err());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_found() {
        let c = CmdLine::from_bytes(b"quiet \xff paging=pae");
        assert_eq!(c.invalid_at, Some(6));
        assert_eq!(c.as_str(), "quiet ");
    }

    #[test]
    fn long_lines_are_truncated_and_say_so() {
        let long = [b'a'; CMDLINE_MAX + 10];
        let c = CmdLine::from_bytes(&long);
        assert!(c.truncated);
        assert_eq!(c.as_str().len(), CMDLINE_MAX);
    }
}
