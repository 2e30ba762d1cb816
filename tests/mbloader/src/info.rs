//! Multiboot info: reading QEMU's real one, writing the fake one.

/// The parts of the real info the loader needs.
pub struct Real {
    pub mem_upper_kib: u32,
    cmdline: &'static str,
    mods: u32,
    mods_count: u32,
}

pub struct Module {
    pub start: u32,
    pub end: u32,
    /// The module string minus its first word (QEMU puts the file name
    /// first): the kernel's command line.
    pub cmdline_tail: &'static str,
}

fn rd32(at: u32) -> u32 {
    // SAFETY: callers read QEMU's info structures, identity-mapped.
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
    // SAFETY: as above; n bytes before the NUL.
    let b = unsafe { core::slice::from_raw_parts(at as *const u8, n as usize) };
    core::str::from_utf8(b).unwrap_or("")
}

impl Real {
    /// # Safety
    /// `mbi` must point at a multiboot info.
    pub unsafe fn read(mbi: u32) -> Real {
        let flags = rd32(mbi);
        Real {
            mem_upper_kib: rd32(mbi + 8),
            cmdline: if flags & 4 != 0 { cstr(rd32(mbi + 16)) } else { "" },
            mods: if flags & 8 != 0 { rd32(mbi + 24) } else { 0 },
            mods_count: if flags & 8 != 0 { rd32(mbi + 20) } else { 0 },
        }
    }

    pub fn cmdline_value(&self, key: &str) -> Option<&'static str> {
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
        let m = self.mods + i * 16;
        let s = cstr(rd32(m + 8));
        Some(Module {
            start: rd32(m),
            end: rd32(m + 4),
            cmdline_tail: s.split_once(' ').map(|(_, t)| t).unwrap_or(""),
        })
    }
}

const FAKE_INFO: u32 = 0x9000;
const FAKE_CMDLINE: u32 = 0x9400;
const FAKE_MMAP: u32 = 0x9800;

fn wr32(at: u32, v: u32) {
    // SAFETY: the fake area (0x9000-0xA000) is free low memory.
    unsafe { (at as *mut u32).write_unaligned(v) }
}

fn wr64(at: u32, v: u64) {
    wr32(at, v as u32);
    wr32(at + 4, (v >> 32) as u32);
}

/// Writes the fake info for `scenario`; None if the scenario is unknown.
///
/// # Safety
/// Writes to 0x9000-0xA000.
pub unsafe fn build_fake(scenario: &str, real: &Real, cmdline: &str) -> Option<u32> {
    const LOW: (u64, u64, u32) = (0, 0x9_FC00, 1);
    let top = 0x10_0000 + real.mem_upper_kib as u64 * 1024;
    let high = (0x10_0000u64, top - 0x10_0000, 1u32);
    let above = (1u64 << 32, 1u64 << 30, 1u32);
    let mut flags = 1 | 4 | 64; // mem, cmdline, mmap
    let mut mmap_addr = FAKE_MMAP;
    let entries: &[(u64, u64, u32)] = match scenario {
        "ok" => &[LOW, high],
        "missing" => {
            flags &= !64;
            &[]
        }
        "overlap" => &[LOW, (0x10_0000, 0x3F0_0000, 1), (0x200_0000, 0x400_0000, 1)],
        "zero" => &[LOW, (0x10_0000, 0, 1), high],
        "above4g" => &[above],
        "wrap" => &[LOW, high, (0xFFFF_FFFF_FFFF_F000, 0x2000, 2)],
        "badptr" => {
            mmap_addr = 0x3F00_0000;
            &[LOW, high]
        }
        "tiny" => &[LOW, (0x10_0000, 0x10_0000, 1)],
        "cross4g" => &[LOW, high, above],
        _ => return None,
    };
    for (i, &(base, len, ty)) in entries.iter().enumerate() {
        let e = FAKE_MMAP + i as u32 * 24;
        wr32(e, 20);
        wr64(e + 4, base);
        wr64(e + 12, len);
        wr32(e + 20, ty);
    }
    for (i, b) in cmdline.bytes().chain([0]).enumerate() {
        // SAFETY: FAKE_CMDLINE has 1 KiB; QEMU limits command lines.
        unsafe { *((FAKE_CMDLINE + i as u32) as *mut u8) = b };
    }
    for off in (0..88).step_by(4) {
        wr32(FAKE_INFO + off, 0);
    }
    wr32(FAKE_INFO, flags);
    wr32(FAKE_INFO + 4, 639);
    wr32(FAKE_INFO + 8, real.mem_upper_kib);
    wr32(FAKE_INFO + 16, FAKE_CMDLINE);
    wr32(FAKE_INFO + 44, entries.len() as u32 * 24);
    wr32(FAKE_INFO + 48, mmap_addr);
    Some(FAKE_INFO)
}
