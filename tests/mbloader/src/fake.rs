//! The multiboot info the loader hands the kernel: sane but for the flaw
//! each scenario names.

use arch_i386::multiboot::info::{
    CMDLINE, FLAGS, FLAG_CMDLINE, FLAG_MEM, FLAG_MMAP, MEM_LOWER, MEM_UPPER, MMAP_ADDR, MMAP_BASE,
    MMAP_ENTRY_MIN, MMAP_LEN, MMAP_LENGTH, MMAP_SIZE, MMAP_TYPE, SIZE,
};

const FAKE_INFO: u32 = 0x9000;
const FAKE_CMDLINE: u32 = 0x9400;
const FAKE_MMAP: u32 = 0x9800;

pub fn wr32(at: u32, v: u32) {
    // SAFETY: the fake area (0x9000-0xA000) is free low memory.
    unsafe { (at as *mut u32).write_unaligned(v) }
}

pub fn wr64(at: u32, v: u64) {
    wr32(at, v as u32);
    wr32(at + 4, (v >> 32) as u32);
}

/// Writes the fake info for `scenario`; None if the scenario is unknown.
///
/// # Safety
/// Writes to 0x9000-0xA000.
pub unsafe fn build(scenario: &str, ram_end: u64, cmdline: &str) -> Option<u32> {
    const LOW: (u64, u64, u32) = (0, 0x9_FC00, 1);
    let top = ram_end;
    let high = (0x10_0000u64, top - 0x10_0000, 1u32);
    let above = (1u64 << 32, 1u64 << 30, 1u32);
    let mut flags = FLAG_MEM | FLAG_CMDLINE | FLAG_MMAP;
    let mut mmap_addr = FAKE_MMAP;
    let entries: &[(u64, u64, u32)] = match scenario {
        "ok" => &[LOW, high],
        "missing" => {
            flags &= !FLAG_MMAP;
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
    let stride = MMAP_ENTRY_MIN + 4;
    for (i, &(base, len, ty)) in entries.iter().enumerate() {
        let e = FAKE_MMAP + i as u32 * stride;
        wr32(e + MMAP_SIZE, MMAP_ENTRY_MIN);
        wr64(e + MMAP_BASE, base);
        wr64(e + MMAP_LEN, len);
        wr32(e + MMAP_TYPE, ty);
    }
    for (i, b) in cmdline.bytes().chain([0]).enumerate() {
        // SAFETY: FAKE_CMDLINE has 1 KiB; QEMU limits command lines.
        unsafe { *((FAKE_CMDLINE + i as u32) as *mut u8) = b };
    }
    for off in (0..SIZE).step_by(4) {
        wr32(FAKE_INFO + off, 0);
    }
    wr32(FAKE_INFO + FLAGS, flags);
    wr32(FAKE_INFO + MEM_LOWER, 639);
    wr32(FAKE_INFO + MEM_UPPER, ((ram_end - 0x10_0000) / 1024) as u32);
    wr32(FAKE_INFO + CMDLINE, FAKE_CMDLINE);
    wr32(FAKE_INFO + MMAP_LENGTH, entries.len() as u32 * stride);
    wr32(FAKE_INFO + MMAP_ADDR, mmap_addr);
    Some(FAKE_INFO)
}
