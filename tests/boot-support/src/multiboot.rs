//! What QEMU's multiboot loader tells a loader it boots: its RAM, its own
//! command line (`-append`), and the kernel to load (`-initrd "kernel.elf
//! CMDLINE"`: module 0, whose string is the file name followed by the
//! kernel's command line). Paging is off or identity-maps low memory, so
//! the info is read where it lies.

use arch_i386::multiboot::info::{
    CMDLINE, FLAGS, FLAG_CMDLINE, FLAG_MODS, MEM_UPPER, MODS_ADDR, MODS_COUNT, MOD_END, MOD_SIZE, MOD_START,
    MOD_STRING,
};

pub const MAGIC: u32 = arch_i386::multiboot::info::BOOTLOADER_MAGIC;

pub struct Info {
    /// End of RAM above 1 MiB (`mem_upper`), in bytes.
    pub ram_end: u64,
    pub cmdline: &'static str,
    mods: u32,
    mods_count: u32,
}

/// A module as QEMU loaded it.
pub struct Module {
    pub start: u32,
    pub end: u32,
    /// The module string minus its first word (the file name).
    pub cmdline: &'static str,
}

fn rd32(at: u32) -> u32 {
    // SAFETY: callers read QEMU's info structures, in low memory, which
    // the loaders reach at their physical address.
    unsafe { (at as *const u32).read_unaligned() }
}

/// A NUL-terminated string at `at` (identity-mapped).
fn cstr(at: u32) -> &'static str {
    if at == 0 {
        return "";
    }
    let mut n = 0;
    // SAFETY: QEMU writes NUL-terminated strings.
    while unsafe { *((at + n) as *const u8) } != 0 {
        n += 1;
    }
    // SAFETY: n bytes before the NUL, which stay in place for the whole run.
    let b = unsafe { core::slice::from_raw_parts(at as *const u8, n as usize) };
    core::str::from_utf8(b).unwrap_or("")
}

impl Info {
    /// # Safety
    /// `mbi` must be the multiboot info QEMU passed.
    pub unsafe fn read(mbi: u32) -> Info {
        let flags = rd32(mbi + FLAGS);
        let mods = flags & FLAG_MODS != 0;
        Info {
            ram_end: (1 << 20) + rd32(mbi + MEM_UPPER) as u64 * 1024,
            cmdline: if flags & FLAG_CMDLINE != 0 { cstr(rd32(mbi + CMDLINE)) } else { "" },
            mods: if mods { rd32(mbi + MODS_ADDR) } else { 0 },
            mods_count: if mods { rd32(mbi + MODS_COUNT) } else { 0 },
        }
    }

    /// The value of `key=value` on the loader's command line.
    pub fn option(&self, key: &str) -> Option<&'static str> {
        self.cmdline
            .split_ascii_whitespace()
            .filter_map(|w| w.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    pub fn module(&self, i: u32) -> Option<Module> {
        if i >= self.mods_count {
            return None;
        }
        let m = self.mods + i * MOD_SIZE;
        let s = cstr(rd32(m + MOD_STRING));
        Some(Module {
            start: rd32(m + MOD_START),
            end: rd32(m + MOD_END),
            cmdline: s.split_once(' ').map(|(_, t)| t).unwrap_or(""),
        })
    }
}

/// Parses a size: bytes, or with a K, M or G suffix ("32M").
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}
