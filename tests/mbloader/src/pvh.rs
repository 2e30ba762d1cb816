//! The hvm_start_info a PVH loader hands the kernel (Xen's public
//! `arch-x86/hvm/start_info.h`): sane but for the flaw each `pvh-*`
//! scenario names. The kernel is entered at its XEN_ELFNOTE_PHYS32_ENTRY
//! as QEMU's PVH option ROM does: flat 32-bit protected mode, paging off,
//! ebx = the start_info.

/// Where the fake structures go: free low memory, as in `fake.rs`.
const START_INFO: u32 = 0x9000;
const CMDLINE: u32 = 0x9400;
const MEMMAP: u32 = 0x9800;

use paravirt::pvh::{
    MAGIC, MEMMAP_ENTRY, OFF_CMDLINE, OFF_MAGIC, OFF_MEMMAP, OFF_MEMMAP_ENTRIES, OFF_VERSION, SIZE,
};

use crate::fake::{wr32, wr64};

const VERSION: u32 = 1;
const RAM: u32 = 1;
/// The layout's offsets, as the loader's 32-bit addresses.
const fn at(off: u64) -> u32 {
    START_INFO + off as u32
}

/// Physical memory no RAM backs on the 128 MiB machine the rows boot.
const NOWHERE: u64 = 0x3F00_0000;

/// Writes the start_info for `scenario` (its name after `pvh-`); None if
/// the scenario is unknown.
///
/// # Safety
/// Writes to 0x9000-0xA000.
pub unsafe fn build(scenario: &str, ram_end: u64, cmdline: &str) -> Option<u32> {
    const LOW: (u64, u64) = (0, 0x9_FC00);
    let high = (0x10_0000u64, ram_end - 0x10_0000);
    let mut version = VERSION;
    let mut memmap = MEMMAP as u64;
    let mut count = None;
    let mut cmd = CMDLINE as u64;
    let entries: &[(u64, u64)] = match scenario {
        "ok" => &[LOW, high],
        // Newer versions only add fields; the kernel reads them as 1.
        "version-new" => {
            version = 0x7FFF_FFFF;
            &[LOW, high]
        }
        "version0" => {
            version = 0;
            &[LOW, high]
        }
        "mmap-missing" => {
            memmap = 0;
            &[LOW, high]
        }
        "mmap-empty" => &[],
        "mmap-overlap" => &[LOW, (0x10_0000, 0x3F0_0000), (0x200_0000, 0x400_0000)],
        "mmap-outside" => {
            memmap = NOWHERE;
            &[LOW, high]
        }
        "mmap-huge" => {
            count = Some(0x0100_0000);
            &[LOW, high]
        }
        // RAM up to 768 MiB on a machine with 128.
        "ram-outside" => &[LOW, (0x10_0000, 0x2FF0_0000)],
        "cmdline-nowhere" => {
            cmd = NOWHERE;
            &[LOW, high]
        }
        _ => return None,
    };
    for (i, &(base, len)) in entries.iter().enumerate() {
        let e = MEMMAP + i as u32 * MEMMAP_ENTRY as u32;
        wr64(e, base);
        wr64(e + 8, len);
        wr32(e + 16, RAM);
        wr32(e + 20, 0);
    }
    for (i, b) in cmdline.bytes().chain([0]).enumerate() {
        // SAFETY: CMDLINE has 1 KiB; QEMU limits command lines.
        unsafe { *((CMDLINE + i as u32) as *mut u8) = b };
    }
    for off in (0..SIZE).step_by(4) {
        wr32(at(off), 0);
    }
    wr32(at(OFF_MAGIC), MAGIC);
    wr32(at(OFF_VERSION), version);
    wr64(at(OFF_CMDLINE), cmd);
    wr64(at(OFF_MEMMAP), memmap);
    wr32(at(OFF_MEMMAP_ENTRIES), count.unwrap_or(entries.len() as u32));
    Some(START_INFO)
}
